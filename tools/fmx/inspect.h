/* What `fmx waiters`, `fmx thread` and `fmx mutex` share: a process opened
 * for inspection (its registry and its symbols), and the way a waiter, its
 * mutex, its owner and its wait are described. */
#ifndef FMX_INSPECT_H
#define FMX_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "procinfo.h"
#include "registry_reader.h"
#include "symbolize.h"

struct fmx_core;

/* A process being looked at: a live one through /proc, or one dumped in a
 * core file.  The views read it only through the fmx_target_* functions
 * below, which pick the backend. */
struct fmx_target {
    pid_t pid;
    fmx_comm name;
    struct fmx_registry_reader registry;
    struct fmx_symbolizer *symbols; /* NULL when its modules cannot be read, */
    char symbols_why[256];          /* and why */
    uint64_t now_ns;                /* CLOCK_MONOTONIC when it was opened, or of the dump */
    bool now_known;                 /* false: a core whose moment cannot be told */
    struct fmx_core *core;          /* NULL for a live process */
    const char *core_path;          /* as given, for messages */
};

/* Parses a process or thread id: decimal digits only, within pid_t. */
bool fmx_parse_id(const char *text, pid_t *id);

/* The options of the views that read a process or a core. */
struct fmx_view_options {
    const char *core, *exe;
    bool json, wdm;
};
enum { FMX_VIEW_JSON = 1u, FMX_VIEW_WDM = 2u };

/* Parses --core, --exe and --help, and --json and --wdm where `accept`
 * has them, for `command` ("fmx stat"); with stop_at_operand, options end
 * at the first operand.  Returns 0 (optind at the operands), -1 after
 * printing the usage, or 2 after one line on stderr. */
int fmx_view_options(int argc, char **argv, const char *command, const char *usage, unsigned accept,
                     bool stop_at_operand, struct fmx_view_options *out);

/* Opens process `pid`: its registry, and its modules for symbols.  Returns
 * 0, or an errno value as fmx_registry_open() does after printing one line
 * "fmx: ..." to stderr (unless `quiet`). */
int fmx_target_open(pid_t pid, struct fmx_target *target, bool quiet);

/* Opens the core file at `core_path`, its registry, and its modules for
 * symbols (the executable from the core's NT_FILE notes, or `exe` when
 * not NULL).  Returns 0, or an errno value after printing one line.  When
 * the executable is missing or is not the one that was dumped, prints one
 * line saying so and sets *exe_trouble: the views then show what they can
 * without its symbols, and fmx exits non-zero. */
int fmx_target_open_core(const char *core_path, const char *exe, struct fmx_target *target,
                         bool *exe_trouble);
void fmx_target_close(struct fmx_target *target);

/* The same for a view that needs no registry (fmx stat): a process or core
 * without one is opened all the same, with no records and no names.  The
 * live one cannot fail: what cannot be read is left out. */
void fmx_target_open_any(pid_t pid, struct fmx_target *target);
int fmx_target_open_core_any(const char *core_path, const char *exe, struct fmx_target *target,
                             bool *exe_trouble);

/* Copies len bytes at `addr` in the target's memory.  Returns 0 or an
 * errno value (EFAULT: not mapped there; ESRCH: the process has gone). */
int fmx_target_read(const struct fmx_target *target, uint64_t addr, void *buf, size_t len);

/* Fills *info for thread `tid`; returns 0, ENOENT when the target has no
 * such thread, or another errno value. */
int fmx_target_thread_info(struct fmx_target *target, pid_t tid, struct fmx_thread_info *info);

/* Copies the name of thread `tid` into *name ("?" when it is not known:
 * a core holds no thread names, only the registry's records do) and
 * returns whether the target has that thread. */
bool fmx_target_thread_name(struct fmx_target *target, pid_t tid, fmx_comm *name);

/* Where the registry is mapped in the target, [*start, *end). */
bool fmx_target_registry_span(const struct fmx_target *target, uint64_t *start, uint64_t *end);

/* "Thread 12 of process 34" reads "process 34" live, "core of process 34"
 * for a core: the words that name the target in titles. */
const char *fmx_target_kind(const struct fmx_target *target);

/* The thread that holds a mutex. */
struct fmx_owner {
    pid_t tid;      /* 0: the mutex was free when looked at */
    fmx_comm name;  /* "?" when not known */
    bool exited;    /* no thread of the process has that id: it exited holding the mutex */
    bool elsewhere; /* a process-shared mutex whose owner is not a thread of this process */
    bool from_lock; /* read from the lock word now, not the record's owner_seen */
};

/* Finds the owner from the lock word when the target's memory can be read,
 * or else from what the waiter saw last (owner_seen). */
void fmx_find_owner(struct fmx_target *target, const struct fmx_waiter *waiter,
                    struct fmx_owner *owner);

/* Names owner->tid, the owner of a mutex whose queue word is `queue`
 * (FAST_MUTEX_SHARED_QUEUE for a process-shared one), and tells whether it
 * has exited. */
void fmx_name_owner(struct fmx_target *target, uint32_t queue, struct fmx_owner *owner);

/* The address a user knows the waited-for mutex by: the FAST_MUTEX for a
 * waiter of one, the fast_mutex_t otherwise. */
uint64_t fmx_waiter_mutex_address(const struct fmx_waiter *waiter);

/* The name of the mutex a waiter waits for ("" when it has none); a
 * FAST_MUTEX's name may be given to it or to the fast_mutex_t inside it. */
void fmx_waiter_mutex_name(struct fmx_target *target, const struct fmx_waiter *waiter,
                           fmx_display_name *name);

/* Formats "0x55d0c0a0 (DiagMutex) <diag_mutex>": the address, the name
 * given to the mutex, and the variable it is (a global or static; not
 * repeated when it equals the name), each when there is one ("" none). */
void fmx_format_mutex(uint64_t address, const char *name, const char *symbol, char *buf, size_t size);

/* The same for a mutex of the target, looking its variable up. */
void fmx_format_target_mutex(struct fmx_target *target, uint64_t address, const char *name, char *buf,
                             size_t size);

/* Formats "4243 (FileCreation)", "4243 (exited)", or "none" when tid is 0. */
void fmx_format_owner(const struct fmx_owner *owner, char *buf, size_t size);

/* Nanoseconds a wait that began at start_ns has lasted at now_ns; 0 when
 * start_ns is in the future (a garbage record). */
uint64_t fmx_waited_ns(uint64_t start_ns, uint64_t now_ns);

/* Formats a duration as "36s.515" (seconds, then milliseconds). */
void fmx_format_waited(uint64_t ns, char *buf, size_t size);

/* How long the wait that began at start_ns had lasted when the target was
 * looked at, formatted; "-" when a core's moment is not known. */
void fmx_format_target_waited(const struct fmx_target *target, uint64_t start_ns, char *buf,
                              size_t size);

/* The views over a target already opened (fmx waiters and fmx mutex call
 * them after opening it; the views fuzzer over an image): print to stdout
 * and return 0, or an errno value / exit status. */
int fmx_waiters_show(struct fmx_target *target, bool json);
int fmx_mutex_show(struct fmx_target *target, uint64_t address, bool wdm);

#endif /* FMX_INSPECT_H */
