/* The slow paths of fast_mutex_t.
 *
 * Acquire: the fast path (one CAS from 0 to our thread id, in the header)
 * failed.  The mid path spins briefly, read-only, while nobody is queued:
 * critical sections are short and a futex wake costs far more than a short
 * spin.  The slow path queues the thread's registry record at the tail of
 * the mutex's FIFO queue and parks it on the record's own futex word.
 *
 * Release: the fast path (one CAS from our id to 0) failed because a flag is
 * set.  If a woken waiter is already on its way (and not late), or nobody
 * is queued, the owner bits are simply cleared.  Otherwise the oldest
 * waiter is taken off the queue and either woken to compete for the lock
 * (barging keeps the throughput of a low-contention lock) or, if it has
 * waited longer than the handoff bound, handed the lock outright so that
 * nobody starves.
 *
 * The queue and the flag bits change only with the queue lock held, a
 * three-state futex lock of its own in the mutex.  A process-shared mutex
 * has no queue (records of other processes cannot be linked): its waiters
 * sleep on the lock word, in the classic futex mutex protocol.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/prctl.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#include "internal.h"

/* How long the mid path spins before queueing: many critical sections,
 * yet less than a futex wake and reschedule (~25 us).  Measured with
 * bench/: 2 us left 1 us critical sections sleeping; 10 us lost nothing
 * when 64 threads share 2 cores.  It trades throughput for max wait:
 * with more threads than CPUs, spinners keep woken waiters off the CPUs,
 * and 2 us about halved long-constant's max wait but cost it up to 6%
 * (bench/README.md, "Where fastmutex falls short"). */
#define SPIN_NS 10000u
/* The first waiter in line gets the lock handed to it once it has been
 * first for this long.  Counting from when it became first, not from when
 * it began to wait, lets at most one handoff a millisecond idle the lock
 * (a handed-to thread must still be scheduled): counting from the start of
 * the wait put every release of a long queue into handoff, a convoy. */
#define HANDOFF_US 1000u
/* A woken waiter that has not come back within this long is waiting for a
 * CPU (wake-to-run is ~20 us on an idle machine), and while WOKEN stays set
 * no release wakes anybody: with 64 threads on 2 cores the queue drained
 * one scheduler round at a time, and its sleepers lost their share of the
 * lock (Jain's index 0.60-0.89).  Past this bound a release wakes the next
 * waiter too.  Measured with bench/: 300 us raised the index to 0.87-0.94
 * at 64 threads; 100 to 600 us did about as well. */
#define WOKEN_LATE_US 300u

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline uint32_t owner_of(uint32_t word)
{
    return word & FAST_MUTEX_OWNER_MASK;
}

static inline bool is_shared(const fast_mutex_t *m)
{
    return atomic_load_explicit(&m->queue, memory_order_relaxed) == FAST_MUTEX_SHARED_QUEUE;
}

void fast_mutex_init(fast_mutex_t *m)
{
    *m = (fast_mutex_t)FAST_MUTEX_INITIALIZER;
}

void fast_mutex_init_shared(fast_mutex_t *m)
{
    *m = (fast_mutex_t)FAST_MUTEX_INITIALIZER;
    atomic_store_explicit(&m->queue, FAST_MUTEX_SHARED_QUEUE, memory_order_relaxed);
}

void fast_mutex_destroy(fast_mutex_t *m)
{
    uint32_t word = atomic_load_explicit(&m->word, memory_order_relaxed);
    if (owner_of(word) != 0)
        fmx_misuse("destroy of a held mutex", m, __builtin_return_address(0),
                   "it is held by thread %u", owner_of(word));
    if (word != 0)
        fmx_misuse("destroy of a mutex with waiters", m, __builtin_return_address(0),
                   "threads are still queued for it");
    fmx_forget_name(m);
}

/* The queue lock: 0 free, 1 held, 2 held and somebody may sleep on it.
 * Held only for a few loads and stores, so contention on it is rare. */
static void queue_lock(fast_mutex_t *m)
{
    uint32_t expected = 0;
    /* Acquire: the queue and flags as the last holder left them are
     * visible (pairs with the release exchange in queue_unlock()). */
    if (atomic_compare_exchange_strong_explicit(&m->queue_lock, &expected, 1, memory_order_acquire,
                                                memory_order_relaxed))
        return;
    for (int spins = 0; spins < 100; spins++) {
        cpu_relax();
        expected = 0;
        if (atomic_load_explicit(&m->queue_lock, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(&m->queue_lock, &expected, 1,
                                                  memory_order_acquire, memory_order_relaxed))
            return;
    }
    while (atomic_exchange_explicit(&m->queue_lock, 2, memory_order_acquire) != 0)
        fmx_futex_wait(&m->queue_lock, 2, NULL, false);
}

static void queue_unlock(fast_mutex_t *m)
{
    /* Release: pairs with the acquire in queue_lock(). */
    if (atomic_exchange_explicit(&m->queue_lock, 0, memory_order_release) == 2)
        fmx_futex_wake(&m->queue_lock, 1, false);
}

static uint32_t now_us(void)
{
    return (uint32_t)(fmx_now_ns() / 1000u);
}

/* How long the waiter at the head of a queue has been first in line.  The
 * low 32 bits of microseconds wrap after 71 minutes; the difference stays
 * right for any wait shorter than that. */
static uint32_t first_in_line_for_us(struct fmx_record *head)
{
    return now_us() - atomic_load_explicit(&head->head_since_us, memory_order_relaxed);
}

/* The time a waiter becomes first in line, never 0: 0 in head_since_us
 * means "not first yet". */
static uint32_t first_from_now(void)
{
    return now_us() | 1u;
}

/* Whether waiter `a` became first in line before waiter `b` (both have). */
static bool first_before(const struct fmx_record *a, const struct fmx_record *b)
{
    return (int32_t)(atomic_load_explicit(&a->head_since_us, memory_order_relaxed) -
                     atomic_load_explicit(&b->head_since_us, memory_order_relaxed)) < 0;
}

/* The queue is circular and doubly linked through record links; m->queue
 * is the head, its `prev` the newest.  Queue lock held.
 *
 * A new waiter goes to the back, not first in line yet (head_since_us 0)
 * unless the queue was empty.  A woken waiter that lost the race goes back
 * to the front (at_front), keeping the time it became first, since it was
 * first before it was woken; but behind the waiters there that became
 * first before it.  Several woken waiters come back at once when releases
 * woke the next because the one before was late (WOKEN_LATE_US): put in
 * front of them all, the last one back made the oldest start its time in
 * line over when it left (dequeue()), again and again; one waiter was so
 * woken six times in 30 ms and never handed the lock.  Measured with
 * bench/ in four A/B runs of 9 to 41 interleaved rounds: max wait at 64
 * threads 10-28% shorter, at 16 threads shorter in three runs of four;
 * throughput 0.96-1.04x, within the spread of the rounds. */
static void enqueue(fast_mutex_t *m, struct fmx_record *rec, bool at_front)
{
    uint32_t link = fmx_record_link(rec);
    struct fmx_record *head = fmx_record_at(atomic_load_explicit(&m->queue, memory_order_relaxed));
    if (!at_front)
        atomic_store_explicit(&rec->head_since_us, head == NULL ? first_from_now() : 0,
                              memory_order_relaxed);
    /* Insert before `behind`: for a new waiter the head (so at the back of
     * the circle); for a woken one the first waiter that did not become
     * first before it, or the head again when all did. */
    struct fmx_record *behind = head;
    bool new_head = head == NULL || at_front;
    if (head != NULL && at_front) {
        while (atomic_load_explicit(&behind->head_since_us, memory_order_relaxed) != 0 &&
               first_before(behind, rec)) {
            new_head = false;
            behind = fmx_record_at(behind->next);
            if (behind == head)
                break;
        }
    }
    fmx_record_write_begin(rec);
    if (head == NULL) {
        rec->next = rec->prev = link;
    } else {
        struct fmx_record *before = fmx_record_at(behind->prev);
        rec->next = fmx_record_link(behind);
        rec->prev = behind->prev;
        before->next = link;
        behind->prev = link;
    }
    fmx_record_write_end(rec);
    if (new_head)
        atomic_store_explicit(&m->queue, link, memory_order_relaxed);
}

/* Takes rec off m's queue; returns true when the queue is now empty.
 * Queue lock held.  The next waiter's time as first in line starts now,
 * also when it had been first before (a woken waiter back at the front
 * behind another one): keeping that time made handoffs to sleeping
 * waiters so common that 16 and 64 threads lost 3-13% (doc/design.md,
 * "What the bound does not bound"). */
static bool dequeue(fast_mutex_t *m, struct fmx_record *rec)
{
    uint32_t link = fmx_record_link(rec);
    bool empty = rec->next == link;
    if (empty) {
        atomic_store_explicit(&m->queue, 0, memory_order_relaxed);
    } else {
        fmx_record_at(rec->prev)->next = rec->next;
        fmx_record_at(rec->next)->prev = rec->prev;
        if (atomic_load_explicit(&m->queue, memory_order_relaxed) == link) {
            atomic_store_explicit(&m->queue, rec->next, memory_order_relaxed);
            atomic_store_explicit(&fmx_record_at(rec->next)->head_since_us, first_from_now(),
                                  memory_order_relaxed);
        }
    }
    fmx_record_write_begin(rec);
    rec->next = rec->prev = 0;
    fmx_record_write_end(rec);
    return empty;
}

/* Changes the flag bits of the word, whatever the owner bits do meanwhile.
 * Queue lock held (flags change only under it).  Returns the new word. */
static uint32_t update_flags(fast_mutex_t *m, uint32_t set, uint32_t clear, memory_order order)
{
    uint32_t word = atomic_load_explicit(&m->word, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&m->word, &word, (word | set) & ~clear, order,
                                                  memory_order_relaxed))
        ;
    return (word | set) & ~clear;
}

/* Takes the lock if nobody holds it, keeping the flags but those in
 * `clear`, and trying again while it stays free; false once it is held. */
static bool take_if_free(fast_mutex_t *m, uint32_t self, uint32_t clear)
{
    return fast_mutex_take_free_(m, atomic_load_explicit(&m->word, memory_order_relaxed), self,
                                 clear);
}

#if defined(__x86_64__) || defined(__i386__)
/* When cache lines come from far away.  On some machines (two sockets; on
 * this project's shared host, now and then, its two vCPUs) a line written
 * by the other CPU takes 100-300 ns to arrive instead of 25-50.  Spinners
 * that take the lock at every release then pay that at every acquire, for
 * the lock and for the data it guards: in short-constant two threads fell
 * from 16M to 4.5M acquires a second, below pthread's sleeping waiters
 * (6.3M).  A spinner that looks only every ~1.5 us leaves the holder's CPU
 * to take the lock many times in a row with its lines in its own cache:
 * 1.2-1.6x pthread there instead of 0.7-0.9x (2 to 64 threads).  When
 * lines are near fewer than 1 spin in 200 chose it.
 *
 * Each thread keeps its own average (1/8 weight to the newest) of how many
 * TSC ticks a spinning load took when it found the word changed, that is
 * when the line came from the CPU that changed it.  Far means above 200
 * ticks: about 80 ns at this machine's 2.6 GHz, and 50-100 ns at any TSC
 * rate of 2-4 GHz, between near (25-50 ns) and far (100 ns and more).
 * Loads longer than 100000 ticks were interrupted, not slow: skipped. */
#define FAR_EXCHANGE_TICKS 200u
#define FAR_PAUSES 64u
static _Thread_local uint32_t exchange_ticks;

/* Loads the word, and if it changed since *last, feeds the time the load
 * took into exchange_ticks.  The fences keep the load between the stamps.
 * They cost about as much as a near exchange, and made every look at the
 * word that much later (0.92x the throughput at 16 threads when lines
 * are near), so only one spin in 16 times its loads: machines change from
 * near to far over seconds, not microseconds. */
static _Thread_local unsigned spins_seen;

static inline bool time_this_spin(void)
{
    return (++spins_seen & 15) == 0;
}

static inline uint32_t watch_word(fast_mutex_t *m, uint32_t *last, bool timed)
{
    if (!timed)
        return atomic_load_explicit(&m->word, memory_order_relaxed);
    _mm_lfence();
    uint64_t before = __rdtsc();
    _mm_lfence();
    uint32_t word = atomic_load_explicit(&m->word, memory_order_relaxed);
    _mm_lfence();
    uint64_t took = __rdtsc() - before;
    if (word != *last) {
        if (took < 100000)
            exchange_ticks = (uint32_t)((exchange_ticks * 7u + took) / 8u);
        *last = word;
    }
    return word;
}

static inline bool lines_come_from_far(void)
{
    return exchange_ticks > FAR_EXCHANGE_TICKS;
}
#else
/* No cheap ordered cycle counter: always spin as when lines are near. */
static inline bool time_this_spin(void)
{
    return false;
}

static inline uint32_t watch_word(fast_mutex_t *m, uint32_t *last, bool timed)
{
    (void)last;
    (void)timed;
    return atomic_load_explicit(&m->word, memory_order_relaxed);
}

static inline bool lines_come_from_far(void)
{
    return false;
}
#define FAR_PAUSES 8u
#endif

/* Spinning for a holder that is not running.  With more threads than
 * CPUs the holder is often preempted in its critical section, and a woken
 * waiter may be the very thread that displaced it: spinning then only
 * keeps the holder off its CPU.  The kernel's mutex spins only while the
 * owner is on a CPU; a process cannot ask that, but each thread notes in
 * its record the CPU it runs on when it first waits and whenever a spin of
 * its own lasts a while (fmx_note_cpu(), at the same moments as the
 * question), and a spinner running on the holder's CPU knows the holder is
 * not running there.  It then stops spinning and sleeps, giving the CPU
 * back.  A stale note (the holder moved since) costs one early sleep.
 * Noting at every slow-path entry instead looked about 1% slower in
 * short-constant (within the spread of 5 runs).  Measured with bench/ in
 * long-constant, 3 interleaved runs: against absl, 0.97-0.98x at 16
 * threads before, 1.00-1.01x after; at 64 and 4 threads 1-2% better;
 * short-constant unchanged.
 *
 * Whether the holder in `word` last noted `cpu` (from sched_getcpu()). */
static bool holder_ran_on(uint32_t word, int cpu)
{
    struct fmx_record *holder = fmx_record_of((int32_t)owner_of(word));
    if (holder == NULL || cpu < 0)
        return false;
    return atomic_load_explicit(&holder->cpu, memory_order_relaxed) == (uint32_t)cpu + 1;
}

/* The most pauses between two looks at the word when lines are near.  A
 * holder that lets go and comes back after a little private work leaves
 * the lock free for only that long, 0.1 us in bench/'s workloads: looking
 * every 8 pauses (about 190 ns here) missed about half of those windows,
 * and in long-constant a spinner often missed them for its whole 10 us
 * and slept.  With 2 (about 50 ns) it slept a third to a half as often,
 * and long-constant gained 2-4% at 2 to 64 threads (interleaved runs);
 * short-constant, where the lock is free more often, did not change. */
#define NEAR_PAUSES 2u

/* The mid path: spin while the lock is held, taking it the moment it is
 * free (and dropping the flags in `clear`: WOKEN, for a woken waiter).
 * Read-only while waiting, so the owner's cache line is not stolen from
 * it; the pause between reads doubles up to NEAR_PAUSES, or is long from
 * the start when cache lines come from far away (see above).  Spinning even
 * while others are queued (barging) keeps the lock busy; the handoff bound
 * keeps it from starving them. */
static bool spin_acquire(fast_mutex_t *m, uint32_t self, uint32_t clear)
{
    uint64_t start = 0;
    bool far = lines_come_from_far();
    unsigned cap = far ? FAR_PAUSES : NEAR_PAUSES;
    unsigned backoff = far ? FAR_PAUSES : 1u;
    bool timed = time_this_spin();
    uint32_t last = atomic_load_explicit(&m->word, memory_order_relaxed);
    for (unsigned round = 0;; round++) {
        uint32_t word = watch_word(m, &last, timed);
        if (fast_mutex_take_free_(m, word, self, clear))
            return true;
        /* Every 8 rounds, from the 4th: most spins end sooner, unasked.
         * Note where we run, for spinners waiting on us later, and ask
         * where the holder ran. */
        if ((round & 7) == 3) {
            int cpu = sched_getcpu();
            struct fmx_record *own = fmx_own_record();
            if (own != NULL)
                fmx_note_cpu(own, cpu);
            if (holder_ran_on(word, cpu))
                return false;
        }
        for (unsigned i = 0; i < backoff; i++)
            cpu_relax();
        if (backoff < cap)
            backoff <<= 1;
        /* Read the clock only now and then: it costs more than a pause.
         * (When lines come from far, eight rounds take 12 us, so such a
         * spin lasts about twice the budget: measured so, and kept.) */
        if ((round & 7) == 7) {
            uint64_t now = fmx_now_ns();
            if (start == 0)
                start = now;
            else if (now - start > SPIN_NS)
                return false;
        }
    }
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
    rec->owner_seen = (int32_t)owner_of(atomic_load_explicit(&m->word, memory_order_relaxed));
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
        rec->acquired_mutex = (uint64_t)(uintptr_t)m;
        rec->acquired_site = (uint64_t)(uintptr_t)site;
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
    char name[FMX_THREAD_NAME_LEN] = "";
    prctl(PR_GET_NAME, name);
    fmx_record_write_begin(rec);
    rec->owner_seen = (int32_t)owner_of(atomic_load_explicit(&m->word, memory_order_relaxed));
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

/* The process-shared slow path: the classic futex mutex, with our thread id
 * for "locked" and WAITERS for "somebody may sleep on the word". */
static int acquire_shared(fast_mutex_t *m, uint64_t deadline_ns, struct fmx_record *rec)
{
    uint32_t self = fast_mutex_self_();
    uint64_t check_every = fmx_deadlock_after_ns();
    uint64_t check_at = check_every ? rec->wait_start_ns + check_every : 0;
    bool reported = false;
    for (;;) {
        uint32_t word = atomic_load_explicit(&m->word, memory_order_relaxed);
        if (owner_of(word) == 0) {
            /* We may not be the only sleeper: keep WAITERS so our release
             * wakes the next.  Acquire pairs with the releasing exchange. */
            if (atomic_compare_exchange_weak_explicit(&m->word, &word, self | FAST_MUTEX_WAITERS,
                                                      memory_order_acquire, memory_order_relaxed))
                return 0;
            continue;
        }
        if (!(word & FAST_MUTEX_WAITERS) &&
            !atomic_compare_exchange_weak_explicit(&m->word, &word, word | FAST_MUTEX_WAITERS,
                                                   memory_order_relaxed, memory_order_relaxed))
            continue;
        uint64_t wake_at = next_timeout(deadline_ns, check_at);
        struct timespec ts = fmx_ns_timespec(wake_at);
        if (fmx_futex_wait(&m->word, word | FAST_MUTEX_WAITERS, wake_at ? &ts : NULL, true))
            continue;
        uint64_t now = fmx_now_ns();
        if (deadline_ns != 0 && now >= deadline_ns)
            return ETIMEDOUT;
        if (check_at != 0 && now >= check_at) {
            note_owner(rec, m);
            bool cycle = !reported && fmx_deadlock_check(m, rec);
            reported |= cycle;
            if (cycle && deadline_ns != 0)
                return EDEADLK;
            check_at = now + check_every;
        }
    }
}

/* A thread without a record (all FMX_REGISTRY_THREADS records belong to
 * live threads) cannot queue, nor be seen by the tools: it polls, napping a
 * little longer each time, up to a millisecond. */
static int acquire_unrecorded(fast_mutex_t *m, uint64_t deadline_ns)
{
    uint32_t self = fast_mutex_self_();
    long nap_ns = 1000;
    for (;;) {
        if (take_if_free(m, self, 0))
            return 0;
        if (deadline_ns != 0 && fmx_now_ns() >= deadline_ns)
            return ETIMEDOUT;
        struct timespec nap = {.tv_sec = 0, .tv_nsec = nap_ns};
        nanosleep(&nap, NULL);
        if (nap_ns < 1000000)
            nap_ns *= 2;
    }
}

/* Gives up a queued wait (timeout or deadlock) unless a release got to us
 * first; returns the wake value: FMX_WAKE_NONE if we left the queue. */
static uint32_t leave_queue(fast_mutex_t *m, struct fmx_record *rec)
{
    queue_lock(m);
    /* Acquire: if a release dequeued us, see what it did (pairs with its
     * release store of `wake`). */
    uint32_t wake = atomic_load_explicit(&rec->wake, memory_order_acquire);
    if (wake == FMX_WAKE_NONE && dequeue(m, rec))
        update_flags(m, 0, FAST_MUTEX_WAITERS, memory_order_relaxed);
    queue_unlock(m);
    return wake;
}

int fmx_acquire(fast_mutex_t *m, const struct timespec *deadline, const void *site, const void *outer)
{
    uint32_t self = fast_mutex_self_();
    uint32_t word = atomic_load_explicit(&m->word, memory_order_relaxed);
    if (owner_of(word) == self)
        fmx_misuse("recursive acquire", m, site, "the calling thread already holds it");
    /* As pthread_mutex_timedlock(): checked only when the caller would wait. */
    if (deadline != NULL && !fmx_timespec_valid(deadline))
        return EINVAL;
    if (spin_acquire(m, self, 0))
        return 0;
    uint64_t deadline_ns = deadline != NULL ? fmx_timespec_ns(deadline) : 0;
    if (deadline != NULL && deadline_ns == 0)
        deadline_ns = 1; /* a deadline long past: still a deadline */
    /* Past the deadline already: no sleep, so no contention to count. */
    if (deadline_ns != 0 && fmx_now_ns() >= deadline_ns)
        return ETIMEDOUT;
    /* Counted only now, as Windows counts the waits on its event: an
     * atomic add on the busy lock's cache line for every spin cost a
     * tenth of the throughput of 16 threads on 2 cores. */
    atomic_fetch_add_explicit(&m->contention, 1, memory_order_relaxed);

    struct fmx_record *rec = fmx_self_record();
    if (rec == NULL)
        return acquire_unrecorded(m, deadline_ns);
    begin_wait(rec, m, site, outer);
    int result;
    if (is_shared(m)) {
        result = acquire_shared(m, deadline_ns, rec);
        goto out;
    }

    uint64_t check_every = fmx_deadlock_after_ns();
    uint64_t check_at = check_every ? rec->wait_start_ns + check_every : 0;
    bool reported = false;
    bool woken = false; /* we hold the WOKEN flag: clear it when done */
    for (;;) {
        /* Woken, we are running again: the holder most likely is too, and
         * about to let go; spin before queueing up again. */
        if (woken && spin_acquire(m, self, FAST_MUTEX_WOKEN)) {
            result = 0;
            goto out;
        }
        queue_lock(m);
        /* Free: take it, dropping WOKEN if it was set for us. */
        if (take_if_free(m, self, woken ? FAST_MUTEX_WOKEN : 0)) {
            queue_unlock(m);
            result = 0;
            goto out;
        }
        word = atomic_load_explicit(&m->word, memory_order_relaxed);
        if (deadline_ns != 0 && fmx_now_ns() >= deadline_ns) {
            /* Time is up.  A woken waiter drops its WOKEN duty only while
             * the lock is held, so that the holder's release wakes the next
             * waiter; had the lock just been freed (releases skip the wake
             * while WOKEN is set), nobody would.  Then we take it instead. */
            result = ETIMEDOUT;
            while (woken) {
                uint32_t cleared = word & ~FAST_MUTEX_WOKEN;
                if (owner_of(word) == 0)
                    cleared |= self;
                /* Acquire, in case we take the lock: pairs with its release. */
                if (atomic_compare_exchange_weak_explicit(&m->word, &word, cleared,
                                                          memory_order_acquire, memory_order_relaxed)) {
                    woken = false;
                    result = owner_of(cleared) == self ? 0 : ETIMEDOUT;
                }
            }
            queue_unlock(m);
            goto out;
        }
        /* Held: queue up.  A waiter woken to retry goes back to the front,
         * keeping its place (see enqueue()); a new one goes to the back. */
        atomic_store_explicit(&rec->wake, FMX_WAKE_NONE, memory_order_relaxed);
        enqueue(m, rec, woken);
        /* Setting WAITERS while the lock is held makes its release take the
         * slow path and find us.  If it was released meanwhile, we leave the
         * queue again and retry. */
        word = atomic_load_explicit(&m->word, memory_order_relaxed);
        uint32_t flagged;
        do {
            if (owner_of(word) == 0)
                break;
            flagged = (word | FAST_MUTEX_WAITERS) & ~(woken ? FAST_MUTEX_WOKEN : 0);
        } while (!atomic_compare_exchange_weak_explicit(&m->word, &word, flagged,
                                                        memory_order_relaxed, memory_order_relaxed));
        if (owner_of(word) == 0) {
            if (dequeue(m, rec))
                update_flags(m, 0, FAST_MUTEX_WAITERS, memory_order_relaxed);
            queue_unlock(m);
            continue;
        }
        woken = false;
        queue_unlock(m);

        /* Park until a release takes us off the queue. */
        uint32_t wake;
        while ((wake = atomic_load_explicit(&rec->wake, memory_order_acquire)) == FMX_WAKE_NONE) {
            uint64_t wake_at = next_timeout(deadline_ns, check_at);
            struct timespec ts = fmx_ns_timespec(wake_at);
            if (fmx_futex_wait(&rec->wake, FMX_WAKE_NONE, wake_at ? &ts : NULL, false) ||
                atomic_load_explicit(&rec->wake, memory_order_relaxed) != FMX_WAKE_NONE)
                continue; /* woken, or woken just as the timer ran out */
            uint64_t now = fmx_now_ns();
            bool give_up = deadline_ns != 0 && now >= deadline_ns;
            int why = ETIMEDOUT;
            if (!give_up && check_at != 0 && now >= check_at) {
                note_owner(rec, m);
                bool cycle = !reported && fmx_deadlock_check(m, rec);
                reported |= cycle;
                check_at = now + check_every;
                give_up = cycle && deadline_ns != 0;
                why = EDEADLK;
            }
            if (give_up && (wake = leave_queue(m, rec)) == FMX_WAKE_NONE) {
                result = why;
                goto out;
            }
        }
        /* Acquire (the load above): pairs with the release store of `wake`
         * in release_slow, after it wrote the word. */
        if (wake == FMX_WAKE_HANDOFF) {
            result = 0;
            goto out;
        }
        woken = true;
    }
out:
    end_wait(rec, m, site, result == 0);
    return result;
}

int fast_mutex_acquire_slow_(fast_mutex_t *m, const struct timespec *deadline)
{
    /* Inlined fast paths call us directly, so our return address lies in
     * the function that called fast_mutex_acquire(): the call site. */
    return fmx_acquire(m, deadline, __builtin_return_address(0), NULL);
}

void fmx_check_release(const fast_mutex_t *m, const void *site)
{
    uint32_t owner = owner_of(atomic_load_explicit(&((fast_mutex_t *)m)->word, memory_order_relaxed));
    if (owner == 0)
        fmx_misuse("release of a free mutex", m, site, "nobody holds it");
    if (owner != fast_mutex_self_())
        fmx_misuse("release by a thread that does not own the mutex", m, site,
                   "it is held by thread %u", owner);
}

/* Whether the waiter woken last is late (see WOKEN_LATE_US): the one first
 * in line now became first when that waiter was taken off the queue.  Read
 * without the queue lock, so the head may change meanwhile; records are
 * never unmapped, and a stale answer costs one wake or one wait.
 *
 * A woken waiter is on its way at most releases of a busy lock, and
 * reading the clock at each cost a tenth of the throughput at 64 threads
 * (0.82-0.89x parking_lot's instead of 0.88-0.92x).  So each thread asks
 * at one such release in 32 (the others let go in the header's
 * fast_mutex_release_woken_()): a busy lock notices a late waiter a few
 * microseconds later, an idle one no later than without this check, when
 * the woken waiter itself arrives. */
static bool woken_late(fast_mutex_t *m)
{
    struct fmx_record *head = fmx_record_at(atomic_load_explicit(&m->queue, memory_order_relaxed));
    return head != NULL && first_in_line_for_us(head) > WOKEN_LATE_US;
}

void fast_mutex_release_slow_(fast_mutex_t *m)
{
    fmx_check_release(m, __builtin_return_address(0));
    if (is_shared(m)) {
        /* Release: pairs with the acquire CAS of the next holder. */
        uint32_t word = atomic_exchange_explicit(&m->word, 0, memory_order_release);
        if (word & FAST_MUTEX_WAITERS)
            fmx_futex_wake(&m->word, 1, true);
        return;
    }
    uint32_t word = atomic_load_explicit(&m->word, memory_order_relaxed);
    /* Nobody queued, or a woken waiter already on its way and not late:
     * just let go.  Release pairs with the next holder's acquire CAS.  (The
     * header let go already at 31 in 32 releases with WOKEN set.) */
    while (!(word & FAST_MUTEX_WAITERS) || ((word & FAST_MUTEX_WOKEN) && !woken_late(m)))
        if (atomic_compare_exchange_weak_explicit(&m->word, &word, word & ~FAST_MUTEX_OWNER_MASK,
                                                  memory_order_release, memory_order_relaxed))
            return;

    queue_lock(m);
    /* We own the lock and hold the queue lock: nobody else changes the word
     * from here on.  It may carry WOKEN, for a late woken waiter that will
     * clear it when it takes the lock or queues again: keep it. */
    uint32_t woken = atomic_load_explicit(&m->word, memory_order_relaxed) & FAST_MUTEX_WOKEN;
    struct fmx_record *head = fmx_record_at(atomic_load_explicit(&m->queue, memory_order_relaxed));
    if (head == NULL) {
        /* The last waiter gave up (timeout) since we looked. */
        atomic_store_explicit(&m->word, 0, memory_order_release);
        queue_unlock(m);
        return;
    }
    bool empty = dequeue(m, head);
    uint32_t rest = empty ? 0 : FAST_MUTEX_WAITERS;
    uint32_t wake;
    if (first_in_line_for_us(head) > HANDOFF_US) {
        /* Hand over: the lock goes straight to the oldest waiter. */
        atomic_store_explicit(&m->word, (uint32_t)head->tid | rest | woken, memory_order_release);
        wake = FMX_WAKE_HANDOFF;
    } else {
        atomic_store_explicit(&m->word, rest | FAST_MUTEX_WOKEN, memory_order_release);
        wake = FMX_WAKE_RETRY;
    }
    /* Release: the waiter that sees `wake` also sees the word we wrote and,
     * for a handoff, our critical section (pairs with its acquire load). */
    atomic_store_explicit(&head->wake, wake, memory_order_release);
    queue_unlock(m);
    /* The record outlives the wait (it belongs to the thread until the
     * thread exits), so waking it after the unlock is safe: at worst the
     * thread has moved on and takes a spurious wake-up. */
    fmx_futex_wake(&head->wake, 1, false);
}
