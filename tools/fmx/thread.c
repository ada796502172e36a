/* fmx thread PID TID: one thread as WinDbg's !mex.t shows it: its state,
 * the mutex it waits for and who holds it, how long it has waited, and its
 * call stack down to the source line. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fmx.h"
#include "inspect.h"

#define MAX_FRAMES 64

/* Prints the part the registry and /proc tell, which needs no ptrace. */
static void print_wait(struct fmx_target *target, pid_t tid, const struct fmx_thread_info *info)
{
    struct fmx_waiter rec;
    bool found = false, waiting = false;
    for (uint32_t slot = 0; slot < target->registry.layout.records && !found; slot++) {
        enum fmx_record_result got = fmx_registry_record(&target->registry, slot, &rec);
        if (got != FMX_RECORD_READ_CHANGING && rec.state != FMX_RECORD_FREE && rec.tid == tid) {
            found = true;
            waiting = got == FMX_RECORD_READ_WAITING;
        }
    }

    printf("Thread %d (%s) of process %d (%s)\n", (int)tid, info->name, (int)target->pid, target->name);
    printf("  State:        %c (%s), %llu context switches, user %.3fs, kernel %.3fs\n", info->state,
           fmx_state_word(info->state), info->context_switches, info->user_seconds, info->kernel_seconds);
    if (!waiting) {
        printf("  Waiting:      not for a fastmutex\n");
    } else {
        fmx_display_name name;
        char text[512];
        struct fmx_owner owner;
        struct fmx_location site;
        fmx_waiter_mutex_name(target, &rec, &name);
        fmx_format_mutex(fmx_waiter_mutex_address(&rec), name, text, sizeof text);
        printf("  Waiting for:  %s %s\n", rec.kind == FMX_KIND_WDM ? "FAST_MUTEX" : "fast_mutex_t", text);
        fmx_find_owner(target, &rec, &owner);
        fmx_format_owner(&owner, text, sizeof text);
        printf("  Owner:        %s\n", text);
        fmx_format_waited(fmx_waited_ns(rec.wait_start_ns, target->now_ns), text, sizeof text);
        printf("  Waited:       %s\n", text);
        fmx_symbolize(target->symbols, rec.site, true, &site);
        fmx_format_site(&site, text, sizeof text);
        printf("  Called from:  %s\n", text);
        if (rec.deadlock)
            printf("  Deadlock:     yes: the deadlock check found this wait in a cycle\n");
    }
    if (found && rec.acquired_mutex != 0) {
        fmx_display_name name;
        char mutex[256], where[512];
        struct fmx_location site;
        (void)fmx_registry_name(&target->registry, rec.acquired_mutex, &name);
        fmx_format_mutex(rec.acquired_mutex, name, mutex, sizeof mutex);
        fmx_symbolize(target->symbols, rec.acquired_site, true, &site);
        fmx_format_site(&site, where, sizeof where);
        printf("  Last waited for and got: %s at %s\n", mutex, where);
    }
}

/* Prints one frame and, when its address lies in inlined code, the
 * inlined calls, innermost first, as debuggers list inline frames. */
static void print_frame(int number, const struct fmx_location *loc)
{
    char site[512];
    if (loc->symbol[0] != '\0')
        snprintf(site, sizeof site, "%s+0x%llx", loc->symbol, (unsigned long long)loc->offset);
    else
        snprintf(site, sizeof site, "??");
    printf("  #%-2d 0x%016llx  %s", number, (unsigned long long)loc->address, site);
    if (loc->nlines > 0) {
        const struct fmx_source_line *outer = &loc->lines[loc->nlines - 1];
        printf("  %s:%d\n", outer->file, outer->line);
    } else {
        printf("  (%s)\n", loc->module[0] != '\0' ? loc->module : "unknown module");
    }
    for (int i = loc->nlines - 2; i >= 0; i--)
        printf("      inlined: %s  %s:%d\n", loc->lines[i].function[0] ? loc->lines[i].function : "??",
               loc->lines[i].file, loc->lines[i].line);
}

static int print_stack(struct fmx_target *target, pid_t tid, const struct fmx_thread_info *info)
{
    uint64_t pcs[MAX_FRAMES];
    bool exact[MAX_FRAMES];
    int count = 0;
    char why[256];
    if (target->symbols == NULL) {
        fprintf(stderr, "fmx: cannot read the stack of thread %d: %s\n", (int)tid, target->symbols_why);
        return 1;
    }
    int err = fmx_symbolizer_stack(target->symbols, tid, pcs, exact, MAX_FRAMES, &count, why, sizeof why);
    if (err == EPERM) {
        if (info->tracer_pid != 0)
            fprintf(stderr,
                    "fmx: cannot read the stack of thread %d: ptrace not permitted (%s: process %d "
                    "already traces it)\n",
                    (int)tid, why, (int)info->tracer_pid);
        else
            fprintf(stderr,
                    "fmx: cannot read the stack of thread %d: ptrace not permitted (%s: tracing needs "
                    "the same user, or CAP_SYS_PTRACE)\n",
                    (int)tid, why);
        return 1;
    }
    if (err != 0) {
        fprintf(stderr, "fmx: cannot read the stack of thread %d: %s\n", (int)tid, why);
        return 1;
    }
    printf("\nStack:\n");
    for (int i = 0; i < count; i++) {
        struct fmx_location loc;
        fmx_symbolize(target->symbols, pcs[i], !exact[i], &loc);
        print_frame(i, &loc);
    }
    return 0;
}

int fmx_thread_main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        printf("usage: fmx thread PID TID\n");
        return 0;
    }
    pid_t pid, tid;
    if (argc != 3) {
        fprintf(stderr, "usage: fmx thread PID TID\n");
        return 2;
    }
    if (!fmx_parse_id(argv[1], &pid)) {
        fprintf(stderr, "fmx thread: '%s' is not a process id\n", argv[1]);
        return 2;
    }
    if (!fmx_parse_id(argv[2], &tid)) {
        fprintf(stderr, "fmx thread: '%s' is not a thread id\n", argv[2]);
        return 2;
    }
    struct fmx_target target;
    if (fmx_target_open(pid, &target, false) != 0)
        return 1;
    int status = 0;
    struct fmx_thread_info info;
    int err = fmx_thread_info(pid, tid, &info);
    if (err != 0) {
        if (err == ENOENT)
            fprintf(stderr, "fmx: process %d has no thread %d\n", (int)pid, (int)tid);
        else
            fprintf(stderr, "fmx: cannot read thread %d of process %d: %s\n", (int)tid, (int)pid,
                    strerror(err));
        status = 1;
        goto out;
    }
    print_wait(&target, tid, &info);
    /* The registry part is out before ptrace is tried, whatever it says. */
    fflush(stdout);
    status = print_stack(&target, tid, &info);
out:
    fmx_target_close(&target);
    return status;
}
