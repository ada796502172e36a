/* Thread figures from /proc, and reading another process's memory. */
#include "procinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "registry_reader.h"

/* Reads a small /proc file whole into buf (NUL-terminated).  Returns 0 or
 * an errno value. */
static int read_small_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    size_t got = 0;
    while (got < size - 1) {
        ssize_t n = read(fd, buf + got, size - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = errno;
            close(fd);
            return err;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(fd);
    return 0;
}

/* Reads a comm file into *name, without its newline and sanitized: a
 * process can give itself any name, escape sequences included. */
static int read_comm(const char *path, fmx_comm *name)
{
    char raw[sizeof(fmx_comm) + 16];
    int err = read_small_file(path, raw, sizeof raw);
    if (err != 0) {
        snprintf(*name, sizeof *name, "?");
        return err;
    }
    raw[strcspn(raw, "\n")] = '\0';
    fmx_display_string(*name, raw, sizeof *name - 1);
    return 0;
}

bool fmx_thread_name(pid_t pid, pid_t tid, fmx_comm *name)
{
    char path[80];
    snprintf(path, sizeof path, "/proc/%d/task/%d/comm", (int)pid, (int)tid);
    return read_comm(path, name) == 0;
}

void fmx_process_name(pid_t pid, fmx_comm *name)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    (void)read_comm(path, name);
}

int fmx_thread_info(pid_t pid, pid_t tid, struct fmx_thread_info *info)
{
    char path[80], buf[4096];
    *info = (struct fmx_thread_info){.state = '?'};
    snprintf(info->name, sizeof info->name, "?");

    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    int err = read_small_file(path, buf, sizeof buf);
    if (err != 0)
        return err;
    /* The name in parentheses may itself hold ") ", so the fields start
     * after the last ')'.  Then: state (field 3) ... utime (14) stime (15). */
    char *fields = strrchr(buf, ')');
    if (fields == NULL)
        return EPROTO;
    fields++;
    char *save = NULL;
    int field = 3;
    unsigned long long utime = 0, stime = 0;
    for (char *tok = strtok_r(fields, " ", &save); tok != NULL && field <= 15;
         tok = strtok_r(NULL, " ", &save), field++) {
        if (field == 3)
            info->state = tok[0];
        else if (field == 14)
            utime = strtoull(tok, NULL, 10);
        else if (field == 15)
            stime = strtoull(tok, NULL, 10);
    }
    long ticks = sysconf(_SC_CLK_TCK);
    if (ticks <= 0)
        ticks = 100;
    info->user_seconds = (double)utime / (double)ticks;
    info->kernel_seconds = (double)stime / (double)ticks;

    snprintf(path, sizeof path, "/proc/%d/task/%d/status", (int)pid, (int)tid);
    err = read_small_file(path, buf, sizeof buf);
    if (err != 0)
        return err;
    const char *keys[] = {"\nvoluntary_ctxt_switches:", "\nnonvoluntary_ctxt_switches:"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *at = strstr(buf, keys[i]);
        if (at != NULL)
            info->context_switches += strtoull(at + strlen(keys[i]), NULL, 10);
    }
    const char *tracer = strstr(buf, "\nTracerPid:");
    if (tracer != NULL)
        info->tracer_pid = (pid_t)strtol(tracer + strlen("\nTracerPid:"), NULL, 10);

    (void)fmx_thread_name(pid, tid, &info->name);
    info->known = FMX_KNOWN_ALL;
    return 0;
}

const char *fmx_state_word(char state)
{
    switch (state) {
    case 'R':
        return "running";
    case 'S':
        return "sleeping";
    case 'D':
        return "disk sleep";
    case 'T':
        return "stopped";
    case 't':
        return "tracing stop";
    case 'Z':
        return "zombie";
    case 'X':
        return "dead";
    case 'I':
        return "idle";
    default:
        return "unknown";
    }
}

int fmx_read_memory(pid_t pid, uint64_t addr, void *buf, size_t len)
{
    struct iovec local = {.iov_base = buf, .iov_len = len};
    struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
    ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n < 0)
        return errno;
    /* A partial read means the range runs off the end of a mapping. */
    return (size_t)n == len ? 0 : EFAULT;
}

int fmx_find_mapping(pid_t pid, const char *path, uint64_t *start, uint64_t *end)
{
    char maps[64], line[4096];
    snprintf(maps, sizeof maps, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(maps, "re");
    if (f == NULL)
        return errno;
    int result = ENOENT;
    size_t path_len = strlen(path);
    while (fgets(line, sizeof line, f) != NULL) {
        /* "start-end perms offset dev inode   path": the path is what
         * follows the fifth field and the spaces after it. */
        unsigned long long lo, hi;
        int path_at = 0;
        if (sscanf(line, "%llx-%llx %*s %*s %*s %*s %n", &lo, &hi, &path_at) < 2 || path_at == 0)
            continue;
        const char *name = line + path_at;
        if (strncmp(name, path, path_len) != 0 ||
            (strcmp(name + path_len, "\n") != 0 && strcmp(name + path_len, " (deleted)\n") != 0))
            continue;
        *start = lo;
        *end = hi;
        result = 0;
        break;
    }
    fclose(f);
    return result;
}
