/* fmx thread PID TID: one thread as WinDbg's !mex.t shows it: its state,
 * the mutex it waits for and who holds it, how long it has waited, and its
 * call stack down to the source line. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "fmx.h"
#include "inspect.h"

#define MAX_FRAMES 64

/* The State line: what is known of the thread's figures, "-" for the
 * rest (a core holds no state and no context switches). */
static void print_figures(const struct fmx_thread_info *info)
{
    char state[32] = "-", switches[32] = "-", user[32] = "-", kernel[32] = "-";
    if (info->known & FMX_KNOWN_STATE)
        snprintf(state, sizeof state, "%c (%s)", info->state, fmx_state_word(info->state));
    if (info->known & FMX_KNOWN_SWITCHES)
        snprintf(switches, sizeof switches, "%llu", info->context_switches);
    if (info->known & FMX_KNOWN_TIMES) {
        snprintf(user, sizeof user, "%.3fs", info->user_seconds);
        snprintf(kernel, sizeof kernel, "%.3fs", info->kernel_seconds);
    }
    printf("  State:        %s, %s context switches, user %s, kernel %s\n", state, switches, user, kernel);
}

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

    printf("Thread %d (%s) of %s %d (%s)\n", (int)tid, info->name, fmx_target_kind(target), (int)target->pid,
           target->name);
    print_figures(info);
    if (!waiting) {
        printf("  Waiting:      not for a fastmutex\n");
    } else {
        fmx_display_name name;
        char text[512];
        struct fmx_owner owner;
        struct fmx_location site;
        fmx_waiter_mutex_name(target, &rec, &name);
        fmx_format_target_mutex(target, fmx_waiter_mutex_address(&rec), name, text, sizeof text);
        printf("  Waiting for:  %s %s\n", rec.kind == FMX_KIND_WDM ? "FAST_MUTEX" : "fast_mutex_t", text);
        fmx_find_owner(target, &rec, &owner);
        fmx_format_owner(&owner, text, sizeof text);
        printf("  Owner:        %s\n", text);
        fmx_format_target_waited(target, rec.wait_start_ns, text, sizeof text);
        printf("  Waited:       %s\n", text);
        fmx_symbolize(target->symbols, rec.site, true, &site);
        fmx_format_site(&site, text, sizeof text);
        printf("  Called from:  %s\n", text);
        if (rec.deadlock)
            printf("  Deadlock:     yes: the deadlock check found this wait in a cycle\n");
    }
    if (found && rec.acquired_mutex != 0) {
        fmx_display_name name;
        char mutex[512], where[512];
        struct fmx_location site;
        (void)fmx_registry_name(&target->registry, rec.acquired_mutex, &name);
        fmx_format_target_mutex(target, rec.acquired_mutex, name, mutex, sizeof mutex);
        fmx_symbolize(target->symbols, rec.acquired_site, true, &site);
        fmx_format_site(&site, where, sizeof where);
        printf("  Last waited for and got: %s at %s\n", mutex, where);
    }
}

/* A mutex some thread waits for, and how many do. */
struct waited_mutex {
    struct fmx_waiter first; /* a waiter of it, which names it */
    unsigned waiters;
};

/* Lists the mutexes that thread `tid` holds and others wait for: the
 * owner's side of a hang.  The owner is read from each lock word. */
static void print_held(struct fmx_target *target, pid_t tid)
{
    enum { MAX_HELD = 64 };
    struct waited_mutex held[MAX_HELD];
    size_t count = 0;
    for (uint32_t slot = 0; slot < target->registry.layout.records; slot++) {
        struct fmx_waiter rec;
        struct fmx_owner owner;
        if (fmx_registry_record(&target->registry, slot, &rec) != FMX_RECORD_READ_WAITING)
            continue;
        size_t i = 0;
        while (i < count && held[i].first.mutex != rec.mutex)
            i++;
        if (i < count) {
            held[i].waiters++;
            continue;
        }
        fmx_find_owner(target, &rec, &owner);
        if (owner.tid == tid && owner.from_lock && count < MAX_HELD)
            held[count++] = (struct waited_mutex){.first = rec, .waiters = 1};
    }
    for (size_t i = 0; i < count; i++) {
        fmx_display_name name;
        char text[512];
        fmx_waiter_mutex_name(target, &held[i].first, &name);
        fmx_format_target_mutex(target, fmx_waiter_mutex_address(&held[i].first), name, text, sizeof text);
        printf("  %-14s%s %s, %u waiter%s\n", i == 0 ? "Holds:" : "",
               held[i].first.kind == FMX_KIND_WDM ? "FAST_MUTEX" : "fast_mutex_t", text, held[i].waiters,
               held[i].waiters == 1 ? "" : "s");
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
    if (err == EPERM && target->core == NULL) {
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

#define USAGE "usage: fmx thread PID TID | fmx thread --core CORE [--exe EXE] TID"

/* Opens the target the arguments name: returns 0, 2 for bad usage, 1 when
 * it cannot be opened (after one line on stderr). */
static int open_named_target(int argc, char **argv, const char *core, const char *exe,
                             struct fmx_target *target, pid_t *tid, bool *exe_trouble)
{
    int want = core != NULL ? 1 : 2;
    pid_t pid = 0;
    *exe_trouble = false;
    if (argc - optind != want) {
        fprintf(stderr, "%s\n", USAGE);
        return 2;
    }
    if (core == NULL && !fmx_parse_id(argv[optind], &pid)) {
        fprintf(stderr, "fmx thread: '%s' is not a process id\n", argv[optind]);
        return 2;
    }
    if (!fmx_parse_id(argv[argc - 1], tid)) {
        fprintf(stderr, "fmx thread: '%s' is not a thread id\n", argv[argc - 1]);
        return 2;
    }
    if (core != NULL)
        return fmx_target_open_core(core, exe, target, exe_trouble) == 0 ? 0 : 1;
    return fmx_target_open(pid, target, false) == 0 ? 0 : 1;
}

/* Parses the options; returns 0, or the exit status after a line on
 * stderr (-1: help shown). */
static int parse_options(int argc, char **argv, const char **core, const char **exe)
{
    static const struct option options[] = {
        {"core", required_argument, NULL, 'c'},
        {"exe", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    for (int opt; (opt = getopt_long(argc, argv, "+:h", options, NULL)) != -1;) {
        if (opt == 'c') {
            *core = optarg;
        } else if (opt == 'e') {
            *exe = optarg;
        } else if (opt == 'h') {
            printf("%s\n", USAGE);
            return -1;
        } else {
            fprintf(stderr, "fmx thread: %s '%s' (%s)\n", opt == ':' ? "option needs a value:" : "unknown option",
                    argv[optind - 1], USAGE);
            return 2;
        }
    }
    if (*exe != NULL && *core == NULL) {
        fprintf(stderr, "fmx thread: --exe goes with --core (%s)\n", USAGE);
        return 2;
    }
    return 0;
}

int fmx_thread_main(int argc, char **argv)
{
    const char *core = NULL, *exe = NULL;
    int status = parse_options(argc, argv, &core, &exe);
    if (status != 0)
        return status < 0 ? 0 : status;
    struct fmx_target target;
    pid_t tid;
    bool exe_trouble;
    status = open_named_target(argc, argv, core, exe, &target, &tid, &exe_trouble);
    if (status != 0)
        return status;
    struct fmx_thread_info info;
    int err = fmx_target_thread_info(&target, tid, &info);
    if (err != 0) {
        if (err == ENOENT)
            fprintf(stderr, "fmx: %s %d has no thread %d\n", fmx_target_kind(&target), (int)target.pid,
                    (int)tid);
        else
            fprintf(stderr, "fmx: cannot read thread %d of process %d: %s\n", (int)tid, (int)target.pid,
                    strerror(err));
        fmx_target_close(&target);
        return 1;
    }
    print_wait(&target, tid, &info);
    print_held(&target, tid);
    /* The registry part is out before ptrace is tried, whatever it says. */
    fflush(stdout);
    status = print_stack(&target, tid, &info);
    fmx_target_close(&target);
    return exe_trouble ? 1 : status;
}
