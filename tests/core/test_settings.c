/* The FASTMUTEX_* settings (issue 16, D14): one strict parser, one line on
 * stderr for a bad value, and the documented fallback.  Each case sets the
 * variables in a child process (settings are read once a process), reads
 * what the library made of them through its internal accessors (the test
 * links the static library), and returns what it wrote on stderr. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <sys/wait.h>

#include "core_test.h"
#include "internal.h"

/* What a child found: the settings in effect and its stderr. */
struct outcome {
    uint64_t deadlock_ms; /* 0: the check is off */
    int on_deadlock;
    bool diagnostics;
    char err[1024];
};

/* In a child: sets `name` to `value` and reports the settings through a
 * pipe, stderr through another. */
static void run_with(const char *name, const char *value, struct outcome *out)
{
    int data[2], err[2];
    assert_int_equal(pipe(data), 0);
    assert_int_equal(pipe(err), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv(name, value, 1);
        dup2(err[1], STDERR_FILENO);
        struct outcome got = {
            .diagnostics = fmx_diagnostics(),
            .deadlock_ms = fmx_deadlock_after_ns() / 1000000u,
            .on_deadlock = (int)fmx_on_deadlock(),
        };
        _exit(write(data[1], &got, sizeof got) == (ssize_t)sizeof got ? 0 : 1);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadlock_ms_accepted),
        cmocka_unit_test(test_deadlock_ms_refused),
        cmocka_unit_test(test_diagnostics),
        cmocka_unit_test(test_on_deadlock),
        cmocka_unit_test(test_parse_number),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
