/* What the WDK subset's runtime files share.  Built with -fshort-wchar, so
 * WCHAR is the UTF-16 unit of driver code; nothing here may hand a WCHAR
 * string to the C library's wide functions, which read 32-bit units. */
#ifndef FMX_WDK_INTERNAL_H
#define FMX_WDK_INTERNAL_H

#include "ntifs.h"
#include "ntstrsafe.h"

#include <stdbool.h>
#include <stdint.h>

#define FMX_WDK_HIDDEN __attribute__((visibility("hidden")))

/* Reports a call at too high an IRQL, naming the driver's call site. */
#define REQUIRE_IRQL(api, max) \
    fast_mutex_wdm_require_irql_(api, max, __builtin_return_address(0))

/* The status Windows gives for what errno says. */
FMX_WDK_HIDDEN NTSTATUS fmx_wdk_status_from_errno(int err);

/* UTF-16 (`len` units) to NUL-terminated UTF-8 in out[size].  Returns the
 * UTF-8 length, or -1 when it does not fit or holds a NUL or an unpaired
 * surrogate. */
FMX_WDK_HIDDEN int fmx_wdk_utf16_to_utf8(const WCHAR *in, size_t len, char *out, size_t size);

/* Appends UTF-8 `in` (`len` bytes) to out as UTF-16, at most `room` units;
 * returns the units the whole of it needs (bad bytes become U+FFFD). */
FMX_WDK_HIDDEN size_t fmx_wdk_utf8_to_utf16(const char *in, size_t len, WCHAR *out, size_t room);

/* Formats as Windows' printf family does (see ntstrsafe.h) into a
 * malloc'ed UTF-8 string; `wide` says whether the format itself is UTF-16
 * (then %s means a WCHAR string).  Returns NULL for a format with %n or
 * when memory runs out. */
FMX_WDK_HIDDEN char *fmx_wdk_vformat(const void *format, bool wide, va_list args);

/* A handle's object.  It lives while references to it remain: the handle
 * table's (one per handle), one for each call using it, one for each
 * ObReferenceObjectByHandle, and a thread's own while it runs; so a handle
 * closed by one thread while another uses it leaves the object whole until
 * that call ends, as on Windows. */
enum fmx_wdk_object_type { FMX_WDK_FILE = 1, FMX_WDK_THREAD = 2 };

struct fmx_wdk_object {
    enum fmx_wdk_object_type type;
    int refs; /* atomic */
};

/* Drops one reference; the last frees the object (files.c, threads.c). */
FMX_WDK_HIDDEN void fmx_wdk_object_put(struct fmx_wdk_object *object);
FMX_WDK_HIDDEN void fmx_wdk_file_free(struct fmx_wdk_object *object);
FMX_WDK_HIDDEN void fmx_wdk_thread_free(struct fmx_wdk_object *object);

/* Puts `object` in the handle table, handing it the caller's reference;
 * returns its handle, NULL when the table is full (the reference stays the
 * caller's). */
FMX_WDK_HIDDEN HANDLE fmx_wdk_handle_open(struct fmx_wdk_object *object);
/* The object behind `handle` if it has `type`, with a reference for the
 * caller to put; NULL otherwise, and *status says why
 * (STATUS_INVALID_HANDLE, STATUS_OBJECT_TYPE_MISMATCH). */
FMX_WDK_HIDDEN struct fmx_wdk_object *fmx_wdk_handle_get(HANDLE handle,
                                                         enum fmx_wdk_object_type type,
                                                         NTSTATUS *status);
/* Takes `handle` out of the table and returns its object with the table's
 * reference, NULL if there was none. */
FMX_WDK_HIDDEN struct fmx_wdk_object *fmx_wdk_handle_close(HANDLE handle);

/* What closing a file handle does before the reference goes (files.c). */
FMX_WDK_HIDDEN void fmx_wdk_file_cleanup(struct fmx_wdk_object *object);

/* A path under the root, resolved: the open folder it lies in and its last
 * component ("" for the root itself). */
struct fmx_wdk_path {
    int dir_fd;     /* owned; -1 when not resolved */
    char leaf[256]; /* one component, UTF-8 */
};

/* Resolves the NT path `name` (or a name relative to the folder handle
 * `root_dir`) to its folder under the root, which must exist, matching
 * each folder's name without regard to ASCII case, and the last component
 * to an existing entry the same way (kept as given when there is none).
 * Returns STATUS_SUCCESS, STATUS_OBJECT_PATH_NOT_FOUND (a folder is
 * missing, or the path leads outside the root), STATUS_OBJECT_NAME_INVALID
 * (".", "..", characters Windows forbids, a NUL) or
 * STATUS_OBJECT_PATH_SYNTAX_BAD (a path that names no drive). */
FMX_WDK_HIDDEN NTSTATUS fmx_wdk_resolve(const UNICODE_STRING *name, HANDLE root_dir,
                                        struct fmx_wdk_path *out);
FMX_WDK_HIDDEN void fmx_wdk_path_free(struct fmx_wdk_path *path);

/* The folder a file handle refers to, for names relative to it: a
 * descriptor of the caller's own, or -1 with *status set. */
FMX_WDK_HIDDEN int fmx_wdk_file_dir_fd(HANDLE handle, NTSTATUS *status);

/* 100 ns units since 1601-01-01 UTC, and a Windows timeout turned into an
 * absolute CLOCK_MONOTONIC time. */
FMX_WDK_HIDDEN int64_t fmx_wdk_system_time(void);
FMX_WDK_HIDDEN struct timespec fmx_wdk_deadline(const LARGE_INTEGER *timeout);

#endif
