/* The spin policy before issue 17, kept only for the paired A/B runs of the
 * benchmark (fmx_set_legacy_spin()); to be removed once measured. */
#include <sched.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#include "internal.h"

#define SPIN_NS 10000u
#define cpu_relax fmx_cpu_relax
#define owner_of fmx_owner_of

bool fmx_legacy_spin_on;

void fmx_set_legacy_spin(bool on)
{
    fmx_legacy_spin_on = on;
}
#if defined(__x86_64__) || defined(__i386__)
/* When cache lines come from far away.  On some machines (two sockets; on
 * this project's shared host, now and then, its two vCPUs) a line written
 * by the other CPU takes 100-300 ns to arrive instead of 25-50.  Spinners
 * that take the lock at every release then pay that at every acquire, for
 * the lock and for the data it guards: in short-constant two threads fell
 * from 16M to 4.5M acquires a second, below pthread's sleeping waiters
 * (6.3M).  A spinner that looks only every ~1.5 us leaves the holder's CPU
 * to take the lock many times in a row with its lines in its own cache:
 * 1.2-1.6x pthread there instead of 0.7-0.9x (2 to 64 threads).  When
 * lines are near fewer than 1 spin in 200 chose it.
 *
 * Each thread keeps its own average (1/8 weight to the newest) of how many
 * TSC ticks a spinning load took when it found the word changed, that is
 * when the line came from the CPU that changed it.  Far means above 200
 * ticks: about 80 ns at this machine's 2.6 GHz, and 50-100 ns at any TSC
 * rate of 2-4 GHz, between near (25-50 ns) and far (100 ns and more).
 * Loads longer than 100000 ticks were interrupted, not slow: skipped. */
#define FAR_EXCHANGE_TICKS 200u
#define FAR_PAUSES 64u
static _Thread_local uint32_t exchange_ticks;

/* Loads the word, and if it changed since *last, feeds the time the load
 * took into exchange_ticks.  The fences keep the load between the stamps.
 * They cost about as much as a near exchange, and made every look at the
 * word that much later (0.92x the throughput at 16 threads when lines
 * are near), so only one spin in 16 times its loads: machines change from
 * near to far over seconds, not microseconds. */
static _Thread_local unsigned spins_seen;

static inline bool time_this_spin(void)
{
    return (++spins_seen & 15) == 0;
}

static inline uint32_t watch_word(fast_mutex_t *m, uint32_t *last, bool timed)
{
    if (!timed)
        return atomic_load_explicit(&m->word, memory_order_relaxed);
    _mm_lfence();
    uint64_t before = __rdtsc();
    _mm_lfence();
    uint32_t word = atomic_load_explicit(&m->word, memory_order_relaxed);
    _mm_lfence();
    uint64_t took = __rdtsc() - before;
    if (word != *last) {
        if (took < 100000)
            exchange_ticks = (uint32_t)((exchange_ticks * 7u + took) / 8u);
        *last = word;
    }
    return word;
}

static inline bool lines_come_from_far(void)
{
    return exchange_ticks > FAR_EXCHANGE_TICKS;
}
#else
/* No cheap ordered cycle counter: always spin as when lines are near. */
static inline bool time_this_spin(void)
{
    return false;
}

static inline uint32_t watch_word(fast_mutex_t *m, uint32_t *last, bool timed)
{
    (void)last;
    (void)timed;
    return atomic_load_explicit(&m->word, memory_order_relaxed);
}

static inline bool lines_come_from_far(void)
{
    return false;
}
#define FAR_PAUSES 8u
#endif

/* Spinning for a holder that is not running.  With more threads than
 * CPUs the holder is often preempted in its critical section, and a woken
 * waiter may be the very thread that displaced it: spinning then only
 * keeps the holder off its CPU.  The kernel's mutex spins only while the
 * owner is on a CPU; a process cannot ask that, but each thread notes in
 * its record the CPU it runs on when it first waits and whenever a spin of
 * its own lasts a while (fmx_note_cpu(), at the same moments as the
 * question), and a spinner running on the holder's CPU knows the holder is
 * not running there.  It then stops spinning and sleeps, giving the CPU
 * back.  A stale note (the holder moved since) costs one early sleep.
 * Noting at every slow-path entry instead looked about 1% slower in
 * short-constant (within the spread of 5 runs).  Measured with bench/ in
 * long-constant, 3 interleaved runs: against absl, 0.97-0.98x at 16
 * threads before, 1.00-1.01x after; at 64 and 4 threads 1-2% better;
 * short-constant unchanged.
 *
 * Whether the holder in `word` last noted `cpu` (from sched_getcpu()). */
static bool holder_ran_on(uint32_t word, int cpu)
{
    struct fmx_record *holder = fmx_record_of((int32_t)owner_of(word));
    if (holder == NULL || cpu < 0)
        return false;
    return atomic_load_explicit(&holder->cpu, memory_order_relaxed) == (uint32_t)cpu + 1;
}

/* The most pauses between two looks at the word when lines are near.  A
 * holder that lets go and comes back after a little private work leaves
 * the lock free for only that long, 0.1 us in bench/'s workloads: looking
 * every 8 pauses (about 190 ns here) missed about half of those windows,
 * and in long-constant a spinner often missed them for its whole 10 us
 * and slept.  With 2 (about 50 ns) it slept a third to a half as often,
 * and long-constant gained 2-4% at 2 to 64 threads (interleaved runs);
 * short-constant, where the lock is free more often, did not change. */
#define NEAR_PAUSES 2u

/* The mid path: spin while the lock is held, taking it the moment it is
 * free (and dropping the flags in `clear`: WOKEN, for a woken waiter).
 * Read-only while waiting, so the owner's cache line is not stolen from
 * it; the pause between reads doubles up to NEAR_PAUSES, or is long from
 * the start when cache lines come from far away (see above).  Spinning even
 * while others are queued (barging) keeps the lock busy; the handoff bound
 * keeps it from starving them. */
bool fmx_legacy_spin(fast_mutex_t *m, uint32_t self, uint32_t clear)
{
    uint64_t start = 0;
    bool far = lines_come_from_far();
    unsigned cap = far ? FAR_PAUSES : NEAR_PAUSES;
    unsigned backoff = far ? FAR_PAUSES : 1u;
    bool timed = time_this_spin();
    uint32_t last = atomic_load_explicit(&m->word, memory_order_relaxed);
    for (unsigned round = 0;; round++) {
        uint32_t word = watch_word(m, &last, timed);
        if (fast_mutex_take_free_(m, word, self, clear))
            return true;
        /* Every 8 rounds, from the 4th: most spins end sooner, unasked.
         * Note where we run, for spinners waiting on us later, and ask
         * where the holder ran. */
        if ((round & 7) == 3) {
            int cpu = sched_getcpu();
            struct fmx_record *own = fmx_own_record();
            if (own != NULL)
                fmx_note_cpu(own, cpu);
            if (holder_ran_on(word, cpu))
                return false;
        }
        for (unsigned i = 0; i < backoff; i++)
            cpu_relax();
        if (backoff < cap)
            backoff <<= 1;
        /* Read the clock only now and then: it costs more than a pause.
         * (When lines come from far, eight rounds take 12 us, so such a
         * spin lasts about twice the budget: measured so, and kept.) */
        if ((round & 7) == 7) {
            uint64_t now = fmx_now_ns();
            if (start == 0)
                start = now;
            else if (now - start > SPIN_NS)
                return false;
        }
    }
}

