/* Addresses in a live process turned into function+offset and file:line,
 * and a thread's call stack, with elfutils' libdwfl (what eu-stack uses). */
#ifndef FMX_SYMBOLIZE_H
#define FMX_SYMBOLIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <elfutils/libdwfl.h>

/* How many inlined calls one address is followed through. */
#define FMX_MAX_INLINE 8

/* A place in the source: the function and the line in it. */
struct fmx_source_line {
    char function[128]; /* "" when unknown */
    char file[256];     /* as the debug info names it, often an absolute path */
    int line;           /* 0 when unknown */
};

/* What is known about one code address. */
struct fmx_location {
    uint64_t address;
    char symbol[128];   /* the ELF function it lies in, "" when unknown */
    uint64_t offset;    /* from the start of `symbol` */
    char module[64];    /* the file it was loaded from, base name */
    /* Source lines, innermost first: lines[0] is where the address is; when
     * it lies in code inlined into its caller, lines[1] is the line of that
     * inlined call, and so on out to the real function. */
    int nlines;
    struct fmx_source_line lines[FMX_MAX_INLINE];
};

struct fmx_symbolizer;

/* Reads the modules mapped in process `pid`.  Returns NULL with a reason in
 * why[whylen] when it cannot (the process has gone, or is not ours). */
struct fmx_symbolizer *fmx_symbolizer_open(pid_t pid, char *why, size_t whylen);

/* Reads the modules of the process dumped in `core` (an ELF core the
 * caller keeps open), found from its NT_FILE notes and build IDs; `exe`,
 * when not NULL, is the main executable's file.  Stacks come from the
 * core's threads.  Returns NULL with a reason when libdwfl cannot. */
struct fmx_symbolizer *fmx_symbolizer_open_core(Elf *core, const char *exe, char *why, size_t whylen);
void fmx_symbolizer_close(struct fmx_symbolizer *sym);

/* Whether the module mapped at `address` has its ELF file (and so its
 * symbols); false with libdwfl's reason when it is missing, or is not the
 * file that was mapped (its build ID differs). */
bool fmx_symbolizer_has_file(struct fmx_symbolizer *sym, uint64_t address, char *why, size_t whylen);

/* Whether the file at `path` is the one the process had mapped at
 * `address`: their build IDs agree (true too when the process's is not
 * known).  False with a reason otherwise. */
bool fmx_symbolizer_file_matches(struct fmx_symbolizer *sym, uint64_t address, const char *path, char *why,
                                 size_t whylen);

/* The libdwfl session, for the data-symbol lookups of datasym.c. */
Dwfl *fmx_symbolizer_dwfl(struct fmx_symbolizer *sym);

/* Describes `address`.  A return address (`is_return`) points after its
 * call, so its line is looked up one byte earlier, inside the call. */
void fmx_symbolize(struct fmx_symbolizer *sym, uint64_t address, bool is_return,
                   struct fmx_location *loc);

/* The line a fastmutex call site belongs to: the first line, going out
 * from the innermost, that is not inside fastmutex's own inline functions
 * (fast_mutex_acquire() and friends, inlined into the caller).  NULL when
 * there is no line information. */
const struct fmx_source_line *fmx_caller_line(const struct fmx_location *loc);

/* Formats a call site as "function+0x4c file.c:123" (base name of the
 * file), or as much of it as is known, down to "0x7f12... (libfoo.so)". */
void fmx_format_site(const struct fmx_location *loc, char *buf, size_t size);

/* The file's base name. */
const char *fmx_base_name(const char *path);

/* Unwinds thread `tid` of the process, filling pcs[max] (and whether each
 * frame is the innermost or a signal frame, whose pc is not a return
 * address) and *count.  For a live process this stops the thread with
 * ptrace for the moment it takes; for a core it reads the dumped registers
 * and stack.  Returns 0, or an errno value with a reason in why[whylen]:
 * EPERM when ptrace is not permitted. */
int fmx_symbolizer_stack(struct fmx_symbolizer *sym, pid_t tid, uint64_t *pcs, bool *exact, int max,
                         int *count, char *why, size_t whylen);

#endif /* FMX_SYMBOLIZE_H */
