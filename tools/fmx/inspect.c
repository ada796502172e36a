/* The process and waiter descriptions shared by fmx's views. */
#include "inspect.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "datasym.h"

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

int fmx_view_options(int argc, char **argv, const char *command, const char *usage, unsigned accept,
                     bool stop_at_operand, struct fmx_view_options *out)
{
    static const struct option all[] = {
        {"json", no_argument, NULL, 'j'},      {"wdm", no_argument, NULL, 'w'},
        {"core", required_argument, NULL, 'c'}, {"exe", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
    };
    struct option options[sizeof all / sizeof all[0] + 1];
    size_t n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if ((all[i].val != 'j' || (accept & FMX_VIEW_JSON)) && (all[i].val != 'w' || (accept & FMX_VIEW_WDM)))
            options[n++] = all[i];
    options[n] = (struct option){NULL, 0, NULL, 0};
    *out = (struct fmx_view_options){0};
    opterr = 0;
    for (int opt; (opt = getopt_long(argc, argv, stop_at_operand ? "+:h" : ":h", options, NULL)) != -1;) {
        if (opt == 'j') {
            out->json = true;
        } else if (opt == 'w') {
            out->wdm = true;
        } else if (opt == 'c') {
            out->core = optarg;
        } else if (opt == 'e') {
            out->exe = optarg;
        } else if (opt == 'h') {
            printf("%s\n", usage);
            return -1;
        } else {
            fprintf(stderr, "%s: %s '%s' (%s)\n", command,
                    opt == ':' ? "option needs a value:" : "unknown option", argv[optind - 1], usage);
            return 2;
        }
    }
    return 0;
}

static uint64_t monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* What a live target needs besides its registry. */
static void open_live_rest(pid_t pid, struct fmx_target *target)
{
    /* The clock is read once the records are copied, so a wait never
     * looks shorter than it was. */
    target->now_ns = monotonic_ns();
    target->now_known = true;
    fmx_process_name(pid, &target->name);
    /* Without symbols the views still show addresses. */
    target->symbols = fmx_symbolizer_open(pid, target->symbols_why, sizeof target->symbols_why);
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
    open_live_rest(pid, target);
    return 0;
}

void fmx_target_open_any(pid_t pid, struct fmx_target *target)
{
    char why[256];
    *target = (struct fmx_target){.pid = pid};
    if (fmx_registry_open(pid, &target->registry, why, sizeof why) != 0)
        target->registry = (struct fmx_registry_reader){.fd = -1};
    open_live_rest(pid, target);
}

/* The moment of the dump, in the CLOCK_MONOTONIC the waits began in: the
 * stamp the library wrote as it aborted, else the core file's modification
 * time less the offset between the clocks (registry.h). */
static void set_core_now(struct fmx_target *target)
{
    const struct fmx_registry_layout *layout = &target->registry.layout;
    int64_t now;
    if (layout->stamp_mono_ns != 0) {
        target->now_ns = layout->stamp_mono_ns;
        target->now_known = true;
    } else if (target->core->mtime_ns > 0 &&
               !__builtin_sub_overflow(target->core->mtime_ns, layout->realtime_offset_ns, &now) &&
               now > 0) {
        target->now_ns = (uint64_t)now;
        target->now_known = true;
    }
}

/* Says, in one line, why the core's executable gives no symbols; the
 * executable is the module mapped at the entry point.  `exe` is an --exe
 * already found not to match, or NULL. */
static void check_executable(struct fmx_target *target, const char *exe, const char *exe_why,
                             bool *exe_trouble)
{
    const struct fmx_core *core = target->core;
    const char *what = "showing what can be shown without its symbols";
    char why[256];
    bool found = core->entry == 0 || fmx_symbolizer_has_file(target->symbols, core->entry, why, sizeof why);
    if (found && exe == NULL)
        return;
    *exe_trouble = true;
    if (exe != NULL)
        fprintf(stderr, "fmx: %s is not the executable core %s was made from (%s); %s\n", exe,
                target->core_path, exe_why, found ? "using the one the core names" : what);
    else if (core->exe[0] != '\0' && access(core->exe, F_OK) != 0)
        fprintf(stderr, "fmx: the executable of core %s, %s, is missing (give it with --exe); %s\n",
                target->core_path, core->exe, what);
    else if (core->exe[0] != '\0')
        fprintf(stderr,
                "fmx: %s is not the executable core %s was made from (its build ID differs; give the right "
                "one with --exe); %s\n",
                core->exe, target->core_path, what);
    else
        fprintf(stderr, "fmx: the executable of core %s cannot be found (%s; give it with --exe); %s\n",
                target->core_path, why, what);
}

/* Reads the core's modules: with `exe` for the executable when it is the
 * one that was dumped (libdwfl takes a file it is given as it is), else
 * as the core's notes name them. */
static void open_core_symbols(struct fmx_target *target, const char *exe, bool *exe_trouble)
{
    Elf *elf = target->core->elf;
    char why[256];
    target->symbols = fmx_symbolizer_open_core(elf, NULL, target->symbols_why, sizeof target->symbols_why);
    if (target->symbols == NULL) {
        fprintf(stderr, "fmx: %s: cannot read its modules (%s); showing addresses without symbols\n",
                target->core_path, target->symbols_why);
        *exe_trouble = true;
        return;
    }
    if (exe != NULL && !fmx_symbolizer_file_matches(target->symbols, target->core->entry, exe, why, sizeof why)) {
        check_executable(target, exe, why, exe_trouble);
        return;
    }
    if (exe != NULL) {
        fmx_symbolizer_close(target->symbols);
        target->symbols = fmx_symbolizer_open_core(elf, exe, target->symbols_why, sizeof target->symbols_why);
    }
    if (target->symbols != NULL)
        check_executable(target, NULL, NULL, exe_trouble);
}

/* fmx_target_open_core(), and without a registry too unless `need_registry`. */
static int open_core(const char *core_path, const char *exe, struct fmx_target *target, bool *exe_trouble,
                     bool need_registry)
{
    char why[256];
    *target = (struct fmx_target){.core_path = core_path, .registry = {.fd = -1}};
    *exe_trouble = false;
    target->core = calloc(1, sizeof *target->core);
    if (target->core == NULL) {
        fprintf(stderr, "fmx: out of memory\n");
        return ENOMEM;
    }
    int err = fmx_core_open(core_path, target->core, why, sizeof why);
    if (err != 0) {
        fprintf(stderr, "fmx: %s: %s\n", core_path, why);
        free(target->core);
        target->core = NULL;
        return err;
    }
    target->pid = target->core->pid;
    memcpy(target->name, target->core->name, sizeof target->name);
    err = fmx_core_registry(target->core, &target->registry, why, sizeof why);
    if (err != 0 && !need_registry) {
        target->registry = (struct fmx_registry_reader){.fd = -1};
        err = 0;
    }
    if (err != 0) {
        fprintf(stderr, "fmx: %s: %s\n", core_path, why);
        fmx_target_close(target);
        return err;
    }
    set_core_now(target);
    open_core_symbols(target, exe, exe_trouble);
    return 0;
}

int fmx_target_open_core(const char *core_path, const char *exe, struct fmx_target *target,
                         bool *exe_trouble)
{
    return open_core(core_path, exe, target, exe_trouble, true);
}

int fmx_target_open_core_any(const char *core_path, const char *exe, struct fmx_target *target,
                             bool *exe_trouble)
{
    return open_core(core_path, exe, target, exe_trouble, false);
}

void fmx_target_close(struct fmx_target *target)
{
    fmx_symbolizer_close(target->symbols);
    target->symbols = NULL;
    fmx_registry_close(&target->registry);
    if (target->core != NULL) {
        fmx_core_close(target->core);
        free(target->core);
        target->core = NULL;
    }
}

int fmx_target_read(const struct fmx_target *target, uint64_t addr, void *buf, size_t len)
{
    if (target->core != NULL)
        return fmx_core_read(target->core, addr, buf, len);
    return fmx_read_memory(target->pid, addr, buf, len);
}

/* The name a thread's registry record gives it: its long name, or the
 * comm it had when it first waited (or at the last deadlock check). */
static bool name_from_registry(struct fmx_target *target, pid_t tid, fmx_comm *name)
{
    _Static_assert(sizeof(fmx_comm) == FMX_THREAD_NAME_LEN + 1, "a record's name fits fmx_comm");
    for (uint32_t slot = 0; slot < target->registry.layout.records; slot++) {
        struct fmx_waiter rec;
        if (fmx_registry_record(&target->registry, slot, &rec) != FMX_RECORD_READ_CHANGING &&
            rec.state != FMX_RECORD_FREE && rec.tid == tid && rec.thread_name[0] != '\0') {
            snprintf(*name, sizeof *name, "%s", rec.thread_name);
            return true;
        }
    }
    return false;
}

/* Replaces a live thread's comm in *name by the long name its record
 * gives, when the comm is still that name's first 15 bytes (the kernel
 * keeps no more); a thread renamed since keeps its comm. */
static void prefer_long_name(struct fmx_target *target, pid_t tid, fmx_comm *name)
{
    fmx_comm long_name;
    size_t comm_len = strlen(*name);
    if (comm_len == 0 || strcmp(*name, "?") == 0 || !name_from_registry(target, tid, &long_name))
        return;
    if (strlen(long_name) > comm_len && comm_len == 15 && strncmp(long_name, *name, comm_len) == 0)
        memcpy(*name, long_name, sizeof long_name);
}

bool fmx_target_thread_name(struct fmx_target *target, pid_t tid, fmx_comm *name)
{
    if (target->core == NULL) {
        bool found = fmx_thread_name(target->pid, tid, name);
        if (found)
            prefer_long_name(target, tid, name);
        return found;
    }
    /* A core holds the process's name, which is its main thread's, and
     * no other thread's: those come from the registry. */
    if (!name_from_registry(target, tid, name))
        snprintf(*name, sizeof *name, "%s", tid == target->pid ? target->name : "?");
    return fmx_core_thread(target->core, tid) != NULL;
}

int fmx_target_thread_info(struct fmx_target *target, pid_t tid, struct fmx_thread_info *info)
{
    if (target->core == NULL) {
        int err = fmx_thread_info(target->pid, tid, info);
        if (err == 0)
            prefer_long_name(target, tid, &info->name);
        return err;
    }
    *info = (struct fmx_thread_info){.state = '-'};
    const struct fmx_core_thread *thread = fmx_core_thread(target->core, tid);
    if (thread == NULL)
        return ENOENT;
    info->known = FMX_KNOWN_TIMES;
    info->user_seconds = thread->user_seconds;
    info->kernel_seconds = thread->kernel_seconds;
    (void)fmx_target_thread_name(target, tid, &info->name);
    return 0;
}

bool fmx_target_registry_span(const struct fmx_target *target, uint64_t *start, uint64_t *end)
{
    if (target->core == NULL)
        return fmx_find_mapping(target->pid, "/memfd:" FMX_REGISTRY_NAME, start, end) == 0;
    *start = target->core->registry_address;
    *end = *start + target->registry.size;
    return *start != 0;
}

const char *fmx_target_kind(const struct fmx_target *target)
{
    return target->core != NULL ? "core of process" : "process";
}

void fmx_name_owner(struct fmx_target *target, uint32_t queue, struct fmx_owner *owner)
{
    if (fmx_target_thread_name(target, owner->tid, &owner->name))
        return;
    /* A process-shared mutex may be held by a thread of another process. */
    if (queue == FAST_MUTEX_SHARED_QUEUE || queue == FAST_MUTEX_ROBUST_QUEUE)
        owner->elsewhere = true;
    else
        owner->exited = true;
}

/* Reads the owner from the lock word at `mutex`; false when the memory
 * cannot be read. */
static bool read_owner(struct fmx_target *target, uint64_t mutex, pid_t *tid, uint32_t *queue)
{
    fast_mutex_t lock;
    if (fmx_target_read(target, mutex, &lock, sizeof lock) != 0)
        return false;
    *tid = (pid_t)(atomic_load_explicit(&lock.word, memory_order_relaxed) & FAST_MUTEX_OWNER_MASK);
    *queue = atomic_load_explicit(&lock.queue, memory_order_relaxed);
    return true;
}

void fmx_find_owner(struct fmx_target *target, const struct fmx_waiter *waiter, struct fmx_owner *owner)
{
    uint32_t queue = 0;
    *owner = (struct fmx_owner){.tid = waiter->owner_seen};
    owner->from_lock = read_owner(target, waiter->mutex, &owner->tid, &queue);
    if (owner->tid <= 0) {
        owner->tid = 0;
        return;
    }
    fmx_name_owner(target, queue, owner);
    /* A live owner may have let go, then exited, since the word was read:
     * only a word that still names it once it is gone was never released. */
    pid_t again;
    if (owner->exited && target->core == NULL && read_owner(target, waiter->mutex, &again, &queue) &&
        again != owner->tid) {
        *owner = (struct fmx_owner){.tid = again, .from_lock = true};
        if (again > 0)
            fmx_name_owner(target, queue, owner);
    }
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

void fmx_format_mutex(uint64_t address, const char *name, const char *symbol, char *buf, size_t size)
{
    int n;
    if (name[0] != '\0')
        n = snprintf(buf, size, "0x%llx (%s)", (unsigned long long)address, name);
    else
        n = snprintf(buf, size, "0x%llx", (unsigned long long)address);
    if (symbol[0] != '\0' && strcmp(symbol, name) != 0 && n >= 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, " <%s>", symbol);
}

void fmx_format_target_mutex(struct fmx_target *target, uint64_t address, const char *name, char *buf,
                             size_t size)
{
    char symbol[256];
    fmx_data_symbol(target->symbols, address, symbol, sizeof symbol);
    fmx_format_mutex(address, name, symbol, buf, size);
}

void fmx_format_owner(const struct fmx_owner *owner, char *buf, size_t size)
{
    if (owner->tid == 0)
        snprintf(buf, size, "none");
    else if (owner->exited)
        snprintf(buf, size, "%d (exited)", (int)owner->tid);
    else if (owner->elsewhere)
        snprintf(buf, size, "%d (not in this process)", (int)owner->tid);
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

void fmx_format_target_waited(const struct fmx_target *target, uint64_t start_ns, char *buf, size_t size)
{
    if (target->now_known)
        fmx_format_waited(fmx_waited_ns(start_ns, target->now_ns), buf, size);
    else
        snprintf(buf, size, "-");
}
