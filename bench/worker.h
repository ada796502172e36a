/* fmx-bench: the measuring loops, written once for every lock.
 *
 * An adapter file includes this header after defining, for its lock:
 *
 *   ADAPTER_NAME        the lock's name in the output, a string
 *   ADAPTER_ID          an identifier; this header defines bench_lock_<ID>
 *   ADAPTER_FAST_PATH   "inline" or "library call"
 *   adapter_lock_t      the lock's type (must fit in a cache line)
 *   adapter_init(adapter_lock_t *), adapter_destroy(adapter_lock_t *),
 *   adapter_lock(adapter_lock_t *), adapter_unlock(adapter_lock_t *)
 *                       static inline functions
 *
 * and optionally ADAPTER_CONTENTION (a function returning the lock's own
 * contention count as uint32_t), ADAPTER_AVAILABLE (a function returning
 * false when the lock cannot run here) and ADAPTER_NOT_A_PEER (a variant of
 * fastmutex, left out when fastmutex is compared with its peers) and
 * ADAPTER_NEVER_SLEEPS (a pure spinlock, run only where every thread has a
 * CPU of its own).  Because the loops below call the
 * adapter functions directly, a lock whose fast path is in a header gets it
 * inlined into the loop, exactly as a program using that lock would.
 */
#ifndef ADAPTER_ID
#error "define the adapter (see the comment above) before including worker.h"
#endif

#include <stdatomic.h>

#include "bench.h"

_Static_assert(sizeof(adapter_lock_t) <= sizeof(struct bench_lock_slot),
               "the lock must fit in its cache-line slot");
_Static_assert(_Alignof(adapter_lock_t) <= _Alignof(struct bench_lock_slot),
               "the lock must be aligned by its slot");

static void slot_init(void *slot)
{
    adapter_init((adapter_lock_t *)slot);
}

static void slot_destroy(void *slot)
{
    adapter_destroy((adapter_lock_t *)slot);
}

/* One thread of a contended run: wait for the others at the start line, then
 * acquire, work inside, release, work outside, until told to stop.  Every
 * acquire is timed, from just before the call to just after it returns; the
 * sample is filed after release so that the critical section stays short. */
static void *contended_worker(void *arg_)
{
    struct bench_worker_arg *arg = arg_;
    adapter_lock_t *lock = arg->lock;
    struct bench_shared *shared = arg->shared;
    const struct bench_work work = *arg->work;
    struct bench_thread_result *result = arg->result;
    uint64_t x = arg->seed;
    uint64_t acquisitions = 0;

    /* One untimed acquire first, so that per-thread set-up a lock does
     * lazily (a cached thread id, a thread-local record) is not counted as
     * waiting.  It touches no shared data and is not counted. */
    adapter_lock(lock);
    adapter_unlock(lock);
    pthread_barrier_wait(arg->ready);
    pthread_barrier_wait(arg->start);
    uint64_t switches_before = bench_thread_switches();
    result->start_ticks = bench_ticks();
    atomic_fetch_add_explicit(arg->started, 1, memory_order_relaxed);
    /* Relaxed: the flag only ends the loop; nothing is read through it. */
    while (!atomic_load_explicit(arg->stop, memory_order_relaxed)) {
        uint64_t before = bench_ticks();
        adapter_lock(lock);
        uint64_t after = bench_ticks();
        x = bench_critical_section(shared, &work, x);
        adapter_unlock(lock);
        /* A thread moved to another CPU between the two stamps may see a
         * slightly smaller second one; count that as no wait at all. */
        bench_histogram_add(&result->wait, after > before ? after - before : 0);
        acquisitions++;
        x = bench_private_work(x, work.private_steps);
    }
    result->end_ticks = bench_ticks();
    result->switches = bench_thread_switches() - switches_before;
    result->acquisitions = acquisitions;
    result->sink = x;
    return NULL;
}

/* The uncontended loop: acquire and release the caller's own lock, in
 * batches of BENCH_BATCH pairs, until the deadline or until `capacity`
 * batches are done.  Stores each batch's length in ticks and returns how many
 * batches there were. */
static size_t uncontended_loop(void *slot, uint64_t deadline_ticks, uint64_t *batch_ticks,
                               size_t capacity)
{
    adapter_lock_t *lock = slot;
    size_t batches = 0;
    uint64_t batch_start = bench_ticks(), now;
    do {
        for (unsigned i = 0; i < BENCH_BATCH; i++) {
            adapter_lock(lock);
            adapter_unlock(lock);
        }
        now = bench_ticks();
        batch_ticks[batches++] = now - batch_start;
        batch_start = now;
    } while (now < deadline_ticks && batches < capacity);
    return batches;
}

#ifdef ADAPTER_CONTENTION
static uint32_t slot_contention(void *slot)
{
    return ADAPTER_CONTENTION((adapter_lock_t *)slot);
}
#endif

#define BENCH_PASTE_(a, b) a##b
#define BENCH_PASTE(a, b) BENCH_PASTE_(a, b)

const struct bench_lock BENCH_PASTE(bench_lock_, ADAPTER_ID) = {
    .name = ADAPTER_NAME,
    .fast_path = ADAPTER_FAST_PATH,
#ifdef ADAPTER_NOT_A_PEER
    .peer = false,
#else
    .peer = true,
#endif
#ifdef ADAPTER_NEVER_SLEEPS
    .never_sleeps = true,
#endif
#ifdef ADAPTER_AVAILABLE
    .available = ADAPTER_AVAILABLE,
#else
    .available = NULL,
#endif
    .init = slot_init,
    .destroy = slot_destroy,
    .contended_worker = contended_worker,
    .uncontended_loop = uncontended_loop,
#ifdef ADAPTER_CONTENTION
    .contention = slot_contention,
#else
    .contention = NULL,
#endif
};
