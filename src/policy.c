/* Every decision of fast_mutex_t about time: whether a thread that found
 * the lock held spins, how long and how fast it looks, whether it gives
 * its CPU away instead, and, at release, whether the oldest waiter is
 * handed the lock or woken to compete.  The protocol (fastmutex.c) asks;
 * this file answers.
 *
 * Contract:
 *
 *   fmx_policy_spin(m, self, clear)
 *     Called by an acquire that found m held, before it queues, and by a
 *     woken waiter before it queues again.  Takes m if it becomes free
 *     within the spin, clearing the flags in `clear`, and returns true;
 *     returns false when the caller should queue and park.
 *     Spinning trades a CPU for a shorter wait: it pays while the holder
 *     runs on another CPU and lets go soon, since a futex wake and the
 *     woken thread's trip back to a CPU cost far more than a short
 *     critical section.  It spins even while others are queued (barging
 *     keeps a busy lock busy; the handoff bound keeps it from starving
 *     them).  Read-only while waiting, so the holder keeps its cache
 *     lines.  When those lines come from far away, it looks often only
 *     while its looks find the line still in its own cache (the holder
 *     has not written the word: a long critical section), and seldom once
 *     a look had to fetch it, so that the holder's CPU can take the lock
 *     many times in a row.
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
 *   fmx_policy_make_way(m)
 *     Called by a release, after it let go, when a try_acquire failed
 *     during the hold (TRYING).  Returns once another thread holds m, or
 *     after TRY_WAY_NS: trades that much of the releasing thread's time,
 *     only when somebody asked, for the try_acquire's chance to get in
 *     before the releasing thread takes m again.
 *
 * The measurements behind each constant are in doc/design.md, "The policy
 * and its constants".
 */
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#include "internal.h"

/* The longest a thread spins before it parks: trades a CPU's time for not
 * paying a wake and reschedule (~25 us).  Critical sections of up to a few
 * microseconds end within it. */
#define SPIN_NS 10000u
/* The most pauses between two looks at the word when lines are near:
 * longer misses the short moments the lock is free between a holder's
 * release and its next acquire; shorter loads the holder's line more. */
#define NEAR_PAUSES 2u
/* Pauses before the next look when lines come from far and a look had to
 * fetch the line (about 1.5 us): trades a later look for leaving the
 * holder's CPU the lock and its lines. */
#define FAR_PAUSES 64u
/* Far means a line took more than this many TSC ticks to arrive (80 ns at
 * 2.6 GHz; between near, 25-50 ns, and far, 100-300 ns, at any rate of
 * 2-4 GHz).  While lines are near, one spin in FAR_TIMED_EVERY times its
 * loads: the fences cost about a near transfer per look, and machines
 * change from near to far over seconds.  While they are far, every look
 * is timed. */
#define FAR_EXCHANGE_TICKS 200u
#define FAR_TIMED_EVERY 16u
/* A waiter first in line this long is handed the lock: trades throughput
 * (the lock idles until it runs) for a bounded wait.  Counted from when it
 * became first, so that at most one handoff per bound idles the lock. */
#define HANDOFF_US 1000u
/* A woken waiter not back within this long waits for a CPU (wake-to-run is
 * ~20 us on an idle machine): trades a wake nobody may need for keeping the
 * queue moving when the woken waiter is stuck. */
#define WOKEN_LATE_US 300u
/* A thread asks the clock whether the woken waiter is late at one of this
 * many of its releases made while one is on its way: trades noticing a
 * late waiter a few releases later for a clock read at every release of a
 * busy lock (most of them, with waiters parked). */
#define WOKEN_LATE_ASK_EVERY 16u
/* How long a release waits for a try_acquire to take the mutex: several
 * tries of a polling loop, even when each fetches the line from afar. */
#define TRY_WAY_NS 1000u

/* Whether a spin that began at *start (0: not read yet) has lasted
 * SPIN_NS.  The clock costs more than a pause: it is read every 8 rounds. */
static bool spin_is_over(uint64_t *start, unsigned round)
{
    if (round % 8 != 7)
        return false;
    uint64_t now = fmx_now_ns();
    if (*start == 0)
        *start = now;
    return now - *start > SPIN_NS;
}

#if defined(__x86_64__) || defined(__i386__)
/* Each thread's average (1/8 weight to the newest) of the TSC ticks a
 * spinning load took when it found the word changed: then the line came
 * from the CPU that changed it. */
static _Thread_local uint32_t exchange_ticks;
static _Thread_local unsigned spins_seen;

static bool time_this_spin(void)
{
    return ++spins_seen % FAR_TIMED_EVERY == 0;
}

/* Feeds the ticks a load took into exchange_ticks when it found the word
 * changed since *last: then the line came from the CPU that changed it (a
 * load past 100000 ticks was interrupted, not slow). */
static void note_exchange(uint32_t word, uint32_t *last, uint64_t took)
{
    if (word == *last)
        return;
    if (took < 100000)
        exchange_ticks = (uint32_t)((exchange_ticks * 7u + took) / 8u);
    *last = word;
}

/* Loads the word; if `timed`, notes the time the load took (the fences
 * keep the load between the stamps). */
static uint32_t watch_word(fast_mutex_t *m, uint32_t *last, bool timed)
{
    if (!timed)
        return atomic_load_explicit(&m->word, memory_order_relaxed);
    _mm_lfence();
    uint64_t before = __rdtsc();
    _mm_lfence();
    uint32_t word = atomic_load_explicit(&m->word, memory_order_relaxed);
    _mm_lfence();
    note_exchange(word, last, __rdtsc() - before);
    return word;
}

static bool lines_come_from_far(void)
{
    return exchange_ticks > FAR_EXCHANGE_TICKS;
}

/* Each thread's pauses between two looks while lines come from far, kept
 * from one spin to the next (spin_far()). */
static _Thread_local unsigned far_gap = FAR_PAUSES;

/* Loads the word while lines come from far; *fetched tells whether the
 * load had to bring the line from another CPU or found it still in our
 * cache.  A word found free is returned at once, so that the caller's
 * compare-and-swap follows closely, and counts as fetched: that matters
 * only if the swap fails, when another CPU took the lock under us. */
static uint32_t look_far(fast_mutex_t *m, uint32_t *last, bool *fetched)
{
    _mm_lfence();
    uint64_t before = __rdtsc();
    _mm_lfence();
    uint32_t word = atomic_load_explicit(&m->word, memory_order_relaxed);
    *fetched = true;
    if (fmx_owner_of(word) == 0)
        return word;
    _mm_lfence();
    uint64_t took = __rdtsc() - before;
    *fetched = took > FAR_EXCHANGE_TICKS;
    note_exchange(word, last, took);
    return word;
}

/* The spin while lines come from far.  A look that found the line still in
 * our cache cost the holder nothing: the next comes after half the gap,
 * so that the end of a long critical section is seen soon after it comes.
 * A look that had to fetch the line took it from the holder's CPU, which
 * pays a transfer at its next write: the next waits FAR_PAUSES, and the
 * holder's CPU may meanwhile take the lock many times in a row with its
 * lines in its own cache. */
static bool spin_far(fast_mutex_t *m, uint32_t self, uint32_t clear)
{
    uint64_t start = 0;
    uint32_t last = atomic_load_explicit(&m->word, memory_order_relaxed);
    for (unsigned round = 0;; round++) {
        bool fetched;
        uint32_t word = look_far(m, &last, &fetched);
        if (fast_mutex_take_free_(m, word, self, clear))
            return true;
        /* The first look finds the line that the failed acquire fetched. */
        if (round > 0)
            far_gap = fetched ? FAR_PAUSES : far_gap > 1 ? far_gap / 2 : 1;
        for (unsigned i = 0; i < far_gap; i++)
            fmx_cpu_relax();
        if (spin_is_over(&start, round))
            return false;
    }
}
#else
/* No cheap ordered cycle counter: always spin as when lines are near. */
static bool time_this_spin(void)
{
    return false;
}

static uint32_t watch_word(fast_mutex_t *m, uint32_t *last, bool timed)
{
    (void)last;
    (void)timed;
    return atomic_load_explicit(&m->word, memory_order_relaxed);
}
#endif

bool fmx_policy_spin(fast_mutex_t *m, uint32_t self, uint32_t clear)
{
#if defined(__x86_64__) || defined(__i386__)
    if (lines_come_from_far())
        return spin_far(m, self, clear);
#endif
    uint64_t start = 0;
    unsigned backoff = 1;
    bool timed = time_this_spin();
    uint32_t last = atomic_load_explicit(&m->word, memory_order_relaxed);
    for (unsigned round = 0;; round++) {
        uint32_t word = watch_word(m, &last, timed);
        if (fast_mutex_take_free_(m, word, self, clear))
            return true;
        for (unsigned i = 0; i < backoff; i++)
            fmx_cpu_relax();
        if (backoff < NEAR_PAUSES)
            backoff <<= 1;
        if (spin_is_over(&start, round))
            return false;
    }
}

bool fmx_policy_hand_off(const struct fmx_record *head)
{
    return fmx_first_in_line_for_us(head) > HANDOFF_US;
}

bool fmx_policy_woken_is_late(const fast_mutex_t *m)
{
    static _Thread_local unsigned releases;
    if (++releases % WOKEN_LATE_ASK_EVERY != 0)
        return false;
    struct fmx_record *head = fmx_queue_head(m);
    return head != NULL && fmx_first_in_line_for_us(head) > WOKEN_LATE_US;
}

void fmx_policy_make_way(const fast_mutex_t *m)
{
    uint64_t start = fmx_now_ns();
    for (unsigned round = 1;; round++) {
        if (fmx_owner_of(atomic_load_explicit(&((fast_mutex_t *)m)->word,
                                              memory_order_relaxed)) != 0)
            return;
        fmx_cpu_relax();
        if (round % 8 == 0 && fmx_now_ns() - start > TRY_WAY_NS)
            return;
    }
}
