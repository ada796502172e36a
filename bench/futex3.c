/* The slow halves of the three-state futex mutex (see futex3.h). */
#include "futex3.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

void futex3_lock_slow(futex3_t *m, uint32_t seen)
{
    /* Announce a sleeper (state 2) and take the lock if it was free
     * meanwhile; otherwise sleep while the word still says 2.  The kernel
     * returns at once if the word changed, so no wake is lost.  Acquire, as
     * in futex3_lock(). */
    if (seen != 2)
        seen = atomic_exchange_explicit(&m->state, 2, memory_order_acquire);
    while (seen != 0) {
        syscall(SYS_futex, &m->state, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
        seen = atomic_exchange_explicit(&m->state, 2, memory_order_acquire);
    }
}

void futex3_wake(futex3_t *m)
{
    syscall(SYS_futex, &m->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}
