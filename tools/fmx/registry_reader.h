/* Reads the waiter registry of another process (layout in registry.h): finds
 * it through /proc/PID/fd, copies it, checks it, and hands out the records of
 * waiting threads and the names of mutexes.
 *
 * The registry is written by another process and is untrusted input: it may
 * be torn, truncated, garbage or hostile.  Nothing here trusts a size, an
 * offset, a count or a string from it.  The checks live in one pure function,
 * fmx_registry_parse(), which works on bytes in memory; the fuzzer feeds it
 * arbitrary bytes through fmx_registry_from_image(). */
#ifndef FMX_REGISTRY_READER_H
#define FMX_REGISTRY_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "registry.h"

/* A registry image larger than this is refused rather than allocated: the
 * real one is FMX_REGISTRY_SIZE, and a garbage size must not make fmx
 * allocate gigabytes. */
#define FMX_READER_MAX_IMAGE (16u * 1024u * 1024u)

/* A name, as shown: at most FMX_NAME_LEN bytes, NUL-terminated, with every
 * byte that is not printable ASCII replaced by '?'. */
typedef char fmx_display_name[FMX_NAME_LEN + 1];

/* The validated shape of a registry image. */
struct fmx_registry_layout {
    uint32_t records;      /* records to look at: threads_used */
    uint32_t names;        /* entries in the names table */
    uint64_t records_offset;
    uint64_t names_offset;
    int32_t pid;           /* the process that made it, as it says */
    int64_t realtime_offset_ns; /* as written; any value is possible */
    uint64_t stamp_mono_ns;     /* 0 when the library never stamped it */
};

/* A registry that has been found and checked.  `image` is our own copy of
 * the bytes, taken when the registry was read; when `fd` is open, records
 * are re-read from it under the seqlock before they are believed. */
struct fmx_registry_reader {
    unsigned char *image;
    size_t size;
    struct fmx_registry_layout layout;
    int fd; /* the registry file, -1 when reading an image only */
};

/* One thread's record, copied out: a waiting thread's, or (state not
 * FMX_RECORD_WAITING) the record of a thread that is not waiting now. */
struct fmx_waiter {
    uint32_t slot;
    uint32_t state;         /* enum fmx_record_state */
    int32_t tid;
    uint32_t kind;          /* enum fmx_mutex_kind */
    int32_t owner_seen;
    uint64_t mutex;         /* the fast_mutex_t */
    uint64_t outer;         /* the FAST_MUTEX, for FMX_KIND_WDM */
    uint64_t wait_start_ns; /* CLOCK_MONOTONIC */
    uint64_t site;          /* return address into the caller of acquire */
    uint64_t acquired_mutex;
    uint64_t acquired_site;
    bool deadlock;
    char thread_name[FMX_THREAD_NAME_LEN + 1]; /* sanitized like a name */
    /* The mutexes the thread holds, published while FASTMUTEX_VERIFY=order
     * is on: held_count as the record claims it (any value), of which the
     * first held_listed (at most FMX_RECORD_HELD) are in held[]; an
     * entry's outer as fmx_outer_of() lets it stand. */
    uint32_t held_count;
    uint32_t held_listed;
    struct fmx_held held[FMX_RECORD_HELD];
};

/* What reading one record gave. */
enum fmx_record_result {
    FMX_RECORD_READ_WAITING,  /* *out holds a waiting thread */
    FMX_RECORD_READ_NOT_WAITING, /* *out holds a free or idle slot */
    FMX_RECORD_READ_CHANGING, /* it kept changing while we read it */
};

/* The FAST_MUTEX around the fast_mutex_t at `mutex` that a held entry or
 * a profile row claims (`outer`), if the claim can be true: `mutex` lies at
 * that FAST_MUTEX's Event.Lock.  0 otherwise, and when it claims none: the
 * mutex is then shown as the fast_mutex_t it is. */
uint64_t fmx_outer_of(uint64_t mutex, uint64_t outer);

/* Copies a string of at most `len` bytes, which need not be terminated,
 * into out[len + 1] for display: it stops at the first NUL and replaces
 * every byte that is not printable ASCII by '?', so that text another
 * process wrote cannot smuggle control sequences to a terminal. */
void fmx_display_string(char *out, const void *field, size_t len);

/* Checks a registry image of `size` bytes.  Returns 0 and fills *layout, or
 * returns -1 with a one-line reason (no newline) in why[whylen].  Reads only
 * within [image, image + size). */
int fmx_registry_parse(const unsigned char *image, size_t size, struct fmx_registry_layout *layout,
                       char *why, size_t whylen);

/* Finds the registry that process `pid` made.  Returns 0 and fills *reader;
 * otherwise returns an errno value and puts a one-line message for the user
 * in why[whylen]:
 *   ESRCH   no such process
 *   EACCES  the process belongs to another user (or forbids reading it)
 *   ENOENT  the process has no fastmutex registry
 *   EPROTO  the registry is corrupt (why says how)
 *   other   a system error, named in why. */
int fmx_registry_open(pid_t pid, struct fmx_registry_reader *reader, char *why, size_t whylen);

/* Makes a reader over a copy of `size` bytes at `data`, with no file behind
 * it, for tests and the fuzzer.  Returns as fmx_registry_open() does (EPROTO
 * when the image is not a valid registry, ENOMEM). */
int fmx_registry_from_image(const void *data, size_t size, struct fmx_registry_reader *reader,
                            char *why, size_t whylen);

void fmx_registry_close(struct fmx_registry_reader *reader);

/* Reading the memfds another process made (the registry here, and the
 * contention profile's table, stats_reader.h), one way for both. */

/* What fmx_memfd_find() does with each candidate, opened read-only: keep
 * it (return 0; the descriptor is then the callback's), pass it over
 * (ENOENT: a region another process made, inherited through fork), refuse
 * it as corrupt (EPROTO, a one-line reason in why), or stop the search
 * (another errno value, reason in why).  The finder closes what is not
 * kept. */
typedef int (*fmx_memfd_accept)(int fd, void *ctx, char *why, size_t whylen);

/* Hands every memfd named `name` that process `pid` has open to accept().
 * Returns 0 when one was kept; ESRCH (no such process) or EACCES (not
 * ours, not dumpable) with a line in why; EPROTO with "process N: reason"
 * when only corrupt ones were found; ENOENT when there was none (why is
 * not set: the caller says what is missing); another errno value from
 * accept(), with "process N: reason". */
int fmx_memfd_find(pid_t pid, const char *name, fmx_memfd_accept accept, void *ctx, char *why, size_t whylen);

/* Copies the file at fd, at most `max` bytes (more: EPROTO, "WHAT is N
 * bytes, more than a WHAT can be"), into a malloc'd *image of *size bytes,
 * less when it shrank meanwhile.  Returns 0 or an errno value with why. */
int fmx_read_image(int fd, size_t max, const char *what, unsigned char **image, size_t *size, char *why,
                   size_t whylen);

/* Reads exactly len bytes at off of fd; false when the file has become
 * shorter or cannot be read. */
bool fmx_read_exact(int fd, uint64_t off, void *buf, size_t len);

/* Whether `claimed`, the process id a region says it was made by, is
 * process `pid`: as we see it, or as it sees itself in its own pid
 * namespace (a process in a container writes its own view). */
bool fmx_pid_is(pid_t pid, int32_t claimed);

/* Reads record `slot` (< reader->layout.records; others read as not waiting).  With a file behind the
 * reader, the record is read again until two reads agree and its seq is
 * even, a bounded number of times, after which it is reported changing. */
enum fmx_record_result fmx_registry_record(struct fmx_registry_reader *reader, uint32_t slot,
                                           struct fmx_waiter *out);

/* Copies the name given to the mutex at `mutex` into *name and returns
 * true, or returns false (and makes *name "") when it has none. */
bool fmx_registry_name(struct fmx_registry_reader *reader, uint64_t mutex,
                       fmx_display_name *name);

#endif /* FMX_REGISTRY_READER_H */
