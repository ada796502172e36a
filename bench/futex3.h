/* The classic three-state futex mutex, the reference for the uncontended
 * floor: what a lock costs when it does nothing but lock.  Written from the
 * well-known description (Drepper, "Futexes Are Tricky", mutex 2/3, and the
 * shape of glibc's lll_lock): no spinning, no owner, no checks, no fairness.
 *
 * The state word:
 *   0  free
 *   1  held, nobody waits
 *   2  held, and somebody may be asleep on the word; release must wake one
 *
 * A thread that has to wait sets the word to 2 before sleeping and keeps it
 * at 2 when it finally takes the lock, since it cannot know whether others
 * still sleep; the price is one spare wake now and then. */
#ifndef FMX_BENCH_FUTEX3_H
#define FMX_BENCH_FUTEX3_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct futex3 {
    _Atomic uint32_t state;
} futex3_t;

/* The waiting and waking halves, out of line as in any real lock. */
__attribute__((cold, noinline)) void futex3_lock_slow(futex3_t *m, uint32_t seen);
__attribute__((cold, noinline)) void futex3_wake(futex3_t *m);

static inline void futex3_lock(futex3_t *m)
{
    uint32_t seen = 0;
    /* Acquire: the critical section starts after the lock is ours; pairs
     * with the release exchange in futex3_unlock(). */
    if (!atomic_compare_exchange_strong_explicit(&m->state, &seen, 1, memory_order_acquire,
                                                 memory_order_relaxed))
        futex3_lock_slow(m, seen);
}

static inline void futex3_unlock(futex3_t *m)
{
    /* Release: the critical section's writes reach the next holder; pairs
     * with the acquire CAS or exchange in futex3_lock() / futex3_lock_slow(). */
    if (atomic_exchange_explicit(&m->state, 0, memory_order_release) == 2)
        futex3_wake(m);
}

#endif /* FMX_BENCH_FUTEX3_H */
