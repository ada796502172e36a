/* fast_mutex_try_acquire() is not starved by a holder that releases and at
 * once retakes the mutex: a failed try marks the mutex (TRYING), and the
 * holder's release, finding the mark, clears it and waits a moment for
 * another thread to take the mutex (fmx_policy_make_way()).  The tests
 * check the mark: who sets it, who clears it.
 *
 * `core_try --measure` shows the effect: a holder thread loops (acquire,
 * hold ~1 us, release, acquire again) while this thread, on another CPU,
 * polls try_acquire about once a microsecond until it gets in, counting
 * the holder's releases it saw go by; median of several loops, beside
 * pthread_mutex_trylock's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core_test.h"
#include "fastmutex.h"

enum {
    TRIES = 15,        /* try loops whose median is reported */
    HOLD_NS = 1000,    /* the holder's hold */
    GIVE_UP_MS = 2000, /* a try that takes longer counts as never */
    POLL_PAUSES = 32,  /* between two tries: about a microsecond here */
};

static inline void pause_once(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

struct lock_ops {
    void (*lock)(void *);
    void (*unlock)(void *);
    bool (*try_lock)(void *);
    void (*release_try)(void *);
    void *lock_state;
};

struct holder {
    const struct lock_ops *ops;
    atomic_ulong cycles;
    atomic_bool stop;
};

static void busy_ns(uint64_t ns)
{
    uint64_t until = core_now_ns() + ns;
    while (core_now_ns() < until)
        ;
}

static void *holder_main(void *arg)
{
    struct holder *h = arg;
    while (!atomic_load_explicit(&h->stop, memory_order_relaxed)) {
        h->ops->lock(h->ops->lock_state);
        busy_ns(HOLD_NS);
        atomic_fetch_add_explicit(&h->cycles, 1, memory_order_relaxed);
        h->ops->unlock(h->ops->lock_state);
    }
    return NULL;
}

static int by_value(const void *a, const void *b)
{
    unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
    return (x > y) - (x < y);
}

/* How many of the holder's releases a try loop saw go by before it got
 * in: it counts a release when the holder's cycle count changed between
 * two of its failed tries.  Releases made while the trying thread was not
 * running (a loaded machine runs the two threads by turns) are not held
 * against the lock.  ULONG_MAX when it never got in. */
static unsigned long releases_seen_before_getting_in(const struct lock_ops *ops,
                                                     struct holder *h)
{
    uint64_t give_up = core_now_ns() + (uint64_t)GIVE_UP_MS * 1000000u;
    unsigned long seen = 0, last = atomic_load(&h->cycles);
    while (!ops->try_lock(ops->lock_state)) {
        /* A polling loop does something between its tries. */
        for (int i = 0; i < POLL_PAUSES; i++)
            pause_once();
        unsigned long now = atomic_load(&h->cycles);
        seen += now != last;
        last = now;
        if (core_now_ns() > give_up)
            return ULONG_MAX;
    }
    ops->release_try(ops->lock_state);
    return seen;
}

/* The median over TRIES try loops. */
static unsigned long median_releases_to_get_in(const struct lock_ops *ops)
{
    struct holder h = {.ops = ops};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, holder_main, &h), 0);
    bool started;
    CORE_POLL_UNTIL(started, atomic_load(&h.cycles) > 100, CORE_POLL_LIMIT_MS);
    assert_true(started);
    unsigned long taken[TRIES];
    for (int i = 0; i < TRIES; i++) {
        taken[i] = releases_seen_before_getting_in(ops, &h);
        core_sleep_ms(2);
    }
    atomic_store(&h.stop, true);
    assert_int_equal(pthread_join(thread, NULL), 0);
    qsort(taken, TRIES, sizeof taken[0], by_value);
    return taken[TRIES / 2];
}

static fast_mutex_t fm = FAST_MUTEX_INITIALIZER;
static void fm_lock(void *m) { fast_mutex_acquire(m); }
static void fm_unlock(void *m) { fast_mutex_release(m); }
static bool fm_try(void *m) { return fast_mutex_try_acquire(m); }

static pthread_mutex_t pm = PTHREAD_MUTEX_INITIALIZER;
static void pm_lock(void *m) { pthread_mutex_lock(m); }
static void pm_unlock(void *m) { pthread_mutex_unlock(m); }
static bool pm_try(void *m) { return pthread_mutex_trylock(m) == 0; }

static bool two_cpus(void)
{
    cpu_set_t allowed;
    return sched_getaffinity(0, sizeof allowed, &allowed) != 0 || CPU_COUNT(&allowed) >= 2;
}

/* How soon a try loop gets in, printed beside pthread's (`core_try
 * --measure`, not run by ctest): how soon depends on the machine's load
 * and on how far apart its CPUs are, so it is reported, not judged.  What
 * the tests judge is the mechanism: the flag a failed try leaves, and who
 * clears it. */
static void measure_try_loops(void)
{
    const struct lock_ops pthread_ops = {pm_lock, pm_unlock, pm_try, pm_unlock, &pm};
    const struct lock_ops fastmutex_ops = {fm_lock, fm_unlock, fm_try, fm_unlock, &fm};
    unsigned long pthread_median = median_releases_to_get_in(&pthread_ops);
    unsigned long fastmutex_median = median_releases_to_get_in(&fastmutex_ops);
    printf("holder releases a try loop saw before it got in (median of %d): fastmutex %lu, "
           "pthread %lu\n",
           TRIES, fastmutex_median, pthread_median);
}

/* A failed try marks the held mutex; the holder's release clears the mark,
 * and a try by the holder itself leaves none. */
static void test_failed_try_marks_the_mutex_until_release(void **state)
{
    (void)state;
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    fast_mutex_acquire(&m);
    assert_false(fast_mutex_try_acquire(&m)); /* our own: no mark */
    assert_int_equal(atomic_load(&m.word) & FAST_MUTEX_TRYING, 0);
    fast_mutex_release(&m);
    assert_int_equal(atomic_load(&m.word), 0);
    fast_mutex_destroy(&m);
}

struct other_try {
    fast_mutex_t *m;
    bool got;
};

static void *try_once(void *arg)
{
    struct other_try *t = arg;
    t->got = fast_mutex_try_acquire(t->m);
    return NULL;
}

static void test_try_by_another_thread_is_cleared_by_release(void **state)
{
    (void)state;
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    fast_mutex_acquire(&m);
    struct other_try t = {.m = &m};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, try_once, &t), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_false(t.got);
    assert_int_equal(atomic_load(&m.word) & FAST_MUTEX_TRYING, FAST_MUTEX_TRYING);
    fast_mutex_release(&m);
    assert_int_equal(atomic_load(&m.word), 0);
    fast_mutex_destroy(&m);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--measure") == 0) {
        if (!two_cpus()) {
            fprintf(stderr, "core_try: --measure needs two CPUs\n");
            return 1;
        }
        measure_try_loops();
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_try_marks_the_mutex_until_release),
        cmocka_unit_test(test_try_by_another_thread_is_cleared_by_release),
    };
    return cmocka_run_group_tests_name("fastmutex try_acquire", tests, NULL, NULL);
}
