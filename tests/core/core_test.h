/* Helpers shared by the core tests: clocks, polling with generous limits,
 * and a way to tell that a thread is asleep in the kernel waiting for a lock.
 *
 * The tests run on a small, shared, noisy machine, so nothing here assumes a
 * thread gets scheduled within some number of milliseconds: every wait polls
 * a condition until it holds or a limit of many seconds passes. */
#ifndef FASTMUTEX_CORE_TEST_H
#define FASTMUTEX_CORE_TEST_H

#include <ctype.h>
#include <signal.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long a test waits for something that should happen "soon" before it
 * calls it a failure.  Far beyond any scheduling delay, far below the ctest
 * TIMEOUT, so that a stuck library is reported by the test, not killed. */
#define CORE_POLL_LIMIT_MS 20000

static inline uint64_t core_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* CLOCK_REALTIME minus CLOCK_MONOTONIC, in ns. */
static inline int64_t core_realtime_offset_ns(void)
{
    struct timespec real, mono;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &real);
    return ((int64_t)real.tv_sec - (int64_t)mono.tv_sec) * 1000000000 +
           ((int64_t)real.tv_nsec - (int64_t)mono.tv_nsec);
}

/* An absolute CLOCK_MONOTONIC time `ms` milliseconds from now; a negative
 * `ms` gives a time in the past. */
static inline struct timespec core_deadline_ms(long ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    long long ns = (long long)t.tv_nsec + (long long)ms * 1000000LL;
    long long sec = (long long)t.tv_sec + ns / 1000000000LL;
    ns %= 1000000000LL;
    if (ns < 0) {
        ns += 1000000000LL;
        sec -= 1;
    }
    t.tv_sec = (time_t)sec;
    t.tv_nsec = (long)ns;
    return t;
}

static inline uint64_t core_timespec_ns(const struct timespec *t)
{
    return (uint64_t)t->tv_sec * 1000000000u + (uint64_t)t->tv_nsec;
}

static inline void core_sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

/* Polls `cond` every millisecond until it holds or `limit_ms` pass, and
 * stores in the bool `ok` whether it held. */
#define CORE_POLL_UNTIL(ok, cond, limit_ms)                                                   \
    do {                                                                                   \
        uint64_t core_poll_end_ = core_now_ns() + (uint64_t)(limit_ms) * 1000000u;         \
        while (!((ok) = (cond)) && core_now_ns() < core_poll_end_)                         \
            core_sleep_ms(1);                                                              \
    } while (0)

/* cmocka catches crash signals to report them; a forked child must not
 * inherit that, so that the parent sees the crash as the signal it is. */
static inline void core_default_crash_signals(void)
{
    const int crashes[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS};
    for (size_t i = 0; i < sizeof crashes / sizeof crashes[0]; i++)
        signal(crashes[i], SIG_DFL);
}

/* Forks a child for a test whose child may abort or crash on purpose:
 * output is flushed first (else the child would print it again), and the
 * child leaves no core file and dies of a crash signal as it is (see
 * core_default_crash_signals).  With `stderr_fd`, the child's standard
 * error goes into a pipe whose reading end the parent gets there, for
 * core_collect_child.  Returns 0 in the child, its pid in the parent. */
static inline pid_t core_fork_child(int *stderr_fd)
{
    int fds[2] = {-1, -1};
    if (stderr_fd != NULL && pipe(fds) != 0) {
        perror("core_fork_child: pipe");
        abort();
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("core_fork_child: fork");
        abort();
    }
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        core_default_crash_signals();
        if (stderr_fd != NULL) {
            dup2(fds[1], STDERR_FILENO);
            close(fds[0]);
            close(fds[1]);
        }
        return 0;
    }
    if (stderr_fd != NULL) {
        close(fds[1]);
        *stderr_fd = fds[0];
    }
    return pid;
}

/* Waits for child `pid`; returns its wait status (-1 when waitpid fails). */
static inline int core_wait_child(pid_t pid)
{
    int status = -1;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
}

/* Reads what child `pid` writes to `fd` (from core_fork_child) until it
 * closes it, into `buf` as a string (the rest is cut), then waits for the
 * child; returns its wait status. */
static inline int core_collect_child(pid_t pid, int fd, char *buf, size_t size)
{
    /* Past the end of buf the rest is read and dropped, so that a child
     * that writes more is not left blocked on a full pipe. */
    char rest[512];
    size_t used = 0;
    for (;;) {
        bool room = used < size - 1;
        ssize_t n = read(fd, room ? buf + used : rest, room ? size - 1 - used : sizeof rest);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        used += room ? (size_t)n : 0;
    }
    buf[used] = '\0';
    close(fd);
    return core_wait_child(pid);
}

/* Reads a small /proc file into buf; returns false when it cannot. */
static inline bool core_read_small_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0)
        return false;
    buf[n] = '\0';
    return true;
}

/* True when thread `tid` of process `pid` is asleep in the kernel in a futex
 * wait: its state is 'S' and, where the kernel shows it, its wait channel
 * names a futex function.  A thread that is spinning (the library's mid
 * path) or has not yet reached the lock is 'R' and does not count. */
static inline bool core_thread_sleeps_on_futex(pid_t pid, pid_t tid)
{
    char path[96], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    if (!core_read_small_file(path, buf, sizeof buf))
        return false;
    /* The state follows the last ')', which closes the thread's name. */
    const char *paren = strrchr(buf, ')');
    if (paren == NULL || paren[1] != ' ' || paren[2] != 'S')
        return false;
    snprintf(path, sizeof path, "/proc/%d/task/%d/wchan", (int)pid, (int)tid);
    if (!core_read_small_file(path, buf, sizeof buf))
        return true; /* no wait channel on this kernel: 'S' must do */
    if (strcmp(buf, "0") == 0 || buf[0] == '\0')
        return true; /* hidden wait channel: 'S' must do */
    return strstr(buf, "futex") != NULL;
}

/* The same for a thread of this process. */
static inline bool core_thread_blocked(pid_t tid)
{
    return core_thread_sleeps_on_futex(getpid(), tid);
}

/* True when `text` contains the decimal number `n` as a whole number, not as
 * part of a longer one (so tid 12 is not found in "4123"). */
static inline bool core_contains_number(const char *text, long n)
{
    char digits[32];
    snprintf(digits, sizeof digits, "%ld", n);
    size_t len = strlen(digits);
    for (const char *p = strstr(text, digits); p != NULL; p = strstr(p + 1, digits)) {
        bool starts = p == text || !isdigit((unsigned char)p[-1]);
        bool ends = !isdigit((unsigned char)p[len]);
        if (starts && ends)
            return true;
    }
    return false;
}

/* True when `text` shows the address `p` in hex, whatever the spelling
 * (with or without 0x, zero-padded or not, any case). */
static inline bool core_contains_address(const char *text, const void *p)
{
    char hex[32];
    snprintf(hex, sizeof hex, "%lx", (unsigned long)(uintptr_t)p);
    return strcasestr(text, hex) != NULL;
}

/* cmocka has no substring assertion; this one prints both strings. */
#define assert_contains(haystack, needle)                                                     \
    do {                                                                                   \
        const char *core_h_ = (haystack), *core_n_ = (needle);                             \
        if (strstr(core_h_, core_n_) == NULL)                                              \
            fail_msg("expected to find \"%s\" in:\n%s", core_n_, core_h_);                 \
    } while (0)

#endif /* FASTMUTEX_CORE_TEST_H */
