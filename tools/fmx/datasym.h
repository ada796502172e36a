/* Mutexes by name: the global or static variable a mutex address lies in,
 * with the member path down to the mutex ("g_queue.lock"), and the
 * reverse, from such a name to an address.  Symbols come from the ELF
 * symbol tables, member paths from the DWARF debug info, through libdwfl,
 * for a live process and a core alike. */
#ifndef FMX_DATASYM_H
#define FMX_DATASYM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "symbolize.h"

/* Whether `text` is shaped like a name this module resolves: a C
 * identifier followed by ".member" and "[index]" parts. */
bool fmx_is_data_symbol_text(const char *text);

/* Names the object at `address`: "LockA", "g_queue.lock", "table[3].m",
 * or "blob+0x10" when the debug info cannot say which member lies there.
 * The path goes down to the fast_mutex_t or FAST_MUTEX at `address`.
 * Makes buf "" when no global or static variable holds the address. */
void fmx_data_symbol(struct fmx_symbolizer *sym, uint64_t address, char *buf, size_t size);

/* The address of `text` (as fmx_is_data_symbol_text() accepts) in the
 * target.  Returns 0, or -1 with a one-line reason in why[whylen]: no such
 * variable, more than one, no such member, no debug info for the path. */
int fmx_data_address(struct fmx_symbolizer *sym, const char *text, uint64_t *address, char *why,
                     size_t whylen);

#endif /* FMX_DATASYM_H */
