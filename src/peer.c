/* The deadlock check's view into other processes (issue 16, E21): a
 * process-shared mutex may be held by a thread of another process, and
 * that thread may wait in turn.  Its wait is in its own process's
 * registry, which this process reads as fmx does: through
 * /proc/PID/fd, read-only.  The mutex it waits for is an address in its
 * own address space; /proc/PID/maps and /proc/self/maps tell where the
 * same bytes of the same file lie here, if this process maps them at
 * all.
 *
 * Everything read here is hostile input: the registry is a file its
 * process (or anything else able to open it) may write at any time, and
 * its records may name any address.  Reads are bounded preads that fail
 * cleanly on a short file; the layout must be the one compiled in; an
 * address is used only once it lies inside a shared mapping that this
 * process maps too, and the words at it are read by the caller with
 * process_vm_readv(). */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* Records read in one pread while looking for a thread's: a few, since
 * the copy is on the stack of a waiting thread, which may be small, and a
 * record is 672 bytes. */
#define SCAN_CHUNK 4u
/* Tries at a stable copy of a record that its thread keeps changing. */
#define STABLE_TRIES 8

/* Reads a small /proc file whole into buf, NUL-terminated; false when it
 * cannot. */
static bool read_proc_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0)
        return false;
    buf[n] = '\0';
    return true;
}

pid_t fmx_peer_process(int32_t tid)
{
    char path[48], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
    if (tid <= 0 || !read_proc_file(path, buf, sizeof buf))
        return 0;
    const char *at = strstr(buf, "\nTgid:");
    long pid = at != NULL ? strtol(at + strlen("\nTgid:"), NULL, 10) : 0;
    return pid > 0 && pid <= INT32_MAX ? (pid_t)pid : 0;
}

void fmx_peer_name(pid_t pid, char *buf, size_t size)
{
    char path[48], raw[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    if (!read_proc_file(path, raw, sizeof raw))
        snprintf(raw, sizeof raw, "?");
    raw[strcspn(raw, "\n")] = '\0';
    fmx_sanitize(raw);
    snprintf(buf, size, "%s", raw);
}

void fmx_sanitize(char *text)
{
    for (char *p = text; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
}

/* Whether /proc/PID/fd/NAME is the registry memfd: its link reads
 * "/memfd:fastmutex-registry", then " (deleted)" or nothing. */
static bool is_registry_link(pid_t pid, const char *name)
{
    char path[300], target[128];
    snprintf(path, sizeof path, "/proc/%d/fd/%s", (int)pid, name);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n < 0)
        return false;
    target[n] = '\0';
    return fmx_memfd_link_names(target, FMX_REGISTRY_NAME);
}

/* Opens process pid's registry read-only: a regular file at least as
 * large as the layout compiled in, or -1.  O_NONBLOCK: whatever the link
 * says, the file is not trusted to be one that does not block. */
static int open_registry(pid_t pid)
{
    char path[300];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *dir = opendir(path);
    if (dir == NULL)
        return -1;
    int fd = -1;
    for (struct dirent *e; fd < 0 && (e = readdir(dir)) != NULL;) {
        if (e->d_name[0] == '.' || !is_registry_link(pid, e->d_name))
            continue;
        snprintf(path, sizeof path, "/proc/%d/fd/%s", (int)pid, e->d_name);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        struct stat st;
        if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
                        (uint64_t)st.st_size < FMX_REGISTRY_SIZE)) {
            close(fd);
            fd = -1;
        }
    }
    closedir(dir);
    return fd;
}

static bool read_at(int fd, void *buf, size_t size, uint64_t offset)
{
    return pread(fd, buf, size, (off_t)offset) == (ssize_t)size;
}

/* The number of records worth scanning, from a header that must describe
 * the layout compiled in (a process of another version is not followed);
 * 0 when it does not. */
static uint32_t records_in_use(int fd)
{
    struct fmx_registry h;
    if (!read_at(fd, &h, sizeof h, 0) || h.magic != FMX_REGISTRY_MAGIC ||
        h.version != FMX_REGISTRY_VERSION || h.header_size != sizeof h ||
        h.record_size != sizeof(struct fmx_record) ||
        h.thread_capacity != FMX_REGISTRY_THREADS ||
        h.records_offset != sizeof(struct fmx_registry))
        return 0;
    uint32_t used = atomic_load_explicit(&h.threads_used, memory_order_relaxed);
    return used < FMX_REGISTRY_THREADS ? used : FMX_REGISTRY_THREADS;
}

static uint64_t record_offset(uint32_t slot)
{
    return sizeof(struct fmx_registry) + (uint64_t)slot * sizeof(struct fmx_record);
}

static bool waits_as(const struct fmx_record *rec, int32_t tid)
{
    return rec->tid == tid &&
           atomic_load_explicit(&((struct fmx_record *)rec)->state, memory_order_relaxed) ==
               FMX_RECORD_WAITING;
}

/* A copy of record `slot` that its seqlock says is whole: two reads with
 * the same even `seq`.  False when it kept changing. */
static bool stable_record(int fd, uint32_t slot, struct fmx_record *rec)
{
    for (int i = 0; i < STABLE_TRIES; i++) {
        struct fmx_record again;
        if (!read_at(fd, rec, sizeof *rec, record_offset(slot)) ||
            !read_at(fd, &again, sizeof again, record_offset(slot)))
            return false;
        uint32_t seq = atomic_load_explicit(&rec->seq, memory_order_relaxed);
        if (!(seq & 1) && seq == atomic_load_explicit(&again.seq, memory_order_relaxed))
            return true;
    }
    return false;
}

/* Finds the record of thread tid, waiting, in the registry open at fd. */
static bool find_waiting(int fd, int32_t tid, struct fmx_record *found)
{
    uint32_t used = records_in_use(fd);
    struct fmx_record chunk[SCAN_CHUNK];
    for (uint32_t first = 0; first < used; first += SCAN_CHUNK) {
        uint32_t count = used - first < SCAN_CHUNK ? used - first : SCAN_CHUNK;
        if (!read_at(fd, chunk, count * sizeof chunk[0], record_offset(first)))
            return false;
        for (uint32_t i = 0; i < count; i++)
            if (waits_as(&chunk[i], tid))
                return stable_record(fd, first + i, found) && waits_as(found, tid);
    }
    return false;
}

/* One line of a maps file: a mapping, with the file it maps. */
struct mapping {
    uint64_t start, end, offset, inode;
    unsigned major, minor;
    bool shared;
};

static bool parse_mapping(const char *line, struct mapping *map)
{
    char perms[5];
    if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %x:%x %" SCNu64, &map->start,
               &map->end, perms, &map->offset, &map->major, &map->minor, &map->inode) != 7)
        return false;
    map->shared = perms[3] == 's';
    return map->start < map->end;
}

/* The first mapping of the maps file at `path` that `want` accepts. */
static bool find_mapping(const char *path, bool (*want)(const struct mapping *, const void *),
                         const void *ctx, struct mapping *found)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return false;
    char *line = NULL;
    size_t cap = 0;
    bool hit = false;
    while (!hit && getline(&line, &cap, f) > 0)
        hit = parse_mapping(line, found) && want(found, ctx);
    free(line);
    fclose(f);
    return hit;
}

static bool holds_mutex_at(const struct mapping *map, const void *ctx)
{
    uint64_t address = *(const uint64_t *)ctx;
    return map->shared && map->inode != 0 && address >= map->start && address < map->end &&
           map->end - address >= sizeof(fast_mutex_t);
}

/* The same file's same bytes: `ctx` is the peer's mapping, with `start`
 * replaced by the offset in the file of the mutex. */
static bool maps_same_bytes(const struct mapping *map, const void *ctx)
{
    const struct mapping *peer = ctx;
    uint64_t at = peer->start;
    return map->shared && map->inode == peer->inode && map->major == peer->major &&
           map->minor == peer->minor && at >= map->offset &&
           map->end - map->start >= sizeof(fast_mutex_t) &&
           at - map->offset <= map->end - map->start - sizeof(fast_mutex_t);
}

/* Where the mutex that process pid sees at `address` lies in this
 * process: NULL unless both map it from the same shared file. */
static const void *local_address(pid_t pid, uint64_t address)
{
    char path[48];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    struct mapping peer, ours;
    if (!find_mapping(path, holds_mutex_at, &address, &peer))
        return NULL;
    uint64_t file_offset = peer.offset + (address - peer.start);
    if (file_offset < peer.offset)
        return NULL; /* wrapped */
    peer.start = file_offset;
    if (!find_mapping("/proc/self/maps", maps_same_bytes, &peer, &ours))
        return NULL;
    return (const void *)(uintptr_t)(ours.start + (file_offset - ours.offset));
}

bool fmx_peer_waiting(pid_t pid, int32_t tid, struct fmx_peer_wait *wait)
{
    int fd = open_registry(pid);
    if (fd < 0)
        return false;
    struct fmx_record rec;
    bool found = find_waiting(fd, tid, &rec);
    close(fd);
    if (!found)
        return false;
    *wait = (struct fmx_peer_wait){
        .mutex = rec.mutex,
        .site = rec.site,
        .local = local_address(pid, rec.mutex),
    };
    fmx_record_get_name(&rec, wait->thread_name);
    wait->thread_name[sizeof wait->thread_name - 1] = '\0';
    fmx_sanitize(wait->thread_name);
    return wait->local != NULL;
}
