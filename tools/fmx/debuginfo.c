/* Separate debug info, looked for safely; see debuginfo.h. */
#include "debuginfo.h"

#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Where Debian installs debug files (the -dbgsym packages). */
#define SYSTEM_DEBUG_DIR "/usr/lib/debug"

/* Opens `path` if it is a regular file; never blocks, whatever it is. */
static int open_regular(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Whether the ELF file open at fd has build id `id` of `len` bytes. */
static bool has_build_id(int fd, const unsigned char *id, int len)
{
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    if (elf == NULL)
        return false;
    const void *found = NULL;
    ssize_t found_len = dwelf_elf_gnu_build_id(elf, &found);
    bool same = found_len == len && memcmp(found, id, (size_t)len) == 0;
    elf_end(elf);
    return same;
}

/* Whether the file open at fd has the CRC-32 a .gnu_debuglink gives. */
static bool has_crc(int fd, GElf_Word crc)
{
    unsigned char buf[65536];
    uLong sum = crc32(0L, Z_NULL, 0);
    ssize_t n;
    off_t off = 0;
    while ((n = pread(fd, buf, sizeof buf, off)) > 0) {
        sum = crc32(sum, buf, (uInt)n);
        off += n;
    }
    return n == 0 && (GElf_Word)sum == crc;
}

/* The module's build id, or len 0 when it has none. */
struct build_id {
    const unsigned char *bits;
    int len;
};

/* Opens candidate `path` when it is a regular file that belongs to the
 * module; on success hands the name over in *name. */
static int try_candidate(const char *path, const struct build_id *id, const char *debuglink,
                         GElf_Word crc, char **name)
{
    int fd = open_regular(path);
    if (fd < 0)
        return -1;
    bool matches = id->len > 0 ? has_build_id(fd, id->bits, id->len)
                               : debuglink != NULL && has_crc(fd, crc);
    if (!matches || (*name = strdup(path)) == NULL) {
        close(fd);
        return -1;
    }
    return fd;
}

/* /usr/lib/debug/.build-id/xx/yyyy.debug */
static void build_id_path(const struct build_id *id, char *path, size_t size)
{
    int n = snprintf(path, size, SYSTEM_DEBUG_DIR "/.build-id/%02x/", id->bits[0]);
    for (int i = 1; i < id->len && n > 0 && (size_t)n + 3 < size; i++)
        n += snprintf(path + n, size - (size_t)n, "%02x", id->bits[i]);
    if (n > 0 && (size_t)n < size)
        snprintf(path + n, size - (size_t)n, ".debug");
}

int fmx_find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, GElf_Addr base,
                       const char *file_name, const char *debuglink_file, GElf_Word debuglink_crc,
                       char **debuginfo_file_name)
{
    (void)userdata;
    (void)modname;
    (void)base;
    char path[4096];
    struct build_id id = {NULL, 0};
    GElf_Addr vaddr;
    int len = dwfl_module_build_id(mod, &id.bits, &vaddr);
    id.len = len > 0 ? len : 0;
    if (id.len > 0) {
        build_id_path(&id, path, sizeof path);
        int fd = try_candidate(path, &id, NULL, 0, debuginfo_file_name);
        if (fd >= 0)
            return fd;
    }
    /* A debuglink is a file name, not a path: anything else is refused. */
    if (debuglink_file == NULL || file_name == NULL || debuglink_file[0] == '\0' ||
        strchr(debuglink_file, '/') != NULL || file_name[0] != '/')
        return -1;
    const char *slash = strrchr(file_name, '/');
    int dir_len = (int)(slash - file_name);
    const char *const formats[] = {"%.*s/%s", "%.*s/.debug/%s", SYSTEM_DEBUG_DIR "%.*s/%s"};
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        int n = snprintf(path, sizeof path, formats[i], dir_len, file_name, debuglink_file);
        if (n < 0 || (size_t)n >= sizeof path || strcmp(path, file_name) == 0)
            continue;
        int fd = try_candidate(path, &id, debuglink_file, debuglink_crc, debuginfo_file_name);
        if (fd >= 0)
            return fd;
    }
    return -1;
}
