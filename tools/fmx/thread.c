/* fmx thread PID TID: one thread as WinDbg's !mex.t shows it: its state,
 * the mutex it waits for and who holds it, how long it has waited, and its
 * call stack down to the source line. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "fastmutex.h"
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

/* Finds thread `tid`'s record into *rec (false when it has none), and
 * whether it waits now. */
static bool find_record(struct fmx_target *target, pid_t tid, struct fmx_waiter *rec, bool *waiting)
{
    *waiting = false;
    for (uint32_t slot = 0; slot < target->registry.layout.records; slot++) {
        enum fmx_record_result got = fmx_registry_record(&target->registry, slot, rec);
        if (got != FMX_RECORD_READ_CHANGING && rec->state != FMX_RECORD_FREE && rec->tid == tid) {
            *waiting = got == FMX_RECORD_READ_WAITING;
            return true;
        }
    }
    return false;
}

/* Prints the part the registry and /proc tell, which needs no ptrace:
 * what thread `tid` waits for, from its record `rec` (NULL: it has none). */
static void print_wait(struct fmx_target *target, pid_t tid, const struct fmx_thread_info *info,
                       const struct fmx_waiter *rec, bool waiting)
{
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
        fmx_waiter_mutex_name(target, rec, &name);
        fmx_format_target_mutex(target, fmx_waiter_mutex_address(rec), name, text, sizeof text);
        printf("  Waiting for:  %s %s\n", rec->kind == FMX_KIND_WDM ? "FAST_MUTEX" : "fast_mutex_t", text);
        fmx_find_owner(target, rec, &owner);
        fmx_format_owner(&owner, text, sizeof text);
        printf("  Owner:        %s\n", text);
        fmx_format_target_waited(target, rec->wait_start_ns, text, sizeof text);
        printf("  Waited:       %s\n", text);
        fmx_symbolize(target->symbols, rec->site, true, &site);
        fmx_format_site(&site, text, sizeof text);
        printf("  Called from:  %s\n", text);
        if (rec->deadlock)
            printf("  Deadlock:     yes: the deadlock check found this wait in a cycle\n");
    }
    if (rec != NULL && rec->acquired_mutex != 0) {
        /* The record keeps the FAST_MUTEX of its last wait, which is the
         * wait that ended in this acquisition: shown by its own address
         * when the claim can be true, as the waiters view does. */
        uint64_t outer = rec->kind == FMX_KIND_WDM ? fmx_outer_of(rec->acquired_mutex, rec->outer) : 0;
        struct fmx_waiter got = {.mutex = rec->acquired_mutex, .outer = outer,
                                 .kind = outer != 0 ? FMX_KIND_WDM : FMX_KIND_FAST_MUTEX};
        fmx_display_name name;
        char mutex[512], where[512];
        struct fmx_location site;
        fmx_waiter_mutex_name(target, &got, &name);
        fmx_format_target_mutex(target, fmx_waiter_mutex_address(&got), name, mutex, sizeof mutex);
        fmx_symbolize(target->symbols, rec->acquired_site, true, &site);
        fmx_format_site(&site, where, sizeof where);
        printf("  Last waited for and got: %s%s at %s\n", outer != 0 ? "FAST_MUTEX " : "", mutex, where);
    }
}

/* A mutex some thread waits for, and how many do. */
struct waited_mutex {
    struct fmx_waiter first; /* a waiter of it, which names it */
    unsigned waiters;
};

/* Collects the mutexes that thread `tid` holds and others wait for, with
 * how many wait for each: the owner is read from each lock word. */
static size_t collect_waited(struct fmx_target *target, pid_t tid, struct waited_mutex *held, size_t max)
{
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
        if (owner.tid == tid && owner.from_lock && count < max)
            held[count++] = (struct waited_mutex){.first = rec, .waiters = 1};
    }
    return count;
}

/* The title of the n-th line of the Holds: list. */
static const char *holds_title(size_t n)
{
    return n == 0 ? "Holds:" : "";
}

/* What the lock word at `mutex` says of a hold by `tid` the record
 * claims: "" when it agrees; otherwise why the entry is doubtful (the
 * record is another process's writing, and may name anything). */
static const char *check_hold(struct fmx_target *target, uint64_t mutex, pid_t tid)
{
    fast_mutex_t copy;
    if (fmx_target_read(target, mutex, &copy, sizeof copy) != 0)
        return " [no mutex readable there]";
    uint32_t word;
    memcpy(&word, &copy, sizeof word); /* the lock word comes first */
    return (pid_t)(word & FAST_MUTEX_OWNER_MASK) == tid ? "" : " [its lock word names another owner]";
}

/* One mutex of the record's held list, with how long it has been held,
 * where it was taken, and its waiters (from `waited`).  A FAST_MUTEX is
 * named by its own address, which the entry carries (the verifier learns
 * it where ExAcquireFastMutex calls in), as a waiter's record carries it. */
static void print_listed_hold(struct fmx_target *target, pid_t tid, size_t n, const struct fmx_held *h,
                              const struct waited_mutex *waited, size_t waited_count)
{
    const struct waited_mutex *w = NULL;
    for (size_t i = 0; i < waited_count && w == NULL; i++)
        if (waited[i].first.mutex == h->mutex)
            w = &waited[i];
    struct fmx_waiter as_waited = {.mutex = h->mutex, .outer = h->outer,
                                   .kind = h->outer != 0 ? FMX_KIND_WDM : FMX_KIND_FAST_MUTEX};
    const struct fmx_waiter *named = w != NULL ? &w->first : &as_waited;
    fmx_display_name name;
    char mutex[512], since[32], where[512], waiters[32] = "";
    struct fmx_location site;
    fmx_waiter_mutex_name(target, named, &name);
    fmx_format_target_mutex(target, fmx_waiter_mutex_address(named), name, mutex, sizeof mutex);
    fmx_format_target_waited(target, h->since_ns, since, sizeof since);
    fmx_symbolize(target->symbols, h->site, true, &site);
    fmx_format_site(&site, where, sizeof where);
    if (w != NULL)
        snprintf(waiters, sizeof waiters, ", %u waiter%s", w->waiters, w->waiters == 1 ? "" : "s");
    printf("  %-14s%s %s, held %s%s%s\n", holds_title(n), named->kind == FMX_KIND_WDM ? "FAST_MUTEX" : "fast_mutex_t",
           mutex, since, waiters, check_hold(target, h->mutex, tid));
    printf("  %-14s  taken at %s\n", "", where);
}

/* Whether the record's held list names `mutex`. */
static bool listed(const struct fmx_waiter *rec, uint64_t mutex)
{
    for (uint32_t i = 0; rec != NULL && i < rec->held_listed; i++)
        if (rec->held[i].mutex == mutex)
            return true;
    return false;
}

/* Lists the mutexes that thread `tid` holds: every one, from its record,
 * while FASTMUTEX_VERIFY=order publishes them there; and those that
 * others wait for, from the waiters' records and the lock words (the
 * owner's side of a hang), which is all there is with the verifier off. */
static void print_held(struct fmx_target *target, pid_t tid, const struct fmx_waiter *rec)
{
    enum { MAX_WAITED = 64 };
    struct waited_mutex waited[MAX_WAITED];
    size_t waited_count = collect_waited(target, tid, waited, MAX_WAITED);
    size_t n = 0;
    for (uint32_t i = 0; rec != NULL && i < rec->held_listed; i++)
        print_listed_hold(target, tid, n++, &rec->held[i], waited, waited_count);
    if (rec != NULL && rec->held_count > rec->held_listed)
        printf("  %-14sand %u more (a record lists %u)\n", holds_title(n++),
               rec->held_count - rec->held_listed, FMX_RECORD_HELD);
    for (size_t i = 0; i < waited_count; i++) {
        if (listed(rec, waited[i].first.mutex))
            continue;
        fmx_display_name name;
        char text[512];
        fmx_waiter_mutex_name(target, &waited[i].first, &name);
        fmx_format_target_mutex(target, fmx_waiter_mutex_address(&waited[i].first), name, text, sizeof text);
        printf("  %-14s%s %s, %u waiter%s\n", holds_title(n++),
               waited[i].first.kind == FMX_KIND_WDM ? "FAST_MUTEX" : "fast_mutex_t", text, waited[i].waiters,
               waited[i].waiters == 1 ? "" : "s");
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
    struct fmx_view_options view;
    int status = fmx_view_options(argc, argv, "fmx thread", USAGE, 0, true, &view);
    *core = view.core;
    *exe = view.exe;
    if (status != 0)
        return status;
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
    struct fmx_waiter rec;
    bool waiting;
    const struct fmx_waiter *found = find_record(&target, tid, &rec, &waiting) ? &rec : NULL;
    print_wait(&target, tid, &info, found, waiting);
    print_held(&target, tid, found);
    /* The registry part is out before ptrace is tried, whatever it says. */
    fflush(stdout);
    status = print_stack(&target, tid, &info);
    fmx_target_close(&target);
    return exe_trouble ? 1 : status;
}
