/* Robust process-shared mutexes (issue 16, B6): a holder that dies hands
 * the mutex to the next robust acquirer with EOWNERDEAD, as glibc's robust
 * mutexes do; fast_mutex_consistent() repairs it; releasing it unrepaired
 * makes it ENOTRECOVERABLE; and a thread that got a dead holder's id is not
 * taken for that holder. */
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

static fast_mutex_t *m;

static int setup(void **state)
{
    (void)state;
    m = mmap(NULL, sizeof *m, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -1;
    fast_mutex_init_robust(m);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    munmap(m, sizeof *m);
    return 0;
}

/* A child process takes the mutex and dies holding it (killed by
 * SIGKILL, as a crash would). */
static pid_t child_dies_holding(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (fast_mutex_acquire_robust(m) != 0)
            _exit(1);
        raise(SIGKILL);
        _exit(2);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(fast_mutex_owner(m), pid);
    return pid;
}

static void test_dead_holder_then_consistent(void **state)
{
    (void)state;
    child_dies_holding();
    assert_int_equal(fast_mutex_acquire_robust(m), EOWNERDEAD);
    assert_int_equal(fast_mutex_owner(m), gettid());
    assert_int_equal(fast_mutex_consistent(m), 0);
    fast_mutex_release(m);
    assert_int_equal(fast_mutex_acquire_robust(m), 0);
    assert_int_equal(fast_mutex_consistent(m), EINVAL); /* not inconsistent */
    fast_mutex_release(m);
    assert_int_equal(fast_mutex_owner(m), 0);
}

static void test_released_inconsistent_is_not_recoverable(void **state)
{
    (void)state;
    child_dies_holding();
    assert_int_equal(fast_mutex_acquire_robust(m), EOWNERDEAD);
    fast_mutex_release(m);
    assert_int_equal(fast_mutex_acquire_robust(m), ENOTRECOVERABLE);
    assert_int_equal(fast_mutex_acquire_robust(m), ENOTRECOVERABLE);
    fast_mutex_destroy(m);
}

/* A waiter already asleep when the holder dies is told within a bounded
 * time (the library checks every 50 ms; the limit here is generous). */
static _Atomic int waiter_result = -1;

static void *robust_waiter(void *arg)
{
    (void)arg;
    int r = fast_mutex_acquire_robust(m);
    atomic_store(&waiter_result, r);
    if (r == EOWNERDEAD)
        fast_mutex_consistent(m);
    if (r == 0 || r == EOWNERDEAD)
        fast_mutex_release(m);
    return NULL;
}

static void test_sleeping_waiter_learns_of_death(void **state)
{
    (void)state;
    int to_child[2];
    assert_int_equal(pipe(to_child), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(to_child[1]);
        if (fast_mutex_acquire_robust(m) != 0)
            _exit(1);
        char c;
        (void)read(to_child[0], &c, 1); /* until the parent says die */
        raise(SIGKILL);
        _exit(2);
    }
    close(to_child[0]);
    bool held = false;
    CORE_POLL_UNTIL(held, fast_mutex_owner(m) == pid, CORE_POLL_LIMIT_MS);
    assert_true(held);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, robust_waiter, NULL), 0);
    core_sleep_ms(200);
    assert_int_equal(atomic_load(&waiter_result), -1); /* still waiting */
    kill(pid, SIGKILL);
    close(to_child[1]);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    bool told = false;
    CORE_POLL_UNTIL(told, atomic_load(&waiter_result) != -1, CORE_POLL_LIMIT_MS);
    assert_true(told);
    assert_int_equal(atomic_load(&waiter_result), EOWNERDEAD);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(fast_mutex_acquire_robust(m), 0);
    fast_mutex_release(m);
}

/* The kernel gave a dead holder's thread id to the caller: the word holds
 * the caller's id, the stamp another thread's start time.  That is a dead
 * holder to take over, not a recursive acquire (which would abort).  The
 * recycling is simulated by writing the word and stamp as the dead holder
 * left them; recycling for real takes a wrap of pid_max. */
static void test_recycled_id_is_not_the_caller(void **state)
{
    (void)state;
    uint32_t self = (uint32_t)gettid();
    atomic_store(&m->word, self | FAST_MUTEX_ROBUST_HELD);
    atomic_store(&m->queue_lock, 0x5eed1234u); /* a start time not ours */
    assert_int_equal(fast_mutex_acquire_robust(m), EOWNERDEAD);
    assert_int_equal(fast_mutex_consistent(m), 0);
    fast_mutex_release(m);
    assert_int_equal(fast_mutex_owner(m), 0);
}

/* A real recursive acquire of a robust mutex is still reported. */
static void test_recursive_acquire_reported(void **state)
{
    (void)state;
    int err_fd;
    pid_t pid = core_fork_child(&err_fd);
    if (pid == 0) {
        fast_mutex_acquire_robust(m);
        fast_mutex_acquire_robust(m);
        _exit(0);
    }
    char err[4096];
    int status = core_collect_child(pid, err_fd, err, sizeof err);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dead_holder_then_consistent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_released_inconsistent_is_not_recoverable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sleeping_waiter_learns_of_death, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recycled_id_is_not_the_caller, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recursive_acquire_reported, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
