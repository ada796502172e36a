/* ZwCreateFile, ZwOpenFile and the closing of file handles: dispositions,
 * access and share modes as Windows documents them, on POSIX files. */
#include "file_object.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATUS_EAS_NOT_SUPPORTED FMX_STATUS_(0xC000004Fu)

pthread_mutex_t fmx_wdk_files_lock = PTHREAD_MUTEX_INITIALIZER;
struct file_object *fmx_wdk_open_files;

#define READ_ACCESS (FILE_READ_DATA | FILE_EXECUTE)
#define WRITE_ACCESS (FILE_WRITE_DATA | FILE_APPEND_DATA)

/* Generic rights as the file object type maps them. */
static ACCESS_MASK map_generic(ACCESS_MASK access)
{
    ACCESS_MASK mapped = access & ~(ACCESS_MASK)(GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE |
                                                 GENERIC_ALL);
    if (access & GENERIC_READ)
        mapped |= FILE_GENERIC_READ;
    if (access & GENERIC_WRITE)
        mapped |= FILE_GENERIC_WRITE;
    if (access & GENERIC_EXECUTE)
        mapped |= FILE_GENERIC_EXECUTE;
    if (access & GENERIC_ALL)
        mapped |= FILE_ALL_ACCESS;
    return mapped;
}

/* Whether an open with `access` and `share` may join `other`, as
 * IoCheckShareAccess decides: opens without read, write or delete access
 * take no part. */
static bool shares_with(ACCESS_MASK access, ULONG share, const struct file_object *other)
{
    bool reads = access & READ_ACCESS, writes = access & WRITE_ACCESS, deletes = access & DELETE;
    bool o_reads = other->access & READ_ACCESS, o_writes = other->access & WRITE_ACCESS,
         o_deletes = other->access & DELETE;
    if (!(reads || writes || deletes) || !(o_reads || o_writes || o_deletes))
        return true;
    if ((reads && !(other->share & FILE_SHARE_READ)) ||
        (writes && !(other->share & FILE_SHARE_WRITE)) ||
        (deletes && !(other->share & FILE_SHARE_DELETE)))
        return false;
    return !((o_reads && !(share & FILE_SHARE_READ)) || (o_writes && !(share & FILE_SHARE_WRITE)) ||
             (o_deletes && !(share & FILE_SHARE_DELETE)));
}

/* Checks f against the files already open and puts it in their list. */
static NTSTATUS join_open_files(struct file_object *f)
{
    NTSTATUS status = STATUS_SUCCESS;
    pthread_mutex_lock(&fmx_wdk_files_lock);
    for (struct file_object *o = fmx_wdk_open_files; o != NULL; o = o->next)
        if (o->dev == f->dev && o->ino == f->ino) {
            if (!shares_with(f->access, f->share, o))
                status = STATUS_SHARING_VIOLATION;
            else if (o->delete_pending)
                status = STATUS_DELETE_PENDING;
            if (!NT_SUCCESS(status))
                break;
        }
    if (NT_SUCCESS(status)) {
        f->next = fmx_wdk_open_files;
        fmx_wdk_open_files = f;
    }
    pthread_mutex_unlock(&fmx_wdk_files_lock);
    return status;
}

/* What the caller asked for, checked before anything is touched. */
static NTSTATUS check_arguments(PHANDLE FileHandle, POBJECT_ATTRIBUTES ObjectAttributes,
                                PIO_STATUS_BLOCK IoStatusBlock, ACCESS_MASK access,
                                ULONG ShareAccess, ULONG CreateDisposition, ULONG CreateOptions)
{
    if (FileHandle == NULL || ObjectAttributes == NULL || IoStatusBlock == NULL)
        return STATUS_INVALID_PARAMETER;
    if (CreateDisposition > FILE_MAXIMUM_DISPOSITION || (ShareAccess & ~FILE_SHARE_VALID_FLAGS) ||
        (CreateOptions & ~FILE_VALID_OPTION_FLAGS))
        return STATUS_INVALID_PARAMETER;
    if ((CreateOptions & FILE_DIRECTORY_FILE) && (CreateOptions & FILE_NON_DIRECTORY_FILE))
        return STATUS_INVALID_PARAMETER;
    if ((CreateOptions & FILE_DIRECTORY_FILE) && CreateDisposition != FILE_CREATE &&
        CreateDisposition != FILE_OPEN && CreateDisposition != FILE_OPEN_IF)
        return STATUS_INVALID_PARAMETER;
    /* Synchronous I/O waits on the file object: it needs SYNCHRONIZE. */
    if ((CreateOptions & (FILE_SYNCHRONOUS_IO_ALERT | FILE_SYNCHRONOUS_IO_NONALERT)) &&
        !(access & SYNCHRONIZE))
        return STATUS_INVALID_PARAMETER;
    if ((CreateOptions & FILE_SYNCHRONOUS_IO_ALERT) && (CreateOptions & FILE_SYNCHRONOUS_IO_NONALERT))
        return STATUS_INVALID_PARAMETER;
    if ((CreateOptions & FILE_DELETE_ON_CLOSE) && !(access & DELETE))
        return STATUS_INVALID_PARAMETER;
    return STATUS_SUCCESS;
}

/* The open(2) flags for a handle with `access`. */
static int open_mode(ACCESS_MASK access, bool directory)
{
    bool reads = access & (READ_ACCESS | FILE_READ_ATTRIBUTES | FILE_READ_EA);
    bool writes = access & WRITE_ACCESS;
    if (directory)
        return O_RDONLY | O_DIRECTORY;
    if (writes) {
        /* Append-only access: every write lands at the end. */
        int append = (access & FILE_APPEND_DATA) && !(access & FILE_WRITE_DATA) ? O_APPEND : 0;
        return (reads ? O_RDWR : O_WRONLY) | append;
    }
    return reads ? O_RDONLY : O_PATH;
}

/* Opens or creates path's leaf as the disposition says; sets *info. */
static NTSTATUS open_leaf(const struct fmx_wdk_path *path, ACCESS_MASK access, ULONG attributes,
                          ULONG disposition, ULONG options, int *fd, ULONG_PTR *info)
{
    struct stat st;
    bool exists = fstatat(path->dir_fd, path->leaf, &st, AT_SYMLINK_NOFOLLOW) == 0;
    bool is_dir = exists && S_ISDIR(st.st_mode);
    bool want_dir = options & FILE_DIRECTORY_FILE;
    mode_t mode = (attributes & FILE_ATTRIBUTE_READONLY) ? 0444 : 0666;
    if (exists && S_ISLNK(st.st_mode))
        return STATUS_OBJECT_PATH_NOT_FOUND; /* links are not followed */
    if (exists && disposition == FILE_CREATE) {
        *info = FILE_EXISTS;
        return STATUS_OBJECT_NAME_COLLISION;
    }
    if (!exists && (disposition == FILE_OPEN || disposition == FILE_OVERWRITE)) {
        *info = FILE_DOES_NOT_EXIST;
        return STATUS_OBJECT_NAME_NOT_FOUND;
    }
    if (exists && is_dir && ((options & FILE_NON_DIRECTORY_FILE) ||
                             (disposition != FILE_OPEN && disposition != FILE_OPEN_IF)))
        return STATUS_FILE_IS_A_DIRECTORY;
    if (exists && !is_dir && want_dir)
        return STATUS_NOT_A_DIRECTORY;
    if (!exists && want_dir) {
        if (mkdirat(path->dir_fd, path->leaf, 0777) != 0)
            return fmx_wdk_status_from_errno(errno);
        is_dir = true;
    }
    int flags = open_mode(access, is_dir) | O_NOFOLLOW | O_CLOEXEC;
    if (!exists && !want_dir)
        flags |= O_CREAT | O_EXCL;
    if (exists && !is_dir && disposition != FILE_OPEN && disposition != FILE_OPEN_IF &&
        (flags & O_PATH))
        flags = (flags & ~O_PATH) | O_WRONLY; /* overwriting needs a writable descriptor */
    *fd = openat(path->dir_fd, path->leaf, flags, mode);
    if (*fd < 0)
        return fmx_wdk_status_from_errno(errno);
    *info = !exists ? FILE_CREATED
            : disposition == FILE_SUPERSEDE ? FILE_SUPERSEDED
            : (disposition == FILE_OVERWRITE || disposition == FILE_OVERWRITE_IF) ? FILE_OVERWRITTEN
            : FILE_OPENED;
    return STATUS_SUCCESS;
}

static void free_file(struct file_object *f)
{
    /* The last reference: no call uses f any more. */
    if (f->fd >= 0)
        close(f->fd);
    if (f->dir_fd >= 0)
        close(f->dir_fd);
    pthread_mutex_destroy(&f->io_lock);
    free(f);
}

/* Makes the file object for an opened fd; on failure closes fd. */
static NTSTATUS make_file(int fd, const struct fmx_wdk_path *path, ACCESS_MASK access, ULONG share,
                          ULONG options, struct file_object **out)
{
    struct stat st;
    struct file_object *f = calloc(1, sizeof *f);
    if (f == NULL) {
        close(fd);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    f->base.type = FMX_WDK_FILE;
    f->base.refs = 1; /* the creator's, handed to the handle table */
    f->fd = fd;
    f->dir_fd = fcntl(path->dir_fd, F_DUPFD_CLOEXEC, 0);
    pthread_mutex_init(&f->io_lock, NULL);
    if (f->dir_fd < 0 || fstat(fd, &st) != 0) {
        NTSTATUS status = fmx_wdk_status_from_errno(errno);
        free_file(f);
        return status;
    }
    snprintf(f->leaf, sizeof f->leaf, "%s", path->leaf);
    f->access = access;
    f->share = share;
    f->synchronous = options & (FILE_SYNCHRONOUS_IO_ALERT | FILE_SYNCHRONOUS_IO_NONALERT);
    f->directory = S_ISDIR(st.st_mode);
    f->delete_pending = options & FILE_DELETE_ON_CLOSE;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    *out = f;
    return STATUS_SUCCESS;
}

/* Takes f out of the list of open files; when it was the last handle of
 * a file marked for deletion, deletes it.  Returns whether it did. */
static bool leave_open_files(struct file_object *f)
{
    bool last = true, deleted = false;
    pthread_mutex_lock(&fmx_wdk_files_lock);
    for (struct file_object **p = &fmx_wdk_open_files; *p != NULL;) {
        if (*p == f) {
            *p = f->next;
            continue;
        }
        if ((*p)->dev == f->dev && (*p)->ino == f->ino) {
            last = false;
            /* The deletion is the file's, not the handle's: it waits for
             * the last handle. */
            (*p)->delete_pending |= f->delete_pending;
        }
        p = &(*p)->next;
    }
    if (last && f->delete_pending)
        deleted = unlinkat(f->dir_fd, f->leaf, f->directory ? AT_REMOVEDIR : 0) == 0;
    pthread_mutex_unlock(&fmx_wdk_files_lock);
    return deleted;
}

void fmx_wdk_file_cleanup(struct fmx_wdk_object *object)
{
    leave_open_files((struct file_object *)object);
}

void fmx_wdk_file_free(struct fmx_wdk_object *object)
{
    free_file((struct file_object *)object);
}

/* The steps of ZwCreateFile once its arguments are known to be good. */
static NTSTATUS create_file(PHANDLE FileHandle, ACCESS_MASK access,
                            POBJECT_ATTRIBUTES ObjectAttributes, ULONG_PTR *info, ULONG attributes,
                            ULONG share, ULONG disposition, ULONG options)
{
    struct fmx_wdk_path path;
    struct file_object *f = NULL;
    int fd = -1;
    NTSTATUS status = fmx_wdk_resolve(ObjectAttributes->ObjectName, ObjectAttributes->RootDirectory,
                                      &path);
    if (!NT_SUCCESS(status))
        return status;
    status = open_leaf(&path, access, attributes, disposition, options, &fd, info);
    if (NT_SUCCESS(status))
        status = make_file(fd, &path, access, share, options, &f);
    if (NT_SUCCESS(status))
        status = join_open_files(f);
    if (!NT_SUCCESS(status)) {
        /* A file made by this call goes again; one that was there stays
         * untouched, since sharing is checked before truncation. */
        if (*info == FILE_CREATED)
            unlinkat(path.dir_fd, path.leaf, f != NULL && f->directory ? AT_REMOVEDIR : 0);
        if (f != NULL)
            free_file(f);
        goto out;
    }
    if ((*info == FILE_OVERWRITTEN || *info == FILE_SUPERSEDED) && ftruncate(f->fd, 0) != 0)
        status = fmx_wdk_status_from_errno(errno);
    else if ((*FileHandle = fmx_wdk_handle_open(&f->base)) == NULL)
        status = STATUS_INSUFFICIENT_RESOURCES;
    if (!NT_SUCCESS(status)) {
        leave_open_files(f);
        free_file(f);
    }
out:
    fmx_wdk_path_free(&path);
    return status;
}

NTSTATUS ZwCreateFile(PHANDLE FileHandle, ACCESS_MASK DesiredAccess,
                      POBJECT_ATTRIBUTES ObjectAttributes, PIO_STATUS_BLOCK IoStatusBlock,
                      PLARGE_INTEGER AllocationSize, ULONG FileAttributes, ULONG ShareAccess,
                      ULONG CreateDisposition, ULONG CreateOptions, PVOID EaBuffer, ULONG EaLength)
{
    REQUIRE_IRQL("ZwCreateFile", PASSIVE_LEVEL);
    (void)AllocationSize; /* a hint, which POSIX files do without */
    ACCESS_MASK access = map_generic(DesiredAccess);
    ULONG_PTR info = 0;
    NTSTATUS status = check_arguments(FileHandle, ObjectAttributes, IoStatusBlock, access,
                                      ShareAccess, CreateDisposition, CreateOptions);
    if (NT_SUCCESS(status) && (EaBuffer != NULL || EaLength != 0))
        status = STATUS_EAS_NOT_SUPPORTED;
    if (NT_SUCCESS(status))
        status = create_file(FileHandle, access, ObjectAttributes, &info, FileAttributes,
                             ShareAccess, CreateDisposition, CreateOptions);
    if (IoStatusBlock != NULL) {
        IoStatusBlock->Status = status;
        IoStatusBlock->Information = info;
    }
    return status;
}

NTSTATUS ZwOpenFile(PHANDLE FileHandle, ACCESS_MASK DesiredAccess,
                    POBJECT_ATTRIBUTES ObjectAttributes, PIO_STATUS_BLOCK IoStatusBlock,
                    ULONG ShareAccess, ULONG OpenOptions)
{
    REQUIRE_IRQL("ZwOpenFile", PASSIVE_LEVEL);
    return ZwCreateFile(FileHandle, DesiredAccess, ObjectAttributes, IoStatusBlock, NULL, 0,
                        ShareAccess, FILE_OPEN, OpenOptions, NULL, 0);
}

int fmx_wdk_file_dir_fd(HANDLE handle, NTSTATUS *status)
{
    struct file_object *f = file_of(handle, status);
    int fd = -1;
    if (f == NULL)
        return -1;
    if (!f->directory)
        *status = STATUS_OBJECT_PATH_NOT_FOUND;
    else if ((fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 0)) < 0)
        *status = fmx_wdk_status_from_errno(errno);
    fmx_wdk_object_put(&f->base);
    return fd;
}
