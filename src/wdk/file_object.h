/* The file object behind a file handle (files.c, file_io.c, file_info.c). */
#ifndef FMX_WDK_FILE_OBJECT_H
#define FMX_WDK_FILE_OBJECT_H

#include "wdk_internal.h"

#include <pthread.h>
#include <sys/types.h>

struct file_object {
    struct fmx_wdk_object base;
    int fd;          /* O_PATH when the handle has no data access */
    ACCESS_MASK access; /* granted, generic rights mapped */
    ULONG share;     /* FILE_SHARE_* */
    bool synchronous; /* FILE_SYNCHRONOUS_IO_*: the handle keeps a position */
    bool directory;
    bool delete_pending; /* FileDispositionInformation or FILE_DELETE_ON_CLOSE */
    dev_t dev;
    ino_t ino;
    /* Where the file is, for rename and delete: updated by renames made
     * through any handle.  Guarded by fmx_wdk_files_lock. */
    int dir_fd;
    char leaf[256];
    /* Serializes I/O on the handle, as Windows serializes synchronous I/O
     * on a file object. */
    pthread_mutex_t io_lock;
    struct file_object *next; /* in the list of open files */
};

/* Guards the list of open files and their locations. */
extern FMX_WDK_HIDDEN pthread_mutex_t fmx_wdk_files_lock;
extern FMX_WDK_HIDDEN struct file_object *fmx_wdk_open_files;

/* The file object of `handle`, or NULL with *status set. */
static inline struct file_object *file_of(HANDLE handle, NTSTATUS *status)
{
    return (struct file_object *)fmx_wdk_handle_get(handle, FMX_WDK_FILE, status);
}

#endif
