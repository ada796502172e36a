/* The library's only output: misuse reports and deadlock reports.
 *
 * A report is built in a buffer and handed to the report hook in one piece
 * (the default hook writes it to stderr with one write), so reports of
 * several threads do not interleave. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "internal.h"

#define REPORT_SIZE 4096
#define MAX_CYCLE 64

struct report {
    char text[REPORT_SIZE];
    size_t len;
};

static void add(struct report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct report *r, const char *fmt, ...)
{
    if (r->len >= sizeof r->text - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->text + r->len, sizeof r->text - r->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        r->len += (size_t)n;
    if (r->len >= sizeof r->text)
        r->len = sizeof r->text - 1;
}

static void write_to_stderr(const char *text, bool fatal)
{
    (void)fatal;
    size_t len = strlen(text);
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, text, len);
        if (n <= 0)
            return;
        text += n;
        len -= (size_t)n;
    }
}

static _Atomic fast_mutex_report_hook_t report_hook = write_to_stderr;

fast_mutex_report_hook_t fast_mutex_set_report_hook(fast_mutex_report_hook_t hook)
{
    return atomic_exchange(&report_hook, hook != NULL ? hook : write_to_stderr);
}

static void deliver(const struct report *r, bool fatal)
{
    atomic_load(&report_hook)(r->text, fatal);
    if (fatal)
        abort();
}

/* "function+0xoff (module)" for a code address, as far as the dynamic
 * symbol table tells; fmx maps addresses to file and line. */
static void add_site(struct report *r, const void *site)
{
    Dl_info info;
    if (site == NULL) {
        add(r, "an unknown place");
        return;
    }
    if (dladdr(site, &info) != 0 && info.dli_sname != NULL)
        add(r, "%s+0x%lx", info.dli_sname, (unsigned long)((const char *)site - (const char *)info.dli_saddr));
    else if (dladdr(site, &info) != 0 && info.dli_fname != NULL)
        add(r, "%s+0x%lx", strrchr(info.dli_fname, '/') ? strrchr(info.dli_fname, '/') + 1 : info.dli_fname,
            (unsigned long)((const char *)site - (const char *)info.dli_fbase));
    else
        add(r, "%p", site);
    add(r, " (%p)", site);
}

static void add_mutex(struct report *r, const void *m)
{
    char name[FMX_NAME_LEN];
    fmx_name_of(m, name, sizeof name);
    if (name[0] != '\0')
        add(r, "mutex %p (%s)", m, name);
    else
        add(r, "mutex %p", m);
}

void fmx_bad_link(const void *mutex, uint32_t link)
{
    fmx_misuse("corrupt mutex or registry", mutex, __builtin_return_address(0),
               "a waiter link read from shared memory is %u, outside the %u records of this "
               "process's registry: the memory was overwritten",
               link, FMX_REGISTRY_THREADS);
}

void fmx_misuse(const char *check, const void *mutex, const void *site, const char *detail_fmt, ...)
{
    struct report r = {.len = 0};
    char thread_name[FMX_THREAD_NAME_LEN] = "";
    prctl(PR_GET_NAME, thread_name);
    add(&r, "fastmutex: %s: thread %u (%s)", check, fast_mutex_self_(), thread_name);
    if (mutex != NULL) {
        add(&r, ", ");
        add_mutex(&r, mutex);
    }
    add(&r, "\n  ");
    va_list ap;
    va_start(ap, detail_fmt);
    int n = vsnprintf(r.text + r.len, sizeof r.text - r.len, detail_fmt, ap);
    va_end(ap);
    if (n > 0)
        r.len += (size_t)n < sizeof r.text - r.len ? (size_t)n : sizeof r.text - r.len - 1;
    add(&r, "\n  called from ");
    add_site(&r, site);
    add(&r, "\n");
    /* Where the mutex was taken, when the taking thread had to wait for it
     * (the uncontended fast path records nothing). */
    if (mutex != NULL) {
        struct fmx_record *self = fmx_self_record();
        if (self != NULL && self->acquired_mutex == (uint64_t)(uintptr_t)mutex) {
            add(&r, "  this thread last acquired it, after waiting, at ");
            add_site(&r, (const void *)(uintptr_t)self->acquired_site);
            add(&r, "\n");
        }
    }
    deliver(&r, true);
    abort(); /* deliver() has already aborted; this tells the compiler */
}

/* FASTMUTEX_DEADLOCK_MS and FASTMUTEX_ON_DEADLOCK, read once. */
enum on_deadlock { ON_DEADLOCK_REPORT, ON_DEADLOCK_ABORT, ON_DEADLOCK_IGNORE };
static uint64_t deadlock_after_ns;
static enum on_deadlock on_deadlock;
static _Atomic bool diagnostics = true;
static pthread_once_t settings_once = PTHREAD_ONCE_INIT;

static void read_settings(void)
{
    const char *diag = getenv("FASTMUTEX_DIAGNOSTICS");
    if (diag != NULL && (strcmp(diag, "0") == 0 || strcmp(diag, "off") == 0))
        atomic_store_explicit(&diagnostics, false, memory_order_relaxed);
    deadlock_after_ns = 1000 * 1000000ull;
    const char *ms = getenv("FASTMUTEX_DEADLOCK_MS");
    if (ms != NULL && *ms != '\0') {
        char *end;
        unsigned long long v = strtoull(ms, &end, 10);
        if (*end == '\0' && v > 0 && v < 86400000ull)
            deadlock_after_ns = v * 1000000ull;
        else
            fprintf(stderr, "fastmutex: ignoring FASTMUTEX_DEADLOCK_MS=%s (want 1 to 86399999)\n", ms);
    }
    const char *policy = getenv("FASTMUTEX_ON_DEADLOCK");
    if (policy == NULL || *policy == '\0' || strcmp(policy, "report") == 0)
        on_deadlock = ON_DEADLOCK_REPORT;
    else if (strcmp(policy, "abort") == 0)
        on_deadlock = ON_DEADLOCK_ABORT;
    else if (strcmp(policy, "ignore") == 0)
        on_deadlock = ON_DEADLOCK_IGNORE;
    else
        fprintf(stderr, "fastmutex: ignoring FASTMUTEX_ON_DEADLOCK=%s (want report, abort or ignore)\n",
                policy);
}

uint64_t fmx_deadlock_after_ns(void)
{
    if (!fmx_diagnostics())
        return 0;
    return on_deadlock == ON_DEADLOCK_IGNORE ? 0 : deadlock_after_ns;
}

bool fmx_diagnostics(void)
{
    pthread_once(&settings_once, read_settings);
    return atomic_load_explicit(&diagnostics, memory_order_relaxed);
}

void fmx_set_diagnostics(bool on)
{
    pthread_once(&settings_once, read_settings);
    atomic_store_explicit(&diagnostics, on, memory_order_relaxed);
}

/* One link of a wait chain: a thread, the mutex it waits for, from where. */
struct link {
    int32_t tid;
    char thread_name[FMX_THREAD_NAME_LEN];
    const void *mutex;
    const void *site;
    struct fmx_record *rec;
};

static void read_link(struct link *l, struct fmx_record *rec)
{
    /* Other threads' records change under us; the seqlock gives a
     * consistent copy of the fields we need. */
    for (;;) {
        uint32_t seq = atomic_load_explicit(&rec->seq, memory_order_acquire);
        l->tid = FMX_RECORD_LOAD(rec->tid);
        fmx_record_get_name(rec, l->thread_name);
        l->thread_name[sizeof l->thread_name - 1] = '\0';
        l->mutex = (const void *)(uintptr_t)FMX_RECORD_LOAD(rec->mutex);
        l->site = (const void *)(uintptr_t)FMX_RECORD_LOAD(rec->site);
        l->rec = rec;
        atomic_thread_fence(memory_order_acquire);
        if (!(seq & 1) && atomic_load_explicit(&rec->seq, memory_order_relaxed) == seq)
            return;
    }
}

/* Serializes deadlock checks, so that the threads of one cycle report it
 * once between them. */
static pthread_mutex_t check_lock = PTHREAD_MUTEX_INITIALIZER;

/* A fork while another thread checks would leave the child's copy held
 * by a thread that does not exist there. */
static void check_lock_after_fork_in_child(void)
{
    pthread_mutex_init(&check_lock, NULL);
}

__attribute__((constructor)) static void report_setup(void)
{
    pthread_atfork(NULL, NULL, check_lock_after_fork_in_child);
}

bool fmx_deadlock_check(const fast_mutex_t *m, struct fmx_record *self)
{
    struct link chain[MAX_CYCLE];
    int n = 0;
    read_link(&chain[n++], self);
    const fast_mutex_t *waited = m;
    bool cycle = false;
    pthread_mutex_lock(&check_lock);
    while (n < MAX_CYCLE) {
        /* The mutex stays valid: a thread is blocked waiting for it. */
        int32_t owner = (int32_t)(atomic_load_explicit(&((fast_mutex_t *)waited)->word,
                                                       memory_order_relaxed) &
                                  FAST_MUTEX_OWNER_MASK);
        if (owner == 0)
            break;
        if (owner == self->tid) {
            /* Back to us through others: a cycle.  Straight away (n == 1),
             * the lock was just handed to us, which is no deadlock. */
            cycle = n > 1;
            break;
        }
        struct fmx_record *rec = fmx_waiting_record(owner);
        if (rec == NULL)
            break; /* the owner runs, or waits for something else */
        read_link(&chain[n], rec);
        waited = chain[n].mutex;
        n++;
    }
    bool first = cycle && atomic_load_explicit(&self->deadlock, memory_order_relaxed) == 0;
    if (first)
        for (int i = 0; i < n; i++)
            atomic_store_explicit(&chain[i].rec->deadlock, 1, memory_order_relaxed);
    pthread_mutex_unlock(&check_lock);
    if (!first)
        return cycle;

    struct report r = {.len = 0};
    add(&r, "fastmutex: deadlock detected: %d threads wait for each other in a cycle\n", n);
    for (int i = 0; i < n; i++) {
        int32_t holder = chain[(i + 1) % n].tid;
        add(&r, "  thread %d (%s) waits for ", chain[i].tid, chain[i].thread_name);
        add_mutex(&r, chain[i].mutex);
        add(&r, " held by thread %d (%s)\n    called from ", holder, chain[(i + 1) % n].thread_name);
        add_site(&r, chain[i].site);
        add(&r, "\n");
    }
    if (on_deadlock == ON_DEADLOCK_ABORT)
        add(&r, "  FASTMUTEX_ON_DEADLOCK=abort: aborting\n");
    deliver(&r, on_deadlock == ON_DEADLOCK_ABORT);
    return true;
}
