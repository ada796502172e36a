/* fmx-bench adapter: fastmutex with its diagnostics switched off (no call
 * site, thread name or deadlock check in the waiter records; the queue and
 * the misuse checks stay).  Not a peer: it is there to show what the
 * diagnostics cost, next to the "fastmutex" row that keeps them on, which is
 * the one the goals are measured with.
 *
 * The switch is process-wide.  The harness runs one lock at a time and
 * calls init before the run's threads start and destroy after they end, so
 * turning diagnostics off in init and back on in destroy confines the
 * change to this lock's runs. */
#include <fastmutex.h>

#include "internal.h"

typedef fast_mutex_t adapter_lock_t;

static inline void adapter_init(adapter_lock_t *m)
{
    fmx_set_diagnostics(false);
    fast_mutex_init(m);
}

static inline void adapter_destroy(adapter_lock_t *m)
{
    fast_mutex_destroy(m);
    fmx_set_diagnostics(true);
}

static inline void adapter_lock(adapter_lock_t *m)
{
    fast_mutex_acquire(m);
}

static inline void adapter_unlock(adapter_lock_t *m)
{
    fast_mutex_release(m);
}

static inline uint32_t adapter_contention(adapter_lock_t *m)
{
    return fast_mutex_contention(m);
}

#define ADAPTER_NAME "fastmutex-nodiag"
#define ADAPTER_ID fastmutex_nodiag
#define ADAPTER_FAST_PATH "inline"
#define ADAPTER_CONTENTION adapter_contention
#define ADAPTER_NOT_A_PEER
#include "worker.h"
