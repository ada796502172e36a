/* Symbols, source lines and stacks of a live process, through libdwfl. */
#include "symbolize.h"

#include "debuginfo.h"

#include <dwarf.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fmx_symbolizer {
    Dwfl *dwfl;
    pid_t pid;     /* 0 for a core */
    bool attached; /* dwfl_linux_proc_attach() or dwfl_core_file_attach() done */
    char attach_why[128]; /* why a core's threads could not be attached */
};

/* Debug info is looked for where Debian puts it (/usr/lib/debug, build-id
 * links) and beside each file, opening only regular files (debuginfo.h). */
static char *debuginfo_path = NULL;
static const Dwfl_Callbacks proc_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = fmx_find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

/* A core's modules are found by the build IDs and paths it records. */
static const Dwfl_Callbacks core_callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = fmx_find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

/* Copies a name or path from the process's files, which are no more
 * trusted than its registry: control characters become '?' so that they
 * cannot reach a terminal. */
static void copy_text(char *out, size_t size, const char *text)
{
    snprintf(out, size, "%s", text != NULL ? text : "");
    for (char *p = out; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

const char *fmx_base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

struct fmx_symbolizer *fmx_symbolizer_open(pid_t pid, char *why, size_t whylen)
{
    struct fmx_symbolizer *sym = calloc(1, sizeof *sym);
    if (sym == NULL) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    sym->pid = pid;
    sym->dwfl = dwfl_begin(&proc_callbacks);
    if (sym->dwfl == NULL) {
        snprintf(why, whylen, "libdwfl: %s", dwfl_errmsg(-1));
        goto fail;
    }
    int err = dwfl_linux_proc_report(sym->dwfl, pid);
    if (err != 0) {
        snprintf(why, whylen, "cannot read the modules of process %d: %s", (int)pid,
                 err > 0 ? strerror(err) : dwfl_errmsg(-1));
        goto fail;
    }
    if (dwfl_report_end(sym->dwfl, NULL, NULL) != 0) {
        snprintf(why, whylen, "libdwfl: %s", dwfl_errmsg(-1));
        goto fail;
    }
    return sym;
fail:
    fmx_symbolizer_close(sym);
    return NULL;
}

struct fmx_symbolizer *fmx_symbolizer_open_core(Elf *core, const char *exe, char *why, size_t whylen)
{
    struct fmx_symbolizer *sym = calloc(1, sizeof *sym);
    if (sym == NULL) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    sym->dwfl = dwfl_begin(&core_callbacks);
    if (sym->dwfl == NULL || dwfl_core_file_report(sym->dwfl, core, exe) < 0 ||
        dwfl_report_end(sym->dwfl, NULL, NULL) != 0) {
        snprintf(why, whylen, "libdwfl: %s", dwfl_errmsg(-1));
        fmx_symbolizer_close(sym);
        return NULL;
    }
    /* The threads, for stacks; without them symbols still work. */
    if (dwfl_core_file_attach(sym->dwfl, core) < 0)
        snprintf(sym->attach_why, sizeof sym->attach_why, "libdwfl: %s", dwfl_errmsg(-1));
    else
        sym->attached = true;
    return sym;
}

bool fmx_symbolizer_has_file(struct fmx_symbolizer *sym, uint64_t address, char *why, size_t whylen)
{
    Dwfl_Module *mod = dwfl_addrmodule(sym->dwfl, address);
    Dwarf_Addr bias;
    if (mod == NULL) {
        snprintf(why, whylen, "no module is mapped at 0x%llx", (unsigned long long)address);
        return false;
    }
    if (dwfl_module_getelf(mod, &bias) == NULL) {
        snprintf(why, whylen, "%s", dwfl_errmsg(-1));
        return false;
    }
    return true;
}

bool fmx_symbolizer_file_matches(struct fmx_symbolizer *sym, uint64_t address, const char *path, char *why,
                                 size_t whylen)
{
    Dwfl_Module *mod = dwfl_addrmodule(sym->dwfl, address);
    const unsigned char *want;
    GElf_Addr vaddr;
    int want_len = mod != NULL ? dwfl_module_build_id(mod, &want, &vaddr) : 0;
    if (want_len <= 0)
        return true; /* the process's build ID is unknown: nothing to hold the file to */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return false;
    }
    Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
    const void *have;
    ssize_t have_len = elf != NULL ? dwelf_elf_gnu_build_id(elf, &have) : -1;
    bool same = have_len == want_len && memcmp(want, have, (size_t)want_len) == 0;
    if (!same)
        snprintf(why, whylen, "%s", have_len > 0 ? "its build ID differs" : "it has no build ID");
    if (elf != NULL)
        elf_end(elf);
    close(fd);
    return same;
}

Dwfl *fmx_symbolizer_dwfl(struct fmx_symbolizer *sym)
{
    return sym->dwfl;
}

void fmx_symbolizer_close(struct fmx_symbolizer *sym)
{
    if (sym == NULL)
        return;
    /* dwfl_end() also lets go of any thread that unwinding attached to. */
    if (sym->dwfl != NULL)
        dwfl_end(sym->dwfl);
    free(sym);
}

/* The name of a function scope; an inlined instance names itself through
 * its abstract origin, which dwarf_attr_integrate() follows. */
static const char *scope_name(Dwarf_Die *die)
{
    Dwarf_Attribute attr;
    return dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &attr));
}

/* Reads an unsigned attribute, false when it is missing. */
static bool scope_udata(Dwarf_Die *die, unsigned int name, Dwarf_Word *value)
{
    Dwarf_Attribute attr;
    return dwarf_formudata(dwarf_attr(die, name, &attr), value) == 0;
}

/* Fills loc->lines: the line-table line of `address`, then, for each
 * inlined call the address lies in, the line of that call in its caller. */
static void find_lines(Dwfl_Module *mod, Dwarf_Addr address, struct fmx_location *loc)
{
    Dwfl_Line *line = dwfl_module_getsrc(mod, address);
    if (line == NULL)
        return;
    int lineno = 0;
    const char *file = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
    if (file == NULL)
        return;
    struct fmx_source_line *current = &loc->lines[0];
    copy_text(current->file, sizeof current->file, file);
    current->line = lineno;
    copy_text(current->function, sizeof current->function, loc->symbol);
    loc->nlines = 1;

    Dwarf_Addr bias;
    Dwarf_Die *cudie = dwfl_module_addrdie(mod, address, &bias);
    if (cudie == NULL)
        return;
    Dwarf_Die *scopes = NULL;
    int nscopes = dwarf_getscopes(cudie, address - bias, &scopes);
    Dwarf_Files *files = NULL;
    size_t nfiles = 0;
    if (dwarf_getsrcfiles(cudie, &files, &nfiles) != 0)
        files = NULL;
    for (int i = 0; i < nscopes; i++) {
        int tag = dwarf_tag(&scopes[i]);
        if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram)
            continue;
        const char *name = scope_name(&scopes[i]);
        if (name != NULL)
            copy_text(current->function, sizeof current->function, name);
        if (tag == DW_TAG_subprogram || loc->nlines == FMX_MAX_INLINE)
            break;
        /* An inlined call: the next line out is where it was called. */
        Dwarf_Word call_file, call_line;
        if (files == NULL || !scope_udata(&scopes[i], DW_AT_call_file, &call_file) ||
            !scope_udata(&scopes[i], DW_AT_call_line, &call_line) || call_file >= nfiles)
            break;
        current = &loc->lines[loc->nlines++];
        copy_text(current->file, sizeof current->file, dwarf_filesrc(files, call_file, NULL, NULL));
        current->line = (int)call_line;
        copy_text(current->function, sizeof current->function, loc->symbol);
    }
    free(scopes);
}

void fmx_symbolize(struct fmx_symbolizer *sym, uint64_t address, bool is_return,
                   struct fmx_location *loc)
{
    memset(loc, 0, sizeof *loc);
    loc->address = address;
    if (sym == NULL || address == 0)
        return;
    Dwarf_Addr lookup = is_return ? address - 1 : address;
    Dwfl_Module *mod = dwfl_addrmodule(sym->dwfl, lookup);
    if (mod == NULL)
        return;
    const char *module = dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    if (module != NULL)
        copy_text(loc->module, sizeof loc->module, fmx_base_name(module));
    GElf_Off offset = 0;
    GElf_Sym elf_sym;
    const char *name = dwfl_module_addrinfo(mod, lookup, &offset, &elf_sym, NULL, NULL, NULL);
    if (name != NULL) {
        copy_text(loc->symbol, sizeof loc->symbol, name);
        /* The offset is the return address's, as debuggers show it. */
        loc->offset = offset + (address - lookup);
    }
    find_lines(mod, lookup, loc);
}

const struct fmx_source_line *fmx_caller_line(const struct fmx_location *loc)
{
    for (int i = 0; i < loc->nlines; i++)
        if (strncmp(loc->lines[i].function, "fast_mutex_", strlen("fast_mutex_")) != 0)
            return &loc->lines[i];
    return loc->nlines > 0 ? &loc->lines[loc->nlines - 1] : NULL;
}

void fmx_format_site(const struct fmx_location *loc, char *buf, size_t size)
{
    int n;
    if (loc->symbol[0] != '\0')
        n = snprintf(buf, size, "%s+0x%llx", loc->symbol, (unsigned long long)loc->offset);
    else if (loc->module[0] != '\0')
        n = snprintf(buf, size, "0x%llx (%s)", (unsigned long long)loc->address, loc->module);
    else
        n = snprintf(buf, size, "0x%llx", (unsigned long long)loc->address);
    const struct fmx_source_line *line = fmx_caller_line(loc);
    if (line == NULL || n < 0 || (size_t)n >= size)
        return;
    /* The call may lie in a function inlined into `symbol` (or `symbol`
     * may be a part GCC split off, such as "f.cold"): name the function
     * the line belongs to when it is another. */
    size_t fn = strlen(line->function);
    bool same = strncmp(loc->symbol, line->function, fn) == 0 &&
                (loc->symbol[fn] == '\0' || loc->symbol[fn] == '.');
    if (same || fn == 0)
        snprintf(buf + n, size - (size_t)n, " %s:%d", fmx_base_name(line->file), line->line);
    else
        snprintf(buf + n, size - (size_t)n, " %s:%d (in %s, inlined)", fmx_base_name(line->file),
                 line->line, line->function);
}

/* Collects frames for fmx_symbolizer_stack(). */
struct frame_walk {
    uint64_t *pcs;
    bool *exact;
    int max;
    int count;
};

static int take_frame(Dwfl_Frame *state, void *arg)
{
    struct frame_walk *walk = arg;
    Dwarf_Addr pc;
    bool activation;
    if (!dwfl_frame_pc(state, &pc, &activation))
        return DWARF_CB_ABORT;
    walk->pcs[walk->count] = pc;
    walk->exact[walk->count] = activation;
    walk->count++;
    return walk->count < walk->max ? DWARF_CB_OK : DWARF_CB_ABORT;
}

int fmx_symbolizer_stack(struct fmx_symbolizer *sym, pid_t tid, uint64_t *pcs, bool *exact, int max,
                         int *count, char *why, size_t whylen)
{
    *count = 0;
    if (!sym->attached && sym->pid == 0) {
        snprintf(why, whylen, "%s", sym->attach_why);
        return EIO;
    }
    if (!sym->attached) {
        int err = dwfl_linux_proc_attach(sym->dwfl, sym->pid, false);
        if (err != 0) {
            snprintf(why, whylen, "%s", err > 0 ? strerror(err) : dwfl_errmsg(-1));
            return err > 0 ? err : EIO;
        }
        sym->attached = true;
    }
    struct frame_walk walk = {.pcs = pcs, .exact = exact, .max = max};
    errno = 0;
    int result = dwfl_getthread_frames(sym->dwfl, tid, take_frame, &walk);
    /* libdwfl reports a refused PTRACE_ATTACH as a system error and leaves
     * its errno in place; nothing after it in the failing path sets errno. */
    int err = errno;
    *count = walk.count;
    /* Unwinding usually ends with an error at the outermost frame (it finds
     * no caller), so frames already taken are the stack. */
    if (result == 0 || walk.count > 0)
        return 0;
    snprintf(why, whylen, "%s", dwfl_errmsg(-1));
    if (err == EPERM || err == EACCES)
        return EPERM;
    return err != 0 ? err : EIO;
}
