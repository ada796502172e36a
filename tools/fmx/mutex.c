/* fmx mutex [--wdm] PID ADDR: one mutex of a running process, as WinDbg's
 * `dt nt!_FAST_MUTEX` shows one: owner, contention, waiters, and for a
 * FAST_MUTEX the Windows fields Count, Owner, Contention and OldIrql. */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastmutex/wdm.h"
#include "fmx.h"
#include "datasym.h"
#include "inspect.h"

#define MAX_LISTED 4096

/* Parses ADDR strictly: 0x followed by 1 to 16 hex digits, or decimal
 * digits that fit 64 bits; never 0. */
static bool parse_address(const char *text, uint64_t *address)
{
    uint64_t value = 0;
    if (text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        const char *digits = text + 2;
        size_t n = strlen(digits);
        if (n == 0 || n > 16)
            return false;
        for (const char *p = digits; *p != '\0'; p++) {
            int d;
            if (*p >= '0' && *p <= '9')
                d = *p - '0';
            else if (*p >= 'a' && *p <= 'f')
                d = *p - 'a' + 10;
            else if (*p >= 'A' && *p <= 'F')
                d = *p - 'A' + 10;
            else
                return false;
            value = value << 4 | (uint64_t)d;
        }
    } else {
        if (text[0] == '\0')
            return false;
        for (const char *p = text; *p != '\0'; p++) {
            if (*p < '0' || *p > '9')
                return false;
            uint64_t d = (uint64_t)(*p - '0');
            if (value > (UINT64_MAX - d) / 10)
                return false;
            value = value * 10 + d;
        }
    }
    if (value == 0)
        return false;
    *address = value;
    return true;
}

/* The waiters of the mutex, oldest first. */
struct waiters {
    struct fmx_waiter list[MAX_LISTED];
    size_t count;
    unsigned changing;
};

static int by_wait_start(const void *a, const void *b)
{
    const struct fmx_waiter *x = a, *y = b;
    return x->wait_start_ns < y->wait_start_ns ? -1 : x->wait_start_ns > y->wait_start_ns;
}

/* Collects the records waiting for the fast_mutex_t at `lock` (which is
 * also `outer`'s, for a FAST_MUTEX) and tells whether the registry knows
 * `address` as a FAST_MUTEX. */
static bool collect_waiters(struct fmx_target *target, uint64_t address, struct waiters *waiters,
                            uint64_t *enclosing)
{
    bool is_wdm = false;
    *enclosing = 0;
    for (uint32_t slot = 0; slot < target->registry.layout.records; slot++) {
        struct fmx_waiter rec;
        enum fmx_record_result got = fmx_registry_record(&target->registry, slot, &rec);
        if (got == FMX_RECORD_READ_CHANGING)
            waiters->changing++;
        if (got != FMX_RECORD_READ_WAITING)
            continue;
        bool outer_match = rec.kind == FMX_KIND_WDM && rec.outer == address;
        if (outer_match)
            is_wdm = true;
        if (rec.kind == FMX_KIND_WDM && rec.mutex == address)
            *enclosing = rec.outer;
        if ((rec.mutex == address || outer_match) && waiters->count < MAX_LISTED)
            waiters->list[waiters->count++] = rec;
    }
    qsort(waiters->list, waiters->count, sizeof waiters->list[0], by_wait_start);
    return is_wdm;
}

static void flags_text(uint32_t word, char *buf, size_t size)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } flags[] = {
        {FAST_MUTEX_WAITERS, "WAITERS"},       {FAST_MUTEX_WOKEN, "WOKEN"},
        {FAST_MUTEX_TRYING, "TRYING"},         {FAST_MUTEX_SLEEPERS, "SLEEPERS"},
        {FAST_MUTEX_ROBUST_HELD, "ROBUST_HELD"}, {FAST_MUTEX_INCONSISTENT, "INCONSISTENT"},
        {FAST_MUTEX_NOTRECOVERABLE, "NOTRECOVERABLE"}, {FAST_MUTEX_SHARED, "SHARED"},
    };
    size_t len = 0;
    uint32_t known = FAST_MUTEX_OWNER_MASK;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        known |= flags[i].bit;
        if ((word & flags[i].bit) && len < size)
            len += (size_t)snprintf(buf + len, size - len, " %s", flags[i].name);
    }
    if ((word & ~known) && len < size)
        len += (size_t)snprintf(buf + len, size - len, " (unknown bits)");
    if (buf[0] == '\0')
        snprintf(buf, size, " none");
}

static void print_lock(struct fmx_target *target, const fast_mutex_t *lock, const char *indent)
{
    uint32_t word = atomic_load_explicit(&lock->word, memory_order_relaxed);
    struct fmx_owner owner = {.tid = (pid_t)(word & FAST_MUTEX_OWNER_MASK)};
    char text[256], flags[128];
    if (owner.tid != 0)
        fmx_name_owner(target, atomic_load_explicit(&lock->queue, memory_order_relaxed), &owner);
    fmx_format_owner(&owner, text, sizeof text);
    flags_text(word, flags, sizeof flags);
    printf("%sOwner:        %s\n", indent, text);
    printf("%sFlags:       %s (lock word 0x%08x)\n", indent, flags, word);
    printf("%sContention:   %u\n", indent, atomic_load_explicit(&lock->contention, memory_order_relaxed));
}

/* The Windows reading of a FAST_MUTEX: Count decoded as Windows does, and
 * Owner (a thread's registry record here) mapped to the thread. */
static void print_wdm(struct fmx_target *target, const FAST_MUTEX *fm)
{
    LONG count = fm->Count;
    unsigned waiting = (unsigned)count / FM_LOCK_WAITER_INC;
    printf("  Count:        %d (%s, %u waiter%s%s)\n", (int)count, (count & FM_LOCK_BIT) ? "free" : "held",
           waiting, waiting == 1 ? "" : "s", (count & FM_LOCK_WAITER_WOKEN) ? ", a waiter woken" : "");

    uint64_t owner = (uint64_t)(uintptr_t)fm->Owner;
    uint64_t start, end;
    char thread[128] = "";
    /* KeGetCurrentThread() is the thread's record in the registry mapping,
     * so the pointer names a slot, and the slot a thread. */
    const struct fmx_registry_layout *layout = &target->registry.layout;
    if (owner != 0 && fmx_target_registry_span(target, &start, &end) &&
        owner >= start + layout->records_offset && owner < end) {
        uint64_t rel = owner - start - layout->records_offset;
        struct fmx_waiter rec;
        if (rel % sizeof(struct fmx_record) == 0 &&
            fmx_registry_record(&target->registry, (uint32_t)(rel / sizeof(struct fmx_record)), &rec) !=
                FMX_RECORD_READ_CHANGING &&
            rec.tid > 0) {
            fmx_comm name;
            (void)fmx_target_thread_name(target, rec.tid, &name);
            snprintf(thread, sizeof thread, " (thread %d, %s)", (int)rec.tid, name);
        }
    }
    printf("  Owner:        0x%llx%s\n", (unsigned long long)owner, owner == 0 ? " (none)" : thread);
    printf("  Contention:   %u\n", fm->Contention);
    printf("  OldIrql:      %u\n", fm->OldIrql);
}

static void print_waiters(struct fmx_target *target, const struct waiters *waiters)
{
    printf("  Waiters:      %zu\n", waiters->count);
    for (size_t i = 0; i < waiters->count; i++) {
        const struct fmx_waiter *w = &waiters->list[i];
        fmx_comm name;
        char waited[32], site[512];
        struct fmx_location loc;
        if (!fmx_target_thread_name(target, w->tid, &name) || strcmp(name, "?") == 0)
            snprintf(name, sizeof name, "%s", w->thread_name);
        fmx_format_target_waited(target, w->wait_start_ns, waited, sizeof waited);
        fmx_symbolize(target->symbols, w->site, true, &loc);
        fmx_format_site(&loc, site, sizeof site);
        printf("    %d (%s)  waited %s  from %s%s\n", (int)w->tid, name, waited, site,
               w->deadlock ? "  [deadlock]" : "");
    }
    if (waiters->changing > 0)
        printf("  (%u registry record%s kept changing and could not be read)\n", waiters->changing,
               waiters->changing == 1 ? "" : "s");
}

#define USAGE "usage: fmx mutex [--wdm] PID ADDR|SYMBOL | fmx mutex [--wdm] --core CORE [--exe EXE] ADDR|SYMBOL"

/* The parsed command line. */
struct mutex_args {
    bool wdm;
    const char *core, *exe;
    pid_t pid;
    const char *mutex; /* ADDR or SYMBOL, as given */
};

/* Returns 0, or the exit status after a line on stderr (2: bad usage). */
static int parse_args(int argc, char **argv, struct mutex_args *args)
{
    struct fmx_view_options view;
    int status = fmx_view_options(argc, argv, "fmx mutex", USAGE, FMX_VIEW_WDM, true, &view);
    *args = (struct mutex_args){.wdm = view.wdm, .core = view.core, .exe = view.exe};
    if (status != 0)
        return status;
    int want = args->core != NULL ? 1 : 2;
    if (argc - optind != want || (args->exe != NULL && args->core == NULL)) {
        fprintf(stderr, "%s\n", USAGE);
        return 2;
    }
    if (args->core == NULL && !fmx_parse_id(argv[optind], &args->pid)) {
        fprintf(stderr, "fmx mutex: '%s' is not a process id\n", argv[optind]);
        return 2;
    }
    args->mutex = argv[argc - 1];
    return 0;
}

/* Turns ADDR or SYMBOL into an address in the target.  Returns 0, or the
 * exit status after a line on stderr. */
static int resolve_mutex(struct fmx_target *target, const char *text, uint64_t *address)
{
    if (parse_address(text, address))
        return 0;
    if (!fmx_is_data_symbol_text(text)) {
        fprintf(stderr,
                "fmx mutex: '%s' is not an address (want hex like 0x7f5e2c0010a0, or decimal) nor a "
                "symbol\n",
                text);
        return 2;
    }
    char why[256];
    if (target->symbols == NULL) {
        fprintf(stderr, "fmx: cannot look up '%s': %s\n", text, target->symbols_why);
        return 1;
    }
    if (fmx_data_address(target->symbols, text, address, why, sizeof why) != 0) {
        fprintf(stderr, "fmx: %s\n", why);
        return 1;
    }
    return 0;
}

/* Explains a failed read of the mutex in one line; returns true when
 * there is nothing to show. */
static bool read_failed(const struct fmx_target *target, uint64_t address, int err)
{
    if (err == EFAULT) {
        fprintf(stderr, "fmx: address 0x%llx is not mapped in %s %d (nothing to read there)\n",
                (unsigned long long)address, fmx_target_kind(target), (int)target->pid);
        return true;
    }
    if (err == ESRCH) {
        fprintf(stderr, "fmx: no process %d\n", (int)target->pid);
        return true;
    }
    if (err == 0)
        return false;
    if (target->core != NULL)
        fprintf(stderr, "fmx: address 0x%llx was not dumped into core %s; showing what its registry knows\n",
                (unsigned long long)address, target->core_path);
    else
        fprintf(stderr,
                "fmx: cannot read the memory of process %d (process_vm_readv: %s); showing what its "
                "registry knows\n",
                (int)target->pid, strerror(err));
    return false;
}

static void print_title(struct fmx_target *target, uint64_t address, bool wdm, uint64_t enclosing)
{
    uint64_t lock_address = wdm ? address + offsetof(FAST_MUTEX, Event.Lock) : address;
    fmx_display_name name;
    if (!fmx_registry_name(&target->registry, lock_address, &name))
        (void)fmx_registry_name(&target->registry, address, &name);
    char title[512];
    fmx_format_target_mutex(target, address, name, title, sizeof title);
    printf("%s %s in %s %d (%s)\n", wdm ? "FAST_MUTEX" : "fast_mutex_t", title, fmx_target_kind(target),
           (int)target->pid, target->name);
    if (enclosing != 0) {
        char outer[512];
        fmx_format_target_mutex(target, enclosing, "", outer, sizeof outer);
        printf("  (the Event.Lock of FAST_MUTEX %s: see fmx mutex %d 0x%llx)\n", outer, (int)target->pid,
               (unsigned long long)enclosing);
    }
}

int fmx_mutex_show(struct fmx_target *target, uint64_t address, bool wdm)
{
    int status = 0;
    /* Static: a list for every record a registry can hold is too big for
     * the stack. */
    static struct waiters waiters;
    waiters.count = 0;
    waiters.changing = 0;
    uint64_t enclosing;
    if (collect_waiters(target, address, &waiters, &enclosing))
        wdm = true;

    /* What the process's memory says, when it can be read. */
    union {
        FAST_MUTEX wdm;
        fast_mutex_t lock;
    } mem;
    size_t size = wdm ? sizeof(FAST_MUTEX) : sizeof(fast_mutex_t);
    int err = fmx_target_read(target, address, &mem, size);
    if (read_failed(target, address, err))
        return 1;
    print_title(target, address, wdm, enclosing);
    if (err != 0) {
        status = 1;
    } else if (wdm) {
        print_wdm(target, &mem.wdm);
        char lock[512];
        fmx_format_target_mutex(target, address + offsetof(FAST_MUTEX, Event.Lock), "", lock, sizeof lock);
        printf("  Event.Lock:   fast_mutex_t at %s\n", lock);
        print_lock(target, &mem.wdm.Event.Lock, "    ");
    } else {
        print_lock(target, &mem.lock, "  ");
    }
    print_waiters(target, &waiters);
    return status;
}

int fmx_mutex_main(int argc, char **argv)
{
    struct mutex_args args;
    int status = parse_args(argc, argv, &args);
    if (status != 0)
        return status < 0 ? 0 : status;
    /* An address is checked before any process is read. */
    uint64_t address;
    if (!parse_address(args.mutex, &address) && !fmx_is_data_symbol_text(args.mutex)) {
        fprintf(stderr,
                "fmx mutex: '%s' is not an address (want hex like 0x7f5e2c0010a0, or decimal) nor a "
                "symbol\n",
                args.mutex);
        return 2;
    }
    struct fmx_target target;
    bool exe_trouble = false;
    if (args.core != NULL ? fmx_target_open_core(args.core, args.exe, &target, &exe_trouble) != 0
                          : fmx_target_open(args.pid, &target, false) != 0)
        return 1;
    status = resolve_mutex(&target, args.mutex, &address);
    if (status == 0)
        status = fmx_mutex_show(&target, address, args.wdm);
    fmx_target_close(&target);
    return status != 0 ? status : exe_trouble ? 1 : 0;
}
