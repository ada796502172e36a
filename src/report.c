/* The library's only output: misuse reports and deadlock reports.
 *
 * A report is built in a buffer and handed to the report hook in one piece
 * (the default hook writes it to stderr with one write), so reports of
 * several threads do not interleave. */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"

#define MAX_CYCLE 64

static void add(struct fmx_report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct fmx_report *r, const char *fmt, ...)
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

/* A fatal report stamps the registry before the hook runs: a hook may end
 * the process itself, and the stamp must be in its core either way. */
static void deliver(struct fmx_report *r, bool fatal)
{
    fmx_symbols_close(r->syms);
    r->syms = NULL;
    if (fatal)
        fmx_registry_stamp();
    atomic_load(&report_hook)(r->text, fatal);
    if (fatal) {
        fmx_trace_flush(); /* the timeline up to the abort */
        abort();
    }
}

/* "function+0xoff file:line (address)" for a return address, as fmx
 * shows it (symbols.c); without libdwfl's help, "function+0xoff" or
 * "module+0xoff" as far as the dynamic symbol table tells. */
static void add_site(struct fmx_report *r, const void *site)
{
    Dl_info info;
    if (site == NULL) {
        add(r, "an unknown place");
        return;
    }
    if (!r->syms_tried) {
        r->syms = fmx_symbols_open();
        r->syms_tried = true;
    }
    char where[512];
    if (fmx_symbols_site(r->syms, site, where, sizeof where))
        add(r, "%s", where);
    else if (dladdr(site, &info) != 0 && info.dli_sname != NULL)
        add(r, "%s+0x%lx", info.dli_sname, (unsigned long)((const char *)site - (const char *)info.dli_saddr));
    else if (dladdr(site, &info) != 0 && info.dli_fname != NULL)
        add(r, "%s+0x%lx", strrchr(info.dli_fname, '/') ? strrchr(info.dli_fname, '/') + 1 : info.dli_fname,
            (unsigned long)((const char *)site - (const char *)info.dli_fbase));
    else
        add(r, "%p", site);
    add(r, " (%p)", site);
}

/* A mutex by the address its user knows, `shown` (a FAST_MUTEX's own
 * address, not that of the fast_mutex_t inside it, `lock`), with its name:
 * given to either. */
static void add_mutex(struct fmx_report *r, const void *shown, const void *lock)
{
    char name[FMX_NAME_LEN];
    fmx_name_of(shown, name, sizeof name);
    if (name[0] == '\0' && lock != shown)
        fmx_name_of(lock, name, sizeof name);
    if (name[0] != '\0')
        add(r, "mutex %p (%s)", shown, name);
    else
        add(r, "mutex %p", shown);
}

void fmx_bad_link(const void *mutex, uint32_t link)
{
    fmx_misuse("corrupt mutex or registry", mutex, __builtin_return_address(0),
               "a waiter link read from shared memory is %u, outside the %u records of this "
               "process's registry: the memory was overwritten",
               link, FMX_REGISTRY_THREADS);
}

static _Noreturn void misuse(const char *check, const void *shown, const void *lock, const void *site,
                             const char *detail_fmt, va_list ap)
{
    struct fmx_report r = {.len = 0};
    char thread_name[FMX_THREAD_NAME_LEN];
    fmx_current_thread_name(thread_name);
    add(&r, "fastmutex: %s: thread %u (%s)", check, fast_mutex_self_(), thread_name);
    if (shown != NULL) {
        add(&r, ", ");
        add_mutex(&r, shown, lock);
    }
    add(&r, "\n  ");
    int n = vsnprintf(r.text + r.len, sizeof r.text - r.len, detail_fmt, ap);
    if (n > 0)
        r.len += (size_t)n < sizeof r.text - r.len ? (size_t)n : sizeof r.text - r.len - 1;
    add(&r, "\n  called from ");
    add_site(&r, site);
    add(&r, "\n");
    /* Where the mutex was taken, when the taking thread had to wait for it
     * (the uncontended fast path records nothing). */
    if (lock != NULL) {
        struct fmx_record *self = fmx_self_record();
        if (self != NULL && self->acquired_mutex == (uint64_t)(uintptr_t)lock) {
            add(&r, "  this thread last acquired it, after waiting, at ");
            add_site(&r, (const void *)(uintptr_t)self->acquired_site);
            add(&r, "\n");
        }
    }
    deliver(&r, true);
    abort(); /* deliver() has already aborted; this tells the compiler */
}

void fmx_misuse(const char *check, const void *mutex, const void *site, const char *detail_fmt, ...)
{
    va_list ap;
    va_start(ap, detail_fmt);
    misuse(check, mutex, mutex, site, detail_fmt, ap);
}

void fmx_misuse_wdm(const char *check, const void *outer, const fast_mutex_t *lock, const void *site,
                    const char *detail_fmt, ...)
{
    va_list ap;
    va_start(ap, detail_fmt);
    misuse(check, outer, lock, site, detail_fmt, ap);
}

/* One link of a wait chain: a thread, the mutex it waits for, from where. */
struct link {
    int32_t tid;
    char thread_name[FMX_THREAD_NAME_LEN];
    const void *mutex; /* the fast_mutex_t, followed to its owner */
    const void *shown; /* the address its user knows: a FAST_MUTEX's own */
    const void *site;
    struct fmx_record *rec; /* NULL for a thread of another process */
    pid_t pid;              /* that process, 0 for this one */
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
        const void *outer = (const void *)(uintptr_t)FMX_RECORD_LOAD(rec->outer);
        bool wdm = FMX_RECORD_LOAD(rec->kind) == FMX_KIND_WDM && outer != NULL;
        l->shown = wdm ? outer : l->mutex;
        l->site = (const void *)(uintptr_t)FMX_RECORD_LOAD(rec->site);
        l->rec = rec;
        l->pid = 0;
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

/* The lock word and queue word of the mutex at `mutex`.  The caller's own
 * mutex (`trusted`) is read directly; any other address comes from a record
 * in the shared registry, which anything able to open the memfd may write,
 * so it is read with process_vm_readv(), which fails on unmapped memory
 * instead of faulting.  False when it cannot be read. */
static bool read_mutex_words(const void *mutex, const fast_mutex_t *trusted, uint32_t *word,
                             uint32_t *queue)
{
    if (mutex == trusted) {
        *word = atomic_load_explicit(&((fast_mutex_t *)trusted)->word, memory_order_relaxed);
        *queue = atomic_load_explicit(&((fast_mutex_t *)trusted)->queue, memory_order_relaxed);
        return true;
    }
    fast_mutex_t copy;
    struct iovec local = {.iov_base = &copy, .iov_len = sizeof copy};
    struct iovec remote = {.iov_base = (void *)mutex, .iov_len = sizeof copy};
    if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != (ssize_t)sizeof copy)
        return false;
    *word = atomic_load_explicit(&copy.word, memory_order_relaxed);
    *queue = atomic_load_explicit(&copy.queue, memory_order_relaxed);
    return true;
}

/* Whether thread `tid` still exists: of this process, or for a
 * process-shared mutex of any.  Signal 0 checks without sending. */
static bool thread_exists(int32_t tid, bool shared)
{
    long result = shared ? kill(tid, 0) : syscall(SYS_tgkill, getpid(), tid, 0);
    return result == 0 || errno != ESRCH;
}

/* The last mutex reported held by an exited owner, and that owner, so
 * that the waiters' repeated checks report it once (under check_lock). */
static const void *orphan_reported;
static int32_t orphan_owner_reported;

/* Reports, once, that the thread of `waiter` waits for a mutex whose owner
 * has exited without letting it go: the wait can never end. */
static void report_exited_owner(const struct link *waiter, int32_t owner)
{
    struct fmx_report r = {.len = 0};
    add(&r, "fastmutex: ");
    add_mutex(&r, waiter->shown, waiter->mutex);
    add(&r, ": owner %d exited while holding it\n", owner);
    add(&r, "  thread %d (%s) waits for it\n    called from ", waiter->tid, waiter->thread_name);
    add_site(&r, waiter->site);
    add(&r, "\n");
    bool abort_now = fmx_on_deadlock() == FMX_ON_DEADLOCK_ABORT;
    if (abort_now)
        add(&r, "  FASTMUTEX_ON_DEADLOCK=abort: aborting\n");
    deliver(&r, abort_now);
}

/* Whether thread `owner`, seen holding the mutex at `mutex`, has exited
 * holding it, and has not been reported for it yet (called under
 * check_lock). */
static bool newly_exited_owner(const void *mutex, const fast_mutex_t *trusted, int32_t owner,
                               bool shared)
{
    if (thread_exists(owner, shared) || (orphan_reported == mutex && orphan_owner_reported == owner))
        return false;
    /* It may have let go and then exited since its id was read; once it
     * is gone, a lock word that still names it was never released. */
    uint32_t word, queue;
    if (!read_mutex_words(mutex, trusted, &word, &queue) ||
        (word & FAST_MUTEX_OWNER_MASK) != (uint32_t)owner)
        return false;
    orphan_reported = mutex;
    orphan_owner_reported = owner;
    return true;
}

/* The link of thread tid when it belongs to another process and waits
 * for a mutex that this process maps too (peer.c): a process-shared
 * mutex's holder may live in any process. */
static bool read_peer_link(struct link *l, int32_t tid)
{
    pid_t pid = fmx_peer_process(tid);
    struct fmx_peer_wait wait;
    if (pid == 0 || pid == getpid() || !fmx_peer_waiting(pid, tid, &wait))
        return false;
    *l = (struct link){
        .tid = tid, .mutex = wait.local, .shown = wait.local,
        .site = (const void *)(uintptr_t)wait.site, .pid = pid,
    };
    memcpy(l->thread_name, wait.thread_name, sizeof l->thread_name);
    return true;
}

static bool in_chain(const struct link *chain, int n, int32_t tid)
{
    for (int i = 1; i < n; i++)
        if (chain[i].tid == tid)
            return true;
    return false;
}

/* Follows the chain of waits from chain[0], waiting for m: the owner of
 * the mutex, what that owner waits for, and so on.  Fills chain[*n] and
 * returns true when it comes back to the first thread; sets
 * *exited_owner when it ends at an owner that has exited. */
static bool walk_chain(const fast_mutex_t *m, int32_t self, struct link chain[MAX_CYCLE], int *n,
                       int32_t *exited_owner)
{
    const void *waited = m;
    while (*n < MAX_CYCLE) {
        const fast_mutex_t *trusted = *n == 1 ? m : NULL;
        uint32_t word, queue;
        if (!read_mutex_words(waited, trusted, &word, &queue))
            return false; /* a record names memory that holds no mutex */
        int32_t owner = (int32_t)(word & FAST_MUTEX_OWNER_MASK);
        if (owner == 0)
            return false;
        /* Back to us through others: a cycle.  But if what we reach is m
         * itself, the mutex we wait for (straight away, or through a stale
         * record of a waiter for m), the lock was just handed to us, which
         * is no deadlock: in a real cycle we hold another mutex. */
        if (owner == self)
            return *n > 1 && waited != (const void *)m;
        /* A thread whose record still says it waits for a mutex it owns
         * was handed the lock and has not run since: it waits no more. */
        if (*n > 1 && owner == chain[*n - 1].tid)
            return false;
        /* A thread met twice, not us: its record is stale (it got the lock
         * while we walked, and has not yet said it stopped waiting), or it
         * is in a cycle that does not pass through us, which its own
         * threads report.  Either way no cycle through us. */
        if (in_chain(chain, *n, owner))
            return false;
        struct fmx_record *rec = fmx_waiting_record(owner);
        bool shared = queue == FAST_MUTEX_SHARED_QUEUE || queue == FAST_MUTEX_ROBUST_QUEUE;
        if (rec == NULL && shared && read_peer_link(&chain[*n], owner)) {
            waited = chain[*n].mutex;
            (*n)++;
            continue;
        }
        if (rec == NULL) {
            /* The owner runs, waits for something else, or is gone. */
            if (newly_exited_owner(waited, trusted, owner, shared))
                *exited_owner = owner;
            return false;
        }
        read_link(&chain[*n], rec);
        waited = chain[*n].mutex;
        (*n)++;
    }
    return false;
}

/* Where a link's thread called from: symbolized for a thread of this
 * process; for one of another process an address in that process, with
 * the process named (the mutex shown is where this process maps it). */
static void add_link_site(struct fmx_report *r, const struct link *l)
{
    if (l->pid == 0) {
        add_site(r, l->site);
        return;
    }
    char name[64];
    fmx_peer_name(l->pid, name, sizeof name);
    add(r, "%p in process %d (%s), another process (`fmx thread %d %d` shows where)", l->site,
        (int)l->pid, name, (int)l->pid, (int)l->tid);
}

static void report_cycle(const struct link chain[MAX_CYCLE], int n)
{
    struct fmx_report r = {.len = 0};
    add(&r, "fastmutex: deadlock detected: %d threads wait for each other in a cycle\n", n);
    for (int i = 0; i < n; i++) {
        int32_t holder = chain[(i + 1) % n].tid;
        add(&r, "  thread %d (%s) waits for ", chain[i].tid, chain[i].thread_name);
        add_mutex(&r, chain[i].shown, chain[i].mutex);
        add(&r, " held by thread %d (%s)\n    called from ", holder, chain[(i + 1) % n].thread_name);
        add_link_site(&r, &chain[i]);
        add(&r, "\n");
    }
    bool abort_now = fmx_on_deadlock() == FMX_ON_DEADLOCK_ABORT;
    if (abort_now)
        add(&r, "  FASTMUTEX_ON_DEADLOCK=abort: aborting\n");
    deliver(&r, abort_now);
}

/* Whether a walk from m can find anything: its owner waits (for a
 * process-shared mutex, maybe in another process) or has exited.  The
 * walk would stop at the first step otherwise; most long waits are for an
 * owner that simply runs (a crowd draining through a busy mutex), and
 * then no thread takes check_lock, nor touches the walk's stack. */
static bool worth_walking(const fast_mutex_t *m)
{
    int32_t owner =
        (int32_t)fmx_owner_of(atomic_load_explicit(&((fast_mutex_t *)m)->word, memory_order_relaxed));
    if (owner == 0)
        return false;
    return fmx_is_shared(m) || fmx_waiting_record(owner) != NULL || !thread_exists(owner, false);
}

/* The walk itself, out of line: its chain takes kilobytes of stack. */
static __attribute__((noinline)) bool check_walk(const fast_mutex_t *m, struct fmx_record *self)
{
    struct link chain[MAX_CYCLE];
    int n = 0;
    int32_t exited_owner = 0;
    read_link(&chain[n++], self);
    pthread_mutex_lock(&check_lock);
    bool cycle = walk_chain(m, self->tid, chain, &n, &exited_owner);
    bool first = cycle && atomic_load_explicit(&self->deadlock, memory_order_relaxed) == 0;
    if (first)
        for (int i = 0; i < n; i++)
            if (chain[i].rec != NULL) /* another process's registry is read-only here */
                atomic_store_explicit(&chain[i].rec->deadlock, 1, memory_order_relaxed);
    pthread_mutex_unlock(&check_lock);
    if (exited_owner != 0)
        report_exited_owner(&chain[n - 1], exited_owner);
    if (first)
        report_cycle(chain, n);
    return cycle;
}

bool fmx_deadlock_check(const fast_mutex_t *m, struct fmx_record *self)
{
    return worth_walking(m) && check_walk(m, self);
}

/* The helpers above, for the verifier's reports (verify.c). */
void fmx_report_add(struct fmx_report *r, const char *fmt, ...)
{
    char line[FMX_REPORT_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    add(r, "%s", line);
}

void fmx_report_add_site(struct fmx_report *r, const void *site)
{
    add_site(r, site);
}

void fmx_report_add_mutex(struct fmx_report *r, const void *m, const void *outer)
{
    add_mutex(r, outer != NULL ? outer : m, m);
}

bool fmx_report_order_problem(struct fmx_report *r)
{
    enum fmx_on_deadlock policy = fmx_on_deadlock();
    if (policy == FMX_ON_DEADLOCK_IGNORE)
        return false;
    deliver(r, policy == FMX_ON_DEADLOCK_ABORT);
    return true;
}

void fmx_report_note(struct fmx_report *r)
{
    deliver(r, false);
}

bool fmx_on_deadlock_abort(void)
{
    return fmx_on_deadlock() == FMX_ON_DEADLOCK_ABORT;
}
