/* fmx-bench adapter: fastmutex, as a program uses it, with its misuse checks
 * and its waiter records and diagnostics on.  The fast paths are inline
 * functions of <fastmutex.h>.  lock_fastmutex_nodiag.c builds this same
 * adapter with the diagnostics off. */
#include <fastmutex.h>

#include "internal.h"

#ifndef ADAPTER_DIAGNOSTICS
#define ADAPTER_DIAGNOSTICS true
#define ADAPTER_NAME "fastmutex"
#define ADAPTER_ID fastmutex
#endif

typedef fast_mutex_t adapter_lock_t;

static inline void adapter_init(adapter_lock_t *m)
{
    /* The goals are measured with diagnostics on, even when the user's
     * environment says FASTMUTEX_DIAGNOSTICS=0; the switch is process-wide,
     * and the harness runs one lock at a time, between init and destroy. */
    fmx_set_diagnostics(ADAPTER_DIAGNOSTICS);
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

#define ADAPTER_FAST_PATH "inline"
#define ADAPTER_CONTENTION adapter_contention
#define ADAPTER_NOT_A_PEER
#include "worker.h"
