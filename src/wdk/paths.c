/* NT paths to folders under the root (see doc/wdk.md):
 *
 *   \??\C:\Temp\file_1.txt, \DosDevices\C:\Temp\file_1.txt and
 *   \GLOBAL??\C:\Temp\file_1.txt   ->   ROOT/C/Temp/file_1.txt
 *
 * Each component is matched to an existing entry without regard to ASCII
 * case, as Windows' file systems do; a new file keeps the case it was given.
 * "." and ".." are refused as Windows refuses them in NT paths, and symbolic
 * links are never followed, so nothing outside the root can be reached. */
#include "wdk_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t root_lock = PTHREAD_MUTEX_INITIALIZER;
static int root_fd = -1;
static bool root_looked_up;

NTSTATUS fast_mutex_wdk_set_root(const char *Root)
{
    int fd = open(Root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return STATUS_OBJECT_PATH_NOT_FOUND;
    pthread_mutex_lock(&root_lock);
    if (root_fd >= 0)
        close(root_fd);
    root_fd = fd;
    root_looked_up = true;
    pthread_mutex_unlock(&root_lock);
    return STATUS_SUCCESS;
}

/* A descriptor of its own for the root folder, -1 when there is none. */
static int open_root(void)
{
    int fd = -1;
    pthread_mutex_lock(&root_lock);
    if (!root_looked_up) {
        const char *env = getenv("FASTMUTEX_WDK_ROOT");
        if (env != NULL && env[0] != '\0')
            root_fd = open(env, O_PATH | O_DIRECTORY | O_CLOEXEC);
        root_looked_up = true;
    }
    if (root_fd >= 0)
        fd = fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
    pthread_mutex_unlock(&root_lock);
    return fd;
}

/* Whether component c (NUL-terminated UTF-8) may name a file on Windows. */
static bool valid_component(const char *c)
{
    if (c[0] == '\0' || strcmp(c, ".") == 0 || strcmp(c, "..") == 0 || strlen(c) > 255)
        return false;
    for (const unsigned char *p = (const unsigned char *)c; *p != '\0'; p++)
        if (*p < 0x20 || strchr("<>:\"/|?*", *p) != NULL)
            return false;
    return true;
}

/* The entry of folder dir_fd named `name`, or else one whose name differs
 * only in ASCII case, copied into real[256]; `name` itself when none. */
static void match_case(int dir_fd, const char *name, char real[256])
{
    struct stat st;
    snprintf(real, 256, "%s", name);
    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return;
    int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    DIR *dir = fdopendir(fd);
    if (dir == NULL) {
        close(fd);
        return;
    }
    for (struct dirent *e; (e = readdir(dir)) != NULL;)
        if (strcasecmp(e->d_name, name) == 0) {
            snprintf(real, 256, "%s", e->d_name);
            break;
        }
    closedir(dir);
}

/* Steps from folder *dir_fd into its subfolder `name`. */
static NTSTATUS enter(int *dir_fd, const char *name)
{
    char real[256];
    match_case(*dir_fd, name, real);
    /* O_NOFOLLOW with O_PATH opens a symbolic link itself, which then is
     * no folder: links are not followed. */
    int fd = openat(*dir_fd, real, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return STATUS_OBJECT_PATH_NOT_FOUND;
    close(*dir_fd);
    *dir_fd = fd;
    return STATUS_SUCCESS;
}

/* Where the path starts: past "\??\C:" and the like, with the drive in
 * drive[2] (""), or the folder of a handle for a relative name. */
static NTSTATUS start(char **rest, HANDLE root_dir, int *dir_fd, char drive[2])
{
    static const char *const prefixes[] = {"\\??\\", "\\DosDevices\\", "\\GLOBAL??\\"};
    char *p = *rest;
    drive[0] = '\0';
    if (root_dir != NULL) {
        NTSTATUS status;
        if (p[0] == '\\')
            return STATUS_OBJECT_PATH_SYNTAX_BAD;
        *dir_fd = fmx_wdk_file_dir_fd(root_dir, &status);
        return *dir_fd >= 0 ? STATUS_SUCCESS : status;
    }
    if (p[0] != '\\')
        return STATUS_OBJECT_PATH_SYNTAX_BAD;
    size_t k = 0;
    while (k < 3 && strncasecmp(p, prefixes[k], strlen(prefixes[k])) != 0)
        k++;
    if (k == 3)
        return STATUS_OBJECT_PATH_NOT_FOUND; /* an object directory we do not have */
    p += strlen(prefixes[k]);
    if (!((p[0] >= 'A' && p[0] <= 'Z') || (p[0] >= 'a' && p[0] <= 'z')) || p[1] != ':' ||
        (p[2] != '\0' && p[2] != '\\'))
        return STATUS_OBJECT_PATH_NOT_FOUND;
    drive[0] = p[0];
    drive[1] = '\0';
    *rest = p[2] == '\\' ? p + 3 : p + 2;
    *dir_fd = open_root();
    return *dir_fd >= 0 ? STATUS_SUCCESS : STATUS_OBJECT_PATH_NOT_FOUND;
}

/* Walks the components of `rest`, leaving the last in out->leaf. */
static NTSTATUS walk(char *rest, char drive[2], struct fmx_wdk_path *out)
{
    /* One trailing backslash may end a folder's name. */
    size_t len = strlen(rest);
    if (len > 0 && rest[len - 1] == '\\')
        rest[len - 1] = '\0';
    char *leaf = drive[0] != '\0' ? drive : NULL;
    char *save = NULL;
    for (char *c = rest; c != NULL; c = save) {
        save = strchr(c, '\\');
        if (save != NULL)
            *save++ = '\0';
        if (c[0] == '\0' && save == NULL && leaf != NULL && c == rest)
            break; /* "\??\C:" or "\??\C:\": the drive itself */
        if (!valid_component(c))
            return STATUS_OBJECT_NAME_INVALID;
        if (leaf != NULL) {
            NTSTATUS status = enter(&out->dir_fd, leaf);
            if (!NT_SUCCESS(status))
                return status;
        }
        leaf = c;
    }
    if (leaf == NULL)
        return STATUS_OBJECT_NAME_INVALID;
    match_case(out->dir_fd, leaf, out->leaf);
    return STATUS_SUCCESS;
}

NTSTATUS fmx_wdk_resolve(const UNICODE_STRING *name, HANDLE root_dir, struct fmx_wdk_path *out)
{
    char utf8[4096], drive[2];
    out->dir_fd = -1;
    out->leaf[0] = '\0';
    if (name == NULL || name->Buffer == NULL || name->Length == 0 || name->Length % 2 != 0)
        return STATUS_OBJECT_NAME_INVALID;
    if (fmx_wdk_utf16_to_utf8(name->Buffer, name->Length / sizeof(WCHAR), utf8, sizeof utf8) < 0)
        return STATUS_OBJECT_NAME_INVALID;
    char *rest = utf8;
    NTSTATUS status = start(&rest, root_dir, &out->dir_fd, drive);
    if (NT_SUCCESS(status))
        status = walk(rest, drive, out);
    if (!NT_SUCCESS(status))
        fmx_wdk_path_free(out);
    return status;
}

void fmx_wdk_path_free(struct fmx_wdk_path *path)
{
    if (path->dir_fd >= 0)
        close(path->dir_fd);
    path->dir_fd = -1;
}
