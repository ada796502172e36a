/* Process-shared mutexes: fast_mutex_init_shared() on MAP_SHARED memory
 * works across fork().  Several processes (and threads inside them) count
 * exactly under it; each sees the holder's kernel thread id as the owner,
 * whichever process the holder is in; a waiter in one process is woken by a
 * release in another.
 *
 * The parent uses the library before it forks, so a child that kept the
 * parent's cached thread id instead of its own would be caught: it would
 * name the wrong owner, or take the parent's hold for its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fastmutex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "core_test.h"

struct region {
    fast_mutex_t m;
    unsigned long counter;     /* guarded by m; deliberately not atomic */
    _Atomic pid_t inside;      /* the thread in the critical section */
    atomic_ulong overlaps;     /* entries that found somebody inside */
    atomic_ulong wrong_owner;  /* entries where owner() was not the caller */
    _Atomic pid_t child_tid;   /* the child's thread id, as it reports it */
    _Atomic pid_t child_saw_owner; /* owner() the child read once it held m */
    atomic_bool child_waiting; /* the child is about to acquire */
    atomic_bool child_holds;
    atomic_bool parent_checked; /* the parent has looked; the child may go on */
    atomic_bool parent_waiting;
    atomic_bool go;            /* lets all counting threads start at once */
};

static struct region *region;

static int group_setup(void **state)
{
    (void)state;
    region = mmap(NULL, sizeof *region, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
                  0);
    if (region == MAP_FAILED)
        return -1;
    /* Fill this thread's cached id, which fork() copies into children. */
    fast_mutex_t warm = FAST_MUTEX_INITIALIZER;
    fast_mutex_acquire(&warm);
    fast_mutex_release(&warm);
    return 0;
}

static int reset_region(void **state)
{
    (void)state;
    memset(region, 0, sizeof *region);
    fast_mutex_init_shared(&region->m);
    return 0;
}

/* Waits for a child, failing (and killing it) if it has not ended within
 * the poll limit; returns its exit code, or fails if it died of a signal. */
static int wait_child(pid_t pid)
{
    int status = 0;
    bool ok;
    CORE_POLL_UNTIL(ok, waitpid(pid, &status, WNOHANG) == pid, CORE_POLL_LIMIT_MS * 3);
    if (!ok) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("child %d did not finish; owner of the shared mutex is %d", (int)pid,
                 (int)fast_mutex_owner(&region->m));
    }
    if (WIFSIGNALED(status))
        fail_msg("child %d died of signal %d", (int)pid, WTERMSIG(status));
    return WEXITSTATUS(status);
}

static void child_quiet(void)
{
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    core_default_crash_signals();
}

/* ---- exact count across processes ---- */

enum { CHILDREN = 3, ITERATIONS = 100000 };

static void *count_loop(void *arg)
{
    (void)arg;
    pid_t self = gettid();
    while (!atomic_load(&region->go))
        core_sleep_ms(1);
    for (int i = 0; i < ITERATIONS; i++) {
        fast_mutex_acquire(&region->m);
        pid_t nobody = 0;
        if (!atomic_compare_exchange_strong(&region->inside, &nobody, self))
            atomic_fetch_add(&region->overlaps, 1);
        if (fast_mutex_owner(&region->m) != self)
            atomic_fetch_add(&region->wrong_owner, 1);
        unsigned long value = region->counter;
        /* Now and then the holder loses the CPU, so that the others find
         * the mutex held and sleep on it, whatever the scheduler does. */
        if (i % 256 == 0)
            sched_yield();
        atomic_signal_fence(memory_order_seq_cst);
        region->counter = value + 1;
        pid_t me = self;
        if (!atomic_compare_exchange_strong(&region->inside, &me, 0))
            atomic_fetch_add(&region->overlaps, 1);
        fast_mutex_release(&region->m);
    }
    return NULL;
}

/* Each child counts with its main thread (which inherited the parent's
 * cached id) and one new thread; the parent counts too. */
static void test_processes_count_exactly(void **state)
{
    (void)state;
    pid_t children[CHILDREN];
    for (int c = 0; c < CHILDREN; c++) {
        fflush(NULL);
        children[c] = fork();
        assert_true(children[c] >= 0);
        if (children[c] == 0) {
            child_quiet();
            pthread_t t;
            if (pthread_create(&t, NULL, count_loop, NULL) != 0)
                _exit(10);
            count_loop(NULL);
            pthread_join(t, NULL);
            _exit(0);
        }
    }
    atomic_store(&region->go, true);
    count_loop(NULL);
    for (int c = 0; c < CHILDREN; c++)
        assert_int_equal(wait_child(children[c]), 0);
    assert_int_equal(atomic_load(&region->overlaps), 0);
    assert_int_equal(atomic_load(&region->wrong_owner), 0);
    assert_int_equal(region->counter, (unsigned long)(2 * CHILDREN + 1) * ITERATIONS);
    assert_int_equal(fast_mutex_owner(&region->m), 0);
    assert_in_range(fast_mutex_contention(&region->m), 0,
                    (unsigned long)(2 * CHILDREN + 1) * ITERATIONS);
    print_message("contention %u\n", (unsigned)fast_mutex_contention(&region->m));
}

/* ---- owner and wake-up across processes ---- */

/* The child: waits for the mutex the parent holds, reports the owner it
 * sees once it holds it, keeps it until the parent has looked, then waits
 * until the parent sleeps on it before letting go, so that its release
 * must wake a thread of another process. */
static int child_waits_then_holds(void)
{
    pid_t self = gettid();
    atomic_store(&region->child_tid, self);
    if (fast_mutex_try_acquire(&region->m))
        return 20; /* the parent holds it: a try must fail */
    atomic_store(&region->child_waiting, true);
    fast_mutex_acquire(&region->m);
    atomic_store(&region->child_saw_owner, fast_mutex_owner(&region->m));
    atomic_store(&region->child_holds, true);
    while (!atomic_load(&region->parent_checked))
        core_sleep_ms(1);
    pid_t parent = getppid();
    bool ok;
    CORE_POLL_UNTIL(ok,
                    atomic_load(&region->parent_waiting) &&
                        core_thread_sleeps_on_futex(parent, parent),
                    CORE_POLL_LIMIT_MS);
    if (!ok)
        return 21;
    fast_mutex_release(&region->m);
    return 0;
}

static void test_owner_and_wakeups_across_processes(void **state)
{
    (void)state;
    fast_mutex_acquire(&region->m);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child_quiet();
        _exit(child_waits_then_holds());
    }

    /* The child sleeps on the mutex the parent holds. */
    bool ok;
    CORE_POLL_UNTIL(ok, atomic_load(&region->child_waiting) && core_thread_sleeps_on_futex(pid, pid),
                    CORE_POLL_LIMIT_MS);
    assert_true(ok);
    assert_int_equal(atomic_load(&region->child_tid), pid);
    assert_int_equal(fast_mutex_owner(&region->m), gettid());
    fast_mutex_release(&region->m);

    /* The parent's release woke it; both sides see the child as owner. */
    CORE_POLL_UNTIL(ok, atomic_load(&region->child_holds), CORE_POLL_LIMIT_MS);
    if (!ok)
        fail_msg("the child never got the mutex; owner %d", (int)fast_mutex_owner(&region->m));
    assert_int_equal(atomic_load(&region->child_saw_owner), pid);
    assert_int_equal(fast_mutex_owner(&region->m), pid);
    assert_int_equal(fast_mutex_contention(&region->m), 1);
    assert_false(fast_mutex_try_acquire(&region->m));
    struct timespec past = core_deadline_ms(-10);
    assert_int_equal(fast_mutex_acquire_until(&region->m, &past), ETIMEDOUT);
    assert_int_equal(fast_mutex_owner(&region->m), pid);

    /* Now the parent sleeps and the child's release must wake it. */
    atomic_store(&region->parent_checked, true);
    atomic_store(&region->parent_waiting, true);
    /* Timed, so that a lost wake-up fails here instead of hanging. */
    struct timespec far = core_deadline_ms(CORE_POLL_LIMIT_MS * 3);
    assert_int_equal(fast_mutex_acquire_until(&region->m, &far), 0);
    assert_int_equal(fast_mutex_owner(&region->m), gettid());
    fast_mutex_release(&region->m);
    assert_int_equal(wait_child(pid), 0);
    assert_int_equal(fast_mutex_owner(&region->m), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_processes_count_exactly, reset_region),
        cmocka_unit_test_setup(test_owner_and_wakeups_across_processes, reset_region),
    };
    return cmocka_run_group_tests_name("fastmutex shared", tests, group_setup, NULL);
}
