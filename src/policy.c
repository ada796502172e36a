/* Every decision of fast_mutex_t about time: whether a thread that found
 * the lock held spins, how long, whether it gives its CPU away, and, at
 * release, whether the oldest waiter is handed the lock or woken to
 * compete.  The protocol (fastmutex.c) asks; this file answers.
 *
 * Contract:
 *
 *   fmx_policy_spin(m, self, clear)
 *     Called by an acquire that found m held, before it queues (and by a
 *     woken waiter before it queues again).  Takes m if it becomes free
 *     within the spin, clearing the flags in `clear`, and returns true;
 *     returns false when the caller should queue and park.  Spinning trades
 *     a CPU for a shorter wait: it pays while the holder runs on another
 *     CPU and lets go soon, since a futex wake and the woken thread's trip
 *     back to a CPU cost far more than a short critical section.  It costs
 *     when more threads want the lock than there are CPUs to run them: a
 *     spinner then keeps the holder, or the waiter that was woken to take
 *     the lock next, off a CPU.  So while the threads wanting m (its
 *     holder, its queue and the caller) outnumber the CPUs the process may
 *     run on, a spinner gives its CPU away between looks (sched_yield())
 *     and parks after a few such looks.  Read-only while waiting, so the
 *     holder keeps its cache lines.
 *
 *   fmx_policy_hand_off(head)
 *     Called by a release that takes the oldest waiter off the queue.
 *     True: the lock passes to that waiter directly, never free, so that
 *     nobody starves (and the lock idles until the waiter runs).  False:
 *     the waiter is woken to compete with running threads, which keeps a
 *     busy lock busy.  True once the waiter has been first in line for
 *     HANDOFF_US.
 *
 *   fmx_policy_woken_is_late(m)
 *     Called by a release while a woken waiter is on its way (WOKEN set).
 *     False: no wake is due, the woken waiter will take the lock or queue
 *     again.  True: it has been gone so long that it waits for a CPU, and
 *     the release wakes the next waiter too, so that the queue does not
 *     drain one scheduler round at a time.
 *
 * The evidence for each constant (A/B runs on the benchmark's grid) is in
 * doc/design.md, "The policy and its constants".
 */
#include <sched.h>

#include "internal.h"

/* The longest a thread spins before it parks: trades a CPU's time for not
 * paying a wake and reschedule (~25 us).  Critical sections of up to a few
 * microseconds end within it. */
#define SPIN_NS 10000u
/* The most pauses between two looks at the word: longer misses the short
 * moments the lock is free between a holder's release and its next
 * acquire; shorter loads the holder's line more often. */
#define MAX_PAUSES 2u
/* How many times a spinner gives its CPU away before it parks, while
 * threads outnumber CPUs: each look lets a runnable holder or woken waiter
 * run; more looks keep a thread out of the queue that will not get the
 * lock while others run. */
#define CROWD_YIELDS 4u
/* A waiter first in line this long is handed the lock: trades throughput
 * (the lock idles until it runs) for a bounded wait.  Counted from when it
 * became first, so that at most one handoff per bound idles the lock. */
#define HANDOFF_US 1000u
/* A woken waiter not back within this long waits for a CPU (wake-to-run is
 * ~20 us on an idle machine): trades a wake nobody may need for keeping the
 * queue moving when the woken waiter is stuck. */
#define WOKEN_LATE_US 300u

/* The CPUs this process may run on, asked once: the mask changes rarely,
 * and a stale count only moves the point where spinners yield. */
static _Atomic uint32_t cpus_allowed;

static uint32_t cpus(void)
{
    uint32_t n = atomic_load_explicit(&cpus_allowed, memory_order_relaxed);
    if (n != 0)
        return n;
    cpu_set_t set;
    int count = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    n = count > 0 ? (uint32_t)count : 1u;
    atomic_store_explicit(&cpus_allowed, n, memory_order_relaxed);
    return n;
}

/* Whether more threads want m than there are CPUs to run them: its holder,
 * the waiters in its queue and the caller. */
static bool crowded(const fast_mutex_t *m)
{
    return fmx_queue_length(m) + 2u > cpus();
}

/* Spins, giving the CPU away between looks, while threads outnumber CPUs. */
static bool yield_acquire(fast_mutex_t *m, uint32_t self, uint32_t clear)
{
    for (unsigned i = 0; i < CROWD_YIELDS; i++) {
        sched_yield();
        uint32_t word = atomic_load_explicit(&m->word, memory_order_relaxed);
        if (fast_mutex_take_free_(m, word, self, clear))
            return true;
    }
    return false;
}

/* Spins read-only with a short backoff, taking m the moment it is free,
 * for at most SPIN_NS; stops early when the mutex becomes crowded. */
static bool pause_acquire(fast_mutex_t *m, uint32_t self, uint32_t clear)
{
    uint64_t start = 0;
    unsigned backoff = 1;
    for (unsigned round = 0;; round++) {
        uint32_t word = atomic_load_explicit(&m->word, memory_order_relaxed);
        if (fast_mutex_take_free_(m, word, self, clear))
            return true;
        for (unsigned i = 0; i < backoff; i++)
            fmx_cpu_relax();
        if (backoff < MAX_PAUSES)
            backoff <<= 1;
        /* The clock costs more than a pause: read it every 8 rounds. */
        if ((round & 7) == 7) {
            if (crowded(m))
                return yield_acquire(m, self, clear);
            uint64_t now = fmx_now_ns();
            if (start == 0)
                start = now;
            else if (now - start > SPIN_NS)
                return false;
        }
    }
}

bool fmx_policy_spin(fast_mutex_t *m, uint32_t self, uint32_t clear)
{
    if (fmx_legacy_spin_on)
        return fmx_legacy_spin(m, self, clear);
    if (crowded(m))
        return yield_acquire(m, self, clear);
    return pause_acquire(m, self, clear);
}

bool fmx_policy_hand_off(const struct fmx_record *head)
{
    return fmx_first_in_line_for_us(head) > HANDOFF_US;
}

bool fmx_policy_woken_is_late(const fast_mutex_t *m)
{
    struct fmx_record *head = fmx_queue_head(m);
    return head != NULL && fmx_first_in_line_for_us(head) > WOKEN_LATE_US;
}
