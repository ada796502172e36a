/* The waiter registry: one memory region per process, a memfd named
 * "fastmutex-registry", holding a record for every thread that has had to
 * wait for a fastmutex (or, with FASTMUTEX_VERIFY=order, has taken one), and
 * the names given to mutexes.
 *
 * The same records serve four readers: the waiter queue of each mutex (the
 * `next`/`prev` links), the deadlock check, `fmx` reading the region through
 * /proc/PID/fd from another process, and a debugger reading a core dump.  So
 * the layout is fixed, versioned, and made only of fixed-width fields; links
 * are slot numbers, not pointers, so that another process can follow them.
 *
 * Readers outside the process must treat everything here as untrusted: the
 * region may be torn, truncated or garbage.  Writers bump a record's `seq`
 * to odd before changing it and to even after (a seqlock), so a reader can
 * retry until it sees an even, unchanged `seq`. */
#ifndef FASTMUTEX_REGISTRY_H
#define FASTMUTEX_REGISTRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FMX_REGISTRY_NAME "fastmutex-registry"
#define FMX_REGISTRY_MAGIC 0x58544d46u /* "FMTX" */
#define FMX_REGISTRY_VERSION 4u
#define FMX_REGISTRY_THREADS 4096u /* records; a thread beyond that waits unrecorded */
#define FMX_REGISTRY_NAMES 1024u   /* named mutexes */
#define FMX_NAME_LEN 32u
#define FMX_THREAD_NAME_LEN 64u /* a thread's long name (version 4; the comm is 16) */
#define FMX_RECORD_HELD 16u     /* held mutexes a record lists (version 4) */

/* A record's state. */
enum fmx_record_state {
    FMX_RECORD_FREE = 0,    /* no thread owns this slot */
    FMX_RECORD_IDLE = 1,    /* owned by a live thread that is not waiting */
    FMX_RECORD_WAITING = 2, /* its thread waits for `mutex` */
};

/* What kind of mutex a waiting record waits on. */
enum fmx_mutex_kind {
    FMX_KIND_FAST_MUTEX = 0, /* a fast_mutex_t */
    FMX_KIND_WDM = 1,        /* a FAST_MUTEX; `outer` is its address */
};

/* Where a FAST_MUTEX's fast_mutex_t lies in it (Event.Lock; wdm.c asserts
 * it): a reader checks an `outer` against the `mutex` it comes with. */
#define FMX_WDM_LOCK_OFFSET 0x18u

/* Values of `wake`, the word a waiting thread sleeps on. */
enum fmx_wake {
    FMX_WAKE_NONE = 0,    /* keep sleeping */
    FMX_WAKE_RETRY = 1,   /* taken off the queue: try for the lock again */
    FMX_WAKE_HANDOFF = 2, /* taken off the queue and handed the lock */
};

/* A mutex a thread holds, as the lock-order verifier saw it taken. */
struct fmx_held {
    uint64_t mutex;    /* address of the fast_mutex_t */
    uint64_t outer;    /* address of the FAST_MUTEX whose Event.Lock `mutex` is,
                        * the address its user knows; 0 for a fast_mutex_t */
    uint64_t site;     /* return address into the caller of acquire */
    uint64_t since_ns; /* CLOCK_MONOTONIC when it was taken */
};

struct fmx_record {
    _Atomic uint32_t seq;   /* seqlock for outside readers, see above */
    _Atomic uint32_t state; /* enum fmx_record_state */
    _Atomic uint32_t wake;  /* enum fmx_wake; futex word of this thread */
    int32_t tid;            /* kernel thread id of the slot's thread */
    uint32_t next, prev;    /* queue links: slot + 1 of neighbours, 0 none */
    uint32_t kind;          /* enum fmx_mutex_kind */
    int32_t owner_seen;     /* mutex owner when last looked at, 0 unknown */
    uint64_t mutex;         /* address of the fast_mutex_t waited on */
    uint64_t outer;         /* address of the FAST_MUTEX, for FMX_KIND_WDM */
    uint64_t wait_start_ns; /* CLOCK_MONOTONIC when this wait began */
    uint64_t site;          /* return address into the caller of acquire */
    uint64_t acquired_mutex; /* the last mutex this thread got after waiting, */
    uint64_t acquired_site;  /* and where: what a recursive-acquire report can name */
    _Atomic uint32_t deadlock; /* 1 once the deadlock check found a cycle here; any
                                * thread of the cycle may set it, so it is atomic and
                                * outside the seqlock */
    _Atomic uint32_t head_since_us; /* CLOCK_MONOTONIC in us, low 32 bits, when this
                                     * waiter became first in line, 0 while it has
                                     * not; written under the queue lock by whoever
                                     * put it there */
    char thread_name[FMX_THREAD_NAME_LEN]; /* the thread's name when it first waited,
                                            * refreshed at each deadlock check: its
                                            * long name (fast_mutex_set_thread_name()) while its
                                            * comm is still that name's first 15 bytes,
                                            * else its comm; NUL-terminated (version 4:
                                            * was the 16-byte comm) */
    _Atomic uint32_t cpu; /* 1 + the CPU this thread ran on when it last waited
                           * (first wait, or a spin that lasted), 0 unknown; written
                           * by the thread itself outside the seqlock: a hint for
                           * spinners (version 2) */
    /* The mutexes the thread holds, while FASTMUTEX_VERIFY=order is on
     * (version 4); written by the thread itself under the seqlock.
     * held_count is how many it holds, which may be more than the
     * FMX_RECORD_HELD listed in held[0 .. min(held_count, FMX_RECORD_HELD)),
     * oldest first.  0 while the verifier is off. */
    uint32_t held_count;
    struct fmx_held held[FMX_RECORD_HELD];
};

struct fmx_name {
    _Atomic uint64_t mutex; /* address of the named fast_mutex_t, 0 free slot */
    char name[FMX_NAME_LEN];
};

struct fmx_registry {
    uint32_t magic;           /* FMX_REGISTRY_MAGIC */
    uint32_t version;         /* FMX_REGISTRY_VERSION */
    uint32_t header_size;     /* sizeof(struct fmx_registry) */
    uint32_t record_size;     /* sizeof(struct fmx_record) */
    uint32_t name_size;       /* sizeof(struct fmx_name) */
    uint32_t thread_capacity; /* FMX_REGISTRY_THREADS */
    uint32_t name_capacity;   /* FMX_REGISTRY_NAMES */
    _Atomic uint32_t threads_used; /* slots [0, threads_used) have been handed out */
    int32_t pid;              /* the process that made it */
    uint32_t pad;
    uint64_t records_offset;  /* from the start of the region */
    uint64_t names_offset;
    /* A core dump has no "now"; these two let its reader find the moment
     * of the dump, to tell how long each waiter had waited (version 3).
     * A reader takes that moment, in CLOCK_MONOTONIC, as stamp_mono_ns
     * when it is not 0, else as the core file's modification time (a
     * CLOCK_REALTIME) minus realtime_offset_ns. */
    int64_t realtime_offset_ns; /* CLOCK_REALTIME minus CLOCK_MONOTONIC in ns, written
                                 * when the registry is made and again with each
                                 * stamp, since NTP and suspend move it */
    _Atomic uint64_t stamp_mono_ns; /* CLOCK_MONOTONIC in ns, written just before the
                                     * library aborts the process (a misuse report, or
                                     * FASTMUTEX_ON_DEADLOCK=abort); 0 until then */
};

_Static_assert(offsetof(struct fmx_registry, realtime_offset_ns) == 56 &&
                   offsetof(struct fmx_registry, stamp_mono_ns) == 64,
               "the core-time fields are read by other processes");

#define FMX_REGISTRY_SIZE                                                                    \
    (sizeof(struct fmx_registry) + FMX_REGISTRY_THREADS * sizeof(struct fmx_record) +       \
     FMX_REGISTRY_NAMES * sizeof(struct fmx_name))

_Static_assert(sizeof(struct fmx_held) == 32 && offsetof(struct fmx_held, outer) == 8,
               "held entry layout is read by other processes");
_Static_assert(sizeof(struct fmx_record) == 672 &&
                   offsetof(struct fmx_record, held) == 160, "record layout is read by other processes");
_Static_assert(sizeof(struct fmx_name) == 40, "name layout is read by other processes");
_Static_assert(sizeof(struct fmx_registry) == 72, "header layout is read by other processes");

/* Whether `target`, what the link /proc/PID/fd/N reads, names a memfd made
 * as `name` (this registry, or the profile's table): "/memfd:NAME", then
 * nothing or " (deleted)".  For the readers in another process. */
static inline bool fmx_memfd_link_names(const char *target, const char *name)
{
    static const char prefix[] = "/memfd:";
    size_t len = strlen(name);
    if (strncmp(target, prefix, sizeof prefix - 1) != 0 ||
        strncmp(target + sizeof prefix - 1, name, len) != 0)
        return false;
    const char *rest = target + sizeof prefix - 1 + len;
    return rest[0] == '\0' || strcmp(rest, " (deleted)") == 0;
}

#endif /* FASTMUTEX_REGISTRY_H */
