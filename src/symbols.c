/* Call sites in reports, as fmx shows them: function, file and line, read
 * from this process's own modules and their debug info with libdwfl (as
 * fmx does from outside), so that a program needs neither -rdynamic nor a
 * debugger to learn where it misused a mutex.  Only reports come here: a
 * cold path that may allocate and read files.  Without debug info a site
 * is "function+0xoff", from the symbol tables; with nothing, the address. */
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

struct fmx_symbols {
    Dwfl *dwfl;
};

static char *debuginfo_path = NULL;
static const Dwfl_Callbacks self_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

struct fmx_symbols *fmx_symbols_open(void)
{
    struct fmx_symbols *syms = calloc(1, sizeof *syms);
    if (syms == NULL)
        return NULL;
    syms->dwfl = dwfl_begin(&self_callbacks);
    if (syms->dwfl == NULL || dwfl_linux_proc_report(syms->dwfl, getpid()) != 0 ||
        dwfl_report_end(syms->dwfl, NULL, NULL) != 0) {
        fmx_symbols_close(syms);
        return NULL;
    }
    return syms;
}

void fmx_symbols_close(struct fmx_symbols *syms)
{
    if (syms == NULL)
        return;
    if (syms->dwfl != NULL)
        dwfl_end(syms->dwfl);
    free(syms);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

/* The source line of the call at `address`, in the caller's terms: the
 * line table names the innermost inlined function, which for a call from
 * the public header's inline fast path is fastmutex.h; such frames
 * (functions named fast_mutex_*) are stepped out of to their call site. */
static bool caller_line(Dwfl_Module *mod, Dwarf_Addr address, const char **file, int *line)
{
    Dwfl_Line *entry = dwfl_module_getsrc(mod, address);
    if (entry == NULL || (*file = dwfl_lineinfo(entry, NULL, line, NULL, NULL, NULL)) == NULL)
        return false;
    Dwarf_Addr bias;
    Dwarf_Die *cu = dwfl_module_addrdie(mod, address, &bias);
    Dwarf_Die *scopes = NULL;
    int nscopes = cu != NULL ? dwarf_getscopes(cu, address - bias, &scopes) : 0;
    Dwarf_Files *files;
    size_t nfiles;
    if (nscopes <= 0 || dwarf_getsrcfiles(cu, &files, &nfiles) != 0)
        nscopes = 0;
    for (int i = 0; i < nscopes && dwarf_tag(&scopes[i]) == DW_TAG_inlined_subroutine; i++) {
        Dwarf_Attribute attr;
        const char *name = dwarf_formstring(dwarf_attr_integrate(&scopes[i], DW_AT_name, &attr));
        Dwarf_Word call_file, call_line;
        if (name == NULL || strncmp(name, "fast_mutex_", strlen("fast_mutex_")) != 0 ||
            dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_file, &attr), &call_file) != 0 ||
            dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_line, &attr), &call_line) != 0 ||
            call_file >= nfiles)
            break;
        *file = dwarf_filesrc(files, call_file, NULL, NULL);
        *line = (int)call_line;
    }
    free(scopes);
    return *file != NULL;
}

bool fmx_symbols_site(struct fmx_symbols *syms, const void *site, char *buf, size_t size)
{
    if (syms == NULL || site == NULL || size == 0)
        return false;
    /* A return address: the call is the instruction before it. */
    Dwarf_Addr address = (Dwarf_Addr)(uintptr_t)site - 1;
    Dwfl_Module *mod = dwfl_addrmodule(syms->dwfl, address);
    if (mod == NULL)
        return false;
    GElf_Off offset = 0;
    GElf_Sym sym;
    const char *name = dwfl_module_addrinfo(mod, address, &offset, &sym, NULL, NULL, NULL);
    if (name == NULL)
        return false;
    int n = snprintf(buf, size, "%s+0x%llx", name, (unsigned long long)offset + 1);
    const char *file;
    int line;
    if (n > 0 && (size_t)n < size && caller_line(mod, address, &file, &line))
        snprintf(buf + n, size - (size_t)n, " %s:%d", base_name(file), line);
    return true;
}
