/* What /proc tells about a process and its threads, and reading a process's
 * memory: the figures `fmx` shows beside the registry's records. */
#ifndef FMX_PROCINFO_H
#define FMX_PROCINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A process or thread name for display, sanitized as fmx_display_string()
 * does: a comm (at most 15 bytes), or the long name of a thread that the
 * registry gives (at most FMX_THREAD_NAME_LEN, 64 bytes). */
typedef char fmx_comm[64 + 1];

/* Which figures of a struct fmx_thread_info are known: a live thread's
 * all are; a core holds CPU times but no state and no context switches. */
enum {
    FMX_KNOWN_STATE = 1u << 0,
    FMX_KNOWN_SWITCHES = 1u << 1,
    FMX_KNOWN_TIMES = 1u << 2,
    FMX_KNOWN_ALL = FMX_KNOWN_STATE | FMX_KNOWN_SWITCHES | FMX_KNOWN_TIMES,
};

/* One thread's figures, from /proc/PID/task/TID/{stat,status,comm}, or
 * from a core. */
struct fmx_thread_info {
    unsigned known;                   /* FMX_KNOWN_* bits */
    char state;                       /* R, S, D, T, Z, ... as in stat */
    unsigned long long context_switches; /* voluntary + involuntary */
    double user_seconds;
    double kernel_seconds;
    pid_t tracer_pid;                 /* the process ptrace-attached to it, 0 none */
    fmx_comm name;
};

/* Fills *info for thread `tid` of process `pid`.  Returns 0, ENOENT when
 * the process has no such thread (any more), or another errno value. */
int fmx_thread_info(pid_t pid, pid_t tid, struct fmx_thread_info *info);

/* Copies the name of thread `tid` of process `pid` into *name and returns
 * true, or makes it "?" and returns false when there is no such thread. */
bool fmx_thread_name(pid_t pid, pid_t tid, fmx_comm *name);

/* Copies the name of process `pid` into *name ("?" when it has gone). */
void fmx_process_name(pid_t pid, fmx_comm *name);

/* A word for a thread state letter ("sleeping" for S), for humans. */
const char *fmx_state_word(char state);

/* Finds the mapping of process `pid` whose path is exactly `path` or
 * `path` followed by " (deleted)", and returns its [start, end) in
 * *start, *end.  Returns 0, ENOENT when there is none, or an errno value. */
int fmx_find_mapping(pid_t pid, const char *path, uint64_t *start, uint64_t *end);

/* Copies len bytes at `addr` in process `pid` into buf with
 * process_vm_readv.  Returns 0, or an errno value: EFAULT when the address
 * is not mapped there, EPERM when we may not read that process, ESRCH when
 * it has gone. */
int fmx_read_memory(pid_t pid, uint64_t addr, void *buf, size_t len);

#endif /* FMX_PROCINFO_H */
