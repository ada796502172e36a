/* fmx-bench adapter: absl::Mutex (libabsl-dev), through the C shim of
 * absl_shim.cc: a library call. */
#include "absl_shim.h"

typedef fmx_bench_absl_mutex adapter_lock_t;

static inline void adapter_init(adapter_lock_t *m)
{
    fmx_bench_absl_init(m);
}

static inline void adapter_destroy(adapter_lock_t *m)
{
    fmx_bench_absl_destroy(m);
}

static inline void adapter_lock(adapter_lock_t *m)
{
    fmx_bench_absl_lock(m);
}

static inline void adapter_unlock(adapter_lock_t *m)
{
    fmx_bench_absl_unlock(m);
}

#define ADAPTER_NAME "absl"
#define ADAPTER_ID absl
#define ADAPTER_FAST_PATH "library call"
#include "worker.h"
