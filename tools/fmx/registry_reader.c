/* Reading another process's waiter registry; see registry_reader.h. */
#include "registry_reader.h"
#include "untrusted.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* How many times a record that keeps changing is read again before it is
 * reported as changing.  A writer holds a record odd for a few stores, so a
 * handful of retries is plenty; the bound keeps a hostile writer from
 * holding fmx forever. */
#define FMX_READER_RETRIES 64

void fmx_display_string(char *out, const void *field, size_t len)
{
    const unsigned char *bytes = field;
    size_t n = 0;
    while (n < len && bytes[n] != '\0') {
        unsigned char c = bytes[n];
        out[n] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
        n++;
    }
    out[n] = '\0';
}

/* True when [off, off + count * item) lies inside [lower, size), with no
 * arithmetic overflow whatever the untrusted numbers are. */
static bool region_fits(uint64_t off, uint64_t count, uint64_t item, uint64_t lower, uint64_t size)
{
    if (off < lower || off > size)
        return false;
    /* count and item are 32-bit values, so their product cannot overflow. */
    return count * item <= size - off;
}

int fmx_registry_parse(const unsigned char *image, size_t size, struct fmx_registry_layout *layout,
                       char *why, size_t whylen)
{
    const size_t header = sizeof(struct fmx_registry);
    if (size < header) {
        fmx_set_why(why, whylen, "registry is truncated: %zu bytes, the header alone is %zu", size, header);
        return -1;
    }
    uint32_t magic = fmx_get_u32(image, offsetof(struct fmx_registry, magic));
    uint32_t version = fmx_get_u32(image, offsetof(struct fmx_registry, version));
    uint32_t header_size = fmx_get_u32(image, offsetof(struct fmx_registry, header_size));
    uint32_t record_size = fmx_get_u32(image, offsetof(struct fmx_registry, record_size));
    uint32_t name_size = fmx_get_u32(image, offsetof(struct fmx_registry, name_size));
    uint32_t thread_capacity = fmx_get_u32(image, offsetof(struct fmx_registry, thread_capacity));
    uint32_t name_capacity = fmx_get_u32(image, offsetof(struct fmx_registry, name_capacity));
    uint32_t threads_used = fmx_get_u32(image, offsetof(struct fmx_registry, threads_used));
    int32_t pid = (int32_t)fmx_get_u32(image, offsetof(struct fmx_registry, pid));
    uint64_t records_offset = fmx_get_u64(image, offsetof(struct fmx_registry, records_offset));
    uint64_t names_offset = fmx_get_u64(image, offsetof(struct fmx_registry, names_offset));

    if (magic != FMX_REGISTRY_MAGIC) {
        fmx_set_why(why, whylen, "registry has a bad magic number 0x%08x", magic);
        return -1;
    }
    if (version != FMX_REGISTRY_VERSION) {
        fmx_set_why(why, whylen, "registry has version %u, this fmx reads version %u", version,
                FMX_REGISTRY_VERSION);
        return -1;
    }
    /* A version fixes the sizes; a registry that disagrees is not one. */
    if (header_size != header || record_size != sizeof(struct fmx_record) ||
        name_size != sizeof(struct fmx_name)) {
        fmx_set_why(why, whylen, "registry has wrong sizes (header %u, record %u, name %u)", header_size,
                record_size, name_size);
        return -1;
    }
    /* No library writes more than these; believing a larger capacity
     * would have fmx read and describe that many garbage records.  Smaller
     * ones are read, so that tests and the fuzzer can use compact images. */
    if (thread_capacity > FMX_REGISTRY_THREADS || name_capacity > FMX_REGISTRY_NAMES) {
        fmx_set_why(why, whylen, "registry claims a capacity of %u records and %u names, more than %u and %u",
                thread_capacity, name_capacity, FMX_REGISTRY_THREADS, FMX_REGISTRY_NAMES);
        return -1;
    }
    if (threads_used > thread_capacity) {
        fmx_set_why(why, whylen, "registry claims %u records in use of %u", threads_used, thread_capacity);
        return -1;
    }
    if (pid <= 0) {
        fmx_set_why(why, whylen, "registry names an impossible process id %d", pid);
        return -1;
    }
    if (!region_fits(records_offset, thread_capacity, record_size, header, size) ||
        !region_fits(names_offset, name_capacity, name_size, header, size)) {
        fmx_set_why(why, whylen,
                "registry is truncated or its offsets are out of range (%zu bytes, records at %llu, "
                "names at %llu)",
                size, (unsigned long long)records_offset, (unsigned long long)names_offset);
        return -1;
    }
    uint64_t records_end = records_offset + (uint64_t)thread_capacity * record_size;
    uint64_t names_end = names_offset + (uint64_t)name_capacity * name_size;
    if (records_offset < names_end && names_offset < records_end) {
        fmx_set_why(why, whylen, "registry's records and names overlap");
        return -1;
    }
    *layout = (struct fmx_registry_layout){
        .records = threads_used,
        .names = name_capacity,
        .records_offset = records_offset,
        .names_offset = names_offset,
        .pid = pid,
        .realtime_offset_ns = (int64_t)fmx_get_u64(image, offsetof(struct fmx_registry, realtime_offset_ns)),
        .stamp_mono_ns = fmx_get_u64(image, offsetof(struct fmx_registry, stamp_mono_ns)),
    };
    return 0;
}

bool fmx_read_exact(int fd, uint64_t off, void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        done += (size_t)n;
    }
    return true;
}

/* Two copies of a record are the same record when they agree on every
 * field fmx reads: `wake` and the queue links change without the seqlock
 * (other threads set them), so they are left out. */
static bool same_record(const unsigned char *a, const unsigned char *b)
{
    const size_t wake = offsetof(struct fmx_record, wake);
    const size_t tid = offsetof(struct fmx_record, tid);
    const size_t links_end = offsetof(struct fmx_record, kind);
    return memcmp(a, b, wake) == 0 && memcmp(a + tid, b + tid, sizeof(int32_t)) == 0 &&
           memcmp(a + links_end, b + links_end, sizeof(struct fmx_record) - links_end) == 0;
}

/* Makes the image's copy of [off, off + len) one that the writer was not in
 * the middle of changing: reads it again until two reads in a row agree
 * (and, for a record, its seq is even).  Without a file the image is all
 * there is.  Returns false when it would not settle. */
static bool settle(struct fmx_registry_reader *reader, uint64_t off, size_t len, bool is_record)
{
    unsigned char *copy = reader->image + off;
    unsigned char fresh[sizeof(struct fmx_record) > sizeof(struct fmx_name) ? sizeof(struct fmx_record)
                                                                            : sizeof(struct fmx_name)];
    for (int attempt = 0; attempt < FMX_READER_RETRIES; attempt++) {
        bool even = !is_record || fmx_get_u32(copy, offsetof(struct fmx_record, seq)) % 2 == 0;
        if (reader->fd < 0)
            return even;
        if (!fmx_read_exact(reader->fd, off, fresh, len))
            return false;
        bool same = is_record ? same_record(copy, fresh) : memcmp(copy, fresh, len) == 0;
        memcpy(copy, fresh, len);
        if (same && even)
            return true;
    }
    return false;
}

uint64_t fmx_outer_of(uint64_t mutex, uint64_t outer)
{
    return outer != 0 && mutex >= FMX_WDM_LOCK_OFFSET && mutex - FMX_WDM_LOCK_OFFSET == outer ? outer : 0;
}

/* The held list of a record: a count past the array lists the array
 * only, whatever the count says. */
static void read_held(const unsigned char *rec, struct fmx_waiter *out)
{
    out->held_count = fmx_get_u32(rec, offsetof(struct fmx_record, held_count));
    out->held_listed = out->held_count < FMX_RECORD_HELD ? out->held_count : FMX_RECORD_HELD;
    for (uint32_t i = 0; i < out->held_listed; i++) {
        size_t at = offsetof(struct fmx_record, held) + i * sizeof(struct fmx_held);
        out->held[i] = (struct fmx_held){
            .mutex = fmx_get_u64(rec, at + offsetof(struct fmx_held, mutex)),
            .outer = fmx_outer_of(fmx_get_u64(rec, at + offsetof(struct fmx_held, mutex)),
                                  fmx_get_u64(rec, at + offsetof(struct fmx_held, outer))),
            .site = fmx_get_u64(rec, at + offsetof(struct fmx_held, site)),
            .since_ns = fmx_get_u64(rec, at + offsetof(struct fmx_held, since_ns)),
        };
    }
}

enum fmx_record_result fmx_registry_record(struct fmx_registry_reader *reader, uint32_t slot,
                                           struct fmx_waiter *out)
{
    const size_t size = sizeof(struct fmx_record);
    /* parse() checked that every slot below the capacity, and so below
     * `records`, lies inside the image. */
    uint64_t off = reader->layout.records_offset + (uint64_t)slot * size;
    *out = (struct fmx_waiter){.slot = slot, .state = FMX_RECORD_FREE};
    if (slot >= reader->layout.records)
        return FMX_RECORD_READ_NOT_WAITING;
    if (!settle(reader, off, size, true))
        return FMX_RECORD_READ_CHANGING;
    const unsigned char *rec = reader->image + off;
    *out = (struct fmx_waiter){
        .slot = slot,
        .state = fmx_get_u32(rec, offsetof(struct fmx_record, state)),
        .tid = (int32_t)fmx_get_u32(rec, offsetof(struct fmx_record, tid)),
        .kind = fmx_get_u32(rec, offsetof(struct fmx_record, kind)),
        .owner_seen = (int32_t)fmx_get_u32(rec, offsetof(struct fmx_record, owner_seen)),
        .mutex = fmx_get_u64(rec, offsetof(struct fmx_record, mutex)),
        .outer = fmx_get_u64(rec, offsetof(struct fmx_record, outer)),
        .wait_start_ns = fmx_get_u64(rec, offsetof(struct fmx_record, wait_start_ns)),
        .site = fmx_get_u64(rec, offsetof(struct fmx_record, site)),
        .acquired_mutex = fmx_get_u64(rec, offsetof(struct fmx_record, acquired_mutex)),
        .acquired_site = fmx_get_u64(rec, offsetof(struct fmx_record, acquired_site)),
        .deadlock = fmx_get_u32(rec, offsetof(struct fmx_record, deadlock)) != 0,
    };
    fmx_display_string(out->thread_name, rec + offsetof(struct fmx_record, thread_name),
                        FMX_THREAD_NAME_LEN);
    read_held(rec, out);
    return out->state == FMX_RECORD_WAITING ? FMX_RECORD_READ_WAITING : FMX_RECORD_READ_NOT_WAITING;
}

bool fmx_registry_name(struct fmx_registry_reader *reader, uint64_t mutex, fmx_display_name *name)
{
    (*name)[0] = '\0';
    if (mutex == 0)
        return false;
    const size_t size = sizeof(struct fmx_name);
    for (uint32_t i = 0; i < reader->layout.names; i++) {
        uint64_t off = reader->layout.names_offset + (uint64_t)i * size;
        const unsigned char *entry = reader->image + off;
        if (fmx_get_u64(entry, offsetof(struct fmx_name, mutex)) != mutex)
            continue;
        /* The library unpublishes an entry while its text changes, so a
         * copy whose address matches holds a whole name unless the copy
         * itself was torn; re-reading settles that. */
        if (!settle(reader, off, size, false) ||
            fmx_get_u64(entry, offsetof(struct fmx_name, mutex)) != mutex)
            continue;
        fmx_display_string(*name, entry + offsetof(struct fmx_name, name), FMX_NAME_LEN);
        return (*name)[0] != '\0';
    }
    return false;
}

/* Takes ownership of image (malloc'd, size bytes), and of fd when it
 * succeeds. */
static int make_reader(unsigned char *image, size_t size, int fd, struct fmx_registry_reader *reader,
                       char *why, size_t whylen)
{
    struct fmx_registry_layout layout;
    if (fmx_registry_parse(image, size, &layout, why, whylen) != 0) {
        free(image);
        return EPROTO;
    }
    *reader = (struct fmx_registry_reader){.image = image, .size = size, .layout = layout, .fd = fd};
    return 0;
}

int fmx_registry_from_image(const void *data, size_t size, struct fmx_registry_reader *reader,
                            char *why, size_t whylen)
{
    /* malloc(0) may return NULL; one spare byte keeps an empty image valid. */
    unsigned char *image = malloc(size + 1);
    if (image == NULL) {
        fmx_set_why(why, whylen, "out of memory");
        return ENOMEM;
    }
    if (size > 0)
        memcpy(image, data, size);
    return make_reader(image, size, -1, reader, why, whylen);
}

int fmx_read_image(int fd, size_t max, const char *what, unsigned char **image, size_t *size, char *why,
                   size_t whylen)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        fmx_set_why(why, whylen, "cannot stat the %s: %s", what, strerror(err));
        return err;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > max) {
        fmx_set_why(why, whylen, "%s is %lld bytes, more than a %s can be", what, (long long)st.st_size, what);
        return EPROTO;
    }
    size_t want = (size_t)st.st_size;
    /* One spare byte: malloc(0) may return NULL. */
    unsigned char *copy = malloc(want + 1);
    if (copy == NULL) {
        fmx_set_why(why, whylen, "out of memory");
        return ENOMEM;
    }
    /* The file may shrink while it is read: take what is there. */
    size_t got = 0;
    while (got < want) {
        ssize_t n = pread(fd, copy + got, want - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    *image = copy;
    *size = got;
    return 0;
}

/* Tells the user why /proc/PID cannot be read: a process that has gone, or
 * one that is not theirs. */
static int explain_proc_error(pid_t pid, int err, char *why, size_t whylen)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d", (int)pid);
    if (err == ENOENT || err == ESRCH || stat(path, &st) != 0) {
        fmx_set_why(why, whylen, "no process %d", (int)pid);
        return ESRCH;
    }
    if (err == EACCES || err == EPERM) {
        if (st.st_uid != geteuid())
            fmx_set_why(why, whylen,
                    "process %d belongs to another user (uid %u): its fastmutex registry is not "
                    "readable to you",
                    (int)pid, (unsigned)st.st_uid);
        else
            fmx_set_why(why, whylen, "process %d does not let you read its files (it is not dumpable)",
                    (int)pid);
        return EACCES;
    }
    fmx_set_why(why, whylen, "cannot read process %d: %s", (int)pid, strerror(err));
    return err;
}

/* The id process `pid` (as we see it) has in its own pid namespace: the
 * last number on the NSpid line of /proc/PID/status; `pid` itself when
 * the kernel shows no such line or it does not parse.  A process in a
 * container writes its own view of its id into its registry. */
static pid_t own_namespace_pid(pid_t pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return pid;
    pid_t inner = pid;
    while (fgets(buf, sizeof buf, f) != NULL) {
        if (strncmp(buf, "NSpid:", 6) != 0)
            continue;
        char *p = buf + 6, *end;
        for (;;) {
            long v = strtol(p, &end, 10);
            if (end == p)
                break;
            if (v > 0 && v <= INT32_MAX)
                inner = (pid_t)v;
            p = end;
        }
        break;
    }
    fclose(f);
    return inner;
}

bool fmx_pid_is(pid_t pid, int32_t claimed)
{
    return claimed == pid || claimed == own_namespace_pid(pid);
}

/* Hands descriptor entry `fd_name` of the process to accept() if it is a
 * memfd named `name`.  Returns what accept() did, ENOENT for another file,
 * or EACCES (why set) when we may not open it. */
static int try_descriptor(pid_t pid, const char *fd_name, const char *name, fmx_memfd_accept accept, void *ctx,
                          char *why, size_t whylen)
{
    char link_path[300], target[128];
    snprintf(link_path, sizeof link_path, "/proc/%d/fd/%s", (int)pid, fd_name);
    ssize_t n = readlink(link_path, target, sizeof target - 1);
    if (n < 0)
        return ENOENT;
    target[n] = '\0';
    if (!fmx_memfd_link_names(target, name))
        return ENOENT;
    int fd = open(link_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == EACCES || errno == EPERM ? explain_proc_error(pid, errno, why, whylen) : ENOENT;
    int err = accept(fd, ctx, why, whylen);
    if (err != 0)
        close(fd);
    return err;
}

int fmx_memfd_find(pid_t pid, const char *name, fmx_memfd_accept accept, void *ctx, char *why, size_t whylen)
{
    char path[64];
    if (pid <= 0) {
        fmx_set_why(why, whylen, "no process %d", (int)pid);
        return ESRCH;
    }
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *dir = opendir(path);
    if (dir == NULL)
        return explain_proc_error(pid, errno, why, whylen);
    /* The reason the last corrupt candidate was refused, if any. */
    char corrupt[200] = "";
    int result = ENOENT;
    struct dirent *entry;
    while (result == ENOENT && (entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        char reason[200];
        int err = try_descriptor(pid, entry->d_name, name, accept, ctx, reason, sizeof reason);
        if (err == EPROTO)
            snprintf(corrupt, sizeof corrupt, "%s", reason);
        else if (err == EACCES || err == ESRCH)
            fmx_set_why(why, whylen, "%s", reason);
        else if (err != 0 && err != ENOENT)
            fmx_set_why(why, whylen, "process %d: %s", (int)pid, reason);
        if (err != EPROTO)
            result = err;
    }
    closedir(dir);
    if (result == ENOENT && corrupt[0] != '\0') {
        fmx_set_why(why, whylen, "process %d: %s", (int)pid, corrupt);
        result = EPROTO;
    }
    return result;
}

/* What fmx_registry_open() looks for. */
struct registry_search {
    pid_t pid;
    struct fmx_registry_reader *reader;
};

/* Takes the registry in fd if it is a valid one this process made. */
static int accept_registry(int fd, void *ctx, char *why, size_t whylen)
{
    const struct registry_search *search = ctx;
    struct fmx_registry_reader *reader = search->reader;
    unsigned char *image;
    size_t size;
    int err = fmx_read_image(fd, FMX_READER_MAX_IMAGE, "registry", &image, &size, why, whylen);
    if (err == 0)
        err = make_reader(image, size, fd, reader, why, whylen);
    if (err != 0)
        return err;
    /* A forked child keeps its parent's registry open until it makes its
     * own: only the one this process made describes its threads. */
    if (fmx_pid_is(search->pid, reader->layout.pid))
        return 0;
    reader->fd = -1; /* the finder closes it */
    fmx_registry_close(reader);
    return ENOENT;
}

int fmx_registry_open(pid_t pid, struct fmx_registry_reader *reader, char *why, size_t whylen)
{
    struct registry_search search = {.pid = pid, .reader = reader};
    *reader = (struct fmx_registry_reader){.fd = -1};
    int err = fmx_memfd_find(pid, FMX_REGISTRY_NAME, accept_registry, &search, why, whylen);
    if (err == ENOENT)
        fmx_set_why(why, whylen,
                "process %d has no fastmutex registry: it does not use fastmutex, or it has "
                "neither named a mutex nor had a thread wait for one",
                (int)pid);
    return err;
}

void fmx_registry_close(struct fmx_registry_reader *reader)
{
    free(reader->image);
    if (reader->fd >= 0)
        close(reader->fd);
    *reader = (struct fmx_registry_reader){.image = NULL, .fd = -1};
}
