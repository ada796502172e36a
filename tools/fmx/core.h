/* Reading a core dump with libelf: which process and threads it holds
 * (NT_PRPSINFO, NT_PRSTATUS), its memory (PT_LOAD segments) and the
 * fastmutex registry in that memory.
 *
 * A core file is untrusted input like a registry: it may be truncated, of
 * another architecture, not a core at all, or crafted.  Every offset and
 * size from it is checked against the file before it is used, and the
 * registry found in it goes through the same checks as a live one
 * (fmx_registry_parse()).  fmx_core_from_image() is the fuzzer's door. */
#ifndef FMX_CORE_H
#define FMX_CORE_H

#include <gelf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "procinfo.h"
#include "registry_reader.h"

/* What the core says of one thread. */
struct fmx_core_thread {
    pid_t tid;
    double user_seconds;   /* pr_utime */
    double kernel_seconds; /* pr_stime */
};

struct fmx_core {
    Elf *elf;
    int fd;             /* -1 for an image */
    uint64_t file_size;
    pid_t pid;          /* from NT_PRPSINFO, else the first NT_PRSTATUS */
    fmx_comm name;      /* pr_fname, sanitized; "?" when the core has none */
    struct fmx_core_thread *threads;
    size_t nthreads;
    uint64_t entry;     /* AT_ENTRY from NT_AUXV, 0 when unknown */
    char exe[512];      /* the NT_FILE path mapped at `entry`, "" when unknown */
    int64_t mtime_ns;   /* the core file's modification time (CLOCK_REALTIME) */
    uint64_t registry_address; /* where the registry lies, 0 until found */
};

/* Opens the core file at `path` and reads its notes.  Returns 0, or an
 * errno value with a one-line reason (no newline, no "fmx: ") in why:
 * ENOENT/EACCES the file cannot be opened, EPROTO it is not a core fmx can
 * read (not ELF, not a core, another architecture, truncated). */
int fmx_core_open(const char *path, struct fmx_core *core, char *why, size_t whylen);

/* The same over `size` bytes in memory, which must outlive the core. */
int fmx_core_from_image(const void *data, size_t size, struct fmx_core *core, char *why,
                        size_t whylen);

void fmx_core_close(struct fmx_core *core);

/* Copies len bytes at `addr` of the dumped process's memory.  Returns 0,
 * EFAULT when no segment maps that range, or ENODATA when it was mapped
 * but not dumped (coredump_filter leaves file-backed code out). */
int fmx_core_read(const struct fmx_core *core, uint64_t addr, void *buf, size_t len);

/* The thread with id `tid`, NULL when the core holds none. */
const struct fmx_core_thread *fmx_core_thread(const struct fmx_core *core, pid_t tid);

/* The next PT_LOAD segment, from segment *index on, whose first four bytes
 * are `magic` (a region of fastmutex's, found as fmx finds the registry):
 * its bytes in the file (*data, at most `max` of them, in *size) and its
 * address.  Moves *index past it; false when there is none left. */
bool fmx_core_next_region(struct fmx_core *core, uint32_t magic, size_t max, size_t *index, const void **data,
                          size_t *size, uint64_t *address);

/* Finds the registry the dumped process made among the core's segments and
 * opens a reader over a copy of it.  Returns as fmx_registry_open() does:
 * 0, ENOENT when there is none, EPROTO when it is corrupt (why says how). */
int fmx_core_registry(struct fmx_core *core, struct fmx_registry_reader *reader, char *why,
                      size_t whylen);

#endif /* FMX_CORE_H */
