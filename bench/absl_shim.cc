// The C face of absl::Mutex for fmx-bench.  Each function is one call into
// libabsl_synchronization, which is where absl's fast path lives anyway
// (Mutex::Lock is not inline), so the shim adds one direct call per operation.
#include "absl_shim.h"

#include <new>

#include "absl/synchronization/mutex.h"

static_assert(sizeof(absl::Mutex) <= sizeof(fmx_bench_absl_mutex),
              "absl::Mutex must fit in the C side's block");
static_assert(alignof(absl::Mutex) <= alignof(fmx_bench_absl_mutex),
              "absl::Mutex must be aligned by the C side's block");

static absl::Mutex *as_mutex(fmx_bench_absl_mutex *m)
{
    return std::launder(reinterpret_cast<absl::Mutex *>(m->bytes));
}

// Debian builds libabsl without NDEBUG, which leaves absl's lock-order
// deadlock detection on by default (about 25 ns per lock+unlock pair here).
// absl's release builds turn it off; so does the benchmark, to measure absl
// as its authors ship it rather than as a debug build.
extern "C" void fmx_bench_absl_init(fmx_bench_absl_mutex *m)
{
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    new (m->bytes) absl::Mutex();
}

extern "C" void fmx_bench_absl_destroy(fmx_bench_absl_mutex *m)
{
    as_mutex(m)->~Mutex();
}

extern "C" void fmx_bench_absl_lock(fmx_bench_absl_mutex *m)
{
    as_mutex(m)->Lock();
}

extern "C" void fmx_bench_absl_unlock(fmx_bench_absl_mutex *m)
{
    as_mutex(m)->Unlock();
}
