/* ZwReadFile and ZwWriteFile: synchronous I/O on a file handle. */
#include "file_object.h"

#include <errno.h>
#include <unistd.h>

/* Where the I/O goes: -1 for the file position, -2 for the end, else the
 * byte offset; or a failure status. */
static NTSTATUS io_offset(const struct file_object *f, const LARGE_INTEGER *ByteOffset, bool write,
                          off_t *offset)
{
    if (ByteOffset == NULL) {
        /* Only a synchronous handle keeps a position to use. */
        if (!f->synchronous)
            return STATUS_INVALID_PARAMETER;
        *offset = -1;
        return STATUS_SUCCESS;
    }
    if (ByteOffset->u.HighPart == -1 && ByteOffset->u.LowPart == FILE_USE_FILE_POINTER_POSITION &&
        f->synchronous) {
        *offset = -1;
        return STATUS_SUCCESS;
    }
    if (write && ByteOffset->u.HighPart == -1 && ByteOffset->u.LowPart == FILE_WRITE_TO_END_OF_FILE) {
        *offset = -2;
        return STATUS_SUCCESS;
    }
    if (ByteOffset->QuadPart < 0)
        return STATUS_INVALID_PARAMETER;
    *offset = (off_t)ByteOffset->QuadPart;
    return STATUS_SUCCESS;
}

/* What both calls check first: the handle's access, what this subset
 * does not offer (event handles, APCs), and the offset. */
static NTSTATUS begin_io(struct file_object *f, HANDLE Event, PIO_APC_ROUTINE ApcRoutine,
                         PIO_STATUS_BLOCK IoStatusBlock, const LARGE_INTEGER *ByteOffset, bool write,
                         off_t *offset)
{
    if (IoStatusBlock == NULL)
        return STATUS_INVALID_PARAMETER;
    if (Event != NULL)
        return STATUS_INVALID_HANDLE; /* no event handles exist here */
    if (ApcRoutine != NULL)
        return f->synchronous ? STATUS_INVALID_PARAMETER : STATUS_NOT_SUPPORTED;
    if (f->directory)
        return STATUS_INVALID_DEVICE_REQUEST;
    if (!(f->access & (write ? (FILE_WRITE_DATA | FILE_APPEND_DATA) : FILE_READ_DATA)))
        return STATUS_ACCESS_DENIED;
    return io_offset(f, ByteOffset, write, offset);
}

/* Writes all of buf at `offset` (see io_offset) or fails; *done counts. */
static NTSTATUS write_all(struct file_object *f, const char *buf, size_t len, off_t offset,
                          size_t *done)
{
    if (offset == -2 && !(f->access & FILE_WRITE_DATA))
        offset = -1; /* append-only handles write at the end anyway (O_APPEND) */
    else if (offset == -2 && (offset = lseek(f->fd, 0, SEEK_END)) < 0)
        return fmx_wdk_status_from_errno(errno);
    while (*done < len) {
        ssize_t n = offset < 0 ? write(f->fd, buf + *done, len - *done)
                               : pwrite(f->fd, buf + *done, len - *done, offset + (off_t)*done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? fmx_wdk_status_from_errno(errno) : STATUS_DISK_FULL;
        *done += (size_t)n;
    }
    /* A synchronous handle's position follows the I/O, wherever it went. */
    if (offset >= 0 && f->synchronous && lseek(f->fd, offset + (off_t)*done, SEEK_SET) < 0)
        return fmx_wdk_status_from_errno(errno);
    return STATUS_SUCCESS;
}

static NTSTATUS read_some(struct file_object *f, char *buf, size_t len, off_t offset, size_t *done)
{
    while (*done < len) {
        ssize_t n = offset < 0 ? read(f->fd, buf + *done, len - *done)
                               : pread(f->fd, buf + *done, len - *done, offset + (off_t)*done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fmx_wdk_status_from_errno(errno);
        if (n == 0)
            break;
        *done += (size_t)n;
    }
    if (offset >= 0 && f->synchronous && lseek(f->fd, offset + (off_t)*done, SEEK_SET) < 0)
        return fmx_wdk_status_from_errno(errno);
    return *done == 0 && len > 0 ? STATUS_END_OF_FILE : STATUS_SUCCESS;
}

/* The body of ZwWriteFile and ZwReadFile: the handle's file, the offset
 * (given, or the file's own), then the whole transfer under its lock. */
static NTSTATUS transfer(HANDLE FileHandle, HANDLE Event, PIO_APC_ROUTINE ApcRoutine,
                         PIO_STATUS_BLOCK IoStatusBlock, PVOID Buffer, ULONG Length,
                         PLARGE_INTEGER ByteOffset, bool write)
{
    off_t offset = -1;
    size_t done = 0;
    NTSTATUS status;
    struct file_object *f = file_of(FileHandle, &status);
    if (f != NULL) {
        status = begin_io(f, Event, ApcRoutine, IoStatusBlock, ByteOffset, write, &offset);
        if (NT_SUCCESS(status)) {
            pthread_mutex_lock(&f->io_lock);
            status = write ? write_all(f, Buffer, Length, offset, &done)
                           : read_some(f, Buffer, Length, offset, &done);
            pthread_mutex_unlock(&f->io_lock);
        }
        fmx_wdk_object_put(&f->base);
    }
    if (IoStatusBlock != NULL) {
        IoStatusBlock->Status = status;
        IoStatusBlock->Information = done;
    }
    return status;
}

NTSTATUS ZwWriteFile(HANDLE FileHandle, HANDLE Event, PIO_APC_ROUTINE ApcRoutine, PVOID ApcContext,
                     PIO_STATUS_BLOCK IoStatusBlock, PVOID Buffer, ULONG Length,
                     PLARGE_INTEGER ByteOffset, PULONG Key)
{
    REQUIRE_IRQL("ZwWriteFile", PASSIVE_LEVEL);
    (void)ApcContext;
    (void)Key; /* byte-range lock keys: no locks here to match */
    return transfer(FileHandle, Event, ApcRoutine, IoStatusBlock, Buffer, Length, ByteOffset, true);
}

NTSTATUS ZwReadFile(HANDLE FileHandle, HANDLE Event, PIO_APC_ROUTINE ApcRoutine, PVOID ApcContext,
                    PIO_STATUS_BLOCK IoStatusBlock, PVOID Buffer, ULONG Length,
                    PLARGE_INTEGER ByteOffset, PULONG Key)
{
    REQUIRE_IRQL("ZwReadFile", PASSIVE_LEVEL);
    (void)ApcContext;
    (void)Key;
    return transfer(FileHandle, Event, ApcRoutine, IoStatusBlock, Buffer, Length, ByteOffset, false);
}
