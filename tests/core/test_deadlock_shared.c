/* Deadlocks across processes (issue 16, E21): two processes that take two
 * process-shared mutexes in opposite orders wait for each other for ever.
 * The deadlock check follows the holder of a shared mutex into its
 * process (its registry, read through /proc/PID/fd) and reports the
 * cycle, naming the other process; a timed acquire then returns EDEADLK.
 * A chain through another process that ends at a running thread is no
 * cycle, and is not reported.
 *
 * The child maps the shared file a second time, at another address, and
 * uses that mapping: the check must find where the mutex the child waits
 * for lies in the parent's own address space.  With
 * FASTMUTEX_ON_DEADLOCK=abort, both processes of a cycle abort: the first
 * check to find the cycle, and then the other's, which finds the mutex
 * held by a process that has died.  A registry that another process
 * forges (records naming addresses that are not a mutex both map, or a
 * header of another layout) is not followed, and crashes nothing.  Run
 * with FASTMUTEX_DEADLOCK_MS=200 (ctest sets it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fastmutex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "core_test.h"
#include "registry_fd.h"

/* What the two processes share: the mutexes, and the steps of the test. */
struct shared {
    fast_mutex_t a, b;
    atomic_int step;
    _Atomic uint64_t child_a; /* the address of `a` in the child's mapping */
};

static int memfd = -1;
static struct shared *sh;

/* The reports this process made, caught by the hook. */
static char reports[8192];
static size_t reports_len;

static void catch_report(const char *text, bool fatal)
{
    (void)fatal;
    size_t len = strlen(text);
    if (len > sizeof reports - 1 - reports_len)
        len = sizeof reports - 1 - reports_len;
    memcpy(reports + reports_len, text, len);
    reports_len += len;
    reports[reports_len] = '\0';
}

static void wait_for_step(int step)
{
    bool ok;
    CORE_POLL_UNTIL(ok, atomic_load(&sh->step) >= step, CORE_POLL_LIMIT_MS);
    if (!ok) {
        fprintf(stderr, "test_deadlock_shared: step %d never came\n", step);
        _exit(3);
    }
}

/* The child's own view of the shared file: mapped again, elsewhere. */
static struct shared *map_again(void)
{
    struct shared *mine = mmap(NULL, sizeof *mine, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (mine == MAP_FAILED)
        _exit(4);
    atomic_store(&mine->child_a, (uint64_t)(uintptr_t)&mine->a);
    return mine;
}

/* The child: takes b, and once the parent says so, waits for a. */
static pid_t start_child(void)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct shared *mine = map_again();
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDERR_FILENO); /* its own report of the cycle */
        fast_mutex_acquire(&mine->b);
        atomic_store(&mine->step, 1);
        wait_for_step(2);
        fast_mutex_acquire(&mine->a);
        fast_mutex_release(&mine->a);
        fast_mutex_release(&mine->b);
        _exit(0);
    }
    return pid;
}

static void expect_child_done(pid_t child)
{
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void expect_in_reports(const char *text)
{
    if (strstr(reports, text) == NULL)
        fail_msg("the report lacks \"%s\"; reports:\n%s", text, reports);
}

static void test_cycle_across_processes_reported(void **state)
{
    (void)state;
    fast_mutex_acquire(&sh->a);
    pid_t child = start_child();
    wait_for_step(1);
    atomic_store(&sh->step, 2);
    struct timespec deadline = core_deadline_ms(10000);
    int result = fast_mutex_acquire_until(&sh->b, &deadline);
    fast_mutex_release(&sh->a);
    if (result == 0)
        fast_mutex_release(&sh->b);
    expect_child_done(child);
    assert_int_equal(result, EDEADLK);
    /* The child used a mapping of its own: the report shows the mutex the
     * child waits for where this process maps it. */
    assert_true(atomic_load(&sh->child_a) != (uint64_t)(uintptr_t)&sh->a);
    char line[256];
    expect_in_reports("deadlock detected: 2 threads wait for each other in a cycle");
    snprintf(line, sizeof line, "thread %d (", (int)gettid());
    expect_in_reports(line);
    snprintf(line, sizeof line, "waits for mutex %p held by thread %d (", (void *)&sh->b, (int)child);
    expect_in_reports(line);
    snprintf(line, sizeof line, "thread %d (", (int)child);
    expect_in_reports(line);
    snprintf(line, sizeof line, "waits for mutex %p held by thread %d (", (void *)&sh->a,
             (int)gettid());
    expect_in_reports(line);
    snprintf(line, sizeof line, "in process %d (", (int)child);
    expect_in_reports(line);
    print_message("%s", reports);
}

static atomic_int holder_step;

/* A thread of the parent that holds a and runs (does not wait). */
static void *hold_a(void *arg)
{
    (void)arg;
    fast_mutex_acquire(&sh->a);
    atomic_store(&holder_step, 1);
    while (atomic_load(&holder_step) < 2)
        core_sleep_ms(1);
    fast_mutex_release(&sh->a);
    return NULL;
}

static void test_chain_without_cycle_not_reported(void **state)
{
    (void)state;
    pthread_t holder;
    assert_int_equal(pthread_create(&holder, NULL, hold_a, NULL), 0);
    bool ok;
    CORE_POLL_UNTIL(ok, atomic_load(&holder_step) == 1, CORE_POLL_LIMIT_MS);
    assert_true(ok);
    pid_t child = start_child();
    wait_for_step(1);
    atomic_store(&sh->step, 2);
    /* The child waits for a, held by our running thread; we wait for b,
     * held by the child: a chain through two processes, no cycle.  Several
     * checks run meanwhile (every 200 ms). */
    struct timespec deadline = core_deadline_ms(1500);
    int result = fast_mutex_acquire_until(&sh->b, &deadline);
    atomic_store(&holder_step, 2);
    pthread_join(holder, NULL);
    if (result == 0)
        fast_mutex_release(&sh->b);
    expect_child_done(child);
    assert_int_equal(result, ETIMEDOUT);
    if (reports_len != 0)
        fail_msg("no cycle, yet a report:\n%s", reports);
}

/* A process of the abort test, exec'd with FASTMUTEX_ON_DEADLOCK=abort
 * (settings are read once per process): takes `first`, and once both
 * processes hold theirs, waits for the other. */
static int run_role(const char *role, int fd)
{
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    alarm(20); /* without the check it would wait for ever */
    struct shared *mine = mmap(NULL, sizeof *mine, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mine == MAP_FAILED)
        return 4;
    sh = mine;
    bool a_first = strcmp(role, "a") == 0;
    fast_mutex_acquire(a_first ? &mine->a : &mine->b);
    atomic_fetch_add(&mine->step, 1);
    wait_for_step(2);
    fast_mutex_acquire(a_first ? &mine->b : &mine->a);
    return 0; /* not reached: the cycle aborts us */
}

/* Starts this test program as process `role` of the abort test, its
 * standard error into `err`. */
static pid_t start_role(const char *role, FILE *err)
{
    int fd = dup(memfd); /* without close-on-exec */
    char fd_text[16];
    snprintf(fd_text, sizeof fd_text, "%d", fd);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fileno(err), STDERR_FILENO);
        setenv("FASTMUTEX_ON_DEADLOCK", "abort", 1);
        setenv("FASTMUTEX_DEADLOCK_MS", "200", 1);
        execl("/proc/self/exe", "core_deadlock_shared", "--role", role, fd_text, (char *)NULL);
        _exit(5);
    }
    close(fd);
    return pid;
}

static void expect_aborted(pid_t pid, int status)
{
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        fail_msg("process %d did not abort (status 0x%x)", (int)pid, status);
}

/* Waits until one of the n processes in pids ends, polling every 10 ms for
 * at most `ticks` polls (forever when negative).  Returns it, its status in
 * *status, or 0 when none ended in time. */
static pid_t wait_any(const pid_t *pids, int n, int ticks, int *status)
{
    for (int tick = 0; ticks < 0 || tick < ticks; tick++) {
        for (int i = 0; i < n; i++) {
            pid_t got = waitpid(pids[i], status, WNOHANG);
            assert_true(got >= 0);
            if (got == pids[i])
                return got;
        }
        usleep(10000);
    }
    return 0;
}

/* The process that ended first aborted.  The other aborts too when its own
 * check ran while the first still lived; once the first is gone, the other
 * waits for a holder that died (a mutex that is not robust), which no check
 * can call a cycle.  So it gets the time of several checks to abort, and is
 * killed if it is still waiting. */
static void expect_cycle_aborted(pid_t a, pid_t b)
{
    int status = 0;
    pid_t both[2] = {a, b};
    pid_t first = wait_any(both, 2, -1, &status);
    expect_aborted(first, status);
    pid_t second = first == a ? b : a;
    if (wait_any(&second, 1, 200, &status) == second) {
        expect_aborted(second, status);
        return;
    }
    kill(second, SIGKILL);
    assert_int_equal(waitpid(second, &status, 0), second);
}

static void test_cycle_across_processes_aborts(void **state)
{
    (void)state;
    FILE *err_a = tmpfile(), *err_b = tmpfile();
    assert_non_null(err_a);
    assert_non_null(err_b);
    pid_t a = start_role("a", err_a), b = start_role("b", err_b);
    expect_cycle_aborted(a, b);
    char text[2][8192];
    FILE *errs[2] = {err_a, err_b};
    for (int i = 0; i < 2; i++) {
        rewind(errs[i]);
        size_t n = fread(text[i], 1, sizeof text[i] - 1, errs[i]);
        text[i][n] = '\0';
        fclose(errs[i]);
    }
    /* One found the cycle, naming the other process, and aborted. */
    char other[2][64];
    snprintf(other[0], sizeof other[0], "in process %d (", (int)b);
    snprintf(other[1], sizeof other[1], "in process %d (", (int)a);
    bool reported = false;
    for (int i = 0; i < 2; i++)
        reported |= strstr(text[i], "deadlock detected: 2 threads") != NULL &&
                    strstr(text[i], other[i]) != NULL &&
                    strstr(text[i], "FASTMUTEX_ON_DEADLOCK=abort: aborting") != NULL;
    if (!reported)
        fail_msg("no process reported the cycle and aborted:\n--- a:\n%s--- b:\n%s", text[0],
                 text[1]);
}

/* The child of the forgery test: holds b and, instead of waiting, writes
 * into its own registry a waiting record of its main thread whose mutex
 * is, in turn, each of `forged`; then the address of a (which the parent
 * holds: a cycle, were the record true) under a header of another layout
 * version.  Each stays for several of the parent's checks. */
static void forge_waits(void)
{
    fast_mutex_acquire(&sh->b);
    fast_mutex_set_name(&sh->b, "b"); /* makes the registry */
    int fd = find_registry_fd();
    struct fmx_registry *reg =
        fd < 0 ? MAP_FAILED
               : mmap(NULL, FMX_REGISTRY_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (reg == MAP_FAILED)
        _exit(6);
    struct fmx_record *rec = (struct fmx_record *)(reg + 1);
    int on_stack = 0;
    const uint64_t forged[] = {
        0, 0xdeadbeef000, UINT64_MAX - 7, (uint64_t)(uintptr_t)&on_stack,
        (uint64_t)(uintptr_t)reg, /* shared, but a file the parent does not map */
    };
    atomic_store(&reg->threads_used, UINT32_MAX);
    rec->tid = gettid();
    atomic_store(&rec->state, FMX_RECORD_WAITING);
    atomic_store(&sh->step, 1);
    for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++) {
        rec->mutex = forged[i];
        core_sleep_ms(250);
    }
    reg->version = FMX_REGISTRY_VERSION + 1;
    rec->mutex = (uint64_t)(uintptr_t)&sh->a;
    wait_for_step(2);
    fast_mutex_release(&sh->b);
    _exit(0);
}

static void test_forged_peer_registry_not_followed(void **state)
{
    (void)state;
    fast_mutex_acquire(&sh->a);
    fflush(stdout);
    fflush(stderr);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0)
        forge_waits();
    wait_for_step(1);
    struct timespec deadline = core_deadline_ms(2000);
    int result = fast_mutex_acquire_until(&sh->b, &deadline);
    atomic_store(&sh->step, 2);
    if (result == 0)
        fast_mutex_release(&sh->b);
    fast_mutex_release(&sh->a);
    expect_child_done(child);
    assert_int_equal(result, ETIMEDOUT);
    if (reports_len != 0)
        fail_msg("a forged registry was followed into a report:\n%s", reports);
}

static int setup(void **state)
{
    (void)state;
    memfd = memfd_create("deadlock-test", MFD_CLOEXEC);
    if (memfd < 0 || ftruncate(memfd, sizeof *sh) != 0)
        return -1;
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (sh == MAP_FAILED)
        return -1;
    fast_mutex_init_shared(&sh->a);
    fast_mutex_init_shared(&sh->b);
    atomic_store(&sh->step, 0);
    reports_len = 0;
    reports[0] = '\0';
    fast_mutex_set_report_hook(catch_report);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fast_mutex_set_report_hook(NULL);
    munmap(sh, sizeof *sh);
    close(memfd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--role") == 0) {
        memfd = atoi(argv[3]);
        return run_role(argv[2], memfd);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cycle_across_processes_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_without_cycle_not_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cycle_across_processes_aborts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_peer_registry_not_followed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
