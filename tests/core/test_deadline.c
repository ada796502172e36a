/* fast_mutex_acquire_until()'s deadline (issue 16, D13): a deadline too far
 * ahead to count in nanoseconds is no deadline at all, not one long past; a
 * tv_nsec outside 0..999999999 is EINVAL, as pthread_mutex_timedlock()
 * says, when the caller would wait; and a deadline already past on a held
 * mutex returns ETIMEDOUT without counting a contention, since the caller
 * never slept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fastmutex.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

#include "core_test.h"

static fast_mutex_t mutex = FAST_MUTEX_INITIALIZER;
static atomic_bool holding, let_go;

/* Holds `mutex` until let_go (at most 10 s, so that a library that never
 * gives up cannot hang the test), or for hold_ms when it is positive. */
static void *holder(void *arg)
{
    long hold_ms = (long)(intptr_t)arg;
    fast_mutex_acquire(&mutex);
    atomic_store(&holding, true);
    if (hold_ms > 0)
        core_sleep_ms(hold_ms);
    else
        for (int ms = 0; ms < 10000 && !atomic_load(&let_go); ms++)
            core_sleep_ms(1);
    fast_mutex_release(&mutex);
    return NULL;
}

static pthread_t start_holder(long hold_ms)
{
    pthread_t thread;
    atomic_store(&holding, false);
    atomic_store(&let_go, false);
    assert_int_equal(pthread_create(&thread, NULL, holder, (void *)(intptr_t)hold_ms), 0);
    while (!atomic_load(&holding))
        core_sleep_ms(1);
    return thread;
}

/* Deadlines past 2^64 ns from the epoch (tv_sec >= 18446744074): the
 * caller waits for the holder's release, and gets the mutex. */
static void test_far_deadline_waits(void **state)
{
    (void)state;
    const time_t far[] = {18446744074, (time_t)LLONG_MAX};
    for (size_t i = 0; i < sizeof far / sizeof far[0]; i++) {
        pthread_t thread = start_holder(100);
        struct timespec deadline = {.tv_sec = far[i], .tv_nsec = 999999999};
        uint64_t start = core_now_ns();
        assert_int_equal(fast_mutex_acquire_until(&mutex, &deadline), 0);
        /* It waited for the release, not returned at once. */
        assert_true(core_now_ns() - start >= 50 * 1000000u);
        fast_mutex_release(&mutex);
        pthread_join(thread, NULL);
    }
}

/* tv_nsec outside its range: EINVAL while the mutex is held (the caller
 * would wait), the mutex taken while it is free (no wait, as glibc). */
static void test_bad_nsec_is_einval(void **state)
{
    (void)state;
    const long bad[] = {-1, 1000000000, LONG_MIN, LONG_MAX};
    pthread_t thread = start_holder(0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct timespec deadline = core_deadline_ms(1000);
        deadline.tv_nsec = bad[i];
        assert_int_equal(fast_mutex_acquire_until(&mutex, &deadline), EINVAL);
    }
    atomic_store(&let_go, true);
    pthread_join(thread, NULL);
    struct timespec deadline = {.tv_sec = 0, .tv_nsec = -1};
    assert_int_equal(fast_mutex_acquire_until(&mutex, &deadline), 0);
    fast_mutex_release(&mutex);
}

/* A deadline already past, on a held mutex: ETIMEDOUT, and no sleep
 * counted. */
static void test_past_deadline_counts_no_contention(void **state)
{
    (void)state;
    pthread_t thread = start_holder(0);
    uint32_t before = fast_mutex_contention(&mutex);
    struct timespec past = core_deadline_ms(-1000);
    struct timespec epoch = {.tv_sec = 0, .tv_nsec = 0};
    assert_int_equal(fast_mutex_acquire_until(&mutex, &past), ETIMEDOUT);
    assert_int_equal(fast_mutex_acquire_until(&mutex, &epoch), ETIMEDOUT);
    assert_int_equal(fast_mutex_contention(&mutex), before);
    /* A deadline that lets it sleep does count. */
    struct timespec soon = core_deadline_ms(50);
    assert_int_equal(fast_mutex_acquire_until(&mutex, &soon), ETIMEDOUT);
    assert_int_equal(fast_mutex_contention(&mutex), before + 1);
    atomic_store(&let_go, true);
    pthread_join(thread, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_far_deadline_waits),
        cmocka_unit_test(test_bad_nsec_is_einval),
        cmocka_unit_test(test_past_deadline_counts_no_contention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
