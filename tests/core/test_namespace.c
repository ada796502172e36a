/* Process-shared mutexes and pid namespaces (issue 16, B7): the lock word
 * holds thread ids of the namespace the mutex was made in.  A process of
 * another pid namespace that has to wait for the mutex, or that releases
 * it, gets a report and aborts, instead of waiting on a thread it cannot
 * see, taking a holder with its own id for itself, or freeing the hold of
 * a thread whose id it happens to have.  Needs unshare(CLONE_NEWPID), and
 * clone3() with a chosen thread id for the release: skipped, with the
 * reason, where the machine refuses either. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fastmutex.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "core_test.h"

/* Exit codes of the process that runs in the new namespace, passed on by
 * the processes around it. */
#define NO_NAMESPACE 77  /* unshare(CLONE_NEWPID) refused */
#define NO_SET_TID 78    /* clone3() with a chosen id refused */
#define ABORTED 50       /* stopped by SIGABRT: the library's report */
#define RETURNED 52      /* the call returned: nothing stopped it */
#define WRONG_TID 53     /* clone3() did not give the id asked for */
#define SIGNALED_BASE 60 /* 60 + N: killed by signal N */

static fast_mutex_t *m;
/* The thread id of this test's main thread, which holds *m. */
static pid_t holder;
/* Where the process in the other namespace writes its standard error. */
static FILE *errors;

/* Sends standard error to `errors`, and makes no core: the abort is the
 * expected outcome. */
static void quiet_abort(void)
{
    dup2(fileno(errors), STDERR_FILENO);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    alarm(10); /* without the check an acquire would wait for ever */
}

/* Waits for `pid` and turns its end into one of the exit codes above. */
static int fate_of(pid_t pid)
{
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return 1;
    if (WIFSIGNALED(status))
        return WTERMSIG(status) == SIGABRT ? ABORTED : SIGNALED_BASE + WTERMSIG(status);
    return WEXITSTATUS(status);
}

/* Runs `inside` in the first child of a new pid namespace's init (pid 1
 * there: signals it sends itself cannot kill it) and returns how that
 * process ended, or NO_NAMESPACE. */
static int run_in_new_namespace(int (*inside)(void))
{
    fflush(stdout);
    fflush(stderr);
    pid_t middle = fork();
    assert_true(middle >= 0);
    if (middle == 0) {
        if (unshare(CLONE_NEWPID) != 0)
            _exit(NO_NAMESPACE);
        pid_t init = fork();
        if (init == 0)
            _exit(inside());
        _exit(fate_of(init));
    }
    int status = 0;
    assert_int_equal(waitpid(middle, &status, 0), middle);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void skip_if_refused(int code)
{
    if (code == NO_NAMESPACE) {
        print_message("skipped: unshare(CLONE_NEWPID) refused here (needs CAP_SYS_ADMIN)\n");
        skip();
    }
    if (code == NO_SET_TID) {
        print_message("skipped: clone3() with set_tid refused here (needs CAP_SYS_ADMIN and "
                      "a kernel of 5.5 or later)\n");
        skip();
    }
}

static void acquire_from_inside(void)
{
    quiet_abort();
    fast_mutex_acquire(m);
    _exit(RETURNED);
}

/* In the namespace's init: a process that acquires. */
static int acquiring_process(void)
{
    pid_t worker = fork();
    if (worker == 0)
        acquire_from_inside();
    return fate_of(worker);
}

static void test_other_namespace_acquire_refused(void **state)
{
    (void)state;
    fast_mutex_acquire(m);
    int code = run_in_new_namespace(acquiring_process);
    fast_mutex_release(m);
    skip_if_refused(code);
    if (code != ABORTED)
        fail_msg("the process in the other namespace was not stopped by a report "
                 "(exit %d: 60+N signal N, 52 it returned)", code);
}

/* The holder's id, in the other namespace: a release there is one inline
 * compare-and-swap from our id to 0, which would succeed. */
static void release_from_inside(void)
{
    quiet_abort();
    if (gettid() != holder)
        _exit(WRONG_TID);
    /* A program that has used the library before: its thread id is
     * cached, so the inline paths run. */
    fast_mutex_t own = FAST_MUTEX_INITIALIZER;
    fast_mutex_acquire(&own);
    fast_mutex_release(&own);
    fast_mutex_release(m);
    _exit(RETURNED);
}

/* In the namespace's init: a process with the holder's thread id, made
 * with clone3()'s set_tid (glibc has no wrapper; the child runs on a copy
 * of our stack, as after fork()). */
static int releasing_process(void)
{
    pid_t tid = holder;
    struct clone_args args = {
        .exit_signal = SIGCHLD,
        .set_tid = (uint64_t)(uintptr_t)&tid,
        .set_tid_size = 1,
    };
    long child = syscall(SYS_clone3, &args, sizeof args);
    if (child < 0)
        return NO_SET_TID;
    if (child == 0)
        release_from_inside();
    return fate_of((pid_t)child);
}

static void test_other_namespace_release_refused(void **state)
{
    (void)state;
    fast_mutex_acquire(m);
    int code = run_in_new_namespace(releasing_process);
    skip_if_refused(code);
    assert_int_equal(fast_mutex_owner(m), holder);
    fast_mutex_release(m);
    if (code != ABORTED)
        fail_msg("a release from the other namespace, by a process with the holder's id, was "
                 "not stopped by a report (exit %d: 52 it returned and freed our hold, 53 it "
                 "did not get the id, 60+N signal N)", code);
    char text[4096];
    rewind(errors);
    size_t n = fread(text, 1, sizeof text - 1, errors);
    text[n] = '\0';
    assert_non_null(strstr(text, "process-shared mutex used from another pid namespace"));
}

static int setup(void **state)
{
    (void)state;
    m = mmap(NULL, sizeof *m, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    errors = tmpfile();
    if (m == MAP_FAILED || errors == NULL)
        return -1;
    fast_mutex_init_shared(m);
    holder = gettid();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    munmap(m, sizeof *m);
    fclose(errors);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_other_namespace_acquire_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_namespace_release_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
