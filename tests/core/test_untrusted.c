/* What a mutex trusts (issue 16, C8): a mutex's `queue` word lies in memory
 * that other code, and for a process-shared mutex other processes, can
 * write.  A value that would index the registry out of bounds must be
 * reported (SIGABRT after a "corrupt mutex" report), never followed
 * (SIGSEGV, or writes through wild links).  Each case runs in a child
 * whose standard error the parent reads. */
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

/* A queue word whose head link (low 16 bits) is far beyond the 4096
 * records, with one waiter counted: what a 4-byte write into a shared file
 * can leave there. */
#define HOSTILE_QUEUE 0x0001ffffu

struct outcome {
    int status;
    char err[8192];
};

static void run_in_child(void (*victim)(void), struct outcome *out)
{
    memset(out, 0, sizeof *out);
    int err_fd;
    pid_t pid = core_fork_child(&err_fd);
    if (pid == 0) {
        alarm(60); /* a wild link could also hang the child */
        victim();
        _exit(3);
    }
    out->status = core_collect_child(pid, err_fd, out->err, sizeof out->err);
}

static void expect_corruption_report(const struct outcome *out, const void *mutex)
{
    if (!WIFSIGNALED(out->status) || WTERMSIG(out->status) != SIGABRT)
        fail_msg("child did not abort after a report (status 0x%x, signal %d); stderr:\n%s",
                 out->status, WIFSIGNALED(out->status) ? WTERMSIG(out->status) : 0, out->err);
    assert_contains(out->err, "fastmutex: corrupt mutex or registry");
    assert_contains(out->err, "65535");
    if (!core_contains_address(out->err, mutex))
        fail_msg("report does not name mutex %p:\n%s", mutex, out->err);
}

static fast_mutex_t *shared;

static void *hold_for_a_while(void *arg)
{
    (void)arg;
    fast_mutex_acquire(shared);
    core_sleep_ms(30000);
    return NULL;
}

/* A process-shared mutex, held, whose queue word another process rewrote:
 * the victim's acquire must not index its registry with it.  The victim
 * has waited once before, so that its registry exists. */
static void acquire_rewritten_shared(void)
{
    static fast_mutex_t warm = FAST_MUTEX_INITIALIZER;
    fast_mutex_acquire(&warm);
    pthread_t t;
    if (pthread_create(&t, NULL, hold_for_a_while, NULL) != 0)
        _exit(5);
    while (fast_mutex_owner(shared) == 0)
        core_sleep_ms(1);
    atomic_store(&shared->queue, HOSTILE_QUEUE); /* the other user's write */
    fast_mutex_acquire(shared);
}

static void test_shared_queue_word_rewritten(void **state)
{
    (void)state;
    shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(shared != MAP_FAILED);
    fast_mutex_init_shared(shared);
    struct outcome out;
    run_in_child(acquire_rewritten_shared, &out);
    expect_corruption_report(&out, shared);
    munmap(shared, sizeof *shared);
}

/* The same on release, before this process ever made its registry: a held
 * mutex whose word says waiters are queued and whose queue word points
 * nowhere. */
static fast_mutex_t private_victim = FAST_MUTEX_INITIALIZER;

static void release_rewritten_private(void)
{
    fast_mutex_acquire(&private_victim);
    atomic_fetch_or(&private_victim.word, FAST_MUTEX_WAITERS);
    atomic_store(&private_victim.queue, HOSTILE_QUEUE);
    fast_mutex_release(&private_victim);
}

static void test_private_queue_word_rewritten(void **state)
{
    (void)state;
    struct outcome out;
    run_in_child(release_rewritten_private, &out);
    expect_corruption_report(&out, &private_victim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_queue_word_rewritten),
        cmocka_unit_test(test_private_queue_word_rewritten),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
