/* Reading another process's contention profile table; see stats_reader.h. */
#include "stats_reader.h"
#include "untrusted.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry_reader.h"

/* How many times a row that keeps changing is read again: a writer holds
 * a row odd for a few stores under its lock, and the bound keeps a hostile
 * writer from holding fmx forever. */
#define ROW_RETRIES 64

#define HEADER_U32(field) fmx_get_u32(image, offsetof(struct fmx_stats_header, field))

int fmx_stats_parse(const unsigned char *image, size_t size, struct fmx_stats_layout *layout, char *why,
                    size_t whylen)
{
    const size_t header = sizeof(struct fmx_stats_header), row = sizeof(struct fmx_stats_row);
    if (size < header) {
        fmx_set_why(why, whylen, "profile table is truncated: %zu bytes, the header alone is %zu", size, header);
        return -1;
    }
    uint32_t rows = HEADER_U32(rows);
    int32_t pid = (int32_t)HEADER_U32(pid);
    uint64_t rows_offset = fmx_get_u64(image, offsetof(struct fmx_stats_header, rows_offset));
    if (HEADER_U32(magic) != FMX_STATS_MAGIC) {
        fmx_set_why(why, whylen, "profile table has a bad magic number 0x%08x", HEADER_U32(magic));
        return -1;
    }
    if (HEADER_U32(version) != FMX_STATS_VERSION) {
        fmx_set_why(why, whylen, "profile table has version %u, this fmx reads version %u", HEADER_U32(version),
                FMX_STATS_VERSION);
        return -1;
    }
    /* A version fixes the sizes; a table that disagrees is not one. */
    if (HEADER_U32(header_size) != header || HEADER_U32(row_size) != row) {
        fmx_set_why(why, whylen, "profile table has wrong sizes (header %u, row %u)", HEADER_U32(header_size),
                HEADER_U32(row_size));
        return -1;
    }
    /* No library writes more rows; fewer are read, for compact test images. */
    if (rows == 0 || rows > FMX_STATS_ROWS) {
        fmx_set_why(why, whylen, "profile table claims %u rows, not 1 to %u", rows, FMX_STATS_ROWS);
        return -1;
    }
    if (pid <= 0) {
        fmx_set_why(why, whylen, "profile table names an impossible process id %d", pid);
        return -1;
    }
    /* rows and row are 32-bit, so their product cannot overflow. */
    if (rows_offset < header || rows_offset > size || (uint64_t)rows * row > size - rows_offset) {
        fmx_set_why(why, whylen, "profile table is truncated or its rows are out of range (%zu bytes, rows at %llu)",
                size, (unsigned long long)rows_offset);
        return -1;
    }
    *layout = (struct fmx_stats_layout){.rows = rows, .rows_offset = rows_offset, .pid = pid};
    return 0;
}

/* Takes ownership of image (malloc'd), and of fd when it succeeds. */
static int make_reader(unsigned char *image, size_t size, int fd, struct fmx_stats_reader *reader, char *why,
                       size_t whylen)
{
    struct fmx_stats_layout layout;
    if (fmx_stats_parse(image, size, &layout, why, whylen) != 0) {
        free(image);
        return EPROTO;
    }
    *reader = (struct fmx_stats_reader){.image = image, .size = size, .layout = layout, .fd = fd};
    return 0;
}

int fmx_stats_from_image(const void *data, size_t size, struct fmx_stats_reader *reader, char *why,
                         size_t whylen)
{
    *reader = (struct fmx_stats_reader){.fd = -1};
    unsigned char *image = malloc(size + 1); /* malloc(0) may return NULL */
    if (image == NULL) {
        fmx_set_why(why, whylen, "out of memory");
        return ENOMEM;
    }
    if (size > 0)
        memcpy(image, data, size);
    return make_reader(image, size, -1, reader, why, whylen);
}

/* What fmx_stats_open() looks for. */
struct search {
    pid_t pid;
    struct fmx_stats_reader *reader;
};

/* Takes the table in fd if it is a valid one this process made (a forked
 * child may still have its parent's open). */
static int accept_table(int fd, void *ctx, char *why, size_t whylen)
{
    const struct search *search = ctx;
    unsigned char *image;
    size_t size;
    int err = fmx_read_image(fd, FMX_STATS_MAX_IMAGE, "profile table", &image, &size, why, whylen);
    if (err == 0)
        err = make_reader(image, size, fd, search->reader, why, whylen);
    if (err != 0)
        return err;
    if (fmx_pid_is(search->pid, search->reader->layout.pid))
        return 0;
    search->reader->fd = -1; /* the finder closes it */
    fmx_stats_close(search->reader);
    return ENOENT;
}

int fmx_stats_open(pid_t pid, struct fmx_stats_reader *reader, char *why, size_t whylen)
{
    struct search search = {.pid = pid, .reader = reader};
    *reader = (struct fmx_stats_reader){.fd = -1};
    int err = fmx_memfd_find(pid, FMX_STATS_NAME, accept_table, &search, why, whylen);
    if (err == ENOENT)
        fmx_set_why(why, whylen,
                "process %d does not record a contention profile; start it with FASTMUTEX_STATS=on "
                "(or FASTMUTEX_STATS=FILE)",
                (int)pid);
    return err;
}

void fmx_stats_close(struct fmx_stats_reader *reader)
{
    free(reader->image);
    if (reader->fd >= 0)
        close(reader->fd);
    *reader = (struct fmx_stats_reader){.fd = -1};
}

/* Makes the image's copy of the row at `off` one the writer was not in the
 * middle of changing: even seq, and (with a file) two reads in a row that
 * agree.  False when it would not settle. */
static bool settle_row(struct fmx_stats_reader *reader, uint64_t off)
{
    unsigned char *copy = reader->image + off;
    unsigned char fresh[sizeof(struct fmx_stats_row)];
    for (int attempt = 0; attempt < ROW_RETRIES; attempt++) {
        bool even = fmx_get_u32(copy, offsetof(struct fmx_stats_row, seq)) % 2 == 0;
        if (reader->fd < 0)
            return even;
        if (!fmx_read_exact(reader->fd, off, fresh, sizeof fresh))
            return false;
        bool same = memcmp(copy, fresh, sizeof fresh) == 0;
        memcpy(copy, fresh, sizeof fresh);
        if (same && even)
            return true;
    }
    return false;
}

static struct fmx_stats_entry entry_of(const unsigned char *row, bool overflow)
{
#define ROW_U64(field) fmx_get_u64(row, offsetof(struct fmx_stats_row, field))
    return (struct fmx_stats_entry){
        .mutex = ROW_U64(mutex),
        .outer = fmx_outer_of(ROW_U64(mutex), ROW_U64(outer)),
        .site = ROW_U64(site),
        .acquisitions = ROW_U64(acquisitions),
        .contended = ROW_U64(contended),
        .wait_total_ns = ROW_U64(wait_total_ns),
        .wait_max_ns = ROW_U64(wait_max_ns),
        .hold_total_ns = ROW_U64(hold_total_ns),
        .hold_max_ns = ROW_U64(hold_max_ns),
        .overflow = overflow,
    };
#undef ROW_U64
}

int fmx_stats_rows(struct fmx_stats_reader *reader, struct fmx_stats_entry **rows, size_t *count,
                   unsigned *changing)
{
    const struct fmx_stats_layout *layout = &reader->layout;
    *count = 0;
    *changing = 0;
    /* parse() checked that every row lies inside the image. */
    *rows = malloc((size_t)layout->rows * sizeof **rows);
    if (*rows == NULL)
        return ENOMEM;
    for (uint32_t i = 0; i < layout->rows; i++) {
        uint64_t off = layout->rows_offset + (uint64_t)i * sizeof(struct fmx_stats_row);
        const unsigned char *row = reader->image + off;
        bool overflow = i + 1 == layout->rows;
        bool even = fmx_get_u32(row, offsetof(struct fmx_stats_row, seq)) % 2 == 0;
        /* A free slot that held still in the copy is passed over unread. */
        if (even && !overflow && fmx_get_u64(row, offsetof(struct fmx_stats_row, mutex)) == 0)
            continue;
        if (!settle_row(reader, off)) {
            (*changing)++;
            continue;
        }
        struct fmx_stats_entry entry = entry_of(row, overflow);
        if (overflow ? entry.acquisitions != 0 : entry.mutex != 0)
            (*rows)[(*count)++] = entry;
    }
    return 0;
}
