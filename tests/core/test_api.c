/* The public API of <fastmutex.h>, call by call: what each function returns
 * and what owner() and contention() read afterwards, seen from the calling
 * thread and from others. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fastmutex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include "core_hooks.h"
#include "core_test.h"

/* A thread that takes a mutex and keeps it until told to let go. */
struct holder {
    fast_mutex_t *m;
    pthread_t thread;
    _Atomic pid_t tid;
    atomic_bool holding;
    atomic_bool let_go;
};

static void *holder_main(void *arg)
{
    struct holder *h = arg;
    atomic_store(&h->tid, gettid());
    fast_mutex_acquire(h->m);
    atomic_store(&h->holding, true);
    while (!atomic_load(&h->let_go))
        core_sleep_ms(1);
    fast_mutex_release(h->m);
    atomic_store(&h->holding, false);
    return NULL;
}

static void holder_start(struct holder *h, fast_mutex_t *m)
{
    memset(h, 0, sizeof *h);
    h->m = m;
    assert_int_equal(pthread_create(&h->thread, NULL, holder_main, h), 0);
    bool ok;
    CORE_POLL_UNTIL(ok, atomic_load(&h->holding), CORE_POLL_LIMIT_MS);
    assert_true(ok);
}

static void holder_stop(struct holder *h)
{
    atomic_store(&h->let_go, true);
    assert_int_equal(pthread_join(h->thread, NULL), 0);
}

/* A thread that waits for a mutex, with fast_mutex_acquire() or, when
 * `timed`, fast_mutex_acquire_until(deadline), and records what it saw. */
struct waiter {
    fast_mutex_t *m;
    bool timed;
    struct timespec deadline;
    pthread_t thread;
    _Atomic pid_t tid;
    atomic_bool done;
    int result;           /* what acquire_until returned; 0 for acquire */
    pid_t owner_after;    /* fast_mutex_owner() right after it returned */
    uint64_t returned_ns; /* CLOCK_MONOTONIC when it returned */
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    atomic_store(&w->tid, gettid());
    int result = 0;
    if (w->timed)
        result = fast_mutex_acquire_until(w->m, &w->deadline);
    else
        fast_mutex_acquire(w->m);
    w->returned_ns = core_now_ns();
    w->owner_after = fast_mutex_owner(w->m);
    w->result = result;
    if (result == 0)
        fast_mutex_release(w->m);
    atomic_store(&w->done, true);
    return NULL;
}

static void waiter_start(struct waiter *w, fast_mutex_t *m, bool timed, struct timespec deadline)
{
    memset(w, 0, sizeof *w);
    w->m = m;
    w->timed = timed;
    w->deadline = deadline;
    assert_int_equal(pthread_create(&w->thread, NULL, waiter_main, w), 0);
    bool ok;
    CORE_POLL_UNTIL(ok, atomic_load(&w->tid) != 0, CORE_POLL_LIMIT_MS);
    assert_true(ok);
}

/* Waits until the waiter sleeps in the kernel, which it can only do inside
 * the acquire call once it has found the mutex held. */
static void waiter_wait_blocked(struct waiter *w)
{
    bool ok;
    CORE_POLL_UNTIL(ok, core_thread_blocked(atomic_load(&w->tid)) || atomic_load(&w->done),
                    CORE_POLL_LIMIT_MS);
    assert_true(ok);
    assert_false(atomic_load(&w->done));
}

static void waiter_join(struct waiter *w)
{
    bool ok;
    CORE_POLL_UNTIL(ok, atomic_load(&w->done), CORE_POLL_LIMIT_MS);
    if (!ok)
        fail_msg("waiter %d never got the mutex (owner is %d)", (int)atomic_load(&w->tid),
                 (int)fast_mutex_owner(w->m));
    assert_int_equal(pthread_join(w->thread, NULL), 0);
}

static bool all_bytes_zero(const void *p, size_t size)
{
    const unsigned char *bytes = p;
    for (size_t i = 0; i < size; i++)
        if (bytes[i] != 0)
            return false;
    return true;
}

/* FAST_MUTEX_INITIALIZER and fast_mutex_init() both give all zeroes, which
 * is a free mutex, whatever the memory held before. */
static void test_initializer_and_init_are_all_zero(void **state)
{
    (void)state;
    fast_mutex_t initialized = FAST_MUTEX_INITIALIZER;
    assert_true(all_bytes_zero(&initialized, sizeof initialized));
    assert_int_equal(fast_mutex_owner(&initialized), 0);
    assert_int_equal(fast_mutex_contention(&initialized), 0);

    fast_mutex_t m;
    memset(&m, 0xa5, sizeof m);
    fast_mutex_init(&m);
    assert_true(all_bytes_zero(&m, sizeof m));
    assert_int_equal(fast_mutex_owner(&m), 0);
    assert_int_equal(fast_mutex_contention(&m), 0);
    fast_mutex_destroy(&m);
    assert_int_equal(atomic_load(&core_reports_seen), 0);
}

/* Zeroed heap memory is a usable mutex without any init call. */
static void test_zeroed_memory_is_a_free_mutex(void **state)
{
    (void)state;
    fast_mutex_t *m = calloc(1, sizeof *m);
    assert_non_null(m);
    assert_true(fast_mutex_try_acquire(m));
    assert_int_equal(fast_mutex_owner(m), gettid());
    fast_mutex_release(m);
    assert_int_equal(fast_mutex_owner(m), 0);
    free(m);
}

/* The owner is the caller's kernel thread id while it holds the mutex and 0
 * after; uncontended acquires do not count as contention. */
static void test_acquire_sets_owner_release_clears_it(void **state)
{
    (void)state;
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    for (int round = 0; round < 3; round++) {
        fast_mutex_acquire(&m);
        assert_int_equal(fast_mutex_owner(&m), gettid());
        fast_mutex_release(&m);
        assert_int_equal(fast_mutex_owner(&m), 0);
    }
    assert_int_equal(fast_mutex_contention(&m), 0);
    fast_mutex_destroy(&m);
    assert_int_equal(atomic_load(&core_reports_seen), 0);
}

/* try_acquire succeeds on a free mutex only, fails without a report when
 * the caller itself holds it, and its failures are not contention. */
static void test_try_acquire(void **state)
{
    (void)state;
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    assert_true(fast_mutex_try_acquire(&m));
    assert_int_equal(fast_mutex_owner(&m), gettid());

    /* Held by the caller: false, and no recursive-acquire report. */
    assert_false(fast_mutex_try_acquire(&m));
    assert_int_equal(fast_mutex_owner(&m), gettid());
    assert_int_equal(atomic_load(&core_reports_seen), 0);
    fast_mutex_release(&m);

    /* Held by another thread: false, the owner stays that thread. */
    struct holder h;
    holder_start(&h, &m);
    for (int i = 0; i < 100; i++)
        assert_false(fast_mutex_try_acquire(&m));
    assert_int_equal(fast_mutex_owner(&m), atomic_load(&h.tid));
    holder_stop(&h);

    assert_int_equal(fast_mutex_owner(&m), 0);
    assert_true(fast_mutex_try_acquire(&m));
    assert_int_equal(fast_mutex_owner(&m), gettid());
    fast_mutex_release(&m);
    assert_int_equal(fast_mutex_contention(&m), 0);
    assert_int_equal(atomic_load(&core_reports_seen), 0);
}

/* A free mutex is taken even while its word carries flags: between a
 * release that woke a waiter and that waiter's arrival the word is WOKEN
 * (and WAITERS, if more are queued) with no owner.  The flags stay for the
 * release to act on.  The word is set by hand: no test can hold a woken
 * thread between the two moments. */
static void test_try_acquire_free_with_flags(void **state)
{
    (void)state;
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    atomic_store(&m.word, FAST_MUTEX_WOKEN);
    assert_true(fast_mutex_try_acquire(&m));
    assert_int_equal(fast_mutex_owner(&m), gettid());
    assert_int_equal(atomic_load(&m.word), (uint32_t)gettid() | FAST_MUTEX_WOKEN);
    /* Held, flags or not: false. */
    assert_false(fast_mutex_try_acquire(&m));
    fast_mutex_release(&m);
    /* The woken waiter is still on its way: the release only lets go. */
    assert_int_equal(atomic_load(&m.word), FAST_MUTEX_WOKEN);

    /* WAITERS with an empty queue (the last waiter just timed out): the
     * release finds nobody to wake and clears the word. */
    atomic_store(&m.word, FAST_MUTEX_WAITERS);
    assert_true(fast_mutex_try_acquire(&m));
    assert_int_equal(fast_mutex_owner(&m), gettid());
    fast_mutex_release(&m);
    assert_int_equal(atomic_load(&m.word), 0);
    fast_mutex_destroy(&m);
    assert_int_equal(atomic_load(&core_reports_seen), 0);
}

/* While a woken waiter is on its way, a release only lets go: it clears
 * the owner bits and keeps WOKEN, and WAITERS for those still queued.  Most
 * such releases do so in the header, one in 32 in the slow path (which asks
 * whether the woken waiter is late; with nobody queued, it is not): both
 * are run.  The flags are set by hand, as the release that woke a waiter
 * would have left them. */
static void test_release_while_woken_only_lets_go(void **state)
{
    (void)state;
    const uint32_t flags = FAST_MUTEX_WOKEN | FAST_MUTEX_WAITERS;
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    atomic_store(&m.word, flags);
    for (int i = 0; i < 100; i++) {
        fast_mutex_acquire(&m);
        assert_int_equal(atomic_load(&m.word), (uint32_t)gettid() | flags);
        fast_mutex_release(&m);
        assert_int_equal(atomic_load(&m.word), flags);
    }
    atomic_store(&m.word, 0);
    fast_mutex_destroy(&m);
    assert_int_equal(atomic_load(&core_reports_seen), 0);
}

/* Another thread reads the holder's id as the owner. */
static void test_owner_seen_from_another_thread(void **state)
{
    (void)state;
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    struct holder h;
    holder_start(&h, &m);
    assert_int_not_equal(atomic_load(&h.tid), gettid());
    assert_int_equal(fast_mutex_owner(&m), atomic_load(&h.tid));
    holder_stop(&h);
    assert_int_equal(fast_mutex_owner(&m), 0);
}

/* On a free mutex acquire_until takes it, whether the deadline has passed
 * or not. */
static void test_acquire_until_on_free_mutex(void **state)
{
    (void)state;
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    struct timespec past = core_deadline_ms(-1000);
    assert_int_equal(fast_mutex_acquire_until(&m, &past), 0);
    assert_int_equal(fast_mutex_owner(&m), gettid());
    fast_mutex_release(&m);

    struct timespec future = core_deadline_ms(60000);
    assert_int_equal(fast_mutex_acquire_until(&m, &future), 0);
    assert_int_equal(fast_mutex_owner(&m), gettid());
    fast_mutex_release(&m);

    struct timespec zero = {0, 0};
    assert_int_equal(fast_mutex_acquire_until(&m, &zero), 0);
    assert_int_equal(fast_mutex_owner(&m), gettid());
    fast_mutex_release(&m);
    assert_int_equal(fast_mutex_contention(&m), 0);
}

/* On a held mutex a deadline in the past gives ETIMEDOUT at once (well
 * within seconds, not after any wait), and leaves the holder in place. */
static void test_acquire_until_past_deadline_on_held_mutex(void **state)
{
    (void)state;
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    struct holder h;
    holder_start(&h, &m);

    struct timespec deadlines[] = {core_deadline_ms(-1000), core_deadline_ms(0), {0, 0}};
    for (size_t i = 0; i < sizeof deadlines / sizeof deadlines[0]; i++) {
        uint64_t start = core_now_ns();
        assert_int_equal(fast_mutex_acquire_until(&m, &deadlines[i]), ETIMEDOUT);
        uint64_t took_ms = (core_now_ns() - start) / 1000000u;
        /* A correctness bound, not a speed one: "promptly" must not mean
         * "after some fixed wait". */
        assert_in_range(took_ms, 0, 5000);
        assert_int_equal(fast_mutex_owner(&m), atomic_load(&h.tid));
    }
    holder_stop(&h);
    assert_int_equal(fast_mutex_owner(&m), 0);
    assert_true(fast_mutex_try_acquire(&m));
    fast_mutex_release(&m);
}

/* A future deadline on a mutex that stays held: ETIMEDOUT, never before
 * the deadline, and the mutex is unharmed for later waiters. */
static void test_acquire_until_future_deadline_times_out(void **state)
{
    (void)state;
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    struct holder h;
    holder_start(&h, &m);

    for (int round = 0; round < 3; round++) {
        struct timespec deadline = core_deadline_ms(100);
        assert_int_equal(fast_mutex_acquire_until(&m, &deadline), ETIMEDOUT);
        uint64_t now = core_now_ns();
        assert_true(now >= core_timespec_ns(&deadline));
        assert_int_equal(fast_mutex_owner(&m), atomic_load(&h.tid));
    }

    /* A blocking waiter that comes after the timed-out ones still gets the
     * mutex when the holder lets go: the timed-out waits left nothing
     * stale behind in the queue for the release to wake instead. */
    struct waiter w;
    waiter_start(&w, &m, false, (struct timespec){0, 0});
    waiter_wait_blocked(&w);
    holder_stop(&h);
    waiter_join(&w);
    assert_int_equal(w.owner_after, atomic_load(&w.tid));
    assert_int_equal(fast_mutex_owner(&m), 0);
}

/* A timed waiter with a far deadline gets the mutex when it is released,
 * becomes its owner, and its wait is counted once. */
static void test_acquire_until_succeeds_when_released(void **state)
{
    (void)state;
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    fast_mutex_acquire(&m);
    struct waiter w;
    waiter_start(&w, &m, true, core_deadline_ms(120000));
    waiter_wait_blocked(&w);
    assert_int_equal(fast_mutex_owner(&m), gettid());
    fast_mutex_release(&m);
    waiter_join(&w);
    assert_int_equal(w.result, 0);
    assert_int_equal(w.owner_after, atomic_load(&w.tid));
    assert_int_equal(fast_mutex_contention(&m), 1);
    assert_int_equal(fast_mutex_owner(&m), 0);
}

/* Every blocking acquire that had to wait counts once, however many times
 * it was woken and had to go back to sleep. */
static void test_contention_counts_each_waiting_acquire_once(void **state)
{
    (void)state;
    enum { WAITERS = 3 };
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    fast_mutex_acquire(&m);
    struct waiter w[WAITERS];
    for (int i = 0; i < WAITERS; i++) {
        waiter_start(&w[i], &m, i == 1, core_deadline_ms(120000));
        waiter_wait_blocked(&w[i]);
    }
    assert_int_equal(fast_mutex_owner(&m), gettid());
    fast_mutex_release(&m);
    for (int i = 0; i < WAITERS; i++) {
        waiter_join(&w[i]);
        assert_int_equal(w[i].result, 0);
        assert_int_equal(w[i].owner_after, atomic_load(&w[i].tid));
    }
    assert_int_equal(fast_mutex_contention(&m), WAITERS);
    assert_int_equal(fast_mutex_owner(&m), 0);

    /* Failed tries and uncontended acquires add nothing. */
    struct holder h;
    holder_start(&h, &m);
    assert_false(fast_mutex_try_acquire(&m));
    holder_stop(&h);
    fast_mutex_acquire(&m);
    fast_mutex_release(&m);
    assert_int_equal(fast_mutex_contention(&m), WAITERS);
}

/* Signals to a waiting thread do not end its wait: acquire returns only
 * with the mutex held, and acquire_until does not return before its
 * deadline (EINTR is retried inside the library). */
static void ignore_signal(int sig)
{
    (void)sig;
}

static void test_signals_do_not_end_waits(void **state)
{
    (void)state;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ignore_signal; /* no SA_RESTART: futex waits see EINTR */
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, NULL), 0);

    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    fast_mutex_acquire(&m);

    struct waiter blocking, timed;
    waiter_start(&blocking, &m, false, (struct timespec){0, 0});
    waiter_wait_blocked(&blocking);
    waiter_start(&timed, &m, true, core_deadline_ms(300));
    for (int i = 0; i < 40 && !atomic_load(&timed.done); i++) {
        pthread_kill(blocking.thread, SIGUSR1);
        pthread_kill(timed.thread, SIGUSR1);
        core_sleep_ms(10);
    }
    bool ok;
    CORE_POLL_UNTIL(ok, atomic_load(&timed.done), CORE_POLL_LIMIT_MS);
    assert_true(ok);
    assert_int_equal(timed.result, ETIMEDOUT);
    assert_true(timed.returned_ns >= core_timespec_ns(&timed.deadline));
    assert_int_equal(pthread_join(timed.thread, NULL), 0);

    /* The blocking waiter must still be waiting, not holding. */
    assert_false(atomic_load(&blocking.done));
    assert_int_equal(fast_mutex_owner(&m), gettid());
    fast_mutex_release(&m);
    waiter_join(&blocking);
    assert_int_equal(blocking.owner_after, atomic_load(&blocking.tid));
    signal(SIGUSR1, SIG_DFL);
}

/* Names: set, read back, replaced, removed with NULL, truncated to 31 bytes
 * plus the terminator, and cut to a small buffer. */
static void test_names(void **state)
{
    (void)state;
    fast_mutex_t a = FAST_MUTEX_INITIALIZER, b = FAST_MUTEX_INITIALIZER;
    char buf[64];

    memset(buf, 'x', sizeof buf);
    fast_mutex_get_name(&a, buf, sizeof buf);
    assert_string_equal(buf, "");

    assert_int_equal(fast_mutex_set_name(&a, "inventory lock"), 0);
    assert_int_equal(fast_mutex_set_name(&b, "queue lock"), 0);
    fast_mutex_get_name(&a, buf, sizeof buf);
    assert_string_equal(buf, "inventory lock");
    fast_mutex_get_name(&b, buf, sizeof buf);
    assert_string_equal(buf, "queue lock");

    assert_int_equal(fast_mutex_set_name(&a, "renamed"), 0);
    fast_mutex_get_name(&a, buf, sizeof buf);
    assert_string_equal(buf, "renamed");

    /* A name longer than 31 bytes keeps its first 31. */
    const char *long_name = "0123456789abcdefghijklmnopqrstuvwxyz-too-long";
    assert_int_equal(fast_mutex_set_name(&a, long_name), 0);
    fast_mutex_get_name(&a, buf, sizeof buf);
    assert_int_equal(strlen(buf), 31);
    assert_memory_equal(buf, long_name, 31);

    /* A buffer smaller than the name gets a terminated prefix. */
    char small[8];
    memset(small, 'x', sizeof small);
    fast_mutex_get_name(&b, small, sizeof small);
    assert_string_equal(small, "queue l");

    /* NULL removes the name; the other mutex keeps its own. */
    assert_int_equal(fast_mutex_set_name(&a, NULL), 0);
    memset(buf, 'x', sizeof buf);
    fast_mutex_get_name(&a, buf, sizeof buf);
    assert_string_equal(buf, "");
    fast_mutex_get_name(&b, buf, sizeof buf);
    assert_string_equal(buf, "queue lock");

    assert_int_equal(fast_mutex_set_name(&b, NULL), 0);
    fast_mutex_get_name(&b, buf, sizeof buf);
    assert_string_equal(buf, "");
    /* Removing a name that is not there is harmless. */
    assert_int_equal(fast_mutex_set_name(&b, NULL), 0);

    /* A named mutex still works as a mutex. */
    assert_int_equal(fast_mutex_set_name(&a, "working"), 0);
    fast_mutex_acquire(&a);
    assert_int_equal(fast_mutex_owner(&a), gettid());
    fast_mutex_release(&a);
    assert_int_equal(fast_mutex_set_name(&a, NULL), 0);
    assert_int_equal(atomic_load(&core_reports_seen), 0);
}

/* The name table is finite: once full, naming another mutex fails with
 * ENOSPC and leaves it unnamed, while renaming a named one still works;
 * removing a name makes room again. */
static void test_names_run_out_with_enospc(void **state)
{
    (void)state;
    enum { MANY = 1 << 16 };
    fast_mutex_t *mutexes = calloc(MANY, sizeof *mutexes);
    assert_non_null(mutexes);
    int named = 0, rc = 0;
    char name[32], buf[32];
    while (named < MANY) {
        snprintf(name, sizeof name, "m%d", named);
        if ((rc = fast_mutex_set_name(&mutexes[named], name)) != 0)
            break;
        named++;
    }
    assert_int_equal(rc, ENOSPC);
    assert_true(named > 0);
    fast_mutex_get_name(&mutexes[named], buf, sizeof buf);
    assert_string_equal(buf, "");

    assert_int_equal(fast_mutex_set_name(&mutexes[0], "renamed while full"), 0);
    fast_mutex_get_name(&mutexes[0], buf, sizeof buf);
    assert_string_equal(buf, "renamed while full");

    assert_int_equal(fast_mutex_set_name(&mutexes[1], NULL), 0);
    assert_int_equal(fast_mutex_set_name(&mutexes[named], "now there is room"), 0);
    fast_mutex_get_name(&mutexes[named], buf, sizeof buf);
    assert_string_equal(buf, "now there is room");
    fast_mutex_get_name(&mutexes[named - 1], buf, sizeof buf);
    snprintf(name, sizeof name, "m%d", named - 1);
    assert_string_equal(buf, name);

    for (int i = 0; i <= named; i++)
        assert_int_equal(fast_mutex_set_name(&mutexes[i], NULL), 0);
    free(mutexes);
}

/* Destroying a free mutex is no misuse, forgets its name (so memory
 * reused for another mutex does not inherit it), and the memory can be
 * made a mutex again. */
static void test_destroy_free_mutex(void **state)
{
    (void)state;
    fast_mutex_t m;
    fast_mutex_init(&m);
    assert_int_equal(fast_mutex_set_name(&m, "short-lived"), 0);
    fast_mutex_acquire(&m);
    fast_mutex_release(&m);
    fast_mutex_destroy(&m);
    char buf[32];
    fast_mutex_get_name(&m, buf, sizeof buf);
    assert_string_equal(buf, "");
    fast_mutex_init(&m);
    assert_true(fast_mutex_try_acquire(&m));
    fast_mutex_release(&m);
    fast_mutex_destroy(&m);
    assert_int_equal(atomic_load(&core_reports_seen), 0);
}

static void other_hook(const char *report, bool fatal)
{
    (void)report;
    (void)fatal;
}

/* set_report_hook hands back the hook it replaces. */
static void test_set_report_hook_returns_previous(void **state)
{
    (void)state;
    fast_mutex_report_hook_t before = fast_mutex_set_report_hook(other_hook);
    assert_ptr_equal(before, core_counting_hook);
    assert_ptr_equal(fast_mutex_set_report_hook(core_counting_hook), other_hook);
    assert_ptr_equal(fast_mutex_set_report_hook(core_counting_hook), core_counting_hook);
}

#define API_TEST(f) cmocka_unit_test_setup_teardown(f, core_install_counting_hook, core_remove_hook)

int main(void)
{
    const struct CMUnitTest tests[] = {
        API_TEST(test_initializer_and_init_are_all_zero),
        API_TEST(test_zeroed_memory_is_a_free_mutex),
        API_TEST(test_acquire_sets_owner_release_clears_it),
        API_TEST(test_try_acquire),
        API_TEST(test_try_acquire_free_with_flags),
        API_TEST(test_release_while_woken_only_lets_go),
        API_TEST(test_owner_seen_from_another_thread),
        API_TEST(test_acquire_until_on_free_mutex),
        API_TEST(test_acquire_until_past_deadline_on_held_mutex),
        API_TEST(test_acquire_until_future_deadline_times_out),
        API_TEST(test_acquire_until_succeeds_when_released),
        API_TEST(test_contention_counts_each_waiting_acquire_once),
        API_TEST(test_signals_do_not_end_waits),
        API_TEST(test_names),
        API_TEST(test_names_run_out_with_enospc),
        API_TEST(test_destroy_free_mutex),
        API_TEST(test_set_report_hook_returns_previous),
    };
    return cmocka_run_group_tests_name("fastmutex api", tests, NULL, NULL);
}
