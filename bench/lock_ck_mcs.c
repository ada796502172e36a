/* fmx-bench adapter: Concurrency Kit's MCS queue spinlock (libck-dev), header
 * only, so inline.  Each waiter spins on its own queue node, which lock and
 * unlock must both be given.  The benchmark's threads hold at most one lock
 * at a time, so one node per thread, in thread-local storage, serves every
 * acquire; a program nesting MCS locks would need one node per held lock. */
#include <ck_spinlock.h>

typedef ck_spinlock_mcs_t adapter_lock_t;

static _Thread_local struct ck_spinlock_mcs this_thread_node;

static inline void adapter_init(adapter_lock_t *m)
{
    ck_spinlock_mcs_init(m);
}

static inline void adapter_destroy(adapter_lock_t *m)
{
    (void)m;
}

static inline void adapter_lock(adapter_lock_t *m)
{
    ck_spinlock_mcs_lock(m, &this_thread_node);
}

static inline void adapter_unlock(adapter_lock_t *m)
{
    ck_spinlock_mcs_unlock(m, &this_thread_node);
}

#define ADAPTER_NAME "ck-mcs"
#define ADAPTER_ID ck_mcs
#define ADAPTER_FAST_PATH "inline"
#define ADAPTER_NEVER_SLEEPS
#include "worker.h"
