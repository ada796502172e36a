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

/* A process being looked at. */
struct fmx_target {
    pid_t pid;
    fmx_comm name;
    struct fmx_registry_reader registry;
    struct fmx_symbolizer *symbols; /* NULL when its modules cannot be read, */
    char symbols_why[256];          /* and why */
    uint64_t now_ns;                /* CLOCK_MONOTONIC when it was opened */
};

/* Parses a process or thread id: decimal digits only, within pid_t. */
bool fmx_parse_id(const char *text, pid_t *id);

/* Opens process `pid`: its registry, and its modules for symbols.  Returns
 * 0, or an errno value as fmx_registry_open() does after printing one line
 * "fmx: ..." to stderr (unless `quiet`). */
int fmx_target_open(pid_t pid, struct fmx_target *target, bool quiet);
void fmx_target_close(struct fmx_target *target);

/* The thread that holds the mutex a waiter waits for. */
struct fmx_owner {
    pid_t tid;      /* 0: the mutex was free when looked at */
    fmx_comm name;  /* "?" when no thread of the process has that id */
    bool from_lock; /* read from the lock word now, not the record's owner_seen */
};

/* Finds the owner from the live lock word when the process lets us read
 * its memory, or else from what the waiter saw last (owner_seen). */
void fmx_find_owner(const struct fmx_target *target, const struct fmx_waiter *waiter,
                    struct fmx_owner *owner);

/* The address a user knows the waited-for mutex by: the FAST_MUTEX for a
 * waiter of one, the fast_mutex_t otherwise. */
uint64_t fmx_waiter_mutex_address(const struct fmx_waiter *waiter);

/* The name of the mutex a waiter waits for ("" when it has none); a
 * FAST_MUTEX's name may be given to it or to the fast_mutex_t inside it. */
void fmx_waiter_mutex_name(struct fmx_target *target, const struct fmx_waiter *waiter,
                           fmx_display_name *name);

/* Formats "0x55d0c0a0 (FastMutex)", or the bare address when unnamed. */
void fmx_format_mutex(uint64_t address, const char *name, char *buf, size_t size);

/* Formats "4243 (FileCreation)", or "none" when tid is 0. */
void fmx_format_owner(const struct fmx_owner *owner, char *buf, size_t size);

/* Nanoseconds a wait that began at start_ns has lasted at now_ns; 0 when
 * start_ns is in the future (a garbage record). */
uint64_t fmx_waited_ns(uint64_t start_ns, uint64_t now_ns);

/* Formats a duration as "36s.515" (seconds, then milliseconds). */
void fmx_format_waited(uint64_t ns, char *buf, size_t size);

/* The views over a target already opened (fmx waiters and fmx mutex call
 * them after fmx_target_open(); the views fuzzer over an image): print to
 * stdout and return 0, or an errno value / exit status. */
int fmx_waiters_show(struct fmx_target *target, bool json);
int fmx_mutex_show(struct fmx_target *target, uint64_t address, bool wdm);

#endif /* FMX_INSPECT_H */
