/* fmx-bench: what the harness (main.c, run.c, report.c) and the lock
 * adapters (lock_*.c) share.
 *
 * Every lock is driven by the same code: worker.h holds the measuring loops
 * once, and each adapter file includes it after defining four tiny inline
 * functions over its lock.  The loops therefore get compiled once per lock
 * with that lock's fast path inlined where the lock allows it (a header-only
 * lock), and as a plain call where it does not (a lock in a library).
 */
#ifndef FMX_BENCH_H
#define FMX_BENCH_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

/* Shared data is laid out one item per 64-byte cache line so that two items
 * never share a line by accident: what a workload bounces between cores is
 * what it means to bounce. */
#define BENCH_CACHE_LINE 64

/* The lines a critical section may touch.  A power of two, so that the long
 * critical section can spread its steps over them with a mask. */
#define BENCH_SHARED_LINES 8

/* The uncontended loop times its lock+unlock pairs in batches this long
 * (about 10 us), so that a batch the scheduler interrupted can be told from
 * the others. */
#define BENCH_BATCH 1024

/* Every lock lives in a slot of its own cache line; an adapter whose lock is
 * larger fails to build (or, for a lock sized at run time, refuses to run). */
struct bench_lock_slot {
    alignas(BENCH_CACHE_LINE) unsigned char bytes[BENCH_CACHE_LINE];
};

/* What the critical sections touch.  line[0].word[0] is the guarded count:
 * a plain, non-atomic counter incremented once per acquire, inside the lock.
 * After a run it must equal the sum of the threads' acquisitions, or the lock
 * let two threads in at once.  word[0] of the other lines is only touched;
 * words 1..4 take the long critical section's scattered writes. */
struct bench_shared {
    struct {
        alignas(BENCH_CACHE_LINE) uint64_t word[BENCH_CACHE_LINE / sizeof(uint64_t)];
    } line[BENCH_SHARED_LINES];
};

/* The shape of one workload's loop, in units of work steps (one step of a
 * dependent xorshift chain, a few cycles).  Step counts are calibrated once
 * per program run from nanosecond targets, so every lock gets the same. */
struct bench_work {
    unsigned cs_lines;      /* shared lines incremented per acquire, 1..8 */
    unsigned cs_steps;      /* steps of extra work inside, over all 8 lines */
    unsigned private_steps; /* steps of work on private data after release */
};

/* Log-linear histogram of wait times in ticks: exact below 16, then 16
 * buckets per power of two (at most 1/16 = 6% relative error), up to 2^64. */
#define BENCH_HIST_SUB_BITS 4
#define BENCH_HIST_SUB (1u << BENCH_HIST_SUB_BITS)
#define BENCH_HIST_BUCKETS ((64 - BENCH_HIST_SUB_BITS + 1) * BENCH_HIST_SUB)

struct bench_histogram {
    uint64_t count[BENCH_HIST_BUCKETS];
    uint64_t samples;
    uint64_t max; /* exact, not bucketed */
};

/* What one worker thread reports after a contended run. */
struct bench_thread_result {
    alignas(BENCH_CACHE_LINE) uint64_t acquisitions; /* threads share no line */
    uint64_t start_ticks; /* when it passed the start line */
    uint64_t end_ticks;   /* when it left its loop */
    uint64_t sink;      /* the private work's result, so it is not optimized out */
    uint64_t switches;  /* its context switches over the loop, both kinds */
    struct bench_histogram wait;
};

/* What the harness hands each worker thread of a contended run. */
struct bench_worker_arg {
    void *lock;
    struct bench_shared *shared;
    const struct bench_work *work;
    pthread_barrier_t *ready; /* every worker has made its untimed acquire */
    pthread_barrier_t *start; /* the clock starts */
    atomic_uint *started;     /* counts the workers past the start, into their loops */
    const atomic_bool *stop;
    struct bench_thread_result *result;
    uint64_t seed;
};

/* One lock under test, as the harness sees it.  `available` is NULL for a
 * lock that can always run; `contention` is NULL for a lock that keeps no
 * such count. */
struct bench_lock {
    const char *name;
    const char *fast_path; /* "inline" or "library call" */
    bool peer;             /* false for fastmutex and its variants */
    bool never_sleeps;     /* a pure spinlock: run only with a CPU per thread */
    bool (*available)(void);
    void (*init)(void *slot);
    void (*destroy)(void *slot);
    void *(*contended_worker)(void *bench_worker_arg);
    size_t (*uncontended_loop)(void *slot, uint64_t deadline_ticks, uint64_t *batch_ticks,
                               size_t capacity);
    uint32_t (*contention)(void *slot);
};

/* A time stamp in ticks: the TSC where there is one, CLOCK_MONOTONIC
 * nanoseconds elsewhere; bench_ns_per_tick() converts.  A plain RDTSC, not
 * the serializing RDTSCP or LFENCE+RDTSC: those cost 15-25 ns more here, and
 * the stamp taken just after a lock returns sits inside the critical section,
 * where a plain RDTSC overlaps the surrounding work and costs next to
 * nothing.  The price is resolution: the stamp may be taken while the lock's
 * last compare-and-swap is still in flight, so waits below ~0.1 us read
 * short.  Longer waits, and every wait that slept, are exact. */
static inline uint64_t bench_ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return __rdtsc();
#else
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
#endif
}

/* Measured once by bench_calibrate_ticks(); 1.0 without a TSC. */
double bench_ns_per_tick(void);
void bench_calibrate_ticks(void);

/* The calling thread's context switches so far: those where it slept (a
 * futex wait) and those where it was preempted or gave its CPU away
 * (sched_yield), together. */
uint64_t bench_thread_switches(void);

/* One step of work: a xorshift64 step, whose result feeds the next one so
 * that the compiler can neither skip nor overlap the steps. */
static inline uint64_t bench_step(uint64_t x)
{
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

/* Work on the calling thread's own data only, between acquires. */
static inline uint64_t bench_private_work(uint64_t x, unsigned steps)
{
    for (unsigned i = 0; i < steps; i++)
        x = bench_step(x);
    return x;
}

/* The critical section: count the acquire, touch the shared lines, and do
 * the workload's extra steps as writes scattered over all shared lines. */
static inline uint64_t bench_critical_section(struct bench_shared *shared,
                                              const struct bench_work *work, uint64_t x)
{
    for (unsigned i = 0; i < work->cs_lines; i++)
        shared->line[i].word[0]++;
    for (unsigned i = 0; i < work->cs_steps; i++) {
        x = bench_step(x);
        shared->line[i & (BENCH_SHARED_LINES - 1)].word[1 + (x & 3)] += x;
    }
    return x;
}

static inline unsigned bench_histogram_index(uint64_t value)
{
    if (value < BENCH_HIST_SUB)
        return (unsigned)value;
    unsigned msb = 63u - (unsigned)__builtin_clzll(value);
    unsigned sub = (unsigned)(value >> (msb - BENCH_HIST_SUB_BITS)) & (BENCH_HIST_SUB - 1);
    return (msb - BENCH_HIST_SUB_BITS + 1) * BENCH_HIST_SUB + sub;
}

static inline void bench_histogram_add(struct bench_histogram *h, uint64_t value)
{
    h->count[bench_histogram_index(value)]++;
    h->samples++;
    if (value > h->max)
        h->max = value;
}

/* Adds every sample of `from` to `into`. */
void bench_histogram_merge(struct bench_histogram *into, const struct bench_histogram *from);

/* The value below which a fraction q (0..1] of the samples lie, as the middle
 * of its bucket (never above the exact maximum); 0 for an empty histogram. */
uint64_t bench_histogram_quantile(const struct bench_histogram *h, double q);

/* The locks compiled in, in the order they are listed and rotated. */
extern const struct bench_lock bench_lock_fastmutex;
extern const struct bench_lock bench_lock_fastmutex_nodiag;
extern const struct bench_lock bench_lock_fastmutex_prehook;
extern const struct bench_lock bench_lock_futex3;
extern const struct bench_lock bench_lock_pthread;
extern const struct bench_lock bench_lock_pthread_adaptive;
extern const struct bench_lock bench_lock_nsync;
extern const struct bench_lock bench_lock_ck_ticket;
extern const struct bench_lock bench_lock_ck_mcs;
extern const struct bench_lock bench_lock_absl;
extern const struct bench_lock bench_lock_parking_lot;

#endif /* FMX_BENCH_H */
