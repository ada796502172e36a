/* The process and waiter descriptions shared by fmx's views. */
#include "inspect.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fastmutex.h"

bool fmx_parse_id(const char *text, pid_t *id)
{
    if (text == NULL || text[0] == '\0' || strlen(text) > 9)
        return false;
    long value = 0;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return false;
        value = value * 10 + (*p - '0');
    }
    if (value <= 0)
        return false;
    *id = (pid_t)value;
    return true;
}

static uint64_t monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

int fmx_target_open(pid_t pid, struct fmx_target *target, bool quiet)
{
    char why[256];
    *target = (struct fmx_target){.pid = pid};
    int err = fmx_registry_open(pid, &target->registry, why, sizeof why);
    if (err != 0) {
        if (!quiet)
            fprintf(stderr, "fmx: %s\n", why);
        return err;
    }
    /* The clock is read once the records are copied, so a wait never
     * looks shorter than it was. */
    target->now_ns = monotonic_ns();
    fmx_process_name(pid, &target->name);
    /* Without symbols the views still show addresses. */
    target->symbols = fmx_symbolizer_open(pid, target->symbols_why, sizeof target->symbols_why);
    return 0;
}

void fmx_target_close(struct fmx_target *target)
{
    fmx_symbolizer_close(target->symbols);
    target->symbols = NULL;
    fmx_registry_close(&target->registry);
}

void fmx_find_owner(const struct fmx_target *target, const struct fmx_waiter *waiter,
                    struct fmx_owner *owner)
{
    uint32_t word;
    *owner = (struct fmx_owner){.tid = waiter->owner_seen};
    if (fmx_read_memory(target->pid, waiter->mutex, &word, sizeof word) == 0) {
        owner->tid = (pid_t)(word & FAST_MUTEX_OWNER_MASK);
        owner->from_lock = true;
    }
    if (owner->tid > 0)
        (void)fmx_thread_name(target->pid, owner->tid, &owner->name);
    else
        owner->tid = 0;
}

uint64_t fmx_waiter_mutex_address(const struct fmx_waiter *waiter)
{
    return waiter->kind == FMX_KIND_WDM && waiter->outer != 0 ? waiter->outer : waiter->mutex;
}

void fmx_waiter_mutex_name(struct fmx_target *target, const struct fmx_waiter *waiter,
                           fmx_display_name *name)
{
    if (!fmx_registry_name(&target->registry, waiter->mutex, name) && waiter->kind == FMX_KIND_WDM)
        (void)fmx_registry_name(&target->registry, waiter->outer, name);
}

void fmx_format_mutex(uint64_t address, const char *name, char *buf, size_t size)
{
    if (name[0] != '\0')
        snprintf(buf, size, "0x%llx (%s)", (unsigned long long)address, name);
    else
        snprintf(buf, size, "0x%llx", (unsigned long long)address);
}

void fmx_format_owner(const struct fmx_owner *owner, char *buf, size_t size)
{
    if (owner->tid == 0)
        snprintf(buf, size, "none");
    else
        snprintf(buf, size, "%d (%s)", (int)owner->tid, owner->name);
}

uint64_t fmx_waited_ns(uint64_t start_ns, uint64_t now_ns)
{
    return start_ns <= now_ns ? now_ns - start_ns : 0;
}

void fmx_format_waited(uint64_t ns, char *buf, size_t size)
{
    uint64_t ms = ns / 1000000u;
    snprintf(buf, size, "%llus.%03llu", (unsigned long long)(ms / 1000u), (unsigned long long)(ms % 1000u));
}
