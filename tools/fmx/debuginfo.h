/* Finding a module's separate debug info without trusting the target.
 *
 * The target process chooses the files fmx (often root) opens: its
 * executable's .gnu_debuglink names any file beside it, a FIFO included,
 * on which elfutils' standard finder blocks forever.  This finder opens a
 * candidate only as a regular file, without blocking, and only from the
 * module's folder, its .debug subfolder and /usr/lib/debug (by build id,
 * and by the module's path), and believes it only when its build id, or
 * without one the debuglink's CRC, matches. */
#ifndef FMX_DEBUGINFO_H
#define FMX_DEBUGINFO_H

#include <elfutils/libdwfl.h>

/* A Dwfl_Callbacks.find_debuginfo: returns an open descriptor of the debug
 * file and sets *debuginfo_file_name (malloc'd), or returns -1. */
int fmx_find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, GElf_Addr base,
                       const char *file_name, const char *debuglink_file, GElf_Word debuglink_crc,
                       char **debuginfo_file_name);

#endif /* FMX_DEBUGINFO_H */
