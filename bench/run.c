/* fmx-bench: calibrating the work, and running one lock once. */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static double elapsed_ns(uint64_t from_ticks, uint64_t to_ticks)
{
    return (double)(to_ticks - from_ticks) * bench_ns_per_tick();
}

static uint64_t ticks_after_ns(uint64_t from_ticks, double ns)
{
    return from_ticks + (uint64_t)(ns / bench_ns_per_tick());
}

/* ---- Calibration --------------------------------------------------------- */

/* Nanoseconds per private-work step and per critical-section step, each the
 * fastest of several timings on one thread with warm caches: a noisy
 * neighbour can then only make the work longer than asked, never shorter. */
static double private_step, cs_step;

double private_step_ns(void)
{
    return private_step;
}

double cs_step_ns(void)
{
    return cs_step;
}

void calibrate_work(void)
{
    enum { STEPS = 1000000, TRIES = 7 };
    static struct bench_shared shared;
    struct bench_work work = {.cs_lines = 1, .cs_steps = STEPS, .private_steps = 0};
    uint64_t x = 88172645463325252u, sink = 0;
    private_step = cs_step = INFINITY;
    for (int i = 0; i < TRIES; i++) {
        uint64_t t0 = bench_ticks();
        x = bench_private_work(x, STEPS);
        uint64_t t1 = bench_ticks();
        x = bench_critical_section(&shared, &work, x);
        uint64_t t2 = bench_ticks();
        sink ^= x;
        private_step = fmin(private_step, elapsed_ns(t0, t1) / STEPS);
        cs_step = fmin(cs_step, elapsed_ns(t1, t2) / STEPS);
    }
    /* Using the results keeps the timed work from being optimized away. */
    if (sink == 0 && shared.line[0].word[0] == 0)
        fail("calibration produced no work");
}

struct bench_work work_of(const struct workload *w)
{
    struct bench_work work = {
        .cs_lines = w->cs_lines,
        .cs_steps = (unsigned)lround(w->cs_extra_ns / cs_step),
        .private_steps = (unsigned)lround(w->private_ns / private_step),
    };
    return work;
}

/* ---- Runs ---------------------------------------------------------------- */

static struct {
    alignas(BENCH_CACHE_LINE) atomic_bool flag;
} stop;
static atomic_uint started;

static struct bench_lock_slot slot;

static void sleep_seconds(double seconds)
{
    struct timespec pause = {(time_t)seconds, (long)((seconds - floor(seconds)) * 1e9)};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
        continue;
}

static void *sleep_until_posted(void *semaphore)
{
    while (sem_wait(semaphore) != 0)
        continue;
    return NULL;
}

/* Runs every lock alone for a moment before anything is measured, so that
 * the first measured run pays for no library's lazy set-up (thread ids,
 * registries, symbol binding) and finds the CPU at its working clock. */
void warm_up(const struct options *o)
{
    static uint64_t batches[4096];
    for (unsigned l = 0; l < o->n_locks; l++) {
        o->locks[l]->init(&slot);
        (void)o->locks[l]->uncontended_loop(&slot, ticks_after_ns(bench_ticks(), 20e6), batches,
                                            sizeof batches / sizeof batches[0]);
        o->locks[l]->destroy(&slot);
    }
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The cost of a lock+unlock pair is the median batch's length / BENCH_BATCH:
 * on a shared machine some batches are stretched by preemption or by a
 * neighbour's interrupts, and the median leaves them out, while every cost
 * the lock itself pays at least once per batch stays in. */
void run_uncontended(const struct bench_lock *lock, double duration, struct run_metrics *m)
{
    /* Room for every batch even if a pair took only 1 ns. */
    size_t capacity = (size_t)(duration * 1e9 / BENCH_BATCH) + 1;
    uint64_t *batches = malloc(capacity * sizeof *batches);
    sem_t done;
    pthread_t sleeper;
    if (batches == NULL)
        fail("out of memory for %zu batches", capacity);
    sem_init(&done, 0, 0);
    /* A second thread, alive but asleep, so that no library can take a
     * single-threaded shortcut. */
    if (pthread_create(&sleeper, NULL, sleep_until_posted, &done) != 0)
        fail("cannot start a thread");
    lock->init(&slot);
    size_t n = lock->uncontended_loop(&slot, ticks_after_ns(bench_ticks(), duration * 1e9),
                                      batches, capacity);
    lock->destroy(&slot);
    sem_post(&done);
    pthread_join(sleeper, NULL);
    sem_destroy(&done);

    qsort(batches, n, sizeof *batches, compare_u64);
    double ns_per_pair = (double)batches[n / 2] * bench_ns_per_tick() / BENCH_BATCH;
    double pairs = (double)n * BENCH_BATCH;
    free(batches);
    *m = (struct run_metrics){
        .ops_per_sec = 1e9 / ns_per_pair,
        .ns_per_op = ns_per_pair,
        .jain = 1.0,
        .count_min = pairs,
        .count_max = pairs,
        .wait_p50_ns = NAN,
        .wait_p99_ns = NAN,
        .wait_max_ns = NAN,
        .contention = NAN,
        .contended_share = NAN,
        .switches_per_sec = NAN,
    };
}

/* Runs `threads` workers on one lock for `duration` seconds, checks that the
 * lock kept them apart, and fills *m.  The run lasts from the moment the
 * first worker passed the start line until the last one left its loop: a
 * lock that is slow to let its waiters go after the stop signal pays for that
 * time too. */
void run_contended(const struct bench_lock *lock, const struct workload *workload,
                   const struct bench_work *work, unsigned threads, double duration,
                   struct run_metrics *m)
{
    struct bench_shared *shared = aligned_alloc(BENCH_CACHE_LINE, sizeof *shared);
    struct bench_thread_result *results =
        aligned_alloc(BENCH_CACHE_LINE, threads * sizeof *results);
    struct bench_worker_arg *args = calloc(threads, sizeof *args);
    pthread_t *ids = calloc(threads, sizeof *ids);
    static struct bench_histogram waits;
    if (shared == NULL || results == NULL || args == NULL || ids == NULL)
        fail("out of memory for %u threads", threads);
    memset(shared, 0, sizeof *shared);
    memset(results, 0, threads * sizeof *results);

    pthread_barrier_t ready, start_line;
    pthread_barrier_init(&ready, NULL, threads + 1);
    pthread_barrier_init(&start_line, NULL, threads + 1);
    atomic_store_explicit(&stop.flag, false, memory_order_relaxed);
    atomic_store_explicit(&started, 0, memory_order_relaxed);
    lock->init(&slot);

    for (unsigned i = 0; i < threads; i++) {
        args[i] = (struct bench_worker_arg){
            .lock = &slot,
            .shared = shared,
            .work = work,
            .ready = &ready,
            .start = &start_line,
            .started = &started,
            .stop = &stop.flag,
            .result = &results[i],
            .seed = 0x9e3779b97f4a7c15u * (i + 1),
        };
        int error = pthread_create(&ids[i], NULL, lock->contended_worker, &args[i]);
        if (error != 0)
            fail("cannot start thread %u of %u: %s", i + 1, threads, strerror(error));
    }
    /* The lock's count starts after the workers' untimed acquires. */
    pthread_barrier_wait(&ready);
    uint32_t contention_before = lock->contention != NULL ? lock->contention(&slot) : 0;
    pthread_barrier_wait(&start_line);
    /* The run lasts `duration` from when every worker is in its loop: on a
     * busy machine a worker woken at the start line may not get a CPU for
     * longer than a short run, which would then measure nothing. */
    while (atomic_load_explicit(&started, memory_order_relaxed) < threads)
        sched_yield();
    sleep_seconds(duration);
    /* Relaxed: the workers only need to see the flag eventually. */
    atomic_store_explicit(&stop.flag, true, memory_order_relaxed);
    for (unsigned i = 0; i < threads; i++)
        pthread_join(ids[i], NULL);

    /* The lock's count wraps at 2^32; the difference is right modulo that. */
    uint32_t contention =
        lock->contention != NULL ? lock->contention(&slot) - contention_before : 0;
    lock->destroy(&slot);
    pthread_barrier_destroy(&ready);
    pthread_barrier_destroy(&start_line);

    uint64_t total = 0, start = UINT64_MAX, end = 0, count_min = UINT64_MAX, count_max = 0;
    uint64_t switches = 0;
    double sum_squares = 0;
    memset(&waits, 0, sizeof waits);
    for (unsigned i = 0; i < threads; i++) {
        uint64_t n = results[i].acquisitions;
        total += n;
        sum_squares += (double)n * (double)n;
        count_min = n < count_min ? n : count_min;
        count_max = n > count_max ? n : count_max;
        start = results[i].start_ticks < start ? results[i].start_ticks : start;
        end = results[i].end_ticks > end ? results[i].end_ticks : end;
        switches += results[i].switches;
        bench_histogram_merge(&waits, &results[i].wait);
    }
    /* The guarded count is a plain variable incremented inside the lock; if
     * it differs from the acquisitions, two threads were inside at once. */
    uint64_t guarded = shared->line[0].word[0];
    if (guarded != total) {
        fprintf(stderr,
                "fmx-bench: MUTUAL EXCLUSION BROKEN: %s, %s, %u threads: the guarded counter "
                "is %llu but the threads made %llu acquisitions\n",
                lock->name, workload->name, threads, (unsigned long long)guarded,
                (unsigned long long)total);
        exit(3);
    }

    double ns = elapsed_ns(start, end);
    double tick_ns = bench_ns_per_tick();
    *m = (struct run_metrics){
        .ops_per_sec = (double)total / (ns * 1e-9),
        .ns_per_op = total > 0 ? ns / (double)total : NAN,
        .jain = total > 0 ? (double)total * (double)total / ((double)threads * sum_squares) : 0,
        .count_min = (double)count_min,
        .count_max = (double)count_max,
        .wait_p50_ns = (double)bench_histogram_quantile(&waits, 0.50) * tick_ns,
        .wait_p99_ns = (double)bench_histogram_quantile(&waits, 0.99) * tick_ns,
        .wait_max_ns = (double)waits.max * tick_ns,
        .contention = lock->contention != NULL ? (double)contention : NAN,
        .contended_share =
            lock->contention != NULL && total > 0 ? (double)contention / (double)total : NAN,
        .switches_per_sec = (double)switches / (ns * 1e-9),
    };
    free(ids);
    free(args);
    free(results);
    free(shared);
}
