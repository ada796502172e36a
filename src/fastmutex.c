/* The protocol of fast_mutex_t: the slow paths of acquire and release, as
 * named steps.  When to spin, hand off or give the CPU away is decided in
 * policy.c; the queue of waiters and its lock live in queue.c.
 *
 * Acquire: the inline fast path (one CAS from 0 to our thread id) found the
 * mutex held.  The mid path asks the policy to spin, whether or not others
 * are queued (barging keeps a busy lock busy).  Then the slow path queues
 * the thread's registry record and parks it on the record's own futex
 * word, until a release wakes it to compete again or hands it the lock, or
 * until its deadline.
 *
 * Release: the inline fast path (one CAS from our id to 0) found a flag
 * set.  If a woken waiter is already on its way (and not late), or nobody
 * is queued, the owner bits are simply cleared.  Otherwise the oldest
 * waiter is taken off the queue and either woken to compete for the lock
 * or, once it has been first in line past the handoff bound, handed it.
 * If a try_acquire failed during the hold (TRYING), the releasing thread
 * then makes way for it a moment before it returns.
 *
 * A process-shared mutex has no queue (records of other processes cannot
 * be linked): its waiters sleep on the lock word, in the classic futex
 * mutex protocol.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

void fmx_init_at(fast_mutex_t *m, const void *site)
{
    *m = (fast_mutex_t)FAST_MUTEX_INITIALIZER;
    if (fmx_watching())
        fmx_watch_init(m, site);
}

void fast_mutex_init(fast_mutex_t *m)
{
    fmx_init_at(m, __builtin_return_address(0));
}

/* The calling process's pid namespace, as a number that is never 0: the
 * low 32 bits of the inode of /proc/self/ns/pid (0 when unknown).  Every
 * release of a shared mutex asks, so it is cached per thread, without a
 * system call to validate it: forgotten in a forked child (a child made
 * after unshare(CLONE_NEWPID) lives in another namespace, and may even
 * have the forking thread's id there), as the thread id cache is. */
static _Thread_local uint32_t pid_namespace;

static uint32_t own_pid_namespace(void)
{
    if (pid_namespace == 0) {
        struct stat st;
        pid_namespace = stat("/proc/self/ns/pid", &st) == 0 ? (uint32_t)st.st_ino | 1u : 0;
    }
    return pid_namespace;
}

static void forget_pid_namespace_in_child(void)
{
    pid_namespace = 0;
}

__attribute__((constructor)) static void pid_namespace_setup(void)
{
    pthread_atfork(NULL, NULL, forget_pid_namespace_in_child);
}

void fast_mutex_init_shared(fast_mutex_t *m)
{
    fmx_init_at(m, __builtin_return_address(0));
    /* A shared mutex has no queue lock: the word notes the pid namespace
     * its thread ids belong to (check_namespace()). */
    atomic_store_explicit(&m->queue_lock, own_pid_namespace(), memory_order_relaxed);
    atomic_store_explicit(&m->queue, FAST_MUTEX_SHARED_QUEUE, memory_order_relaxed);
    atomic_store_explicit(&m->word, FAST_MUTEX_SHARED, memory_order_relaxed);
}

/* Thread ids in a lock word mean something only in one pid namespace: a
 * process of another (another container) would take a holder of its own
 * id for itself, wait on a thread it cannot see, or free the hold of a
 * thread that has its id in the other namespace.  The slow paths of a
 * process-shared mutex refuse such a use with a report; every release of
 * one takes the slow path (the SHARED flag).  The inline acquire does not
 * look: it succeeds only on a free mutex, and the release that follows is
 * refused. */
static void check_namespace(const fast_mutex_t *m, const void *site)
{
    if (!fmx_is_shared(m) || fmx_is_robust(m))
        return;
    uint32_t made_in = atomic_load_explicit(&((fast_mutex_t *)m)->queue_lock, memory_order_relaxed);
    uint32_t ours = own_pid_namespace();
    if (made_in != 0 && ours != 0 && made_in != ours)
        fmx_misuse("process-shared mutex used from another pid namespace", m, site,
                   "it was made in pid namespace %u, this process is in %u: the thread ids in "
                   "its lock word do not name the same threads here",
                   made_in, ours);
}

void fast_mutex_init_robust(fast_mutex_t *m)
{
    *m = (fast_mutex_t)FAST_MUTEX_INITIALIZER;
    atomic_store_explicit(&m->queue, FAST_MUTEX_ROBUST_QUEUE, memory_order_relaxed);
}

void fast_mutex_destroy(fast_mutex_t *m)
{
    uint32_t word = atomic_load_explicit(&m->word, memory_order_relaxed);
    if (fmx_owner_of(word) != 0)
        fmx_misuse("destroy of a held mutex", m, __builtin_return_address(0),
                   "it is held by thread %u", fmx_owner_of(word));
    word &= ~FAST_MUTEX_SHARED;
    if (word != 0 && word != FAST_MUTEX_NOTRECOVERABLE)
        fmx_misuse("destroy of a mutex with waiters", m, __builtin_return_address(0),
                   "threads are still queued for it");
    if (fmx_watching())
        fmx_watch_destroy(m);
    fmx_forget_name(m);
}

/* Changes the flag bits of the word, whatever the owner bits do meanwhile.
 * Queue lock held (flags change only under it). */
static void update_flags(fast_mutex_t *m, uint32_t set, uint32_t clear)
{
    uint32_t word = atomic_load_explicit(&m->word, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&m->word, &word, (word | set) & ~clear,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

/* Takes the lock if nobody holds it, keeping the flags but those in
 * `clear`, and trying again while it stays free; false once it is held. */
static bool take_if_free(fast_mutex_t *m, uint32_t self, uint32_t clear)
{
    return fast_mutex_take_free_(m, atomic_load_explicit(&m->word, memory_order_relaxed), self,
                                 clear);
}

/* Fills the record for a wait that starts now. */
static void begin_wait(struct fmx_record *rec, fast_mutex_t *m, const void *site, const void *outer)
{
    if (!fmx_diagnostics())
        return; /* the queue needs none of it */
    fmx_record_write_begin(rec);
    FMX_RECORD_STORE(rec->mutex, (uint64_t)(uintptr_t)m);
    /* The deadlock check reads these too, to name a FAST_MUTEX. */
    FMX_RECORD_STORE(rec->outer, (uint64_t)(uintptr_t)outer);
    FMX_RECORD_STORE(rec->kind, (uint32_t)(outer != NULL ? FMX_KIND_WDM : FMX_KIND_FAST_MUTEX));
    FMX_RECORD_STORE(rec->site, (uint64_t)(uintptr_t)site);
    rec->wait_start_ns = fmx_now_ns();
    fmx_note_cpu(rec, sched_getcpu());
    rec->owner_seen = (int32_t)fmx_owner_of(atomic_load_explicit(&m->word, memory_order_relaxed));
    atomic_store_explicit(&rec->deadlock, 0, memory_order_relaxed);
    atomic_store_explicit(&rec->state, FMX_RECORD_WAITING, memory_order_release);
    fmx_record_write_end(rec);
}

static void end_wait(struct fmx_record *rec, fast_mutex_t *m, const void *site, bool acquired)
{
    if (!fmx_diagnostics() && atomic_load_explicit(&rec->state, memory_order_relaxed) == FMX_RECORD_IDLE)
        return;
    fmx_record_write_begin(rec);
    if (acquired) {
        FMX_RECORD_STORE(rec->acquired_mutex, (uint64_t)(uintptr_t)m);
        FMX_RECORD_STORE(rec->acquired_site, (uint64_t)(uintptr_t)site);
    }
    atomic_store_explicit(&rec->deadlock, 0, memory_order_relaxed);
    atomic_store_explicit(&rec->state, FMX_RECORD_IDLE, memory_order_release);
    fmx_record_write_end(rec);
}

/* A long wait: refresh what may have gone stale, the owner and our name
 * (taken when the record was claimed, not at every wait: the system call
 * cost 3% of the throughput of a busy lock). */
static void note_owner(struct fmx_record *rec, fast_mutex_t *m)
{
    char name[FMX_THREAD_NAME_LEN];
    fmx_current_thread_name(name);
    fmx_record_write_begin(rec);
    rec->owner_seen = (int32_t)fmx_owner_of(atomic_load_explicit(&m->word, memory_order_relaxed));
    fmx_record_set_name(rec, name);
    fmx_record_write_end(rec);
}

/* When the sleeping waiter must next wake by itself: the caller's deadline
 * or the next deadlock check, whichever comes first (0: never). */
static uint64_t next_timeout(uint64_t deadline_ns, uint64_t check_ns)
{
    if (deadline_ns == 0)
        return check_ns;
    if (check_ns == 0)
        return deadline_ns;
    return deadline_ns < check_ns ? deadline_ns : check_ns;
}
/* Sets SLEEPERS in m's word while the mutex is held, and stores in *word
 * the value a sleeper then waits on; false when it was released meanwhile. */
static bool flag_sleepers(fast_mutex_t *m, uint32_t *word)
{
    *word = atomic_load_explicit(&m->word, memory_order_relaxed);
    do {
        if (fmx_owner_of(*word) == 0)
            return false;
        if (*word & FAST_MUTEX_SLEEPERS)
            return true;
    } while (!atomic_compare_exchange_weak_explicit(&m->word, word, *word | FAST_MUTEX_SLEEPERS,
                                                    memory_order_relaxed, memory_order_relaxed));
    *word |= FAST_MUTEX_SLEEPERS;
    return true;
}

/* A thread without a record (all FMX_REGISTRY_THREADS records belong to
 * live threads) cannot queue, nor be seen by the tools: it sleeps on the
 * lock word of a process-private mutex, flagged SLEEPERS, and every
 * release wakes one such sleeper (the classic futex mutex, beside the
 * queue).  It takes the mutex with SLEEPERS set, since others may sleep:
 * its own release then wakes the next. */
static int acquire_unrecorded(fast_mutex_t *m, uint64_t deadline_ns)
{
    uint32_t self = fast_mutex_self_();
    for (;;) {
        uint32_t word = atomic_load_explicit(&m->word, memory_order_relaxed);
        /* Acquire: pairs with the release that freed the lock. */
        if (fmx_owner_of(word) == 0) {
            if (atomic_compare_exchange_weak_explicit(&m->word, &word,
                                                      word | self | FAST_MUTEX_SLEEPERS,
                                                      memory_order_acquire, memory_order_relaxed))
                return 0;
            continue;
        }
        if (!flag_sleepers(m, &word))
            continue;
        struct timespec ts = fmx_ns_timespec(deadline_ns);
        if (!fmx_futex_wait(&m->word, word, deadline_ns ? &ts : NULL, false) ||
            (deadline_ns != 0 && fmx_now_ns() >= deadline_ns))
            return take_if_free(m, self, 0) ? 0 : ETIMEDOUT;
    }
}

/* Wakes one thread sleeping on m's lock word (acquire_unrecorded()) if the
 * word we replaced, `old`, said some may sleep there. */
static void wake_word_sleeper(fast_mutex_t *m, uint32_t old)
{
    if (old & FAST_MUTEX_SLEEPERS)
        fmx_futex_wake(&m->word, 1, false);
}

/* One wait of the slow path: who waits for what, until when, and when the
 * deadlock check runs next. */
struct wait {
    fast_mutex_t *m;
    struct fmx_record *rec;
    uint32_t self;
    uint64_t deadline_ns; /* 0: none */
    uint64_t check_every; /* 0: no deadlock check */
    uint64_t check_at;
    bool reported; /* a cycle through this wait was reported */
};

/* Steps of the queued path that are not a result of the acquire. */
enum { STEP_PARK = -1, STEP_RETRY = -2 };

/* When the parked waiter must next wake by itself (0: never). */
static uint64_t wait_wake_at(const struct wait *w)
{
    return next_timeout(w->deadline_ns, w->check_at);
}

/* The waiter woke by itself at `now`: returns 0 to keep waiting, or the
 * reason to give up (ETIMEDOUT at the deadline; EDEADLK when the deadlock
 * check finds a cycle and the caller has a deadline to return to). */
static int wait_timed_out(struct wait *w, uint64_t now)
{
    if (w->deadline_ns != 0 && now >= w->deadline_ns)
        return ETIMEDOUT;
    if (w->check_at == 0 || now < w->check_at)
        return 0;
    note_owner(w->rec, w->m);
    bool cycle = !w->reported && fmx_deadlock_check(w->m, w->rec);
    w->reported |= cycle;
    w->check_at = now + w->check_every;
    return cycle && w->deadline_ns != 0 ? EDEADLK : 0;
}

/* The process-shared slow path: the classic futex mutex, with our thread id
 * for "locked" and WAITERS for "somebody may sleep on the word". */
static int acquire_shared(struct wait *w)
{
    fast_mutex_t *m = w->m;
    for (;;) {
        uint32_t word = atomic_load_explicit(&m->word, memory_order_relaxed);
        if (fmx_owner_of(word) == 0) {
            /* We may not be the only sleeper: keep WAITERS so our release
             * wakes the next.  Acquire pairs with the releasing exchange. */
            uint32_t taken = (word & FAST_MUTEX_SHARED) | w->self | FAST_MUTEX_WAITERS;
            if (atomic_compare_exchange_weak_explicit(&m->word, &word, taken, memory_order_acquire,
                                                      memory_order_relaxed))
                return 0;
            continue;
        }
        if (!(word & FAST_MUTEX_WAITERS) &&
            !atomic_compare_exchange_weak_explicit(&m->word, &word, word | FAST_MUTEX_WAITERS,
                                                   memory_order_relaxed, memory_order_relaxed))
            continue;
        uint64_t wake_at = wait_wake_at(w);
        struct timespec ts = fmx_ns_timespec(wake_at);
        if (fmx_futex_wait(&m->word, word | FAST_MUTEX_WAITERS, wake_at ? &ts : NULL, true))
            continue;
        int why = wait_timed_out(w, fmx_now_ns());
        if (why != 0)
            return why;
    }
}

/* The deadline passed before we queued.  A woken waiter drops its WOKEN
 * duty only while the lock is held, so that the holder's release wakes the
 * next waiter; had the lock just been freed (releases skip the wake while
 * WOKEN is set), nobody would: then it takes the lock instead.  Returns 0
 * or ETIMEDOUT.  Queue lock held. */
static int time_out_before_queueing(struct wait *w, bool woken)
{
    uint32_t word = atomic_load_explicit(&w->m->word, memory_order_relaxed);
    while (woken) {
        uint32_t cleared = word & ~FAST_MUTEX_WOKEN;
        if (fmx_owner_of(word) == 0)
            cleared |= w->self;
        /* Acquire, in case we take the lock: pairs with its release. */
        if (atomic_compare_exchange_weak_explicit(&w->m->word, &word, cleared,
                                                  memory_order_acquire, memory_order_relaxed))
            return fmx_owner_of(cleared) == w->self ? 0 : ETIMEDOUT;
    }
    return ETIMEDOUT;
}

/* Sets WAITERS (and drops WOKEN for a woken waiter) while the lock is held,
 * so that its release takes the slow path and finds us.  False when the
 * lock was released meanwhile.  Queue lock held. */
static bool flag_waiters(fast_mutex_t *m, bool woken)
{
    uint32_t word = atomic_load_explicit(&m->word, memory_order_relaxed);
    uint32_t flagged;
    do {
        if (fmx_owner_of(word) == 0)
            return false;
        flagged = (word | FAST_MUTEX_WAITERS) & ~(woken ? FAST_MUTEX_WOKEN : 0);
    } while (!atomic_compare_exchange_weak_explicit(&m->word, &word, flagged, memory_order_relaxed,
                                                    memory_order_relaxed));
    return true;
}

/* Queues the waiter, or takes the lock if it is free.  A waiter woken to
 * retry goes back to the front (see fmx_enqueue()), a new one to the back.
 * Returns 0 (taken), ETIMEDOUT, STEP_PARK (queued) or STEP_RETRY (the lock
 * was released while we queued: we left the queue again). */
static int queue_up(struct wait *w, bool woken)
{
    fast_mutex_t *m = w->m;
    int step = STEP_PARK;
    fmx_queue_lock(m);
    if (take_if_free(m, w->self, woken ? FAST_MUTEX_WOKEN : 0)) {
        step = 0;
    } else if (w->deadline_ns != 0 && fmx_now_ns() >= w->deadline_ns) {
        step = time_out_before_queueing(w, woken);
    } else {
        atomic_store_explicit(&w->rec->wake, FMX_WAKE_NONE, memory_order_relaxed);
        fmx_enqueue(m, w->rec, woken);
        if (!flag_waiters(m, woken)) {
            if (fmx_dequeue(m, w->rec))
                update_flags(m, 0, FAST_MUTEX_WAITERS);
            step = STEP_RETRY;
        }
    }
    fmx_queue_unlock(m);
    return step;
}

/* Gives up a queued wait (timeout or deadlock) unless a release got to us
 * first; returns the wake value: FMX_WAKE_NONE if we left the queue. */
static uint32_t leave_queue(fast_mutex_t *m, struct fmx_record *rec)
{
    fmx_queue_lock(m);
    /* Acquire: if a release dequeued us, see what it did (pairs with its
     * release store of `wake`). */
    uint32_t wake = atomic_load_explicit(&rec->wake, memory_order_acquire);
    if (wake == FMX_WAKE_NONE && fmx_dequeue(m, rec))
        update_flags(m, 0, FAST_MUTEX_WAITERS);
    fmx_queue_unlock(m);
    return wake;
}

/* Parks until a release takes us off the queue.  Returns 0 (handed the
 * lock), STEP_RETRY (woken to compete), or why we gave up and left. */
static int park(struct wait *w)
{
    uint32_t wake;
    /* Acquire: pairs with the release store of `wake` in wake_next(),
     * after it wrote the word (and, for a handoff, the critical section). */
    while ((wake = atomic_load_explicit(&w->rec->wake, memory_order_acquire)) == FMX_WAKE_NONE) {
        uint64_t wake_at = wait_wake_at(w);
        struct timespec ts = fmx_ns_timespec(wake_at);
        if (fmx_futex_wait(&w->rec->wake, FMX_WAKE_NONE, wake_at ? &ts : NULL, false) ||
            atomic_load_explicit(&w->rec->wake, memory_order_relaxed) != FMX_WAKE_NONE)
            continue; /* woken, or woken just as the timer ran out */
        int why = wait_timed_out(w, fmx_now_ns());
        if (why != 0 && (wake = leave_queue(w->m, w->rec)) == FMX_WAKE_NONE)
            return why;
        if (why != 0)
            break;
    }
    return wake == FMX_WAKE_HANDOFF ? 0 : STEP_RETRY;
}

/* The queued path of a process-private mutex: queue up, park, and when
 * woken to compete, spin and queue up again at the front.  Returns 0 with
 * the lock held, or ETIMEDOUT / EDEADLK. */
static int acquire_queued(struct wait *w)
{
    bool woken = false; /* we hold the WOKEN flag: clear it when done */
    for (;;) {
        /* Woken, we are running again: the holder most likely is too, and
         * about to let go. */
        if (woken && fmx_policy_spin(w->m, w->self, FAST_MUTEX_WOKEN))
            return 0;
        int step = queue_up(w, woken);
        if (step == STEP_RETRY)
            continue;
        if (step != STEP_PARK)
            return step;
        step = park(w);
        if (step != STEP_RETRY)
            return step;
        woken = true;
    }
}

/* Whether `owner`, read from m's word, is the calling thread `self`: its
 * id, or for a process-private mutex the id the thread had in the parent
 * before a fork (the forking thread's holds pass to the child's thread; a
 * process-shared mutex's holds stay with the parent, which still runs). */
static bool owned_by_caller(const fast_mutex_t *m, uint32_t owner, uint32_t self)
{
    if (fmx_is_robust(m))
        return owner == self && fmx_robust_held_by_caller(m);
    return owner == self || (!fmx_is_shared(m) && fmx_inherited_owner(owner));
}

static int acquire_slow(fast_mutex_t *m, const struct timespec *deadline, const void *site,
                        const void *outer)
{
    uint32_t self = fast_mutex_self_();
    check_namespace(m, site);
    if (fmx_is_robust(m))
        fmx_misuse("acquire of a robust mutex without fast_mutex_acquire_robust()", m, site,
                   "only fast_mutex_acquire_robust() can report that its holder died");
    if (owned_by_caller(m, fmx_owner_of(atomic_load_explicit(&m->word, memory_order_relaxed)), self))
        fmx_misuse("recursive acquire", m, site, "the calling thread already holds it");
    /* As pthread_mutex_timedlock(): checked only when the caller would wait. */
    if (deadline != NULL && !fmx_timespec_valid(deadline))
        return EINVAL;
    if (fmx_policy_spin(m, self, 0))
        return 0;
    uint64_t deadline_ns = deadline != NULL ? fmx_timespec_ns(deadline) : 0;
    if (deadline != NULL && deadline_ns == 0)
        deadline_ns = 1; /* a deadline long past: still a deadline */
    /* Past the deadline already: no sleep, so no contention to count. */
    if (deadline_ns != 0 && fmx_now_ns() >= deadline_ns)
        return ETIMEDOUT;
    /* Counted only now, as Windows counts the waits on its event: an
     * atomic add on the busy lock's cache line for every spin would slow
     * its holder. */
    atomic_fetch_add_explicit(&m->contention, 1, memory_order_relaxed);

    struct fmx_record *rec = fmx_self_record();
    if (rec == NULL && fmx_is_shared(m)) {
        /* The shared protocol needs a record only to describe the wait. */
        struct wait w = {.m = m, .self = self, .deadline_ns = deadline_ns};
        return acquire_shared(&w);
    }
    if (rec == NULL)
        return acquire_unrecorded(m, deadline_ns);
    begin_wait(rec, m, site, outer);
    uint64_t check_every = fmx_deadlock_after_ns();
    struct wait w = {.m = m,
                     .rec = rec,
                     .self = self,
                     .deadline_ns = deadline_ns,
                     .check_every = check_every,
                     .check_at = check_every ? rec->wait_start_ns + check_every : 0};
    /* Check the queue word before taking the queue lock: a shared mutex
     * whose `queue` marker was overwritten has something else than a
     * queue lock in that word (check_namespace()). */
    if (!fmx_is_shared(m))
        (void)fmx_queue_head(m);
    int result = fmx_is_shared(m) ? acquire_shared(&w) : acquire_queued(&w);
    end_wait(rec, m, site, result == 0);
    return result;
}

int fmx_acquire(fast_mutex_t *m, const struct timespec *deadline, const void *site, const void *outer)
{
    bool watched = fmx_watching();
    if (watched)
        fmx_watch_before_wait(m, site, outer);
    /* With the thread id not cached the inline fast path did not try: a
     * free mutex is no wait (nor contention). */
    if (fast_mutex_self_tid_ == 0 && take_if_free(m, fast_mutex_self_(), 0)) {
        if (watched)
            fmx_watch_acquired(m, site, outer, false, 0);
        return 0;
    }
    if (!watched)
        return acquire_slow(m, deadline, site, outer);
    uint64_t start = fmx_now_ns();
    int result = acquire_slow(m, deadline, site, outer);
    if (result == 0)
        fmx_watch_acquired(m, site, outer, false, start);
    else
        fmx_watch_gave_up(m);
    return result;
}

bool fmx_take_now(fast_mutex_t *m, const void *site, const void *outer)
{
    if (fast_mutex_take_(m))
        return true;
    if (fast_mutex_self_tid_ != 0)
        return false; /* held by another thread */
    /* The thread id is not cached: the thread's first call, or watched. */
    if (!fmx_watching())
        return take_if_free(m, fast_mutex_self_(), 0);
    fmx_watch_before_wait(m, site, outer);
    if (!take_if_free(m, fast_mutex_self_(), 0))
        return false;
    fmx_watch_acquired(m, site, outer, false, 0);
    return true;
}

int fast_mutex_acquire_slow_(fast_mutex_t *m, const struct timespec *deadline)
{
    /* Inlined fast paths call us directly, so our return address lies in
     * the function that called fast_mutex_acquire(): the call site. */
    return fmx_acquire(m, deadline, __builtin_return_address(0), NULL);
}

void fmx_check_release(const fast_mutex_t *m, const void *site)
{
    check_namespace(m, site);
    uint32_t owner =
        fmx_owner_of(atomic_load_explicit(&((fast_mutex_t *)m)->word, memory_order_relaxed));
    if (owner == 0)
        fmx_misuse("release of a free mutex", m, site, "nobody holds it");
    if (!owned_by_caller(m, owner, fast_mutex_self_()))
        fmx_misuse("release by a thread that does not own the mutex", m, site,
                   "it is held by thread %u", owner);
}

/* Lets go of a process-shared mutex, keeping SHARED, waking one sleeper
 * if any. */
static void release_shared(fast_mutex_t *m)
{
    /* Release: pairs with the acquire CAS of the next holder. */
    uint32_t word = atomic_exchange_explicit(&m->word, FAST_MUTEX_SHARED, memory_order_release);
    if (word & FAST_MUTEX_WAITERS)
        fmx_futex_wake(&m->word, 1, true);
}

/* Lets go without waking a queued waiter when no wake is due: nobody is
 * queued, or a woken waiter is on its way and not late; wakes a thread
 * sleeping on the word if one may.  False, the lock still held, when the
 * oldest waiter must be woken. */
static bool let_go_unless_wake_due(fast_mutex_t *m)
{
    uint32_t word = atomic_load_explicit(&m->word, memory_order_relaxed);
    while (!(word & FAST_MUTEX_WAITERS) ||
           ((word & FAST_MUTEX_WOKEN) && !fmx_policy_woken_is_late(m)))
        /* Release: pairs with the next holder's acquire CAS. */
        if (atomic_compare_exchange_weak_explicit(
                &m->word, &word,
                word & ~(FAST_MUTEX_OWNER_MASK | FAST_MUTEX_TRYING | FAST_MUTEX_SLEEPERS),
                memory_order_release, memory_order_relaxed)) {
            wake_word_sleeper(m, word);
            return true;
        }
    return false;
}

/* Takes the oldest waiter off the queue and wakes it to compete, or hands
 * it the lock (policy).  Lets go of the lock either way. */
static void wake_next(fast_mutex_t *m)
{
    (void)fmx_queue_head(m); /* checks the queue word first, as fmx_acquire() */
    fmx_queue_lock(m);
    /* We own the lock and hold the queue lock: the queue's flags do not
     * change from here on; only a thread without a record may still set
     * SLEEPERS, hence the exchanges, which tell whether to wake it.  The
     * word may carry WOKEN, for a late woken waiter that will clear it when
     * it takes the lock or queues again: keep it. */
    uint32_t woken = atomic_load_explicit(&m->word, memory_order_relaxed) & FAST_MUTEX_WOKEN;
    struct fmx_record *head = fmx_queue_head(m);
    if (head == NULL) {
        /* The last waiter gave up (timeout) since we looked. */
        uint32_t old = atomic_exchange_explicit(&m->word, 0, memory_order_release);
        fmx_queue_unlock(m);
        wake_word_sleeper(m, old);
        return;
    }
    bool hand_off = fmx_policy_hand_off(head);
    uint32_t rest = fmx_dequeue(m, head) ? 0 : FAST_MUTEX_WAITERS;
    uint32_t wake, old;
    if (hand_off) {
        old = atomic_exchange_explicit(&m->word, (uint32_t)head->tid | rest | woken,
                                       memory_order_release);
        wake = FMX_WAKE_HANDOFF;
    } else {
        old = atomic_exchange_explicit(&m->word, rest | FAST_MUTEX_WOKEN, memory_order_release);
        wake = FMX_WAKE_RETRY;
    }
    /* Release: the waiter that sees `wake` also sees the word we wrote and,
     * for a handoff, our critical section (pairs with its acquire load). */
    atomic_store_explicit(&head->wake, wake, memory_order_release);
    fmx_queue_unlock(m);
    /* The record outlives the wait (it belongs to the thread until the
     * thread exits), so waking it after the unlock is safe: at worst the
     * thread has moved on and takes a spurious wake-up. */
    fmx_futex_wake(&head->wake, 1, false);
    wake_word_sleeper(m, old);
}

/* Lets go of a hold the calling thread inherited from the thread that
 * forked it.  Whoever was queued for the mutex, and whoever held its queue
 * lock, were threads of the parent, which do not exist here: their records
 * lie in the parent's registry, not ours.  So the queue is emptied, not
 * walked. */
static void release_inherited(fast_mutex_t *m)
{
    atomic_store_explicit(&m->queue, 0, memory_order_relaxed);
    atomic_store_explicit(&m->queue_lock, 0, memory_order_relaxed);
    /* Release: pairs with the next holder's acquire CAS. */
    atomic_store_explicit(&m->word, 0, memory_order_release);
}

void fast_mutex_release_slow_(fast_mutex_t *m)
{
    const void *site = __builtin_return_address(0);
    fmx_check_release(m, site);
    bool watched = fmx_watching();
    if (watched)
        fmx_watch_release(m, site);
    if (!fmx_is_shared(m) &&
        fmx_owner_of(atomic_load_explicit(&m->word, memory_order_relaxed)) != fast_mutex_self_()) {
        release_inherited(m);
        if (watched)
            fmx_watch_released(m);
        return;
    }
    /* Only we, the holder, clear TRYING: what we read now stays true. */
    bool tried = atomic_load_explicit(&m->word, memory_order_relaxed) & FAST_MUTEX_TRYING;
    if (fmx_is_robust(m))
        fmx_release_robust(m);
    else if (fmx_is_shared(m))
        release_shared(m);
    else if (!let_go_unless_wake_due(m))
        wake_next(m);
    if (watched)
        fmx_watch_released(m);
    if (tried)
        fmx_policy_make_way(m);
}

/* fast_mutex_try_failed_() for a try called from `site`, on m inside
 * FAST_MUTEX `outer` (NULL for a fast_mutex_t). */
static bool try_failed(fast_mutex_t *m, const void *site, const void *outer)
{
    /* The inline fast path did not try: the thread id is not cached. */
    if (fast_mutex_self_tid_ == 0 && take_if_free(m, fast_mutex_self_(), 0)) {
        if (fmx_watching())
            fmx_watch_acquired(m, site, outer, true, 0);
        return true;
    }
    uint32_t self = fast_mutex_self_();
    uint32_t word = atomic_load_explicit(&m->word, memory_order_relaxed);
    /* Set while another thread holds it, so that its release clears it;
     * relaxed: nothing is published through the flag. */
    while (fmx_owner_of(word) != 0 && fmx_owner_of(word) != self &&
           !(word & FAST_MUTEX_TRYING))
        if (atomic_compare_exchange_weak_explicit(&m->word, &word, word | FAST_MUTEX_TRYING,
                                                  memory_order_relaxed, memory_order_relaxed))
            break;
    return false;
}

bool fast_mutex_try_failed_(fast_mutex_t *m)
{
    return try_failed(m, __builtin_return_address(0), NULL);
}

bool fmx_try_take(fast_mutex_t *m, const void *site, const void *outer)
{
    return fast_mutex_take_(m) || try_failed(m, site, outer);
}
