/* The futex system call, wrapped once. */
#include <errno.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

bool fmx_futex_wait(_Atomic uint32_t *word, uint32_t expected, const struct timespec *deadline,
                    bool shared)
{
    /* FUTEX_WAIT_BITSET takes an absolute timeout, on CLOCK_MONOTONIC unless
     * FUTEX_CLOCK_REALTIME is given, which is the clock the API promises. */
    int op = FUTEX_WAIT_BITSET | (shared ? 0 : FUTEX_PRIVATE_FLAG);
    long r = syscall(SYS_futex, word, op, expected, deadline, NULL, FUTEX_BITSET_MATCH_ANY);
    if (r == 0)
        return true;
    switch (errno) {
    case ETIMEDOUT:
        return false;
    case EAGAIN: /* *word was no longer `expected` */
    case EINTR:
        return true;
    default:
        /* EFAULT or EINVAL: the word is not in valid memory, a bug of ours
         * or a mutex used after its memory was freed. */
        abort();
    }
}

void fmx_futex_wake(_Atomic uint32_t *word, int count, bool shared)
{
    int op = FUTEX_WAKE | (shared ? 0 : FUTEX_PRIVATE_FLAG);
    (void)syscall(SYS_futex, word, op, count, NULL, NULL, 0);
}

bool fmx_timespec_valid(const struct timespec *ts)
{
    return ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000;
}

uint64_t fmx_timespec_ns(const struct timespec *ts)
{
    if (ts->tv_sec < 0)
        return 0;
    /* Past UINT64_MAX ns (about 584 years): as far as we can count. */
    if ((uint64_t)ts->tv_sec > (UINT64_MAX - (uint64_t)ts->tv_nsec) / 1000000000u)
        return UINT64_MAX;
    return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

struct timespec fmx_ns_timespec(uint64_t ns)
{
    return (struct timespec){.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
}

uint64_t fmx_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return fmx_timespec_ns(&now);
}
