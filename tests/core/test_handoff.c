/* Fairness: barging keeps throughput up, but no thread may starve.  A waiter
 * that has waited past the handoff bound (about 1 ms) is handed the lock by
 * the next release, so even a holder that lets go and takes the lock again
 * in a tight loop cannot keep a waiter out for long.
 *
 * The bounds here are about starvation, not speed: a waiter that gets the
 * lock at all within seconds, while the other side never stops hammering,
 * was handed it; without handoff it would typically wait until the hammering
 * stops.
 *
 * The deadlock check runs here after every millisecond of waiting (it is
 * set before the library first reads it), and a hook counts its reports:
 * none of these tests has a cycle of waiters, so any report is a false
 * alarm, most likely from a waiter that was handed the lock while it was
 * checking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fastmutex.h>
#include <pthread.h>
#include <stdatomic.h>

#include "core_test.h"

static atomic_int reports_seen;
static char first_report[4096];

static void counting_hook(const char *report, bool fatal)
{
    if (atomic_fetch_add(&reports_seen, 1) == 0)
        snprintf(first_report, sizeof first_report, "%s", report);
    if (fatal)
        fprintf(stderr, "%s", report);
}

static int reset_reports(void **state)
{
    (void)state;
    atomic_store(&reports_seen, 0);
    first_report[0] = '\0';
    return 0;
}

/* Fails the test if the library reported anything during it. */
static int expect_no_reports(void **state)
{
    (void)state;
    int seen = atomic_load(&reports_seen);
    if (seen != 0) {
        print_error("%d report(s) during a test without misuse or deadlock; the first:\n%s", seen,
                    first_report);
        return -1;
    }
    return 0;
}

/* How long a waiter may go without the lock before the test calls it
 * starved: thousands of times the handoff bound. */
#define STARVATION_LIMIT_MS 10000

/* A thread that takes and releases the mutex as fast as it can until told
 * to stop, holding it for a little work each time. */
struct hammer {
    fast_mutex_t *m;
    pthread_t thread;
    atomic_bool stop;
    atomic_ulong rounds;
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    while (!atomic_load_explicit(&h->stop, memory_order_relaxed)) {
        fast_mutex_acquire(h->m);
        /* Hold it long enough that a newcomer nearly always finds it held. */
        for (int spin = 0; spin < 200; spin++)
            atomic_signal_fence(memory_order_seq_cst);
        fast_mutex_release(h->m);
        atomic_fetch_add_explicit(&h->rounds, 1, memory_order_relaxed);
    }
    return NULL;
}

static void hammers_start(struct hammer *h, int n, fast_mutex_t *m)
{
    for (int i = 0; i < n; i++) {
        memset(&h[i], 0, sizeof h[i]);
        h[i].m = m;
        assert_int_equal(pthread_create(&h[i].thread, NULL, hammer_main, &h[i]), 0);
    }
    /* Make sure they are really hammering before anyone comes to wait. */
    for (int i = 0; i < n; i++) {
        bool ok;
        CORE_POLL_UNTIL(ok, atomic_load(&h[i].rounds) >= 1000, CORE_POLL_LIMIT_MS);
        assert_true(ok);
    }
}

static void hammers_stop(struct hammer *h, int n)
{
    for (int i = 0; i < n; i++)
        atomic_store(&h[i].stop, true);
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_join(h[i].thread, NULL), 0);
}

/* A thread that wants the mutex once, blocking or with a far deadline. */
struct latecomer {
    fast_mutex_t *m;
    bool timed;
    pthread_t thread;
    _Atomic pid_t tid;
    atomic_bool got;
    int result;
    pid_t owner_seen;
};

static void *latecomer_main(void *arg)
{
    struct latecomer *l = arg;
    atomic_store(&l->tid, gettid());
    int result = 0;
    if (l->timed) {
        struct timespec deadline = core_deadline_ms(120000);
        result = fast_mutex_acquire_until(l->m, &deadline);
    } else {
        fast_mutex_acquire(l->m);
    }
    l->result = result;
    if (result == 0) {
        l->owner_seen = fast_mutex_owner(l->m);
        fast_mutex_release(l->m);
    }
    atomic_store(&l->got, true);
    return NULL;
}

/* Starts the latecomers while the hammers run and checks each gets the
 * mutex before the hammers are stopped. */
static void run_latecomers(int hammers, int latecomers, bool timed)
{
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    struct hammer h[4];
    struct latecomer l[4];
    assert_in_range(hammers, 1, 4);
    assert_in_range(latecomers, 1, 4);
    hammers_start(h, hammers, &m);
    for (int i = 0; i < latecomers; i++) {
        memset(&l[i], 0, sizeof l[i]);
        l[i].m = &m;
        l[i].timed = timed;
        assert_int_equal(pthread_create(&l[i].thread, NULL, latecomer_main, &l[i]), 0);
    }
    int starved = -1;
    for (int i = 0; i < latecomers && starved < 0; i++) {
        bool ok;
        CORE_POLL_UNTIL(ok, atomic_load(&l[i].got), STARVATION_LIMIT_MS);
        if (!ok)
            starved = i;
    }
    unsigned long rounds = atomic_load(&h[0].rounds);
    /* Stop the hammers before failing, so the latecomers can finish. */
    hammers_stop(h, hammers);
    for (int i = 0; i < latecomers; i++)
        assert_int_equal(pthread_join(l[i].thread, NULL), 0);
    if (starved >= 0)
        fail_msg("latecomer %d (tid %d) did not get the mutex in %d ms while %d thread(s) "
                 "hammered it (%lu rounds by the first)",
                 starved, (int)atomic_load(&l[starved].tid), STARVATION_LIMIT_MS, hammers, rounds);
    for (int i = 0; i < latecomers; i++) {
        assert_int_equal(l[i].result, 0);
        assert_int_equal(l[i].owner_seen, atomic_load(&l[i].tid));
    }
    assert_int_equal(fast_mutex_owner(&m), 0);
}

static void test_one_hammer_cannot_starve_a_waiter(void **state)
{
    (void)state;
    run_latecomers(1, 1, false);
}

static void test_one_hammer_cannot_starve_a_timed_waiter(void **state)
{
    (void)state;
    run_latecomers(1, 1, true);
}

static void test_two_hammers_cannot_starve_three_waiters(void **state)
{
    (void)state;
    run_latecomers(2, 3, false);
}

/* Several threads that all hammer: each makes progress. */
static void test_every_hammer_makes_progress(void **state)
{
    (void)state;
    enum { THREADS = 4, ENOUGH = 200 };
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    struct hammer h[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&h[i], 0, sizeof h[i]);
        h[i].m = &m;
        assert_int_equal(pthread_create(&h[i].thread, NULL, hammer_main, &h[i]), 0);
    }
    bool ok = true;
    for (int i = 0; i < THREADS && ok; i++)
        CORE_POLL_UNTIL(ok, atomic_load(&h[i].rounds) >= ENOUGH, CORE_POLL_LIMIT_MS);
    unsigned long rounds[THREADS];
    for (int i = 0; i < THREADS; i++)
        rounds[i] = atomic_load(&h[i].rounds);
    hammers_stop(h, THREADS);
    if (!ok)
        fail_msg("a thread starved: rounds %lu %lu %lu %lu", rounds[0], rounds[1], rounds[2],
                 rounds[3]);
    assert_int_equal(fast_mutex_owner(&m), 0);
}

/* Data guarded by the mutex needs nothing else: each thread's plain
 * increments are seen by the next holder, however the lock passed (taken
 * after a release, or handed to a waiter: every thousandth hold lasts
 * 2 ms, past the handoff bound).  In the ThreadSanitizer build
 * (tsan.sh) a missing ordering would be reported here: no atomic but the
 * mutex's own touches the count. */
enum { GUARDED_THREADS = 4, GUARDED_ROUNDS = 20000 };
static fast_mutex_t guarded_mutex = FAST_MUTEX_INITIALIZER;
static unsigned long guarded_count; /* guarded by guarded_mutex only */

static void *guarded_counter(void *arg)
{
    (void)arg;
    for (int i = 0; i < GUARDED_ROUNDS; i++) {
        fast_mutex_acquire(&guarded_mutex);
        guarded_count++;
        if (i % 1000 == 999) {
            /* Hold it past the handoff bound, so that the waiter first in
             * line is handed it at this release. */
            core_sleep_ms(2);
        } else {
            for (int spin = 0; spin < 100; spin++)
                atomic_signal_fence(memory_order_seq_cst);
        }
        fast_mutex_release(&guarded_mutex);
    }
    return NULL;
}

static void test_guarded_data_needs_no_other_synchronization(void **state)
{
    (void)state;
    pthread_t threads[GUARDED_THREADS];
    for (int i = 0; i < GUARDED_THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, guarded_counter, NULL), 0);
    for (int i = 0; i < GUARDED_THREADS; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    assert_int_equal(guarded_count, (unsigned long)GUARDED_THREADS * GUARDED_ROUNDS);
    assert_true(fast_mutex_contention(&guarded_mutex) > 0);
}

/* A crowd queued behind a long hold: every release hands the lock to a
 * waiter that has waited long, while each waiter's deadlock check keeps
 * running.  All get through, and nobody is told of a deadlock. */
enum { CROWD = 512 };
static fast_mutex_t crowd_mutex = FAST_MUTEX_INITIALIZER;
static atomic_int crowd_through;

static void *crowd_member(void *arg)
{
    (void)arg;
    fast_mutex_acquire(&crowd_mutex);
    /* Hold it a little, so that the waiters behind keep waiting. */
    for (int spin = 0; spin < 2000; spin++)
        atomic_signal_fence(memory_order_seq_cst);
    fast_mutex_release(&crowd_mutex);
    atomic_fetch_add(&crowd_through, 1);
    return NULL;
}

static void test_crowd_gets_no_false_deadlock_reports(void **state)
{
    (void)state;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    static pthread_t threads[CROWD];
    for (int round = 0; round < 2; round++) {
        atomic_store(&crowd_through, 0);
        uint32_t before = fast_mutex_contention(&crowd_mutex);
        fast_mutex_acquire(&crowd_mutex);
        for (int i = 0; i < CROWD; i++)
            assert_int_equal(pthread_create(&threads[i], &attr, crowd_member, NULL), 0);
        bool ok;
        CORE_POLL_UNTIL(ok, fast_mutex_contention(&crowd_mutex) - before == CROWD,
                        CORE_POLL_LIMIT_MS);
        assert_true(ok);
        /* Let every waiter pass its first deadlock checks while queued. */
        core_sleep_ms(20);
        fast_mutex_release(&crowd_mutex);
        for (int i = 0; i < CROWD; i++)
            assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(atomic_load(&crowd_through), CROWD);
    }
    pthread_attr_destroy(&attr);
}

/* A waiter woken to retry sets WOKEN, and while it is on its way releases
 * wake nobody else.  When it is late (kept off the CPU by a crowd of
 * runnable threads), a release must wake the next waiter anyway, or the
 * queue drains one scheduler round at a time.  No test can make the
 * scheduler keep a woken thread off the CPU, so this one plays that thread:
 * it sets WOKEN itself, as the release that woke a waiter would have, and
 * clears it (arrives) only once the queued waiter got the lock. */
struct queued_waiter {
    fast_mutex_t *m;
    _Atomic pid_t tid;
    atomic_bool got;
    pid_t owner_seen;
};

static void *queued_waiter_main(void *arg)
{
    struct queued_waiter *w = arg;
    atomic_store(&w->tid, gettid());
    fast_mutex_acquire(w->m);
    w->owner_seen = fast_mutex_owner(w->m);
    /* The late waiter arrives: from here on releases wake as usual. */
    atomic_fetch_and(&w->m->word, ~FAST_MUTEX_WOKEN);
    fast_mutex_release(w->m);
    atomic_store(&w->got, true);
    return NULL;
}

static void test_late_woken_waiter_does_not_keep_the_next_asleep(void **state)
{
    (void)state;
    /* A release made while WOKEN is set asks whether the woken waiter is
     * late (fmx_policy_woken_is_late()); each of these releases comes well
     * past the 300 us bound, and a few must do. */
    enum { RELEASES = 100 };
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    fast_mutex_acquire(&m);
    struct queued_waiter w = {.m = &m};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, queued_waiter_main, &w), 0);
    bool ok;
    CORE_POLL_UNTIL(ok, atomic_load(&w.tid) != 0 && core_thread_blocked(atomic_load(&w.tid)),
                    CORE_POLL_LIMIT_MS);
    assert_true(ok);
    atomic_fetch_or(&m.word, FAST_MUTEX_WOKEN);
    int releases = 0;
    while (!atomic_load(&w.got) && releases < RELEASES) {
        core_sleep_ms(1);
        fast_mutex_release(&m);
        releases++;
        /* Blocks while the waiter, if it was handed the lock, finishes. */
        fast_mutex_acquire(&m);
    }
    ok = atomic_load(&w.got);
    if (!ok)
        atomic_fetch_and(&m.word, ~FAST_MUTEX_WOKEN); /* so the release wakes it */
    fast_mutex_release(&m);
    assert_int_equal(pthread_join(thread, NULL), 0);
    if (!ok)
        fail_msg("the queued waiter slept through %d releases while a woken one was late",
                 releases);
    assert_int_equal(w.owner_seen, atomic_load(&w.tid));
    assert_int_equal(atomic_load(&m.word), 0);
    fast_mutex_destroy(&m);
}

#define HANDOFF_TEST(f) cmocka_unit_test_setup_teardown(f, reset_reports, expect_no_reports)

int main(void)
{
    /* Before the library reads it: check for deadlocks after 1 ms. */
    setenv("FASTMUTEX_DEADLOCK_MS", "1", 1);
    fast_mutex_set_report_hook(counting_hook);
    const struct CMUnitTest tests[] = {
        HANDOFF_TEST(test_one_hammer_cannot_starve_a_waiter),
        HANDOFF_TEST(test_one_hammer_cannot_starve_a_timed_waiter),
        HANDOFF_TEST(test_two_hammers_cannot_starve_three_waiters),
        HANDOFF_TEST(test_every_hammer_makes_progress),
        HANDOFF_TEST(test_guarded_data_needs_no_other_synchronization),
        HANDOFF_TEST(test_crowd_gets_no_false_deadlock_reports),
        HANDOFF_TEST(test_late_woken_waiter_does_not_keep_the_next_asleep),
    };
    return cmocka_run_group_tests_name("fastmutex handoff", tests, NULL, NULL);
}
