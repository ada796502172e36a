/* ZwSetInformationFile and ZwQueryInformationFile: rename, delete,
 * position, size. */
#include "file_object.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where a rename sends the file: a bare name stays in the file's folder;
 * a name with a RootDirectory is relative to that folder; else an NT path. */
static NTSTATUS rename_target(const struct file_object *f, const FILE_RENAME_INFORMATION *info,
                              struct fmx_wdk_path *to)
{
    size_t units = info->FileNameLength / sizeof(WCHAR);
    UNICODE_STRING name = {(USHORT)info->FileNameLength, (USHORT)info->FileNameLength,
                           (PWSTR)info->FileName};
    bool bare = info->RootDirectory == NULL && units > 0;
    for (size_t i = 0; bare && i < units; i++)
        if (info->FileName[i] == '\\')
            bare = false;
    if (!bare)
        return fmx_wdk_resolve(&name, info->RootDirectory, to);
    to->dir_fd = fcntl(f->dir_fd, F_DUPFD_CLOEXEC, 0);
    if (to->dir_fd < 0)
        return fmx_wdk_status_from_errno(errno);
    if (fmx_wdk_utf16_to_utf8(info->FileName, units, to->leaf, sizeof to->leaf) < 0 ||
        strchr(to->leaf, '/') != NULL || strcmp(to->leaf, ".") == 0 || strcmp(to->leaf, "..") == 0) {
        fmx_wdk_path_free(to);
        return STATUS_OBJECT_NAME_INVALID;
    }
    return STATUS_SUCCESS;
}

/* Whether any handle is open on the file at `to` (Windows will not
 * replace a file that is open).  Called with fmx_wdk_files_lock held. */
static bool target_open(const struct fmx_wdk_path *to)
{
    struct stat st;
    if (fstatat(to->dir_fd, to->leaf, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return false;
    for (struct file_object *o = fmx_wdk_open_files; o != NULL; o = o->next)
        if (o->dev == st.st_dev && o->ino == st.st_ino)
            return true;
    return false;
}

static NTSTATUS set_rename(struct file_object *f, const FILE_RENAME_INFORMATION *info, ULONG length)
{
    struct fmx_wdk_path to;
    struct stat st;
    if (length < offsetof(FILE_RENAME_INFORMATION, FileName))
        return STATUS_INFO_LENGTH_MISMATCH;
    if (info->FileNameLength % 2 != 0 ||
        info->FileNameLength > length - offsetof(FILE_RENAME_INFORMATION, FileName))
        return STATUS_INVALID_PARAMETER;
    if (!(f->access & DELETE))
        return STATUS_ACCESS_DENIED;
    /* The lock keeps f's location and the open files still meanwhile. */
    pthread_mutex_lock(&fmx_wdk_files_lock);
    NTSTATUS status = rename_target(f, info, &to);
    if (!NT_SUCCESS(status)) {
        pthread_mutex_unlock(&fmx_wdk_files_lock);
        return status;
    }
    bool exists = fstatat(to.dir_fd, to.leaf, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && !(st.st_dev == f->dev && st.st_ino == f->ino)) {
        if (!info->ReplaceIfExists)
            status = STATUS_OBJECT_NAME_COLLISION;
        else if (S_ISDIR(st.st_mode) || target_open(&to))
            status = STATUS_ACCESS_DENIED;
    }
    if (NT_SUCCESS(status) &&
        renameat2(f->dir_fd, f->leaf, to.dir_fd, to.leaf, info->ReplaceIfExists ? 0 : RENAME_NOREPLACE) != 0)
        status = errno == EEXIST ? STATUS_OBJECT_NAME_COLLISION : fmx_wdk_status_from_errno(errno);
    /* Every handle of the file now finds it under its new name. */
    for (struct file_object *o = fmx_wdk_open_files; NT_SUCCESS(status) && o != NULL; o = o->next)
        if (o->dev == f->dev && o->ino == f->ino) {
            int fd = fcntl(to.dir_fd, F_DUPFD_CLOEXEC, 0);
            if (fd >= 0) {
                close(o->dir_fd);
                o->dir_fd = fd;
                snprintf(o->leaf, sizeof o->leaf, "%s", to.leaf);
            }
        }
    pthread_mutex_unlock(&fmx_wdk_files_lock);
    fmx_wdk_path_free(&to);
    return status;
}

/* Marks the file for deletion when its last handle closes. */
static NTSTATUS set_disposition(struct file_object *f, const FILE_DISPOSITION_INFORMATION *info)
{
    if (!(f->access & DELETE))
        return STATUS_ACCESS_DENIED;
    if (info->DeleteFile && f->directory) {
        /* A folder must be empty to be deleted; Windows checks now. */
        int fd = openat(f->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
        bool empty = true;
        for (struct dirent *e; dir != NULL && (e = readdir(dir)) != NULL;)
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                empty = false;
        if (dir != NULL)
            closedir(dir);
        else if (fd >= 0)
            close(fd);
        if (!empty)
            return STATUS_DIRECTORY_NOT_EMPTY;
    }
    pthread_mutex_lock(&fmx_wdk_files_lock);
    f->delete_pending = info->DeleteFile;
    pthread_mutex_unlock(&fmx_wdk_files_lock);
    return STATUS_SUCCESS;
}

static NTSTATUS set_position(struct file_object *f, const FILE_POSITION_INFORMATION *info,
                             ULONG length)
{
    if (length < sizeof *info)
        return STATUS_INFO_LENGTH_MISMATCH;
    if (info->CurrentByteOffset.QuadPart < 0)
        return STATUS_INVALID_PARAMETER;
    if (lseek(f->fd, (off_t)info->CurrentByteOffset.QuadPart, SEEK_SET) < 0)
        return fmx_wdk_status_from_errno(errno);
    return STATUS_SUCCESS;
}

static NTSTATUS set_end_of_file(struct file_object *f, const FILE_END_OF_FILE_INFORMATION *info,
                                ULONG length)
{
    if (length < sizeof *info)
        return STATUS_INFO_LENGTH_MISMATCH;
    if (!(f->access & FILE_WRITE_DATA))
        return STATUS_ACCESS_DENIED;
    if (info->EndOfFile.QuadPart < 0)
        return STATUS_INVALID_PARAMETER;
    if (ftruncate(f->fd, (off_t)info->EndOfFile.QuadPart) != 0)
        return fmx_wdk_status_from_errno(errno);
    return STATUS_SUCCESS;
}

static NTSTATUS set_information(struct file_object *f, PVOID info, ULONG length,
                                FILE_INFORMATION_CLASS info_class)
{
    switch (info_class) {
    case FileRenameInformation: return set_rename(f, info, length);
    case FileDispositionInformation:
        if (length < sizeof(FILE_DISPOSITION_INFORMATION))
            return STATUS_INFO_LENGTH_MISMATCH;
        return set_disposition(f, info);
    case FilePositionInformation: return set_position(f, info, length);
    case FileEndOfFileInformation: return set_end_of_file(f, info, length);
    default: return STATUS_INVALID_INFO_CLASS;
    }
}

NTSTATUS ZwSetInformationFile(HANDLE FileHandle, PIO_STATUS_BLOCK IoStatusBlock,
                              PVOID FileInformation, ULONG Length,
                              FILE_INFORMATION_CLASS FileInformationClass)
{
    REQUIRE_IRQL("ZwSetInformationFile", PASSIVE_LEVEL);
    NTSTATUS status;
    struct file_object *f = file_of(FileHandle, &status);
    if (f != NULL) {
        if (IoStatusBlock == NULL || FileInformation == NULL)
            status = STATUS_INVALID_PARAMETER;
        else
            status = set_information(f, FileInformation, Length, FileInformationClass);
        fmx_wdk_object_put(&f->base);
    }
    if (IoStatusBlock != NULL) {
        IoStatusBlock->Status = status;
        IoStatusBlock->Information = 0;
    }
    return status;
}

static NTSTATUS query_standard(struct file_object *f, FILE_STANDARD_INFORMATION *info, ULONG length,
                               ULONG_PTR *written)
{
    struct stat st;
    if (length < sizeof *info)
        return STATUS_INFO_LENGTH_MISMATCH;
    if (fstat(f->fd, &st) != 0)
        return fmx_wdk_status_from_errno(errno);
    info->AllocationSize.QuadPart = (LONGLONG)st.st_blocks * 512;
    info->EndOfFile.QuadPart = st.st_size;
    info->NumberOfLinks = (ULONG)st.st_nlink;
    info->DeletePending = f->delete_pending;
    info->Directory = S_ISDIR(st.st_mode);
    *written = sizeof *info;
    return STATUS_SUCCESS;
}

static NTSTATUS query_position(struct file_object *f, FILE_POSITION_INFORMATION *info, ULONG length,
                               ULONG_PTR *written)
{
    if (length < sizeof *info)
        return STATUS_INFO_LENGTH_MISMATCH;
    off_t at = lseek(f->fd, 0, SEEK_CUR);
    if (at < 0)
        return fmx_wdk_status_from_errno(errno);
    info->CurrentByteOffset.QuadPart = at;
    *written = sizeof *info;
    return STATUS_SUCCESS;
}

NTSTATUS ZwQueryInformationFile(HANDLE FileHandle, PIO_STATUS_BLOCK IoStatusBlock,
                                PVOID FileInformation, ULONG Length,
                                FILE_INFORMATION_CLASS FileInformationClass)
{
    REQUIRE_IRQL("ZwQueryInformationFile", PASSIVE_LEVEL);
    NTSTATUS status;
    ULONG_PTR written = 0;
    struct file_object *f = file_of(FileHandle, &status);
    if (f != NULL) {
        if (IoStatusBlock == NULL || FileInformation == NULL)
            status = STATUS_INVALID_PARAMETER;
        else if (FileInformationClass == FileStandardInformation)
            status = query_standard(f, FileInformation, Length, &written);
        else if (FileInformationClass == FilePositionInformation)
            status = query_position(f, FileInformation, Length, &written);
        else
            status = STATUS_INVALID_INFO_CLASS;
        fmx_wdk_object_put(&f->base);
    }
    if (IoStatusBlock != NULL) {
        IoStatusBlock->Status = status;
        IoStatusBlock->Information = written;
    }
    return status;
}
