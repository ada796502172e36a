/* The contention profile's table, as other processes read it: one memory
 * region per process that records a profile (FASTMUTEX_STATS=on or
 * =FILE), a memfd named "fastmutex-stats", made only then.  `fmx stat`
 * reads it through /proc/PID/fd, and in a core dump, as it reads the
 * waiter registry (registry.h).
 *
 * The layout is fixed, versioned and made of fixed-width fields: a header,
 * then `rows` rows.  Rows [0, rows - 1) are an open-addressing table keyed
 * by (mutex, site), a row with mutex 0 being free; the last row counts the
 * pairs that found no room.  The library changes a row only under its
 * stats lock, bumping `seq` to odd before and to even after (a seqlock),
 * so that a reader outside can retry until a row holds still.
 *
 * Readers outside the process treat all of it as untrusted: torn,
 * truncated, garbage or hostile.  The library never reads a size or an
 * offset back from the region; it compares the keys it finds there and
 * adds to the counters, nothing else. */
#ifndef FASTMUTEX_STATS_TABLE_H
#define FASTMUTEX_STATS_TABLE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define FMX_STATS_NAME "fastmutex-stats"
#define FMX_STATS_MAGIC 0x54534d46u /* "FMST" */
#define FMX_STATS_VERSION 1u
#define FMX_STATS_SLOTS 4096u /* a power of two; filled to half at most */
#define FMX_STATS_ROWS (FMX_STATS_SLOTS + 1u) /* the slots, then the overflow row */

/* One (mutex, call site) pair; times in ns of CLOCK_MONOTONIC. */
struct fmx_stats_row {
    _Atomic uint32_t seq; /* odd while the row changes */
    uint32_t pad;
    uint64_t mutex;        /* the fast_mutex_t; 0: a free slot (or the overflow row) */
    uint64_t outer;        /* the FAST_MUTEX whose Event.Lock `mutex` is, the address
                            * its user knows; 0 for a fast_mutex_t */
    uint64_t site;         /* return address into the caller of acquire */
    uint64_t acquisitions; /* every acquire, try and timed acquire that took it */
    uint64_t contended;    /* of those, the ones that had to wait */
    uint64_t wait_total_ns, wait_max_ns;
    uint64_t hold_total_ns, hold_max_ns;
};

struct fmx_stats_header {
    uint32_t magic;       /* FMX_STATS_MAGIC */
    uint32_t version;     /* FMX_STATS_VERSION */
    uint32_t header_size; /* sizeof(struct fmx_stats_header) */
    uint32_t row_size;    /* sizeof(struct fmx_stats_row) */
    uint32_t rows;        /* FMX_STATS_ROWS */
    int32_t pid;          /* the process that made it */
    uint64_t rows_offset; /* from the start of the region */
};

#define FMX_STATS_SIZE (sizeof(struct fmx_stats_header) + FMX_STATS_ROWS * sizeof(struct fmx_stats_row))

_Static_assert(sizeof(struct fmx_stats_row) == 80 && offsetof(struct fmx_stats_row, outer) == 16,
               "row layout is read by other processes");
_Static_assert(sizeof(struct fmx_stats_header) == 32, "header layout is read by other processes");

#endif /* FASTMUTEX_STATS_TABLE_H */
