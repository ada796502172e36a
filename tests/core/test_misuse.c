/* Misuse reports: each misuse is done by a child process, which must die of
 * SIGABRT after writing a report to standard error whose first line starts
 * with "fastmutex: " and names the check, and which names the offending
 * thread (id and name) and the mutex (address, and name when it has one).
 * The parent reads the child's standard error through a pipe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fastmutex.h>
#include <fastmutex/wdm.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "core_test.h"

/* The name the misusing thread gives itself, to be found in the report. */
#define MISUSER_NAME "misuser-thr"

/* Exit codes of a child that did not abort: the report never came. */
#define CHILD_RETURNED 3
#define CHILD_TIMED_OUT 4

/* What the child tells the parent, in memory they share. */
struct child_info {
    _Atomic pid_t misuser_tid; /* the thread doing the misuse */
    _Atomic pid_t other_tid;   /* a helper thread holding the mutex, if any */
    atomic_int hook_calls;
    atomic_int hook_fatal;
    char hook_text[8192];
};

static struct child_info *info;

/* The mutexes the children misuse.  They are globals so that they have the
 * same address in the parent, which looks for it in the report. */
static fast_mutex_t victim;
static FAST_MUTEX wdm_victim;

struct outcome {
    int status;
    char err[16384];
};

static void child_setup(void)
{
    pthread_setname_np(pthread_self(), MISUSER_NAME);
    fast_mutex_init(&victim);
    ExInitializeFastMutex(&wdm_victim);
    atomic_store(&info->misuser_tid, gettid());
}

/* Runs `misuse` in a child with standard error sent into a pipe, and
 * collects the child's exit status and everything it wrote there. */
static void run_in_child(void (*misuse)(void), struct outcome *out)
{
    memset(out, 0, sizeof *out);
    memset(info, 0, sizeof *info);
    int err_fd;
    pid_t pid = core_fork_child(&err_fd);
    if (pid == 0) {
        child_setup();
        misuse();
        _exit(CHILD_RETURNED);
    }
    out->status = core_collect_child(pid, err_fd, out->err, sizeof out->err);
}

/* The child died of SIGABRT, after a report whose first line starts with
 * "fastmutex: " and contains `check`, and which names the misusing thread
 * by id and name. */
static void expect_report(const struct outcome *out, const char *check)
{
    if (!WIFSIGNALED(out->status))
        fail_msg("child was not killed by a signal (exit status %d); stderr:\n%s",
                 WIFEXITED(out->status) ? WEXITSTATUS(out->status) : -1, out->err);
    assert_int_equal(WTERMSIG(out->status), SIGABRT);
    if (strncmp(out->err, "fastmutex: ", 11) != 0)
        fail_msg("report does not start with \"fastmutex: \":\n%s", out->err);
    char first_line[1024];
    size_t len = strcspn(out->err, "\n");
    if (len >= sizeof first_line)
        len = sizeof first_line - 1;
    memcpy(first_line, out->err, len);
    first_line[len] = '\0';
    assert_contains(first_line, check);

    pid_t tid = atomic_load(&info->misuser_tid);
    assert_int_not_equal(tid, 0);
    if (!core_contains_number(out->err, tid))
        fail_msg("report does not name thread %d:\n%s", (int)tid, out->err);
    assert_contains(out->err, MISUSER_NAME);
}

static void expect_address(const struct outcome *out, const void *mutex)
{
    if (!core_contains_address(out->err, mutex))
        fail_msg("report does not show mutex address %p:\n%s", mutex, out->err);
}

/* A FAST_MUTEX report names the FAST_MUTEX, the address its user and fmx
 * know it by, never the lock inside it (issue 16, E16). */
static void expect_wdm_address(const struct outcome *out)
{
    if (!core_contains_address(out->err, &wdm_victim))
        fail_msg("report does not show the FAST_MUTEX %p:\n%s", (void *)&wdm_victim, out->err);
    if (core_contains_address(out->err, &wdm_victim.Event.Lock))
        fail_msg("report shows the inner lock %p of FAST_MUTEX %p:\n%s",
                 (void *)&wdm_victim.Event.Lock, (void *)&wdm_victim, out->err);
}

/* Fills the parent's thread-id cache before any fork, so that a child that
 * inherited it instead of learning its own id would be caught. */
static int group_setup(void **state)
{
    (void)state;
    info = mmap(NULL, sizeof *info, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (info == MAP_FAILED)
        return -1;
    fast_mutex_t warm = FAST_MUTEX_INITIALIZER;
    fast_mutex_acquire(&warm);
    fast_mutex_release(&warm);
    return 0;
}

/* A helper thread in the child that takes a mutex and keeps it. */
static atomic_bool helper_holds;

static void *hold_victim_forever(void *arg)
{
    (void)arg;
    atomic_store(&info->other_tid, gettid());
    fast_mutex_acquire(&victim);
    atomic_store(&helper_holds, true);
    for (;;)
        pause();
    return NULL;
}

static void *hold_wdm_victim_forever(void *arg)
{
    (void)arg;
    atomic_store(&info->other_tid, gettid());
    ExAcquireFastMutex(&wdm_victim);
    atomic_store(&helper_holds, true);
    for (;;)
        pause();
    return NULL;
}

static void start_helper(void *(*body)(void *))
{
    pthread_t t;
    if (pthread_create(&t, NULL, body, NULL) != 0)
        _exit(5);
    while (!atomic_load(&helper_holds))
        core_sleep_ms(1);
}

/* ---- fastmutex.h misuse ---- */

static void misuse_recursive_acquire(void)
{
    fast_mutex_set_name(&victim, "orders-lock");
    fast_mutex_acquire(&victim);
    fast_mutex_acquire(&victim);
}

static void test_recursive_acquire(void **state)
{
    (void)state;
    struct outcome out;
    run_in_child(misuse_recursive_acquire, &out);
    expect_report(&out, "recursive acquire");
    expect_address(&out, &victim);
    assert_contains(out.err, "orders-lock");
}

/* A name given before fork() belongs to the child's copy of the mutex as
 * much as any other byte of it, and its reports show it. */
static fast_mutex_t named_by_parent;

static void misuse_mutex_named_by_parent(void)
{
    fast_mutex_acquire(&named_by_parent);
    fast_mutex_acquire(&named_by_parent);
}

static void test_name_given_before_fork_is_reported(void **state)
{
    (void)state;
    assert_int_equal(fast_mutex_set_name(&named_by_parent, "parent-named"), 0);
    struct outcome out;
    run_in_child(misuse_mutex_named_by_parent, &out);
    assert_int_equal(fast_mutex_set_name(&named_by_parent, NULL), 0);
    expect_report(&out, "recursive acquire");
    expect_address(&out, &named_by_parent);
    assert_contains(out.err, "parent-named");
}

static void misuse_recursive_acquire_until(void)
{
    fast_mutex_acquire(&victim);
    struct timespec deadline = core_deadline_ms(3000);
    if (fast_mutex_acquire_until(&victim, &deadline) == ETIMEDOUT)
        _exit(CHILD_TIMED_OUT);
}

static void test_recursive_acquire_until(void **state)
{
    (void)state;
    struct outcome out;
    run_in_child(misuse_recursive_acquire_until, &out);
    expect_report(&out, "recursive acquire");
    expect_address(&out, &victim);
}

static void misuse_release_by_non_owner(void)
{
    start_helper(hold_victim_forever);
    fast_mutex_release(&victim);
}

static void test_release_by_non_owner(void **state)
{
    (void)state;
    struct outcome out;
    run_in_child(misuse_release_by_non_owner, &out);
    expect_report(&out, "release by a thread that does not own");
    expect_address(&out, &victim);
}

static void misuse_release_of_free_mutex(void)
{
    fast_mutex_release(&victim);
}

static void test_release_of_free_mutex(void **state)
{
    (void)state;
    struct outcome out;
    run_in_child(misuse_release_of_free_mutex, &out);
    expect_report(&out, "release of a free mutex");
    expect_address(&out, &victim);
}

/* While a woken waiter is on its way (WOKEN), releases let go in the header
 * without calling the slow path, where the checks are; they must still catch
 * a release by a thread that does not hold the mutex.  The flag is set by
 * hand, as the release that woke a waiter would have. */
static void misuse_release_by_non_owner_while_woken(void)
{
    start_helper(hold_victim_forever);
    atomic_fetch_or(&victim.word, FAST_MUTEX_WOKEN);
    fast_mutex_release(&victim);
}

static void test_release_by_non_owner_while_woken(void **state)
{
    (void)state;
    struct outcome out;
    run_in_child(misuse_release_by_non_owner_while_woken, &out);
    expect_report(&out, "release by a thread that does not own");
    expect_address(&out, &victim);
}

static void misuse_release_of_free_mutex_while_woken(void)
{
    atomic_store(&victim.word, FAST_MUTEX_WOKEN);
    fast_mutex_release(&victim);
}

static void test_release_of_free_mutex_while_woken(void **state)
{
    (void)state;
    struct outcome out;
    run_in_child(misuse_release_of_free_mutex_while_woken, &out);
    expect_report(&out, "release of a free mutex");
    expect_address(&out, &victim);
}

static void misuse_destroy_held_mutex(void)
{
    fast_mutex_acquire(&victim);
    fast_mutex_destroy(&victim);
}

static void test_destroy_of_held_mutex(void **state)
{
    (void)state;
    struct outcome out;
    run_in_child(misuse_destroy_held_mutex, &out);
    expect_report(&out, "destroy of a held mutex");
    expect_address(&out, &victim);
}

/* ---- wdm.h misuse ---- */

static void misuse_wdm_acquire_at_dispatch(void)
{
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    ExAcquireFastMutex(&wdm_victim);
}

static void test_wdm_acquire_above_apc_level(void **state)
{
    (void)state;
    struct outcome out;
    run_in_child(misuse_wdm_acquire_at_dispatch, &out);
    expect_report(&out, "IRQL");
    expect_wdm_address(&out);
}

static void misuse_wdm_unsafe_acquire_at_dispatch(void)
{
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    ExAcquireFastMutexUnsafe(&wdm_victim);
}

static void test_wdm_unsafe_acquire_above_apc_level(void **state)
{
    (void)state;
    struct outcome out;
    run_in_child(misuse_wdm_unsafe_acquire_at_dispatch, &out);
    expect_report(&out, "IRQL");
    expect_wdm_address(&out);
}

static void misuse_wdm_release_at_passive(void)
{
    ExAcquireFastMutex(&wdm_victim);
    KeLowerIrql(PASSIVE_LEVEL);
    ExReleaseFastMutex(&wdm_victim);
}

static void test_wdm_release_not_at_apc_level(void **state)
{
    (void)state;
    struct outcome out;
    run_in_child(misuse_wdm_release_at_passive, &out);
    expect_report(&out, "IRQL");
    expect_wdm_address(&out);
}

static void misuse_raise_to_lower_level(void)
{
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    KeRaiseIrql(APC_LEVEL, &old);
}

static void test_raise_irql_to_lower_level(void **state)
{
    (void)state;
    struct outcome out;
    run_in_child(misuse_raise_to_lower_level, &out);
    expect_report(&out, "IRQL");
}

static void misuse_lower_to_higher_level(void)
{
    KeLowerIrql(APC_LEVEL);
}

static void test_lower_irql_to_higher_level(void **state)
{
    (void)state;
    struct outcome out;
    run_in_child(misuse_lower_to_higher_level, &out);
    expect_report(&out, "IRQL");
}

static void misuse_wdm_release_by_non_owner(void)
{
    start_helper(hold_wdm_victim_forever);
    /* At APC_LEVEL, so that only ownership is wrong. */
    KIRQL old;
    KeRaiseIrql(APC_LEVEL, &old);
    ExReleaseFastMutex(&wdm_victim);
}

static void test_wdm_release_by_non_owner(void **state)
{
    (void)state;
    struct outcome out;
    run_in_child(misuse_wdm_release_by_non_owner, &out);
    expect_report(&out, "release by a thread that does not own");
    expect_wdm_address(&out);
}

static void misuse_wdm_recursive_acquire(void)
{
    ExAcquireFastMutex(&wdm_victim);
    ExAcquireFastMutex(&wdm_victim);
}

static void test_wdm_recursive_acquire(void **state)
{
    (void)state;
    struct outcome out;
    run_in_child(misuse_wdm_recursive_acquire, &out);
    expect_report(&out, "recursive acquire");
    expect_wdm_address(&out);
}

/* ---- call sites by function, file and line ---- */

/* The line of the second acquire below, which the report must name. */
static const int located_line = __LINE__ + 6;

static __attribute__((noinline)) void misuse_located(void)
{
    fast_mutex_acquire(&victim);
    /* The next line is located_line. */
    fast_mutex_acquire(&victim);
    /* Not a tail call, so that the return address lies in this function. */
    __asm__ volatile("" ::: "memory");
}

/* The report names where the misuse happened as fmx does, by function,
 * file and line, though this program was not linked with -rdynamic and
 * misuse_located() is static (issue 16, E17). */
static void test_report_names_function_file_line(void **state)
{
    (void)state;
    struct outcome out;
    run_in_child(misuse_located, &out);
    expect_report(&out, "recursive acquire");
    assert_contains(out.err, "called from misuse_located");
#ifndef __clang__
    /* elfutils 0.188 (Debian 12) finds no line for clang 14's debug info,
     * in fmx and eu-addr2line alike: built with clang (core_tsan), only the
     * function is checked. */
    char where[64];
    snprintf(where, sizeof where, "test_misuse.c:%d", located_line);
    assert_contains(out.err, where);
#else
    (void)located_line;
#endif
}

/* ---- a deadlock of FAST_MUTEXes ---- */

static FAST_MUTEX wdm_second;
static pthread_barrier_t both_hold;

static void *take_in_order(void *arg)
{
    PFAST_MUTEX *order = arg;
    ExAcquireFastMutex(order[0]);
    pthread_barrier_wait(&both_hold);
    ExAcquireFastMutex(order[1]);
    return NULL;
}

static void wdm_deadlock(void)
{
    setenv("FASTMUTEX_DEADLOCK_MS", "50", 1);
    setenv("FASTMUTEX_ON_DEADLOCK", "abort", 1);
    alarm(30); /* no report: the parent sees SIGALRM, not a hang */
    ExInitializeFastMutex(&wdm_second);
    pthread_barrier_init(&both_hold, NULL, 2);
    static PFAST_MUTEX ab[2] = {&wdm_victim, &wdm_second}, ba[2] = {&wdm_second, &wdm_victim};
    pthread_t a, b;
    pthread_create(&a, NULL, take_in_order, ab);
    pthread_create(&b, NULL, take_in_order, ba);
    pthread_join(a, NULL);
}

/* The deadlock report names both FAST_MUTEXes by their own addresses. */
static void test_wdm_deadlock_report(void **state)
{
    (void)state;
    struct outcome out;
    run_in_child(wdm_deadlock, &out);
    if (!WIFSIGNALED(out.status) || WTERMSIG(out.status) != SIGABRT)
        fail_msg("child did not abort after a deadlock report; stderr:\n%s", out.err);
    assert_contains(out.err, "deadlock detected");
    expect_wdm_address(&out);
    if (!core_contains_address(out.err, &wdm_second) ||
        core_contains_address(out.err, &wdm_second.Event.Lock))
        fail_msg("report does not name FAST_MUTEX %p by its own address:\n%s", (void *)&wdm_second,
                 out.err);
}

/* ---- the report hook ---- */

static void recording_hook(const char *report, bool fatal)
{
    atomic_fetch_add(&info->hook_calls, 1);
    atomic_store(&info->hook_fatal, fatal ? 1 : 0);
    snprintf(info->hook_text, sizeof info->hook_text, "%s", report);
}

static void misuse_with_hook(void)
{
    fast_mutex_set_report_hook(recording_hook);
    fast_mutex_set_name(&victim, "hooked-lock");
    fast_mutex_acquire(&victim);
    fast_mutex_acquire(&victim);
}

/* The hook gets the report, marked fatal, and the process still aborts
 * after the hook returns. */
static void test_report_hook_catches_report(void **state)
{
    (void)state;
    struct outcome out;
    run_in_child(misuse_with_hook, &out);
    if (!WIFSIGNALED(out.status))
        fail_msg("child was not killed by a signal (exit status %d); stderr:\n%s",
                 WIFEXITED(out.status) ? WEXITSTATUS(out.status) : -1, out.err);
    assert_int_equal(WTERMSIG(out.status), SIGABRT);
    assert_int_equal(atomic_load(&info->hook_calls), 1);
    assert_int_equal(atomic_load(&info->hook_fatal), 1);
    if (strncmp(info->hook_text, "fastmutex: ", 11) != 0)
        fail_msg("hooked report does not start with \"fastmutex: \":\n%s", info->hook_text);
    assert_contains(info->hook_text, "recursive acquire");
    assert_contains(info->hook_text, "hooked-lock");
    if (!core_contains_number(info->hook_text, atomic_load(&info->misuser_tid)))
        fail_msg("hooked report does not name thread %d:\n%s",
                 (int)atomic_load(&info->misuser_tid), info->hook_text);
    if (!core_contains_address(info->hook_text, &victim))
        fail_msg("hooked report does not show %p:\n%s", (void *)&victim, info->hook_text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recursive_acquire),
        cmocka_unit_test(test_recursive_acquire_until),
        cmocka_unit_test(test_name_given_before_fork_is_reported),
        cmocka_unit_test(test_release_by_non_owner),
        cmocka_unit_test(test_release_of_free_mutex),
        cmocka_unit_test(test_release_by_non_owner_while_woken),
        cmocka_unit_test(test_release_of_free_mutex_while_woken),
        cmocka_unit_test(test_destroy_of_held_mutex),
        cmocka_unit_test(test_wdm_acquire_above_apc_level),
        cmocka_unit_test(test_wdm_unsafe_acquire_above_apc_level),
        cmocka_unit_test(test_wdm_release_not_at_apc_level),
        cmocka_unit_test(test_raise_irql_to_lower_level),
        cmocka_unit_test(test_lower_irql_to_higher_level),
        cmocka_unit_test(test_wdm_release_by_non_owner),
        cmocka_unit_test(test_wdm_recursive_acquire),
        cmocka_unit_test(test_wdm_deadlock_report),
        cmocka_unit_test(test_report_names_function_file_line),
        cmocka_unit_test(test_report_hook_catches_report),
    };
    return cmocka_run_group_tests_name("fastmutex misuse", tests, group_setup, NULL);
}
