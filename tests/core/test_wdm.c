/* The Windows names of <fastmutex/wdm.h>: the FAST_MUTEX fields (Count,
 * Owner, Contention, OldIrql) and the calling thread's simulated IRQL after
 * every call, as a Windows 10 x64 dump would show them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fastmutex/wdm.h>
#include <pthread.h>
#include <stdatomic.h>

#include "core_hooks.h"
#include "core_test.h"

/* The Windows fields of a FAST_MUTEX held by `owner` with nobody waiting,
 * and of a free one.  Macros, so that a failure names the test's line. */
#define ASSERT_HELD_BY(fm, owner)                                                              \
    do {                                                                                       \
        assert_int_equal((fm).Count, 0);                                                       \
        assert_ptr_equal((fm).Owner, (owner));                                                 \
    } while (0)
#define ASSERT_FREE(fm)                                                                        \
    do {                                                                                       \
        assert_int_equal((fm).Count, FM_LOCK_BIT);                                             \
        assert_null((fm).Owner);                                                               \
    } while (0)

/* Teardown: every test must leave the thread at PASSIVE_LEVEL. */

static int remove_hook(void **state)
{
    core_remove_hook(state);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    return 0;
}

/* The fields sit where Windows 10 x64 puts them (dt nt!_FAST_MUTEX), so a
 * dump reads the same. */
static void test_layout_matches_windows_x64(void **state)
{
    (void)state;
    assert_int_equal(offsetof(FAST_MUTEX, Count), 0x00);
    assert_int_equal(offsetof(FAST_MUTEX, Owner), 0x08);
    assert_int_equal(offsetof(FAST_MUTEX, Contention), 0x10);
    assert_int_equal(offsetof(FAST_MUTEX, Event), 0x18);
    assert_int_equal(offsetof(FAST_MUTEX, OldIrql), 0x30);
    assert_int_equal(sizeof(FAST_MUTEX), 0x38);
}

static void test_initialize(void **state)
{
    (void)state;
    FAST_MUTEX fm;
    memset(&fm, 0xa5, sizeof fm);
    ExInitializeFastMutex(&fm);
    ASSERT_FREE(fm);
    assert_int_equal(fm.Contention, 0);
}

struct irql_probe {
    KIRQL irql;
    PKTHREAD self;
};

static void *probe_main(void *arg)
{
    struct irql_probe *p = arg;
    p->irql = KeGetCurrentIrql();
    p->self = KeGetCurrentThread();
    return NULL;
}

/* Threads start at PASSIVE_LEVEL; IRQL is per thread; KeRaiseIrql stores
 * the previous level; raising to the current level is allowed. */
static void test_raise_and_lower_irql(void **state)
{
    (void)state;
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    KIRQL old = 0xee;
    KeRaiseIrql(APC_LEVEL, &old);
    assert_int_equal(old, PASSIVE_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    assert_int_equal(old, APC_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    assert_int_equal(old, DISPATCH_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), DISPATCH_LEVEL);

    /* Another thread is not affected by this one's level. */
    struct irql_probe probe = {0xee, NULL};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, probe_main, &probe), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(probe.irql, PASSIVE_LEVEL);

    KeLowerIrql(APC_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
    KeLowerIrql(APC_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
    KeLowerIrql(PASSIVE_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    assert_int_equal(atomic_load(&core_reports_seen), 0);
}

/* KeGetCurrentThread names each thread by one stable, distinct value. */
static void test_current_thread_is_stable_and_distinct(void **state)
{
    (void)state;
    PKTHREAD self = KeGetCurrentThread();
    assert_non_null(self);
    assert_ptr_equal(KeGetCurrentThread(), self);
    struct irql_probe probe = {0, NULL};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, probe_main, &probe), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_non_null(probe.self);
    assert_ptr_not_equal(probe.self, self);
}

/* Many threads asking for their KTHREAD at the same moment still get one
 * each: no two live threads are ever given the same value. */
struct crowd_probe {
    pthread_barrier_t *start;
    PKTHREAD self;
    pthread_t thread;
};

static void *crowd_probe_main(void *arg)
{
    struct crowd_probe *p = arg;
    pthread_barrier_wait(p->start);
    p->self = KeGetCurrentThread();
    /* Stay alive until all have asked: a live thread keeps its value. */
    pthread_barrier_wait(p->start);
    return NULL;
}

static int compare_pointers(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct crowd_probe *)a)->self;
    uintptr_t y = (uintptr_t)((const struct crowd_probe *)b)->self;
    return x < y ? -1 : x > y;
}

static void test_current_thread_distinct_when_many_ask_at_once(void **state)
{
    (void)state;
    enum { THREADS = 200, ROUNDS = 3 };
    struct crowd_probe *probes = calloc(THREADS, sizeof *probes);
    assert_non_null(probes);
    for (int round = 0; round < ROUNDS; round++) {
        pthread_barrier_t start;
        assert_int_equal(pthread_barrier_init(&start, NULL, THREADS), 0);
        for (int i = 0; i < THREADS; i++) {
            probes[i].start = &start;
            probes[i].self = NULL;
            assert_int_equal(pthread_create(&probes[i].thread, NULL, crowd_probe_main, &probes[i]),
                             0);
        }
        for (int i = 0; i < THREADS; i++)
            assert_int_equal(pthread_join(probes[i].thread, NULL), 0);
        pthread_barrier_destroy(&start);
        qsort(probes, THREADS, sizeof *probes, compare_pointers);
        for (int i = 0; i < THREADS; i++)
            assert_non_null(probes[i].self);
        int duplicates = 0;
        for (int i = 1; i < THREADS; i++)
            if (probes[i].self == probes[i - 1].self)
                duplicates++;
        if (duplicates != 0)
            fail_msg("round %d: %d of %d live threads got a KeGetCurrentThread() value "
                     "another live thread also got",
                     round, duplicates, THREADS);
    }
    free(probes);
}

/* ExAcquireFastMutex at PASSIVE_LEVEL: Count 0, Owner the caller, IRQL
 * APC_LEVEL, OldIrql PASSIVE_LEVEL; release undoes all of it. */
static void test_acquire_release_at_passive(void **state)
{
    (void)state;
    FAST_MUTEX fm;
    ExInitializeFastMutex(&fm);
    for (int round = 0; round < 2; round++) {
        ExAcquireFastMutex(&fm);
        ASSERT_HELD_BY(fm, KeGetCurrentThread());
        assert_int_equal(fm.OldIrql, PASSIVE_LEVEL);
        assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
        assert_int_equal(fast_mutex_owner(&fm.Event.Lock), gettid());
        ExReleaseFastMutex(&fm);
        ASSERT_FREE(fm);
        assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
        assert_int_equal(fast_mutex_owner(&fm.Event.Lock), 0);
    }
    assert_int_equal(fm.Contention, 0);
    assert_int_equal(atomic_load(&core_reports_seen), 0);
}

/* Acquired at APC_LEVEL, OldIrql is APC_LEVEL and release leaves the
 * thread there. */
static void test_acquire_release_at_apc(void **state)
{
    (void)state;
    FAST_MUTEX fm;
    ExInitializeFastMutex(&fm);
    KIRQL old;
    KeRaiseIrql(APC_LEVEL, &old);
    ExAcquireFastMutex(&fm);
    assert_int_equal(fm.OldIrql, APC_LEVEL);
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
    ASSERT_HELD_BY(fm, KeGetCurrentThread());
    ExReleaseFastMutex(&fm);
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
    ASSERT_FREE(fm);
    KeLowerIrql(old);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    assert_int_equal(atomic_load(&core_reports_seen), 0);
}

/* A thread that takes a FAST_MUTEX and keeps it until told to let go. */
struct wdm_holder {
    PFAST_MUTEX fm;
    pthread_t thread;
    _Atomic(PKTHREAD) self;
    atomic_bool holding;
    atomic_bool let_go;
};

static void *wdm_holder_main(void *arg)
{
    struct wdm_holder *h = arg;
    atomic_store(&h->self, KeGetCurrentThread());
    ExAcquireFastMutex(h->fm);
    atomic_store(&h->holding, true);
    while (!atomic_load(&h->let_go))
        core_sleep_ms(1);
    ExReleaseFastMutex(h->fm);
    return NULL;
}

static void wdm_holder_start(struct wdm_holder *h, PFAST_MUTEX fm)
{
    memset(h, 0, sizeof *h);
    h->fm = fm;
    assert_int_equal(pthread_create(&h->thread, NULL, wdm_holder_main, h), 0);
    bool ok;
    CORE_POLL_UNTIL(ok, atomic_load(&h->holding), CORE_POLL_LIMIT_MS);
    assert_true(ok);
}

static void wdm_holder_stop(struct wdm_holder *h)
{
    atomic_store(&h->let_go, true);
    assert_int_equal(pthread_join(h->thread, NULL), 0);
}

/* ExTryToAcquireFastMutex: TRUE on a free mutex (raising IRQL like
 * ExAcquireFastMutex); FALSE with IRQL unchanged when the mutex is held,
 * by another thread or by the caller; failures are not contention. */
static void test_try_to_acquire(void **state)
{
    (void)state;
    FAST_MUTEX fm;
    ExInitializeFastMutex(&fm);

    assert_int_equal(ExTryToAcquireFastMutex(&fm), TRUE);
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
    assert_int_equal(fm.OldIrql, PASSIVE_LEVEL);
    ASSERT_HELD_BY(fm, KeGetCurrentThread());

    /* The caller holds it: FALSE, IRQL stays APC_LEVEL, no report. */
    assert_int_equal(ExTryToAcquireFastMutex(&fm), FALSE);
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
    assert_int_equal(fm.OldIrql, PASSIVE_LEVEL);
    ASSERT_HELD_BY(fm, KeGetCurrentThread());
    ExReleaseFastMutex(&fm);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);

    /* Another thread holds it: FALSE, IRQL stays PASSIVE_LEVEL, and the
     * fields still describe the other thread. */
    struct wdm_holder h;
    wdm_holder_start(&h, &fm);
    assert_int_equal(ExTryToAcquireFastMutex(&fm), FALSE);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    ASSERT_HELD_BY(fm, atomic_load(&h.self));
    wdm_holder_stop(&h);
    ASSERT_FREE(fm);
    assert_int_equal(fm.Contention, 0);
    assert_int_equal(atomic_load(&core_reports_seen), 0);
}

/* The Unsafe variants take and give the mutex without touching IRQL or
 * OldIrql, at PASSIVE_LEVEL and at APC_LEVEL. */
static void test_unsafe_variants_leave_irql_alone(void **state)
{
    (void)state;
    FAST_MUTEX fm;
    ExInitializeFastMutex(&fm);
    /* Give OldIrql a known value first: APC_LEVEL. */
    KIRQL old;
    KeRaiseIrql(APC_LEVEL, &old);
    ExAcquireFastMutex(&fm);
    ExReleaseFastMutex(&fm);
    KeLowerIrql(PASSIVE_LEVEL);
    assert_int_equal(fm.OldIrql, APC_LEVEL);

    ExAcquireFastMutexUnsafe(&fm);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    assert_int_equal(fm.OldIrql, APC_LEVEL);
    ASSERT_HELD_BY(fm, KeGetCurrentThread());
    ExReleaseFastMutexUnsafe(&fm);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    ASSERT_FREE(fm);

    KeRaiseIrql(APC_LEVEL, &old);
    ExAcquireFastMutexUnsafe(&fm);
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
    assert_int_equal(fm.OldIrql, APC_LEVEL);
    ASSERT_HELD_BY(fm, KeGetCurrentThread());
    ExReleaseFastMutexUnsafe(&fm);
    assert_int_equal(KeGetCurrentIrql(), APC_LEVEL);
    ASSERT_FREE(fm);
    KeLowerIrql(PASSIVE_LEVEL);
    assert_int_equal(fm.Contention, 0);
    assert_int_equal(atomic_load(&core_reports_seen), 0);
}

/* A thread that waits in ExAcquireFastMutex and records, the moment it
 * holds the mutex, what the fields and its IRQL say. */
struct wdm_waiter {
    PFAST_MUTEX fm;
    pthread_t thread;
    _Atomic(PKTHREAD) self;
    _Atomic pid_t tid;
    atomic_bool done;
    atomic_int *order; /* ticket dispenser shared by the waiters */
    int ticket;        /* 0 for the first waiter to get the mutex */
    LONG count;
    PVOID owner;
    ULONG old_irql;
    KIRQL irql;
    KIRQL irql_after_release;
};

static void *wdm_waiter_main(void *arg)
{
    struct wdm_waiter *w = arg;
    atomic_store(&w->self, KeGetCurrentThread());
    atomic_store(&w->tid, gettid());
    ExAcquireFastMutex(w->fm);
    w->count = w->fm->Count;
    w->owner = w->fm->Owner;
    w->old_irql = w->fm->OldIrql;
    w->irql = KeGetCurrentIrql();
    w->ticket = atomic_fetch_add(w->order, 1);
    ExReleaseFastMutex(w->fm);
    w->irql_after_release = KeGetCurrentIrql();
    atomic_store(&w->done, true);
    return NULL;
}

/* Count gains 4 for every thread waiting (polled until it shows); once
 * queued, the waiters get the mutex in the order they came, each seeing
 * its own fields; Contention counts them. */
static void test_count_shows_waiters(void **state)
{
    (void)state;
    enum { WAITERS = 2 };
    FAST_MUTEX fm;
    ExInitializeFastMutex(&fm);
    ExAcquireFastMutex(&fm);
    assert_int_equal(fm.Count, 0);

    atomic_int order = 0;
    struct wdm_waiter w[WAITERS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < WAITERS; i++) {
        w[i].fm = &fm;
        w[i].order = &order;
        assert_int_equal(pthread_create(&w[i].thread, NULL, wdm_waiter_main, &w[i]), 0);
        LONG expected = FM_LOCK_WAITER_INC * (i + 1);
        bool ok;
        /* Read as a debugger would, while the waiters change it. */
        CORE_POLL_UNTIL(ok, __atomic_load_n(&fm.Count, __ATOMIC_RELAXED) == expected,
                        CORE_POLL_LIMIT_MS);
        if (!ok)
            fail_msg("Count is %d with %d threads waiting, expected %d",
                     (int)__atomic_load_n(&fm.Count, __ATOMIC_RELAXED), i + 1, (int)expected);
        /* Count shows the wait from its start, while the waiter may still
         * spin; a spinner may take the mutex ahead of a queued waiter
         * (barging), so wait until this one is queued and asleep before
         * the next comes or the mutex is let go. */
        CORE_POLL_UNTIL(ok,
                        fast_mutex_contention(&fm.Event.Lock) == (uint32_t)(i + 1) &&
                            core_thread_blocked(atomic_load(&w[i].tid)),
                        CORE_POLL_LIMIT_MS);
        if (!ok)
            fail_msg("waiter %d never went to sleep on the mutex", i);
        assert_ptr_equal(fm.Owner, KeGetCurrentThread());
        assert_int_equal(fm.OldIrql, PASSIVE_LEVEL);
    }

    ExReleaseFastMutex(&fm);
    assert_int_equal(KeGetCurrentIrql(), PASSIVE_LEVEL);
    for (int i = 0; i < WAITERS; i++) {
        bool ok;
        CORE_POLL_UNTIL(ok, atomic_load(&w[i].done), CORE_POLL_LIMIT_MS);
        if (!ok)
            fail_msg("waiter %d never got the mutex; Count %d", i, (int)fm.Count);
        assert_int_equal(pthread_join(w[i].thread, NULL), 0);
    }
    for (int i = 0; i < WAITERS; i++) {
        /* First come, first served: nobody barged in between. */
        assert_int_equal(w[i].ticket, i);
        /* The holder sees 4 for each thread still waiting behind it. */
        assert_int_equal(w[i].count, FM_LOCK_WAITER_INC * (WAITERS - 1 - i));
        assert_ptr_equal(w[i].owner, atomic_load(&w[i].self));
        assert_int_equal(w[i].old_irql, PASSIVE_LEVEL);
        assert_int_equal(w[i].irql, APC_LEVEL);
        assert_int_equal(w[i].irql_after_release, PASSIVE_LEVEL);
    }
    ASSERT_FREE(fm);
    assert_int_equal(fm.Contention, WAITERS);
    assert_int_equal(atomic_load(&core_reports_seen), 0);
}

/* Several threads take one FAST_MUTEX many times over: the count they
 * guard is exact, every thread ends at PASSIVE_LEVEL, and the fields end
 * as after initialization (Contention aside). */
struct wdm_worker {
    PFAST_MUTEX fm;
    unsigned long *counter;
    int iterations;
    pthread_t thread;
    KIRQL irql_at_end;
    int wrong_owner;
};

static void *wdm_worker_main(void *arg)
{
    struct wdm_worker *w = arg;
    for (int i = 0; i < w->iterations; i++) {
        if (i % 3 == 0) {
            while (!ExTryToAcquireFastMutex(w->fm)) {
            }
        } else {
            ExAcquireFastMutex(w->fm);
        }
        if (w->fm->Owner != (PVOID)KeGetCurrentThread())
            w->wrong_owner++;
        *w->counter += 1;
        ExReleaseFastMutex(w->fm);
    }
    w->irql_at_end = KeGetCurrentIrql();
    return NULL;
}

static void test_many_threads_exact_count(void **state)
{
    (void)state;
    enum { THREADS = 4, ITERATIONS = 20000 };
    FAST_MUTEX fm;
    ExInitializeFastMutex(&fm);
    unsigned long counter = 0;
    struct wdm_worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct wdm_worker){&fm, &counter, ITERATIONS, 0, 0xee, 0};
        assert_int_equal(pthread_create(&w[i].thread, NULL, wdm_worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(w[i].thread, NULL), 0);
        assert_int_equal(w[i].irql_at_end, PASSIVE_LEVEL);
        assert_int_equal(w[i].wrong_owner, 0);
    }
    assert_int_equal(counter, (unsigned long)THREADS * ITERATIONS);
    ASSERT_FREE(fm);
    assert_in_range(fm.Contention, 0, (unsigned long)THREADS * ITERATIONS);
    assert_int_equal(atomic_load(&core_reports_seen), 0);
}

#define WDM_TEST(f) cmocka_unit_test_setup_teardown(f, core_install_counting_hook, remove_hook)

int main(void)
{
    const struct CMUnitTest tests[] = {
        WDM_TEST(test_layout_matches_windows_x64),
        WDM_TEST(test_initialize),
        WDM_TEST(test_raise_and_lower_irql),
        WDM_TEST(test_current_thread_is_stable_and_distinct),
        WDM_TEST(test_current_thread_distinct_when_many_ask_at_once),
        WDM_TEST(test_acquire_release_at_passive),
        WDM_TEST(test_acquire_release_at_apc),
        WDM_TEST(test_try_to_acquire),
        WDM_TEST(test_unsafe_variants_leave_irql_alone),
        WDM_TEST(test_count_shows_waiters),
        WDM_TEST(test_many_threads_exact_count),
    };
    return cmocka_run_group_tests_name("fastmutex wdm", tests, NULL, NULL);
}
