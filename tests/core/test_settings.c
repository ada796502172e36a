/* The FASTMUTEX_* settings (issue 16, D14): one strict parser, one line on
 * stderr for a bad value, and the documented fallback.  Each case runs
 * this program again with the variable set (settings are read once a
 * process, FASTMUTEX_VERIFY, _STATS and _TRACE as it loads), and the child
 * reports what the library made of them through its internal accessors
 * (the test links the static library) and what it wrote on stderr. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <sys/stat.h>
#include <sys/wait.h>

#include "core_test.h"
#include "internal.h"

/* What a child found: the settings in effect and its stderr. */
struct outcome {
    uint64_t deadlock_ms; /* 0: the check is off */
    int on_deadlock;
    bool diagnostics;
    bool verify_order;
    bool stats;
    char stats_file[256]; /* "" for none */
    char trace_file[256]; /* "" for none */
    char err[1024];
};

/* The child's side: this program run again as "core_settings --child FD". */
static int report_settings(int fd)
{
    const struct fmx_watch_settings *watch = fmx_watch_settings();
    struct outcome got = {
        .diagnostics = fmx_diagnostics(),
        .deadlock_ms = fmx_deadlock_after_ns() / 1000000u,
        .on_deadlock = (int)fmx_on_deadlock(),
        .verify_order = watch->verify_order,
        .stats = watch->stats,
    };
    snprintf(got.stats_file, sizeof got.stats_file, "%s", watch->stats_file ? watch->stats_file : "");
    snprintf(got.trace_file, sizeof got.trace_file, "%s", watch->trace_file ? watch->trace_file : "");
    return write(fd, &got, sizeof got) == (ssize_t)sizeof got ? 0 : 1;
}

/* Runs this program again with `name` set to `value`, and collects what it
 * reports through one pipe and its stderr through another. */
static void run_with(const char *name, const char *value, struct outcome *out)
{
    int data[2], err[2];
    assert_int_equal(pipe(data), 0);
    assert_int_equal(pipe(err), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char fd_text[16];
        snprintf(fd_text, sizeof fd_text, "%d", data[1]);
        setenv(name, value, 1);
        dup2(err[1], STDERR_FILENO);
        execl("/proc/self/exe", "core_settings", "--child", fd_text, (char *)NULL);
        _exit(127);
    }
    close(data[1]);
    close(err[1]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char err_text[sizeof out->err];
    ssize_t n = read(err[0], err_text, sizeof err_text - 1);
    err_text[n > 0 ? n : 0] = '\0';
    assert_int_equal(read(data[0], out, sizeof *out), sizeof *out);
    memcpy(out->err, err_text, sizeof err_text);
    close(data[0]);
    close(err[0]);
}

/* The value is refused: exactly one line naming it, and the fallback. */
static void expect_refused(const struct outcome *out, const char *name, const char *value)
{
    char quoted[256];
    snprintf(quoted, sizeof quoted, "%s='%s'", name, value);
    assert_contains(out->err, quoted);
    assert_contains(out->err, "using");
    const char *newline = strchr(out->err, '\n');
    assert_non_null(newline);
    assert_string_equal(newline + 1, "");
}

static void test_deadlock_ms_accepted(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t ms;
    } good[] = {{"200", 200}, {"1", 1}, {"86399999", 86399999}, {"0007", 7}, {"", 1000}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct outcome out;
        run_with("FASTMUTEX_DEADLOCK_MS", good[i].text, &out);
        assert_string_equal(out.err, "");
        assert_int_equal(out.deadlock_ms, good[i].ms);
    }
}

static void test_deadlock_ms_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "-18446744073709551415", " 200", "+200", "200 ", "200ms", "0", "86400000",
        "18446744073709551617", "99999999999999999999999", "0x10", "1e3", "-1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct outcome out;
        run_with("FASTMUTEX_DEADLOCK_MS", bad[i], &out);
        expect_refused(&out, "FASTMUTEX_DEADLOCK_MS", bad[i]);
        assert_int_equal(out.deadlock_ms, 1000);
    }
}

static void test_diagnostics(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool on;
    } good[] = {{"0", false}, {"off", false}, {"1", true}, {"on", true}, {"", true}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct outcome out;
        run_with("FASTMUTEX_DIAGNOSTICS", good[i].text, &out);
        assert_string_equal(out.err, "");
        assert_int_equal(out.diagnostics, good[i].on);
    }
    static const char *const bad[] = {"garbage", "OFF", " 0", "00", "false", "yes"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct outcome out;
        run_with("FASTMUTEX_DIAGNOSTICS", bad[i], &out);
        expect_refused(&out, "FASTMUTEX_DIAGNOSTICS", bad[i]);
        assert_true(out.diagnostics);
    }
}

static void test_on_deadlock(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int policy;
        uint64_t ms;
    } good[] = {{"report", FMX_ON_DEADLOCK_REPORT, 1000},
                {"abort", FMX_ON_DEADLOCK_ABORT, 1000},
                {"ignore", FMX_ON_DEADLOCK_IGNORE, 0},
                {"", FMX_ON_DEADLOCK_REPORT, 1000}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct outcome out;
        run_with("FASTMUTEX_ON_DEADLOCK", good[i].text, &out);
        assert_string_equal(out.err, "");
        assert_int_equal(out.on_deadlock, good[i].policy);
        assert_int_equal(out.deadlock_ms, good[i].ms);
    }
    static const char *const bad[] = {"Abort", "abort ", "die", "1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct outcome out;
        run_with("FASTMUTEX_ON_DEADLOCK", bad[i], &out);
        expect_refused(&out, "FASTMUTEX_ON_DEADLOCK", bad[i]);
        assert_int_equal(out.on_deadlock, FMX_ON_DEADLOCK_REPORT);
    }
}

/* The number parser on its own, at the edges of uint64_t. */
static void test_parse_number(void **state)
{
    (void)state;
    uint64_t v = 42;
    assert_true(fmx_parse_number("18446744073709551615", 0, UINT64_MAX, &v));
    assert_true(v == UINT64_MAX);
    v = 42;
    assert_false(fmx_parse_number("18446744073709551616", 0, UINT64_MAX, &v));
    assert_false(fmx_parse_number("", 0, UINT64_MAX, &v));
    assert_false(fmx_parse_number("9", 0, 5, &v));
    assert_false(fmx_parse_number("4", 5, 10, &v));
    assert_int_equal(v, 42);
}

static void test_verify(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool on;
    } good[] = {{"order", true}, {"off", false}, {"", false}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct outcome out;
        run_with("FASTMUTEX_VERIFY", good[i].text, &out);
        assert_string_equal(out.err, "");
        assert_int_equal(out.verify_order, good[i].on);
    }
    static const char *const bad[] = {"Order", "order ", "on", "1", "lock-order"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct outcome out;
        run_with("FASTMUTEX_VERIFY", bad[i], &out);
        expect_refused(&out, "FASTMUTEX_VERIFY", bad[i]);
        assert_contains(out.err, "(want order or off); using off");
        assert_false(out.verify_order);
    }
}

/* A folder of the test's own, for the files the settings name. */
static char work[64];

static int make_work(void **state)
{
    (void)state;
    snprintf(work, sizeof work, "/tmp/fmx-settings-XXXXXX");
    return mkdtemp(work) == NULL ? -1 : 0;
}

static int remove_work(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/exists.txt", work);
    unlink(path);
    return rmdir(work);
}

/* FASTMUTEX_STATS and FASTMUTEX_TRACE take a file: one that exists and
 * can be written, or can be made in a folder that exists.  Anything else
 * is refused at once, not lost at exit. */
static void test_stats(void **state)
{
    (void)state;
    char made[128], exists[128];
    snprintf(made, sizeof made, "%s/profile.json", work);
    snprintf(exists, sizeof exists, "%s/exists.txt", work);
    FILE *f = fopen(exists, "w");
    assert_non_null(f);
    fclose(f);
    const struct {
        const char *text;
        bool on;
        const char *file;
    } good[] = {{"on", true, ""}, {"off", false, ""}, {"", false, ""}, {made, true, made}, {exists, true, exists}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct outcome out;
        run_with("FASTMUTEX_STATS", good[i].text, &out);
        assert_string_equal(out.err, "");
        assert_int_equal(out.stats, good[i].on);
        assert_string_equal(out.stats_file, good[i].file);
    }
    /* A bad file still leaves the live table on: the user asked for it. */
    const char *const bad[] = {"/nonexistent-dir/profile.txt", "/", work, "/proc/self/nonexistent/x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct outcome out;
        run_with("FASTMUTEX_STATS", bad[i], &out);
        expect_refused(&out, "FASTMUTEX_STATS", bad[i]);
        assert_contains(out.err, "(want on, off, or the name of a file this process can write); using on");
        assert_true(out.stats);
        assert_string_equal(out.stats_file, "");
    }
}

static void test_trace(void **state)
{
    (void)state;
    char made[128];
    snprintf(made, sizeof made, "%s/trace.json", work);
    const struct {
        const char *text;
        const char *file;
    } good[] = {{"off", ""}, {"", ""}, {made, made}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct outcome out;
        run_with("FASTMUTEX_TRACE", good[i].text, &out);
        assert_string_equal(out.err, "");
        assert_string_equal(out.trace_file, good[i].file);
    }
    const char *const bad[] = {"/nonexistent-dir/trace.json", "/", work};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct outcome out;
        run_with("FASTMUTEX_TRACE", bad[i], &out);
        expect_refused(&out, "FASTMUTEX_TRACE", bad[i]);
        assert_contains(out.err, "using off");
        assert_string_equal(out.trace_file, "");
    }
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--child") == 0)
        return report_settings(atoi(argv[2]));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadlock_ms_accepted),
        cmocka_unit_test(test_deadlock_ms_refused),
        cmocka_unit_test(test_diagnostics),
        cmocka_unit_test(test_on_deadlock),
        cmocka_unit_test(test_parse_number),
        cmocka_unit_test(test_verify),
        cmocka_unit_test_setup_teardown(test_stats, make_work, remove_work),
        cmocka_unit_test_setup_teardown(test_trace, make_work, remove_work),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
