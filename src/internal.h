/* Declarations shared by the library's source files; nothing here is
 * exported.  Every function is fmx_-prefixed and hidden. */
#ifndef FASTMUTEX_INTERNAL_H
#define FASTMUTEX_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "fastmutex.h"
#include "registry.h"

#define FMX_HIDDEN __attribute__((visibility("hidden")))

/* futex.c: every futex call goes through these two.
 * fmx_futex_wait sleeps while *word == expected, until woken or until the
 * absolute CLOCK_MONOTONIC `deadline` (NULL: none).  Returns false on
 * timeout, true otherwise (woken, value already changed, or interrupted by
 * a signal): the caller re-checks its condition in every case. */
FMX_HIDDEN bool fmx_futex_wait(_Atomic uint32_t *word, uint32_t expected,
                               const struct timespec *deadline, bool shared);
FMX_HIDDEN void fmx_futex_wake(_Atomic uint32_t *word, int count, bool shared);

FMX_HIDDEN uint64_t fmx_now_ns(void);
FMX_HIDDEN uint64_t fmx_timespec_ns(const struct timespec *ts);
FMX_HIDDEN struct timespec fmx_ns_timespec(uint64_t ns);

/* CLOCK_MONOTONIC in microseconds, low 32 bits: wraps after 71 minutes,
 * and differences stay right for any span shorter than that. */
static inline uint32_t fmx_now_us(void)
{
    return (uint32_t)(fmx_now_ns() / 1000u);
}

/* One pause of a spin loop: lets the other hyperthread run and keeps the
 * loop from flooding the memory system with loads. */
static inline void fmx_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline uint32_t fmx_owner_of(uint32_t word)
{
    return word & FAST_MUTEX_OWNER_MASK;
}

/* Whether m was made by fast_mutex_init_shared(): its waiters sleep on the
 * lock word, it has no queue. */
static inline bool fmx_is_shared(const fast_mutex_t *m)
{
    return atomic_load_explicit(&((fast_mutex_t *)m)->queue, memory_order_relaxed) >=
           FAST_MUTEX_ROBUST_QUEUE;
}

/* Whether m was made by fast_mutex_init_robust() (shared as well). */
static inline bool fmx_is_robust(const fast_mutex_t *m)
{
    return atomic_load_explicit(&((fast_mutex_t *)m)->queue, memory_order_relaxed) ==
           FAST_MUTEX_ROBUST_QUEUE;
}

/* robust.c: whether the calling thread's stamp is the one in robust m
 * (it holds m, rather than having the id of a dead holder). */
FMX_HIDDEN bool fmx_robust_held_by_caller(const fast_mutex_t *m);
/* Lets go of robust m, held by the caller. */
FMX_HIDDEN void fmx_release_robust(fast_mutex_t *m);

/* registry.c: the calling thread's record, claimed on first use and given
 * back when the thread exits.  Without a memfd the registry falls back to
 * private memory that only this process sees.  NULL when all
 * FMX_REGISTRY_THREADS records belong to live threads. */
FMX_HIDDEN struct fmx_record *fmx_self_record(void);
/* The registry's records once it exists (registry.c), NULL before. */
extern FMX_HIDDEN struct fmx_record *_Atomic fmx_records_;
/* Reports a queue link that points outside the registry, and aborts
 * (report.c): links are read from memory other code may write (a mutex's
 * `queue` word, the registry's records), and none may steer us out of
 * bounds. */
FMX_HIDDEN _Noreturn void fmx_bad_link(const void *mutex, uint32_t link);
/* Record by queue link (slot + 1); NULL for 0.  A link beyond the records,
 * or one read before this process made its registry, is reported as
 * corruption (fmx_bad_link) rather than followed.  Acquire: the registry
 * is mapped before its pointer is published (pairs with get_registry()). */
static inline struct fmx_record *fmx_record_at(uint32_t link)
{
    if (link == 0)
        return NULL;
    struct fmx_record *records = atomic_load_explicit(&fmx_records_, memory_order_acquire);
    if (link > FMX_REGISTRY_THREADS || records == NULL)
        fmx_bad_link(NULL, link);
    return &records[link - 1];
}
static inline uint32_t fmx_record_link(const struct fmx_record *rec)
{
    return (uint32_t)(rec - atomic_load_explicit(&fmx_records_, memory_order_acquire)) + 1;
}
/* Notes in `rec` (the caller's own) the CPU it runs on, from
 * sched_getcpu() (negative: unknown), for tools and for spinners that
 * hold it as a hint. */
FMX_HIDDEN void fmx_note_cpu(struct fmx_record *rec, int cpu);
/* Whether `owner`, found in the lock word of a process-private mutex, is
 * the calling thread: the id a forking thread had in the parent, when the
 * caller is the thread that came out of that fork() (registry.c).  A fork
 * passes the forking thread's holds to the child's thread, as glibc does. */
FMX_HIDDEN bool fmx_inherited_owner(uint32_t owner);
/* The calling thread's record if it has one (never claims one). */
FMX_HIDDEN struct fmx_record *fmx_own_record(void);
/* The record of live thread `tid` of this process, found through a table
 * by thread id: NULL when it has none or the table lost track of it. */
FMX_HIDDEN struct fmx_record *fmx_record_of(int32_t tid);
/* The record of thread `tid` while it waits for a mutex, or NULL. */
FMX_HIDDEN struct fmx_record *fmx_waiting_record(int32_t tid);
/* The fields that other threads of the process read from a record while
 * its thread may change them (the thread id and name, the mutex waited
 * for and the call site: the deadlock check and the spinners' holder
 * lookup read them) are read and written with relaxed atomic accesses.
 * The seqlock, or a check after the read, tells a reader that a value was
 * torn or stale; the atomic accesses keep that race from being a data race
 * in C11's sense, and from ThreadSanitizer's reports in users' programs. */
#define FMX_RECORD_LOAD(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)
#define FMX_RECORD_STORE(field, value) __atomic_store_n(&(field), (value), __ATOMIC_RELAXED)
FMX_HIDDEN void fmx_record_set_name(struct fmx_record *rec, const char name[FMX_THREAD_NAME_LEN]);
FMX_HIDDEN void fmx_record_get_name(const struct fmx_record *rec, char name[FMX_THREAD_NAME_LEN]);
/* Bracket every change to a record (the seqlock outside readers check). */
FMX_HIDDEN void fmx_record_write_begin(struct fmx_record *rec);
FMX_HIDDEN void fmx_record_write_end(struct fmx_record *rec);
/* Copies m's name into buf ("" when unnamed); cheap when nothing is named. */
FMX_HIDDEN void fmx_name_of(const void *m, char *buf, size_t size);
FMX_HIDDEN void fmx_forget_name(const void *m);

/* report.c */
/* A misuse report: names the check, the calling thread, the mutex and the
 * call site, then aborts (after the report hook, if one is set). */
FMX_HIDDEN _Noreturn void fmx_misuse(const char *check, const void *mutex, const void *site,
                                     const char *detail_fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The deadlock check for the calling thread, waiting on m with record
 * `self`.  Returns true when the wait closes a cycle (after reporting it
 * once, and aborting if FASTMUTEX_ON_DEADLOCK=abort). */
FMX_HIDDEN bool fmx_deadlock_check(const fast_mutex_t *m, struct fmx_record *self);
/* The wait after which the deadlock check runs, 0 when it is switched off. */
FMX_HIDDEN uint64_t fmx_deadlock_after_ns(void);
/* Whether waits are described for the tools and checked for deadlocks:
 * FASTMUTEX_DIAGNOSTICS=0 turns it off, for measuring what it costs (the
 * benchmark, linked statically, switches it with fmx_set_diagnostics).
 * With it off, records hold only what the queue needs. */
FMX_HIDDEN bool fmx_diagnostics(void);
FMX_HIDDEN void fmx_set_diagnostics(bool on);

/* queue.c: the FIFO of waiter records of a process-private mutex, and the
 * queue lock that guards it and the word's flag bits (contract there). */
FMX_HIDDEN void fmx_queue_lock(fast_mutex_t *m);
FMX_HIDDEN void fmx_queue_unlock(fast_mutex_t *m);
/* The oldest waiter, NULL when none.  Queue lock held, or a hint. */
FMX_HIDDEN struct fmx_record *fmx_queue_head(const fast_mutex_t *m);
/* How many waiters are queued.  Queue lock held, or a hint. */
FMX_HIDDEN uint32_t fmx_queue_length(const fast_mutex_t *m);
FMX_HIDDEN void fmx_enqueue(fast_mutex_t *m, struct fmx_record *rec, bool at_front);
FMX_HIDDEN bool fmx_dequeue(fast_mutex_t *m, struct fmx_record *rec);
FMX_HIDDEN uint32_t fmx_first_in_line_for_us(const struct fmx_record *head);

/* policy.c: every decision about time (contract there). */
FMX_HIDDEN bool fmx_policy_spin(fast_mutex_t *m, uint32_t self, uint32_t clear);
FMX_HIDDEN bool fmx_policy_hand_off(const struct fmx_record *head);
FMX_HIDDEN bool fmx_policy_woken_is_late(const fast_mutex_t *m);
FMX_HIDDEN void fmx_policy_make_way(const fast_mutex_t *m);
/* Whether fmx_policy_spin() parks at once when threads outnumber CPUs
 * (default on); off only in the benchmark's paired A/B adapter. */
extern FMX_HIDDEN bool fmx_policy_crowd_rule;
FMX_HIDDEN void fmx_set_crowd_rule(bool on);

/* fastmutex.c: the slow path with its call site and, for a FAST_MUTEX,
 * the address of the FAST_MUTEX around m (NULL otherwise). */
FMX_HIDDEN int fmx_acquire(fast_mutex_t *m, const struct timespec *deadline, const void *site,
                           const void *outer);
/* Reports, if the caller does not hold m, the release that is misuse. */
FMX_HIDDEN void fmx_check_release(const fast_mutex_t *m, const void *site);

#endif /* FASTMUTEX_INTERNAL_H */
