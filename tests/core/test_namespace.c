/* Process-shared mutexes and pid namespaces (issue 16, B7): the lock word
 * holds thread ids of the namespace the mutex was made in.  A process of
 * another pid namespace that has to wait for the mutex (or release it on
 * the slow path) gets a report and aborts, instead of waiting on a thread
 * it cannot see or taking a holder with its own id for itself.  Needs
 * unshare(CLONE_NEWPID): skipped, with the reason, where the machine
 * refuses it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fastmutex.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "core_test.h"

/* Exit codes of the middle process (the one that unshares). */
#define NO_NAMESPACE 77

static fast_mutex_t *m;

/* In the new namespace (pid 1 there): the mutex is held by the parent,
 * whose id means nothing here. */
static void acquire_from_inside(void)
{
    int null = open("/dev/null", O_WRONLY);
    dup2(null, STDERR_FILENO);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    alarm(10); /* without the check it would wait for ever */
    fast_mutex_acquire(m);
    _exit(0);
}

static void test_other_namespace_refused(void **state)
{
    (void)state;
    m = mmap(NULL, sizeof *m, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    fast_mutex_init_shared(m);
    fast_mutex_acquire(m);
    fflush(stdout);
    fflush(stderr);
    pid_t middle = fork();
    assert_true(middle >= 0);
    if (middle == 0) {
        if (unshare(CLONE_NEWPID) != 0)
            _exit(NO_NAMESPACE);
        /* The namespace's first process is its init, which signals it
         * sends itself cannot kill: the acquire runs in its child. */
        pid_t inner = fork();
        if (inner == 0) {
            pid_t worker = fork();
            if (worker == 0)
                acquire_from_inside();
            int st = 0;
            if (worker < 0 || waitpid(worker, &st, 0) != worker)
                _exit(1);
            _exit(WIFSIGNALED(st) ? (WTERMSIG(st) == SIGABRT ? 50 : 60 + WTERMSIG(st)) : 52);
        }
        int status = 0;
        if (inner < 0 || waitpid(inner, &status, 0) != inner)
            _exit(1);
        /* Pass the fate of the process that acquired on: 50 when it
         * aborted after a report. */
        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 2);
    }
    int status = 0;
    assert_int_equal(waitpid(middle, &status, 0), middle);
    fast_mutex_release(m);
    munmap(m, sizeof *m);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == NO_NAMESPACE) {
        print_message("skipped: unshare(CLONE_NEWPID) refused here (needs CAP_SYS_ADMIN)\n");
        skip();
    }
    if (WEXITSTATUS(status) != 50)
        fail_msg("the process in the other namespace was not stopped by a report "
                 "(exit %d: 60+N signal N, 52 it returned)", WEXITSTATUS(status));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_other_namespace_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
