/* Waiters beyond the registry (issue 16, C10): the registry has 4096
 * waiter records; a thread that waits while all of them belong to live
 * threads has none and cannot queue.  It must still sleep in the kernel
 * like any waiter, not poll.  The test queues more threads than there are
 * records on one held mutex, lets them settle, and measures the CPU time
 * the whole process uses while the mutex stays held: sleepers use next to
 * none; pollers (a nap of up to a millisecond each, hundreds of them) use
 * a large part of a CPU.  Then all of them must get the mutex in turn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fastmutex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>

#include "core_test.h"

/* More than the registry's 4096 records, by enough unrecorded threads that
 * polling would show. */
#define WAITERS (4096 + 600)
/* How long the CPU time is measured while the mutex is held. */
#define HOLD_MS 1000
/* What sleeping waiters may use in that time, all of them together: far
 * above what sleepers take, far below what hundreds of pollers do. */
#define MAX_CPU_MS 200

static fast_mutex_t m = FAST_MUTEX_INITIALIZER;
static atomic_int arrived, done;
static long counter; /* guarded by m */

static void *waiter(void *arg)
{
    (void)arg;
    atomic_fetch_add(&arrived, 1);
    fast_mutex_acquire(&m);
    counter++;
    fast_mutex_release(&m);
    atomic_fetch_add(&done, 1);
    return NULL;
}

static uint64_t process_cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return core_timespec_ns(&t);
}

static void test_waiters_beyond_registry_sleep(void **state)
{
    (void)state;
    static pthread_t threads[WAITERS];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    fast_mutex_acquire(&m);
    int started = 0;
    for (; started < WAITERS; started++)
        if (pthread_create(&threads[started], &attr, waiter, NULL) != 0)
            break;
    pthread_attr_destroy(&attr);
    if (started <= 4096 + 100) {
        fast_mutex_release(&m);
        for (int i = 0; i < started; i++)
            pthread_join(threads[i], NULL);
        print_message("skipped: only %d threads could be created; the test needs well over "
                      "4096\n", started);
        skip();
    }
    bool all_there = false;
    CORE_POLL_UNTIL(all_there, atomic_load(&arrived) == started, 60000);
    assert_true(all_there);
    core_sleep_ms(1000); /* past every spin, into every wait */

    uint64_t cpu_before = process_cpu_ns();
    core_sleep_ms(HOLD_MS);
    uint64_t cpu_ms = (process_cpu_ns() - cpu_before) / 1000000u;
    print_message("%d waiters (%d beyond the registry) used %llu ms of CPU in a %d ms hold\n",
                  started, started - 4096, (unsigned long long)cpu_ms, HOLD_MS);

    fast_mutex_release(&m);
    for (int i = 0; i < started; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    assert_int_equal(atomic_load(&done), started);
    assert_int_equal(counter, started);
    if (cpu_ms > MAX_CPU_MS)
        fail_msg("waiters used %llu ms of CPU while the mutex was held (at most %d expected)",
                 (unsigned long long)cpu_ms, MAX_CPU_MS);
}

int main(void)
{
    /* The recorded waiters' periodic deadlock check would wake 4096
     * threads once a second during the measured hold: push it past it. */
    setenv("FASTMUTEX_DEADLOCK_MS", "600000", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_waiters_beyond_registry_sleep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
