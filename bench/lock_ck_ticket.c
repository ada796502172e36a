/* fmx-bench adapter: Concurrency Kit's ticket spinlock (libck-dev), header
 * only, so inline.  Strictly FIFO and never sleeps: a waiter preempted by
 * the scheduler stalls everybody behind it, which the oversubscribed thread
 * counts show. */
#include <ck_spinlock.h>

typedef ck_spinlock_ticket_t adapter_lock_t;

static inline void adapter_init(adapter_lock_t *m)
{
    ck_spinlock_ticket_init(m);
}

static inline void adapter_destroy(adapter_lock_t *m)
{
    (void)m;
}

static inline void adapter_lock(adapter_lock_t *m)
{
    ck_spinlock_ticket_lock(m);
}

static inline void adapter_unlock(adapter_lock_t *m)
{
    ck_spinlock_ticket_unlock(m);
}

#define ADAPTER_NAME "ck-ticket"
#define ADAPTER_ID ck_ticket
#define ADAPTER_FAST_PATH "inline"
#define ADAPTER_NEVER_SLEEPS
#include "worker.h"
