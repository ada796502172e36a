/* fmx-bench adapter: the three-state futex mutex of futex3.h, inline fast
 * paths, the floor any futex-based lock can hope to reach uncontended. */
#include "futex3.h"

typedef futex3_t adapter_lock_t;

static inline void adapter_init(adapter_lock_t *m)
{
    atomic_init(&m->state, 0);
}

static inline void adapter_destroy(adapter_lock_t *m)
{
    (void)m;
}

static inline void adapter_lock(adapter_lock_t *m)
{
    futex3_lock(m);
}

static inline void adapter_unlock(adapter_lock_t *m)
{
    futex3_unlock(m);
}

#define ADAPTER_NAME "futex3"
#define ADAPTER_ID futex3
#define ADAPTER_FAST_PATH "inline"
#include "worker.h"
