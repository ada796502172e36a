/* Stress: many threads (more than the machine has cores) take one lock many
 * times over, by blocking, trying and timed acquires mixed.  The test is
 * written once against the LOCK/UNLOCK macros below and built twice, for
 * fastmutex and for pthread_mutex_t (Concurrency Kit's validate.h style), so
 * a failure of the fastmutex build and a pass of the pthread one points at
 * the library, not at the test.
 *
 * What must hold:
 *   - a counter updated without atomics inside the critical section ends at
 *     exactly the number of times the lock was held;
 *   - no two threads are ever inside at once: each thread announces itself
 *     in an atomic `inside` word on entry, which must be empty then;
 *   - the lock's own idea of its owner is the thread inside;
 *   - timed acquires return 0 (holding) or ETIMEDOUT (not holding), nothing
 *     else, and a try that fails does not hold the lock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "core_test.h"

#if defined(STRESS_FASTMUTEX)
#include <fastmutex.h>
#define LOCK_NAME "fastmutex"
typedef fast_mutex_t lock_t;
#define LOCK_INIT(l) fast_mutex_init(l)
#define LOCK_DESTROY(l) fast_mutex_destroy(l)
#define LOCK(l) fast_mutex_acquire(l)
#define TRYLOCK(l) fast_mutex_try_acquire(l)
#define TIMEDLOCK(l, deadline) fast_mutex_acquire_until((l), (deadline))
#define UNLOCK(l) fast_mutex_release(l)
#define LOCK_OWNER(l) fast_mutex_owner(l)
#elif defined(STRESS_PTHREAD)
#define LOCK_NAME "pthread_mutex_t"
typedef pthread_mutex_t lock_t;
#define LOCK_INIT(l) pthread_mutex_init((l), NULL)
#define LOCK_DESTROY(l) pthread_mutex_destroy(l)
#define LOCK(l) pthread_mutex_lock(l)
#define TRYLOCK(l) (pthread_mutex_trylock(l) == 0)
#define TIMEDLOCK(l, deadline) pthread_mutex_clocklock((l), CLOCK_MONOTONIC, (deadline))
#define UNLOCK(l) pthread_mutex_unlock(l)
/* glibc keeps the owner's thread id in the mutex, as fastmutex does. */
#define LOCK_OWNER(l) ((pid_t)(l)->__data.__owner)
#else
#error "build with -DSTRESS_FASTMUTEX or -DSTRESS_PTHREAD"
#endif

/* How a worker goes for the lock in one iteration. */
enum mode { MODE_BLOCKING, MODE_TRY, MODE_TIMED };

struct shared_state {
    lock_t lock;
    unsigned long counter;  /* guarded by lock; deliberately not atomic */
    _Atomic pid_t inside;   /* the thread in the critical section, 0 none */
    atomic_ulong overlaps;  /* entries that found somebody inside */
    atomic_ulong wrong_owner; /* entries where the lock named someone else */
    atomic_ulong bad_returns; /* timed acquires that returned neither 0 nor ETIMEDOUT */
    atomic_ulong progress;  /* entries so far, for the stall watchdog */
    atomic_int finished;    /* workers done: the main thread watches for a
                             * stall until all are, then joins them */
    bool mixed;             /* whether workers also try and time out */
    pthread_barrier_t start; /* lets all workers go at once, so they overlap */
};

struct worker {
    struct shared_state *s;
    pthread_t thread;
    unsigned seed;
    int iterations;
    unsigned long entries; /* times this worker held the lock */
    unsigned long timeouts;
    unsigned long failed_tries;
};

static unsigned next_random(unsigned *seed)
{
    /* A small LCG is plenty to vary the mix and the hold times. */
    *seed = *seed * 1103515245u + 12345u;
    return *seed >> 16;
}

/* The critical section: check nobody else is in, read-modify-write the
 * counter with a pause in the middle so lost updates would show, leave. */
static void critical_section(struct shared_state *s, pid_t self, unsigned *seed)
{
    pid_t nobody = 0;
    if (!atomic_compare_exchange_strong(&s->inside, &nobody, self))
        atomic_fetch_add(&s->overlaps, 1);
    if (LOCK_OWNER(&s->lock) != self)
        atomic_fetch_add(&s->wrong_owner, 1);
    unsigned long value = s->counter;
    unsigned r = next_random(seed);
    if (r % 512 == 0) {
        /* Now and then the holder loses the CPU, so that the others find
         * the lock held whatever the scheduler does, and queue for it. */
        sched_yield();
    } else if (r % 512 == 1) {
        /* Or it sleeps while holding: waiters queue long enough to be
         * handed the lock, and timed ones run out while queued. */
        struct timespec pause = {0, 20000};
        nanosleep(&pause, NULL);
    } else {
        for (unsigned spin = r % 64; spin > 0; spin--)
            atomic_signal_fence(memory_order_seq_cst); /* keeps the loop, costs nothing */
    }
    s->counter = value + 1;
    pid_t me = self;
    if (!atomic_compare_exchange_strong(&s->inside, &me, 0))
        atomic_fetch_add(&s->overlaps, 1);
    atomic_fetch_add_explicit(&s->progress, 1, memory_order_relaxed);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct shared_state *s = w->s;
    pid_t self = gettid();
    pthread_barrier_wait(&s->start);
    for (int i = 0; i < w->iterations; i++) {
        enum mode mode = MODE_BLOCKING;
        if (s->mixed) {
            unsigned r = next_random(&w->seed) % 4;
            mode = r == 0 ? MODE_TRY : r == 1 ? MODE_TIMED : MODE_BLOCKING;
        }
        if (mode == MODE_TRY) {
            if (!TRYLOCK(&s->lock)) {
                w->failed_tries++;
                continue;
            }
        } else if (mode == MODE_TIMED) {
            /* Deadlines from slightly past to a fraction of a millisecond
             * ahead, so timeouts race with releases and handoffs. */
            long ahead_us = (long)(next_random(&w->seed) % 300) - 50;
            struct timespec deadline = core_deadline_ms(0);
            long long ns = (long long)deadline.tv_nsec + ahead_us * 1000LL;
            deadline.tv_sec += (time_t)(ns / 1000000000LL);
            ns %= 1000000000LL;
            if (ns < 0) {
                ns += 1000000000LL;
                deadline.tv_sec -= 1;
            }
            deadline.tv_nsec = (long)ns;
            int rc = TIMEDLOCK(&s->lock, &deadline);
            if (rc == ETIMEDOUT) {
                w->timeouts++;
                continue;
            }
            if (rc != 0) {
                atomic_fetch_add(&s->bad_returns, 1);
                continue;
            }
        } else {
            LOCK(&s->lock);
        }
        critical_section(s, self, &w->seed);
        w->entries++;
        UNLOCK(&s->lock);
    }
    atomic_fetch_add_explicit(&s->finished, 1, memory_order_release);
    return NULL;
}

/* Runs `threads` workers for `iterations` each and checks the invariants.
 * A watchdog in the main thread turns a stall (a lost wake-up, a lock left
 * held) into a failure that says where the lock stands, instead of a
 * ctest timeout. */
static void run_stress(int threads, int iterations, bool mixed)
{
    struct shared_state *s = calloc(1, sizeof *s);
    struct worker *workers = calloc((size_t)threads, sizeof *workers);
    assert_non_null(s);
    assert_non_null(workers);
    LOCK_INIT(&s->lock);
    s->mixed = mixed;
    assert_int_equal(pthread_barrier_init(&s->start, NULL, (unsigned)threads), 0);
    for (int i = 0; i < threads; i++) {
        workers[i].s = s;
        workers[i].seed = 2654435761u * (unsigned)(i + 1);
        workers[i].iterations = iterations;
        assert_int_equal(pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]), 0);
    }

    const uint64_t stall_limit_ns = 60ull * 1000000000u;
    unsigned long last_progress = 0;
    uint64_t last_change = core_now_ns();
    while (atomic_load_explicit(&s->finished, memory_order_acquire) < threads) {
        core_sleep_ms(20);
        unsigned long now_progress = atomic_load(&s->progress);
        if (now_progress != last_progress) {
            last_progress = now_progress;
            last_change = core_now_ns();
        } else if (core_now_ns() - last_change > stall_limit_ns) {
            fail_msg("%s: no thread entered for 60 s after %lu entries; owner %d, inside %d",
                     LOCK_NAME, now_progress, (int)LOCK_OWNER(&s->lock),
                     (int)atomic_load(&s->inside));
        }
    }
    for (int i = 0; i < threads; i++)
        assert_int_equal(pthread_join(workers[i].thread, NULL), 0);

    unsigned long entries = 0, timeouts = 0, failed_tries = 0;
    for (int i = 0; i < threads; i++) {
        entries += workers[i].entries;
        timeouts += workers[i].timeouts;
        failed_tries += workers[i].failed_tries;
    }
    assert_int_equal(atomic_load(&s->overlaps), 0);
    assert_int_equal(atomic_load(&s->wrong_owner), 0);
    assert_int_equal(atomic_load(&s->bad_returns), 0);
    assert_int_equal(s->counter, entries);
    assert_int_equal(entries + timeouts + failed_tries, (unsigned long)threads * iterations);
    if (!mixed)
        assert_int_equal(entries, (unsigned long)threads * iterations);
    assert_int_equal(LOCK_OWNER(&s->lock), 0);
    print_message("%s, %d threads: %lu entries, %lu timeouts, %lu failed tries\n", LOCK_NAME,
                  threads, entries, timeouts, failed_tries);
#if defined(STRESS_FASTMUTEX)
    print_message("contention %u\n", (unsigned)fast_mutex_contention(&s->lock));
    /* Only acquires that held the lock in the end or timed out can have
     * waited, and each counts once. */
    assert_in_range(fast_mutex_contention(&s->lock), 0, entries + timeouts);
    assert_true(fast_mutex_try_acquire(&s->lock));
    UNLOCK(&s->lock);
#endif
    LOCK_DESTROY(&s->lock);
    pthread_barrier_destroy(&s->start);
    free(workers);
    free(s);
}

/* A crowd: many threads arrive while the lock is held for a long time, so
 * all of them wait at once, most for the first time in their lives, and
 * each release hands the lock to a long waiter. */
struct crowd {
    struct shared_state *s;
    atomic_int arrived;
    unsigned long entries;
};

struct crowd_member {
    struct crowd *c;
    pthread_t thread;
    unsigned seed;
};

static void *crowd_member_main(void *arg)
{
    struct crowd_member *me = arg;
    struct shared_state *s = me->c->s;
    pid_t self = gettid();
    pthread_barrier_wait(&s->start);
    atomic_fetch_add(&me->c->arrived, 1);
    for (int i = 0; i < 3; i++) {
        LOCK(&s->lock);
        critical_section(s, self, &me->seed);
        UNLOCK(&s->lock);
    }
    return NULL;
}

static void run_crowd(int threads)
{
    struct crowd c = {0};
    struct crowd_member *members = calloc((size_t)threads, sizeof *members);
    c.s = calloc(1, sizeof *c.s);
    assert_non_null(members);
    assert_non_null(c.s);
    LOCK_INIT(&c.s->lock);
    assert_int_equal(pthread_barrier_init(&c.s->start, NULL, (unsigned)threads), 0);
    LOCK(&c.s->lock);
    for (int i = 0; i < threads; i++) {
        members[i].c = &c;
        members[i].seed = 40503u * (unsigned)(i + 1);
        assert_int_equal(pthread_create(&members[i].thread, NULL, crowd_member_main, &members[i]),
                         0);
    }
    bool ok;
    CORE_POLL_UNTIL(ok, atomic_load(&c.arrived) == threads, CORE_POLL_LIMIT_MS);
    assert_true(ok);
    /* Not needed for correctness: gives the crowd time to queue up. */
    core_sleep_ms(20);
    UNLOCK(&c.s->lock);
    for (int i = 0; i < threads; i++)
        assert_int_equal(pthread_join(members[i].thread, NULL), 0);
    assert_int_equal(atomic_load(&c.s->overlaps), 0);
    assert_int_equal(atomic_load(&c.s->wrong_owner), 0);
    assert_int_equal(c.s->counter, (unsigned long)threads * 3);
    assert_int_equal(LOCK_OWNER(&c.s->lock), 0);
    LOCK_DESTROY(&c.s->lock);
    pthread_barrier_destroy(&c.s->start);
    free(c.s);
    free(members);
}

static void test_crowd_of_first_waiters(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++)
        run_crowd(512);
}

static void test_8_threads_blocking(void **state)
{
    (void)state;
    run_stress(8, 100000, false);
}

static void test_32_threads_blocking(void **state)
{
    (void)state;
    run_stress(32, 20000, false);
}

static void test_8_threads_mixed(void **state)
{
    (void)state;
    run_stress(8, 100000, true);
}

static void test_32_threads_mixed(void **state)
{
    (void)state;
    run_stress(32, 20000, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_8_threads_blocking),
        cmocka_unit_test(test_32_threads_blocking),
        cmocka_unit_test(test_8_threads_mixed),
        cmocka_unit_test(test_32_threads_mixed),
        cmocka_unit_test(test_crowd_of_first_waiters),
    };
    return cmocka_run_group_tests_name("stress " LOCK_NAME, tests, NULL, NULL);
}
