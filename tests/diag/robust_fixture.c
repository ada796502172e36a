/* A robust mutex in the three states that only a robust mutex has, for
 * `fmx mutex` and gdb's printer to show (tests/diag/robust_flags.sh).
 *
 * A child process takes the mutex and is killed holding it; then:
 *   state=dead            the dead child still owns it (ROBUST_HELD)
 *   state=inconsistent    the main thread took it over: EOWNERDEAD
 *                         (ROBUST_HELD INCONSISTENT)
 *   state=notrecoverable  the main thread let go without
 *                         fast_mutex_consistent() (NOTRECOVERABLE, no owner)
 * At each state it prints "ready state=NAME pid=PID mutex=ADDR dead=TID
 * shared=ADDR" and waits for SIGUSR1 before it goes on to the next.
 * `shared` is a free process-shared mutex (not robust), whose word
 * carries the SHARED flag.  It ends by itself
 * after FIXTURE_SECONDS so that a failed test leaves nothing behind. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fastmutex.h>

#define FIXTURE_SECONDS 120

/* The mutexes, in memory shared with the child; globals, for gdb. */
fast_mutex_t *robust_mutex, *shared_mutex;

static void fail(const char *what)
{
    fprintf(stderr, "robust_fixture: %s\n", what);
    exit(1);
}

static void state(const char *name, pid_t dead, const sigset_t *next)
{
    printf("ready state=%s pid=%d mutex=%p dead=%d shared=%p\n", name, (int)getpid(),
           (void *)robust_mutex, (int)dead, (void *)shared_mutex);
    fflush(stdout);
    int sig;
    if (sigwait(next, &sig) != 0)
        fail("sigwait");
}

int main(void)
{
    alarm(FIXTURE_SECONDS);
    sigset_t next;
    sigemptyset(&next);
    sigaddset(&next, SIGUSR1);
    sigprocmask(SIG_BLOCK, &next, NULL);
    robust_mutex = mmap(NULL, 2 * sizeof *robust_mutex, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (robust_mutex == MAP_FAILED)
        fail("mmap");
    shared_mutex = robust_mutex + 1;
    fast_mutex_init_shared(shared_mutex);
    fast_mutex_init_robust(robust_mutex);
    /* A name gives the process a registry, which fmx needs to look in. */
    fast_mutex_set_name(robust_mutex, "Robust");
    pid_t child = fork();
    if (child < 0)
        fail("fork");
    if (child == 0) {
        if (fast_mutex_acquire_robust(robust_mutex) != 0)
            _exit(1);
        raise(SIGKILL);
        _exit(2);
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFSIGNALED(status))
        fail("the child did not die holding the mutex");
    state("dead", child, &next);
    if (fast_mutex_acquire_robust(robust_mutex) != EOWNERDEAD)
        fail("no EOWNERDEAD");
    state("inconsistent", child, &next);
    fast_mutex_release(robust_mutex);
    if (fast_mutex_acquire_robust(robust_mutex) != ENOTRECOVERABLE)
        fail("no ENOTRECOVERABLE");
    state("notrecoverable", child, &next);
    return 0;
}
