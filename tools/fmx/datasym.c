/* Data symbols and member paths with libdwfl and libdw (see datasym.h). */
#include "datasym.h"
#include "untrusted.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How deep a member path goes, and how many same-named objects a lookup
 * tells apart. */
#define MAX_DEPTH 16
#define MAX_MATCHES 8

bool fmx_is_data_symbol_text(const char *text)
{
    if (!((text[0] >= 'a' && text[0] <= 'z') || (text[0] >= 'A' && text[0] <= 'Z') || text[0] == '_'))
        return false;
    size_t n = strspn(text, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.[]");
    return text[n] == '\0' && n < 256;
}

/* Appends to a path being built in buf[size]. */
static void append(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t size, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used + 1 >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, size - used, fmt, ap);
    va_end(ap);
}

/* The DIE an attribute of `die` refers to (its type, say). */
static bool attr_die(Dwarf_Die *die, unsigned int name, Dwarf_Die *out)
{
    Dwarf_Attribute attr;
    return dwarf_attr_integrate(die, name, &attr) != NULL && dwarf_formref_die(&attr, out) != NULL;
}

/* The link-time address of a variable whose location is DW_OP_addr. */
static bool variable_address(Dwarf_Die *var, Dwarf_Addr *address)
{
    Dwarf_Attribute attr;
    Dwarf_Op *ops;
    size_t nops;
    if (dwarf_attr(var, DW_AT_location, &attr) == NULL || dwarf_getlocation(&attr, &ops, &nops) != 0 ||
        nops != 1 || ops[0].atom != DW_OP_addr)
        return false;
    *address = ops[0].number;
    return true;
}

/* Finds the file-scope variable at `address` (a run-time address) among
 * the module's compile units.  Variables local to a function are not
 * looked for. */
static bool find_variable(Dwfl_Module *mod, uint64_t address, Dwarf_Die *var)
{
    Dwarf_Addr bias;
    Dwarf_Die *cu = NULL;
    while ((cu = dwfl_module_nextcu(mod, cu, &bias)) != NULL) {
        Dwarf_Die child;
        if (dwarf_child(cu, &child) != 0)
            continue;
        do {
            Dwarf_Addr at;
            if (dwarf_tag(&child) == DW_TAG_variable && variable_address(&child, &at) &&
                at + bias == address) {
                *var = child;
                return true;
            }
        } while (dwarf_siblingof(&child, &child) == 0);
    }
    return false;
}

/* Whether `type`, through its typedefs, is a fastmutex type: where a
 * member path stops. */
static bool is_mutex_type(Dwarf_Die *type)
{
    Dwarf_Die t = *type;
    for (int depth = 0; depth < MAX_DEPTH; depth++) {
        const char *name = dwarf_diename(&t);
        if (name != NULL && (strcmp(name, "fast_mutex_t") == 0 || strcmp(name, "fast_mutex") == 0 ||
                             strcmp(name, "FAST_MUTEX") == 0 || strcmp(name, "_FAST_MUTEX") == 0))
            return true;
        int tag = dwarf_tag(&t);
        if ((tag != DW_TAG_typedef && tag != DW_TAG_const_type && tag != DW_TAG_volatile_type &&
             tag != DW_TAG_atomic_type) ||
            !attr_die(&t, DW_AT_type, &t))
            return false;
    }
    return false;
}

/* Strips typedefs and qualifiers off `type`. */
static bool underlying(Dwarf_Die *type)
{
    for (int depth = 0; depth < MAX_DEPTH; depth++) {
        int tag = dwarf_tag(type);
        if (tag != DW_TAG_typedef && tag != DW_TAG_const_type && tag != DW_TAG_volatile_type &&
            tag != DW_TAG_atomic_type)
            return true;
        if (!attr_die(type, DW_AT_type, type))
            return false;
    }
    return false;
}

static bool member_offset(Dwarf_Die *member, Dwarf_Word *offset)
{
    Dwarf_Attribute attr;
    if (dwarf_attr(member, DW_AT_data_member_location, &attr) == NULL) {
        *offset = 0; /* a union's members all start at 0 */
        return true;
    }
    return dwarf_formudata(&attr, offset) == 0;
}

/* The single dimension of an array type, and its element type. */
static bool array_element(Dwarf_Die *array, Dwarf_Die *element, Dwarf_Word *size, Dwarf_Word *count)
{
    Dwarf_Die sub;
    Dwarf_Attribute attr;
    Dwarf_Word upper = 0;
    if (!attr_die(array, DW_AT_type, element) || dwarf_aggregate_size(element, size) != 0 || *size == 0 ||
        dwarf_child(array, &sub) != 0)
        return false;
    *count = 0;
    if (dwarf_formudata(dwarf_attr(&sub, DW_AT_count, &attr), count) != 0 &&
        dwarf_formudata(dwarf_attr(&sub, DW_AT_upper_bound, &attr), &upper) == 0)
        *count = upper + 1;
    return true;
}

/* Goes one step down from `type` toward `*offset` into it: the member or
 * element holding it.  Appends ".name" or "[i]" to the path. */
static bool step_down(Dwarf_Die *type, Dwarf_Word *offset, char *path, size_t size)
{
    int tag = dwarf_tag(type);
    if (tag == DW_TAG_array_type) {
        Dwarf_Die element;
        Dwarf_Word element_size, count;
        if (!array_element(type, &element, &element_size, &count))
            return false;
        append(path, size, "[%llu]", (unsigned long long)(*offset / element_size));
        *offset %= element_size;
        *type = element;
        return true;
    }
    if (tag != DW_TAG_structure_type && tag != DW_TAG_union_type)
        return false;
    Dwarf_Die member;
    if (dwarf_child(type, &member) != 0)
        return false;
    do {
        Dwarf_Die member_type;
        Dwarf_Word at, member_size;
        if (dwarf_tag(&member) != DW_TAG_member || !member_offset(&member, &at) ||
            !attr_die(&member, DW_AT_type, &member_type) ||
            dwarf_aggregate_size(&member_type, &member_size) != 0)
            continue;
        if (*offset >= at && *offset - at < member_size) {
            const char *name = dwarf_diename(&member);
            append(path, size, ".%s", name != NULL ? name : "?");
            *offset -= at;
            *type = member_type;
            return true;
        }
    } while (dwarf_siblingof(&member, &member) == 0);
    return false;
}

/* Appends to path the members from variable `var` down to the mutex at
 * `offset` into it; what is left when the debug info gives out goes on
 * as "+0x10". */
static void member_path(Dwarf_Die *var, Dwarf_Word offset, char *path, size_t size)
{
    Dwarf_Die type;
    if (!attr_die(var, DW_AT_type, &type))
        goto rest;
    for (int depth = 0; depth < MAX_DEPTH; depth++) {
        if (offset == 0 && is_mutex_type(&type))
            return;
        if (!underlying(&type) || !step_down(&type, &offset, path, size))
            break;
    }
rest:
    if (offset != 0)
        append(path, size, "+0x%llx", (unsigned long long)offset);
}

/* Copies a symbol name, with control characters made '?': it comes from
 * the target's files. */
static void copy_name(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s", name);
    for (char *p = buf; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

void fmx_data_symbol(struct fmx_symbolizer *sym, uint64_t address, char *buf, size_t size)
{
    buf[0] = '\0';
    if (sym == NULL || address == 0)
        return;
    Dwfl_Module *mod = dwfl_addrmodule(fmx_symbolizer_dwfl(sym), address);
    GElf_Off offset;
    GElf_Sym elf_sym;
    const char *name =
        mod != NULL ? dwfl_module_addrinfo(mod, address, &offset, &elf_sym, NULL, NULL, NULL) : NULL;
    if (name == NULL || GELF_ST_TYPE(elf_sym.st_info) != STT_OBJECT || offset >= elf_sym.st_size)
        return;
    copy_name(buf, size, name);
    Dwarf_Die var;
    if (find_variable(mod, address - offset, &var))
        member_path(&var, offset, buf, size);
    else if (offset != 0)
        append(buf, size, "+0x%llx", (unsigned long long)offset);
}

/* ---- from a name to an address ---- */

struct lookup {
    const char *name;
    uint64_t found[MAX_MATCHES];
    Dwfl_Module *module[MAX_MATCHES];
    int count; /* distinct addresses, may pass MAX_MATCHES */
};

static int look_in_module(Dwfl_Module *mod, void **userdata, const char *mod_name, Dwarf_Addr start,
                          void *arg)
{
    (void)userdata, (void)mod_name, (void)start;
    struct lookup *lookup = arg;
    int n = dwfl_module_getsymtab(mod);
    for (int i = 1; i < n; i++) {
        GElf_Sym sym;
        GElf_Addr addr;
        const char *name = dwfl_module_getsym_info(mod, i, &sym, &addr, NULL, NULL, NULL);
        if (name == NULL || GELF_ST_TYPE(sym.st_info) != STT_OBJECT || sym.st_shndx == SHN_UNDEF ||
            strcmp(name, lookup->name) != 0)
            continue;
        bool known = false;
        for (int k = 0; k < lookup->count && k < MAX_MATCHES; k++)
            known |= lookup->found[k] == addr;
        if (known)
            continue;
        if (lookup->count < MAX_MATCHES) {
            lookup->found[lookup->count] = addr;
            lookup->module[lookup->count] = mod;
        }
        lookup->count++;
    }
    return DWARF_CB_OK;
}

/* Finds `member` in struct or union `type` (typedefs stripped). */
static bool find_member(Dwarf_Die *type, const char *member, Dwarf_Word *offset, Dwarf_Die *member_type)
{
    Dwarf_Die child;
    if (!underlying(type) || (dwarf_tag(type) != DW_TAG_structure_type && dwarf_tag(type) != DW_TAG_union_type) ||
        dwarf_child(type, &child) != 0)
        return false;
    do {
        const char *name = dwarf_diename(&child);
        if (dwarf_tag(&child) == DW_TAG_member && name != NULL && strcmp(name, member) == 0)
            return member_offset(&child, offset) && attr_die(&child, DW_AT_type, member_type);
    } while (dwarf_siblingof(&child, &child) == 0);
    return false;
}

/* One ".member" or "[index]" step of a path; *text moves past it. */
static bool follow_step(const char **text, Dwarf_Die *type, uint64_t *address, char *why, size_t whylen)
{
    const char *p = *text;
    Dwarf_Word offset;
    Dwarf_Die next;
    if (*p == '.') {
        char member[256];
        size_t n = strcspn(p + 1, ".[");
        snprintf(member, sizeof member, "%.*s", (int)n, p + 1);
        if (n == 0 || !find_member(type, member, &offset, &next)) {
            fmx_set_why(why, whylen, "no member '%s' there", member);
            return false;
        }
        *text = p + 1 + n;
    } else {
        char *end;
        unsigned long long index = strtoull(p + 1, &end, 10);
        Dwarf_Word element_size, count;
        if (end == p + 1 || *end != ']' || !underlying(type) || dwarf_tag(type) != DW_TAG_array_type ||
            !array_element(type, &next, &element_size, &count) || (count != 0 && index >= count) ||
            index > UINT64_MAX / element_size) {
            fmx_set_why(why, whylen, "'%.*s' is not an index into an array there", (int)(strcspn(p, "]") + 1), p);
            return false;
        }
        offset = index * element_size;
        *text = end + 1;
    }
    if (*address > UINT64_MAX - offset) {
        fmx_set_why(why, whylen, "the path runs past the end of memory");
        return false;
    }
    *address += offset;
    *type = next;
    return true;
}

/* Walks ".member[index]..." from the variable at *address in `mod`. */
static bool follow_path(Dwfl_Module *mod, const char *base, const char *text, const char *path,
                        uint64_t *address, char *why, size_t whylen)
{
    Dwarf_Die var, type;
    if (*path == '\0')
        return true;
    if (!find_variable(mod, *address, &var) || !attr_die(&var, DW_AT_type, &type)) {
        fmx_set_why(why, whylen, "no debug info for '%s' to find '%s' in", base, path);
        return false;
    }
    while (*path != '\0') {
        char step_why[200];
        if (!follow_step(&path, &type, address, step_why, sizeof step_why)) {
            fmx_set_why(why, whylen, "'%s': %s", text, step_why);
            return false;
        }
    }
    return true;
}

int fmx_data_address(struct fmx_symbolizer *sym, const char *text, uint64_t *address, char *why,
                     size_t whylen)
{
    char base[256];
    size_t n = strcspn(text, ".[");
    snprintf(base, sizeof base, "%.*s", (int)n, text);
    struct lookup lookup = {.name = base};
    dwfl_getmodules(fmx_symbolizer_dwfl(sym), look_in_module, &lookup, 0);
    if (lookup.count == 0) {
        fmx_set_why(why, whylen, "no global or static variable '%s' in the program or its libraries", base);
        return -1;
    }
    if (lookup.count > 1) {
        fmx_set_why(why, whylen, "'%s' names %d variables (0x%llx, 0x%llx%s): give the address", base,
                lookup.count, (unsigned long long)lookup.found[0], (unsigned long long)lookup.found[1],
                lookup.count > 2 ? ", ..." : "");
        return -1;
    }
    *address = lookup.found[0];
    return follow_path(lookup.module[0], base, text, text + n, address, why, whylen) ? 0 : -1;
}
