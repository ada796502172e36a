/* The registry memfd among the program's own descriptors (issue 16, A1-A3,
 * C12): it never takes descriptor 0, 1 or 2, so a program started with one
 * of them closed cannot write its output or a report into it; the library
 * does not steer by the header it wrote, which anything that opens the
 * memfd can overwrite; a forked child closes the memfd only if the number
 * still is the memfd; and the file itself is private to its user.
 *
 * Every case runs in a child process of its own (whose registry starts
 * empty), and reports through its exit status: its stderr may be closed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <fastmutex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "core_test.h"
#include "registry.h"
#include "registry_fd.h"


/* Exit statuses of the children, each naming what went wrong. */
enum {
    CHILD_OK = 0,
    CHILD_NO_REGISTRY = 10,
    CHILD_LOW_FD = 11,
    CHILD_WAIT_FAILED = 12,
    CHILD_NAME_LOST = 13,
    CHILD_SCRIBBLE_FAILED = 14,
    CHILD_FD_CLOSED = 15,
    CHILD_FD_REPLACED = 16,
    CHILD_MODE = 17,
    CHILD_SETUP = 18,
};

/* Runs body() in a child and returns its wait status. */
static int run_in_child(int (*body)(void))
{
    pid_t pid = core_fork_child(NULL);
    if (pid == 0)
        _exit(body());
    return core_wait_child(pid);
}

static void expect_child_ok(int status)
{
    if (WIFSIGNALED(status))
        fail_msg("child died of signal %d", WTERMSIG(status));
    assert_int_equal(WEXITSTATUS(status), CHILD_OK);
}

static fast_mutex_t mutex = FAST_MUTEX_INITIALIZER;
static atomic_bool holding;

static void *hold_briefly(void *arg)
{
    (void)arg;
    fast_mutex_acquire(&mutex);
    atomic_store(&holding, true);
    core_sleep_ms(50);
    fast_mutex_release(&mutex);
    return NULL;
}

/* Makes the calling thread wait for `mutex` while another holds it, which
 * claims a registry record: the library's use of the registry. */
static bool contended_wait(void)
{
    pthread_t holder;
    atomic_store(&holding, false);
    if (pthread_create(&holder, NULL, hold_briefly, NULL) != 0)
        return false;
    while (!atomic_load(&holding))
        core_sleep_ms(1);
    fast_mutex_acquire(&mutex);
    fast_mutex_release(&mutex);
    pthread_join(holder, NULL);
    return true;
}

/* Makes the registry (naming a mutex does), checks the name reads back. */
static bool make_registry(void)
{
    return fast_mutex_set_name(&mutex, "the-mutex") == 0;
}

static bool name_intact(void)
{
    char name[32];
    fast_mutex_get_name(&mutex, name, sizeof name);
    return strcmp(name, "the-mutex") == 0;
}

/* Writes a page of 'X' to fd, as a program writes its output; errors (a
 * closed descriptor) are what a program would ignore too. */
static void write_output(int fd)
{
    char page[4096];
    memset(page, 'X', sizeof page);
    ssize_t n = write(fd, page, sizeof page);
    (void)n;
}

/* A1, A2: started with stdout and stderr closed, the program writes its
 * output and errors to them; none of it lands in the registry. */
static int closed_stdio_body(void)
{
    close(STDOUT_FILENO);
    close(STDERR_FILENO);
    if (!make_registry())
        return CHILD_SETUP;
    int fd = find_registry_fd();
    if (fd < 0)
        return CHILD_NO_REGISTRY;
    write_output(STDOUT_FILENO);
    write_output(STDERR_FILENO);
    if (!contended_wait())
        return CHILD_WAIT_FAILED;
    if (!name_intact())
        return CHILD_NAME_LOST;
    return fd > STDERR_FILENO ? CHILD_OK : CHILD_LOW_FD;
}

static void test_closed_stdout_and_stderr(void **state)
{
    (void)state;
    expect_child_ok(run_in_child(closed_stdio_body));
}

/* The same with all three closed: the memfd does not take descriptor 0. */
static int closed_stdin_body(void)
{
    close(STDIN_FILENO);
    close(STDOUT_FILENO);
    close(STDERR_FILENO);
    if (!make_registry())
        return CHILD_SETUP;
    int fd = find_registry_fd();
    if (fd < 0)
        return CHILD_NO_REGISTRY;
    return fd > STDERR_FILENO ? CHILD_OK : CHILD_LOW_FD;
}

static void test_closed_stdin(void **state)
{
    (void)state;
    expect_child_ok(run_in_child(closed_stdin_body));
}

/* A2: the header's offsets and counts, overwritten by whoever can open the
 * memfd, do not steer the library: waits and names go on working. */
static int scribbled_header_body(void)
{
    if (!make_registry())
        return CHILD_SETUP;
    int fd = find_registry_fd();
    if (fd < 0)
        return CHILD_NO_REGISTRY;
    unsigned char junk[sizeof(struct fmx_registry)];
    memset(junk, 0xff, sizeof junk);
    if (pwrite(fd, junk, sizeof junk, 0) != (ssize_t)sizeof junk)
        return CHILD_SCRIBBLE_FAILED;
    if (!contended_wait() || !contended_wait())
        return CHILD_WAIT_FAILED;
    return name_intact() ? CHILD_OK : CHILD_NAME_LOST;
}

static void test_scribbled_header(void **state)
{
    (void)state;
    expect_child_ok(run_in_child(scribbled_header_body));
}

/* A3: the application closes the registry's number and opens a file of its
 * own under it; a forked child keeps that file open. */
static int fork_keeps_reused_fd_body(void)
{
    if (!make_registry())
        return CHILD_SETUP;
    int fd = find_registry_fd();
    if (fd < 0)
        return CHILD_NO_REGISTRY;
    int pipe_fds[2];
    if (pipe(pipe_fds) != 0)
        return CHILD_SETUP;
    close(fd);
    if (dup2(pipe_fds[0], fd) != fd)
        return CHILD_SETUP;
    struct stat before;
    if (fstat(fd, &before) != 0)
        return CHILD_SETUP;
    pid_t pid = fork();
    if (pid < 0)
        return CHILD_SETUP;
    if (pid == 0) {
        struct stat after;
        if (fcntl(fd, F_GETFD) == -1)
            _exit(CHILD_FD_CLOSED);
        if (fstat(fd, &after) != 0 || after.st_ino != before.st_ino || after.st_dev != before.st_dev)
            _exit(CHILD_FD_REPLACED);
        _exit(CHILD_OK);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return CHILD_SETUP;
    return WEXITSTATUS(status);
}

static void test_fork_keeps_reused_descriptor(void **state)
{
    (void)state;
    expect_child_ok(run_in_child(fork_keeps_reused_fd_body));
}

/* A2: a queue link in a waiting record, overwritten through the memfd,
 * is reported as a corrupt registry (SIGABRT after one report), never
 * followed out of the mapping (SIGSEGV). */
static atomic_bool let_go;
static _Atomic pid_t waiter_tid;

static void *hold_until_let_go(void *arg)
{
    (void)arg;
    fast_mutex_acquire(&mutex);
    atomic_store(&holding, true);
    while (!atomic_load(&let_go))
        core_sleep_ms(1);
    fast_mutex_release(&mutex);
    return NULL;
}

static void *wait_for_mutex(void *arg)
{
    (void)arg;
    atomic_store(&waiter_tid, gettid());
    fast_mutex_acquire(&mutex);
    fast_mutex_release(&mutex);
    return NULL;
}

/* Overwrites the queue links of thread tid's record; false if not found. */
static bool scribble_links(int fd, pid_t tid)
{
    for (uint32_t slot = 0; slot < FMX_REGISTRY_THREADS; slot++) {
        off_t at = (off_t)(sizeof(struct fmx_registry) + slot * sizeof(struct fmx_record));
        struct fmx_record rec;
        if (pread(fd, &rec, sizeof rec, at) != (ssize_t)sizeof rec)
            return false;
        if (rec.tid != tid)
            continue;
        uint32_t links[2] = {0xfffffff0u, 0xfffffff0u};
        return pwrite(fd, links, sizeof links, at + (off_t)offsetof(struct fmx_record, next)) ==
               (ssize_t)sizeof links;
    }
    return false;
}

static int scribbled_link_body(void)
{
    if (!make_registry())
        return CHILD_SETUP;
    int fd = find_registry_fd();
    if (fd < 0)
        return CHILD_NO_REGISTRY;
    pthread_t holder, waiter;
    if (pthread_create(&holder, NULL, hold_until_let_go, NULL) != 0)
        return CHILD_SETUP;
    while (!atomic_load(&holding))
        core_sleep_ms(1);
    if (pthread_create(&waiter, NULL, wait_for_mutex, NULL) != 0)
        return CHILD_SETUP;
    bool parked;
    CORE_POLL_UNTIL(parked, atomic_load(&waiter_tid) != 0 && core_thread_blocked(atomic_load(&waiter_tid)),
                    CORE_POLL_LIMIT_MS);
    if (!parked || !scribble_links(fd, atomic_load(&waiter_tid)))
        return CHILD_SCRIBBLE_FAILED;
    atomic_store(&let_go, true); /* its release follows the links */
    pthread_join(holder, NULL);
    pthread_join(waiter, NULL);
    return CHILD_OK; /* followed garbage links without a report */
}

static void test_scribbled_queue_link(void **state)
{
    (void)state;
    int err_fd;
    pid_t pid = core_fork_child(&err_fd);
    if (pid == 0)
        _exit(scribbled_link_body());
    char err[4096];
    int status = core_collect_child(pid, err_fd, err, sizeof err);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        fail_msg("child did not abort with a report (status 0x%x); stderr:\n%s", status, err);
    assert_contains(err, "corrupt mutex or registry");
}

/* A2: the deadlock check follows the mutex a waiting record names; one
 * overwritten through the memfd with an unmapped address ends the chain,
 * and the waits go on, instead of a SIGSEGV in the check. */
static fast_mutex_t second = FAST_MUTEX_INITIALIZER;
static _Atomic pid_t middle_tid;

/* Holds `mutex` and waits for `second`, which the main thread holds. */
static void *hold_then_wait(void *arg)
{
    (void)arg;
    fast_mutex_acquire(&mutex);
    atomic_store(&middle_tid, gettid());
    atomic_store(&holding, true);
    fast_mutex_acquire(&second);
    fast_mutex_release(&second);
    fast_mutex_release(&mutex);
    return NULL;
}

/* Overwrites the mutex that thread tid's record says it waits for. */
static bool scribble_mutex(int fd, pid_t tid)
{
    for (uint32_t slot = 0; slot < FMX_REGISTRY_THREADS; slot++) {
        off_t at = (off_t)(sizeof(struct fmx_registry) + slot * sizeof(struct fmx_record));
        struct fmx_record rec;
        if (pread(fd, &rec, sizeof rec, at) != (ssize_t)sizeof rec)
            return false;
        if (rec.tid != tid || rec.state != FMX_RECORD_WAITING)
            continue;
        uint64_t unmapped = 0x10;
        return pwrite(fd, &unmapped, sizeof unmapped, at + (off_t)offsetof(struct fmx_record, mutex)) ==
               (ssize_t)sizeof unmapped;
    }
    return false;
}

static int scribbled_mutex_body(void)
{
    setenv("FASTMUTEX_DEADLOCK_MS", "20", 1);
    if (!make_registry())
        return CHILD_SETUP;
    int fd = find_registry_fd();
    if (fd < 0)
        return CHILD_NO_REGISTRY;
    fast_mutex_acquire(&second);
    pthread_t middle, waiter;
    if (pthread_create(&middle, NULL, hold_then_wait, NULL) != 0)
        return CHILD_SETUP;
    bool parked;
    CORE_POLL_UNTIL(parked, atomic_load(&holding) && core_thread_blocked(atomic_load(&middle_tid)),
                    CORE_POLL_LIMIT_MS);
    if (!parked || !scribble_mutex(fd, atomic_load(&middle_tid)))
        return CHILD_SCRIBBLE_FAILED;
    /* This waiter's deadlock check reads the middle thread's record. */
    if (pthread_create(&waiter, NULL, wait_for_mutex, NULL) != 0)
        return CHILD_SETUP;
    core_sleep_ms(200); /* several checks, every 20 ms */
    fast_mutex_release(&second);
    pthread_join(middle, NULL);
    pthread_join(waiter, NULL);
    return CHILD_OK;
}

static void test_scribbled_record_mutex(void **state)
{
    (void)state;
    expect_child_ok(run_in_child(scribbled_mutex_body));
}

/* C12: the memfd is readable and writable by its owner only. */
static int private_memfd_body(void)
{
    if (!make_registry())
        return CHILD_SETUP;
    int fd = find_registry_fd();
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return CHILD_NO_REGISTRY;
    return (st.st_mode & 07777) == (S_IRUSR | S_IWUSR) ? CHILD_OK : CHILD_MODE;
}

static void test_memfd_is_private(void **state)
{
    (void)state;
    expect_child_ok(run_in_child(private_memfd_body));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_closed_stdout_and_stderr),
        cmocka_unit_test(test_closed_stdin),
        cmocka_unit_test(test_scribbled_header),
        cmocka_unit_test(test_scribbled_queue_link),
        cmocka_unit_test(test_scribbled_record_mutex),
        cmocka_unit_test(test_fork_keeps_reused_descriptor),
        cmocka_unit_test(test_memfd_is_private),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
