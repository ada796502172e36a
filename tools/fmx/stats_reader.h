/* Reads the contention profile's table of another process (layout in
 * stats_table.h): finds it through /proc/PID/fd as the registry is found,
 * copies it, checks it, and hands out the rows in use.
 *
 * The table is written by another process and is untrusted input, as the
 * registry is (registry_reader.h): nothing here trusts a size, an offset
 * or a count from it.  The checks live in one pure function,
 * fmx_stats_parse(); fmx_stats_from_image() is the door for tests and
 * for cores. */
#ifndef FMX_STATS_READER_H
#define FMX_STATS_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "stats_table.h"

/* A table image larger than this is refused rather than allocated. */
#define FMX_STATS_MAX_IMAGE (1024u * 1024u)

/* The validated shape of a table image. */
struct fmx_stats_layout {
    uint32_t rows;        /* rows in the image, the last one the overflow row */
    uint64_t rows_offset;
    int32_t pid;          /* the process that made it, as it says */
};

struct fmx_stats_reader {
    unsigned char *image; /* our copy of the bytes */
    size_t size;
    struct fmx_stats_layout layout;
    int fd; /* the table's file, -1 when reading an image only */
};

/* One row, copied out once it held still. */
struct fmx_stats_entry {
    uint64_t mutex; /* the fast_mutex_t that keys the row */
    uint64_t outer; /* the FAST_MUTEX around it, as fmx_outer_of() lets it stand; 0 none */
    uint64_t site;
    uint64_t acquisitions, contended;
    uint64_t wait_total_ns, wait_max_ns;
    uint64_t hold_total_ns, hold_max_ns;
    bool overflow; /* the row of the pairs that found no room */
};

/* Checks a table image of `size` bytes.  Returns 0 and fills *layout, or
 * -1 with a one-line reason in why[whylen].  Reads only within the image. */
int fmx_stats_parse(const unsigned char *image, size_t size, struct fmx_stats_layout *layout, char *why,
                    size_t whylen);

/* Finds the table process `pid` made.  Returns 0 and fills *reader, or an
 * errno value with a one-line message in why: ESRCH no such process,
 * EACCES not ours, ENOENT it records no profile, EPROTO corrupt. */
int fmx_stats_open(pid_t pid, struct fmx_stats_reader *reader, char *why, size_t whylen);

/* A reader over a copy of `size` bytes at `data`, with no file behind it.
 * Returns 0, EPROTO when it is not a valid table, or ENOMEM. */
int fmx_stats_from_image(const void *data, size_t size, struct fmx_stats_reader *reader, char *why,
                         size_t whylen);

void fmx_stats_close(struct fmx_stats_reader *reader);

/* Copies out the rows in use into *rows (malloc'd, *count of them; the
 * overflow row, when it counted anything, among them).  With a file behind
 * the reader each row is read again until two reads agree and its seq is
 * even, a bounded number of times; rows that would not hold still are
 * left out and counted in *changing.  Returns 0 or ENOMEM. */
int fmx_stats_rows(struct fmx_stats_reader *reader, struct fmx_stats_entry **rows, size_t *count,
                   unsigned *changing);

#endif /* FMX_STATS_READER_H */
