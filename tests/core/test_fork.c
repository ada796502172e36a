/* fork() and holds (issue 16, B4): the mutexes the forking thread holds pass
 * to the child's thread, as glibc's do, so that the pthread_atfork(lock,
 * unlock, unlock) pattern works; holds of a process-shared mutex stay with
 * the parent.  Each case runs in a child process whose exit status the
 * parent checks: 0 is success, a signal (SIGABRT after a misuse report) is
 * a failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fastmutex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "core_test.h"

static fast_mutex_t guarded = FAST_MUTEX_INITIALIZER;

static void prepare(void)
{
    fast_mutex_acquire(&guarded);
}

static void release_after_fork(void)
{
    fast_mutex_release(&guarded);
}

/* Runs fork() and `in_child` in the child, which exits 0 when it returns.
 * Returns the child's wait status. */
static int fork_and_wait(void (*in_child)(void))
{
    pid_t pid = core_fork_child(NULL);
    if (pid == 0) {
        in_child();
        _exit(0);
    }
    return core_wait_child(pid);
}

static void expect_clean_exit(int status)
{
    if (WIFSIGNALED(status))
        fail_msg("child killed by signal %d", WTERMSIG(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* The child takes the mutex again after its handler released it, and the
 * grandchild does the same: holds pass through every generation. */
static void use_guarded(void)
{
    fast_mutex_acquire(&guarded);
    fast_mutex_release(&guarded);
}

static void use_and_fork_again(void)
{
    use_guarded();
    expect_clean_exit(fork_and_wait(use_guarded));
}

static void test_atfork_lock_unlock_unlock(void **state)
{
    (void)state;
    static bool registered;
    if (!registered)
        assert_int_equal(pthread_atfork(prepare, release_after_fork, release_after_fork), 0);
    registered = true;
    expect_clean_exit(fork_and_wait(use_and_fork_again));
    /* The parent's own hold was released by its handler. */
    assert_int_equal(fast_mutex_owner(&guarded), 0);
    use_guarded();
}

/* A mutex held across fork() by the forking thread while another thread of
 * the parent is queued for it: the child releases it (the queued thread is
 * the parent's, not the child's) and takes it again. */
static fast_mutex_t queued_for = FAST_MUTEX_INITIALIZER;
static _Atomic pid_t waiter_tid;

static void *wait_for_queued(void *arg)
{
    (void)arg;
    atomic_store(&waiter_tid, gettid());
    fast_mutex_acquire(&queued_for);
    fast_mutex_release(&queued_for);
    return NULL;
}

static void release_queued_in_child(void)
{
    fast_mutex_release(&queued_for);
    fast_mutex_acquire(&queued_for);
    fast_mutex_release(&queued_for);
}

static void test_hold_with_parent_waiters(void **state)
{
    (void)state;
    fast_mutex_acquire(&queued_for);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, wait_for_queued, NULL), 0);
    bool queued = false;
    CORE_POLL_UNTIL(queued, atomic_load(&waiter_tid) != 0 && core_thread_blocked(atomic_load(&waiter_tid)),
                    CORE_POLL_LIMIT_MS);
    assert_true(queued);
    expect_clean_exit(fork_and_wait(release_queued_in_child));
    fast_mutex_release(&queued_for);
    assert_int_equal(pthread_join(t, NULL), 0);
}

/* Only the thread that came out of fork() inherits: another thread of the
 * child that releases the mutex is reported (and aborts). */
static fast_mutex_t held_at_fork = FAST_MUTEX_INITIALIZER;

static void *release_held_at_fork(void *arg)
{
    (void)arg;
    fast_mutex_release(&held_at_fork);
    return NULL;
}

static void release_from_other_thread(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, release_held_at_fork, NULL) != 0)
        _exit(5);
    pthread_join(t, NULL);
}

static void silence_stderr(void)
{
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0)
        dup2(null, STDERR_FILENO);
}

static void release_from_other_thread_quietly(void)
{
    silence_stderr();
    release_from_other_thread();
}

static void test_only_forking_thread_inherits(void **state)
{
    (void)state;
    fast_mutex_acquire(&held_at_fork);
    int status = fork_and_wait(release_from_other_thread_quietly);
    fast_mutex_release(&held_at_fork);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

/* A process-shared mutex held at fork() stays the parent's: the parent
 * still runs and shares the memory, so the child releasing it would be a
 * second holder letting go. */
static fast_mutex_t *shared;

static void release_shared_quietly(void)
{
    silence_stderr();
    fast_mutex_release(shared);
}

static void test_shared_hold_stays_with_parent(void **state)
{
    (void)state;
    shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(shared != MAP_FAILED);
    fast_mutex_init_shared(shared);
    fast_mutex_acquire(shared);
    int status = fork_and_wait(release_shared_quietly);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    assert_int_equal(fast_mutex_owner(shared), gettid());
    fast_mutex_release(shared);
    munmap(shared, sizeof *shared);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hold_with_parent_waiters),
        cmocka_unit_test(test_only_forking_thread_inherits),
        cmocka_unit_test(test_shared_hold_stays_with_parent),
        /* Last: it leaves its fork handlers installed. */
        cmocka_unit_test(test_atfork_lock_unlock_unlock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
