/* Declarations shared by the library's source files; nothing here is
 * exported.  Every function is fmx_-prefixed and hidden. */
#ifndef FASTMUTEX_INTERNAL_H
#define FASTMUTEX_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
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
/* Whether tv_nsec lies in 0..999999999. */
FMX_HIDDEN bool fmx_timespec_valid(const struct timespec *ts);
/* Nanoseconds of a valid timespec: 0 before the epoch, UINT64_MAX when too
 * far ahead to count. */
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
 * for, its kind and FAST_MUTEX, and the call site: the deadlock check and the spinners' holder
 * lookup read them) are read and written with relaxed atomic accesses.
 * The seqlock, or a check after the read, tells a reader that a value was
 * torn or stale; the atomic accesses keep that race from being a data race
 * in C11's sense, and from ThreadSanitizer's reports in users' programs. */
#define FMX_RECORD_LOAD(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)
#define FMX_RECORD_STORE(field, value) __atomic_store_n(&(field), (value), __ATOMIC_RELAXED)
/* The calling thread's name for reports and records, NUL-terminated and
 * NUL-padded: its long name, or its comm once it was renamed or when it
 * has none. */
FMX_HIDDEN void fmx_current_thread_name(char name[FMX_THREAD_NAME_LEN]);
FMX_HIDDEN void fmx_record_set_name(struct fmx_record *rec, const char name[FMX_THREAD_NAME_LEN]);
FMX_HIDDEN void fmx_record_get_name(const struct fmx_record *rec, char name[FMX_THREAD_NAME_LEN]);
/* Bracket every change to a record (the seqlock outside readers check). */
FMX_HIDDEN void fmx_record_write_begin(struct fmx_record *rec);
FMX_HIDDEN void fmx_record_write_end(struct fmx_record *rec);
/* Writes the moment, and the clocks' offset, into the registry (if this
 * process has one) just before the library aborts the process, so that a
 * reader of the core knows how long each waiter had waited. */
FMX_HIDDEN void fmx_registry_stamp(void);
/* Copies m's name into buf ("" when unnamed); cheap when nothing is named. */
FMX_HIDDEN void fmx_name_of(const void *m, char *buf, size_t size);
FMX_HIDDEN void fmx_forget_name(const void *m);

/* memfd.c: the memfds other processes read (registry, stats table).
 * fmx_memfd_create() makes one named `name`, never on descriptor 0, 1 or
 * 2, mode 0600, and notes which file it is in *id; -1 when it cannot. */
struct fmx_memfd_id {
    dev_t dev;
    ino_t ino;
};
FMX_HIDDEN int fmx_memfd_create(const char *name, struct fmx_memfd_id *id);
/* Whether descriptor fd is still that file: the application may have
 * closed the number and opened a file of its own under it. */
FMX_HIDDEN bool fmx_memfd_is(int fd, const struct fmx_memfd_id *id);
/* Maps `size` bytes of a new memfd named `name`, shared, noting the file in
 * *id and the descriptor in *fd; where the kernel refuses a memfd, private
 * memory and *fd -1, so that the process still works, unseen by the tools.
 * Aborts only when the address space is exhausted. */
FMX_HIDDEN void *fmx_memfd_map(const char *name, size_t size, struct fmx_memfd_id *id, int *fd);

/* symbols.c: call sites for reports, through libdwfl on this process
 * (cold: reports only). */
struct fmx_symbols;
FMX_HIDDEN struct fmx_symbols *fmx_symbols_open(void); /* NULL when it cannot */
FMX_HIDDEN void fmx_symbols_close(struct fmx_symbols *syms);
/* Writes "function+0xoff file:line" for return address `site` into buf;
 * false when syms is NULL or knows no symbol there. */
FMX_HIDDEN bool fmx_symbols_site(struct fmx_symbols *syms, const void *site, char *buf, size_t size);

/* report.c */
/* A report being written: built in one buffer, delivered in one piece. */
#define FMX_REPORT_SIZE 4096
struct fmx_symbols;
struct fmx_report {
    char text[FMX_REPORT_SIZE];
    size_t len;
    struct fmx_symbols *syms; /* opened at the first call site, NULL before */
    bool syms_tried;
};
FMX_HIDDEN void fmx_report_add(struct fmx_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "function+0xoff (address)" for a code address. */
FMX_HIDDEN void fmx_report_add_site(struct fmx_report *r, const void *site);
/* "mutex ADDRESS (NAME)": m, or for a FAST_MUTEX (outer not NULL) the
 * FAST_MUTEX around m, as its user knows it. */
FMX_HIDDEN void fmx_report_add_mutex(struct fmx_report *r, const void *m, const void *outer);
/* Delivers a lock-order report as FASTMUTEX_ON_DEADLOCK says (report,
 * abort, or ignore: then it is not delivered and the result is false). */
FMX_HIDDEN bool fmx_report_order_problem(struct fmx_report *r);
FMX_HIDDEN bool fmx_on_deadlock_abort(void);
/* Delivers a report that never aborts. */
FMX_HIDDEN void fmx_report_note(struct fmx_report *r);
/* A misuse report: names the check, the calling thread, the mutex and the
 * call site, then aborts (after the report hook, if one is set). */
FMX_HIDDEN _Noreturn void fmx_misuse(const char *check, const void *mutex, const void *site,
                                     const char *detail_fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same for a FAST_MUTEX: the report names `outer`, the address its
 * user knows, and `lock` is the fast_mutex_t inside it. */
FMX_HIDDEN _Noreturn void fmx_misuse_wdm(const char *check, const void *outer, const fast_mutex_t *lock,
                                         const void *site, const char *detail_fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The deadlock check for the calling thread, waiting on m with record
 * `self`.  Returns true when the wait closes a cycle (after reporting it
 * once, and aborting if FASTMUTEX_ON_DEADLOCK=abort). */
FMX_HIDDEN bool fmx_deadlock_check(const fast_mutex_t *m, struct fmx_record *self);

/* peer.c: another process's waits, for the deadlock check (contract
 * there).  What thread tid waits for, read from its process's registry. */
struct fmx_peer_wait {
    uint64_t mutex;    /* the fast_mutex_t waited for, in the peer's address space */
    uint64_t site;     /* the call site, in the peer's address space */
    const void *local; /* the same mutex as this process maps it */
    char thread_name[FMX_THREAD_NAME_LEN]; /* sanitized */
};
/* The process of thread tid, 0 when unknown. */
FMX_HIDDEN pid_t fmx_peer_process(int32_t tid);
/* Whether thread tid of process pid waits for a mutex that this process
 * maps too (a process-shared one), and which. */
FMX_HIDDEN bool fmx_peer_waiting(pid_t pid, int32_t tid, struct fmx_peer_wait *wait);
/* Process pid's name (comm), sanitized, "?" when unknown. */
FMX_HIDDEN void fmx_peer_name(pid_t pid, char *buf, size_t size);
/* Replaces the bytes of text that are not printable ASCII with '?'. */
FMX_HIDDEN void fmx_sanitize(char *text);

/* settings.c: every FASTMUTEX_* variable, read once (see fast_mutex(3)). */
/* The wait after which the deadlock check runs, 0 when it is switched off. */
FMX_HIDDEN uint64_t fmx_deadlock_after_ns(void);
/* FASTMUTEX_ON_DEADLOCK. */
enum fmx_on_deadlock { FMX_ON_DEADLOCK_REPORT, FMX_ON_DEADLOCK_ABORT, FMX_ON_DEADLOCK_IGNORE };
FMX_HIDDEN enum fmx_on_deadlock fmx_on_deadlock(void);
/* Whether waits are described for the tools and checked for deadlocks:
 * FASTMUTEX_DIAGNOSTICS=0 turns it off, for measuring what it costs (the
 * benchmark, linked statically, switches it with fmx_set_diagnostics).
 * With it off, records hold only what the queue needs. */
FMX_HIDDEN bool fmx_diagnostics(void);
FMX_HIDDEN void fmx_set_diagnostics(bool on);
/* The parsers every setting goes through.  A number is decimal digits only,
 * within [min, max]; false for anything else, leaving *value alone. */
FMX_HIDDEN bool fmx_parse_number(const char *text, uint64_t min, uint64_t max, uint64_t *value);
/* The index of `text` in words[count], -1 when it is none of them. */
FMX_HIDDEN int fmx_parse_word(const char *text, const char *const *words, int count);
/* FASTMUTEX_VERIFY, FASTMUTEX_STATS and FASTMUTEX_TRACE, parsed as the
 * others are, for watch.c to switch the diagnostics on. */
struct fmx_watch_settings {
    bool verify_order;      /* FASTMUTEX_VERIFY=order */
    bool stats;             /* FASTMUTEX_STATS=on or =FILE */
    const char *stats_file; /* that FILE, NULL for on (live table only) */
    const char *trace_file; /* FASTMUTEX_TRACE=FILE, NULL when off */
};
FMX_HIDDEN const struct fmx_watch_settings *fmx_watch_settings(void);

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

/* watch.c: the diagnostics that see every acquire and release
 * (FASTMUTEX_VERIFY, FASTMUTEX_STATS, FASTMUTEX_TRACE, Valgrind), each
 * switched on by the environment, read once.  While any is on, the thread
 * id cache of the inline functions stays 0 and every call comes here. */
FMX_HIDDEN bool fmx_watching(void);
/* m was made at `site` (fast_mutex_init, ExInitializeFastMutex). */
FMX_HIDDEN void fmx_watch_init(const fast_mutex_t *m, const void *site);
/* The registry was just mapped at [registry, registry + size). */
FMX_HIDDEN void fmx_watch_registry(const void *registry, size_t size);
FMX_HIDDEN void fmx_watch_destroy(const fast_mutex_t *m);
/* In the hooks below, `outer` is the FAST_MUTEX whose Event.Lock m is (the
 * address its user and the tools name it by), NULL for a fast_mutex_t. */
/* The calling thread is about to take m, blocking if it must. */
FMX_HIDDEN void fmx_watch_before_wait(const fast_mutex_t *m, const void *site, const void *outer);
/* The calling thread took m at `site`, waiting from `wait_start_ns` (0:
 * it did not wait); `try` for fast_mutex_try_acquire. */
FMX_HIDDEN void fmx_watch_acquired(const fast_mutex_t *m, const void *site, const void *outer, bool try,
                                   uint64_t wait_start_ns);
/* A timed acquire gave up. */
FMX_HIDDEN void fmx_watch_gave_up(const fast_mutex_t *m);
/* The calling thread is about to let go of m, and has let go of it. */
FMX_HIDDEN void fmx_watch_release(const fast_mutex_t *m, const void *site);
FMX_HIDDEN void fmx_watch_released(const fast_mutex_t *m);

/* verify.c: the lock-order verifier (FASTMUTEX_VERIFY=order). */
FMX_HIDDEN void fmx_verify_init(const fast_mutex_t *m, const void *site);
FMX_HIDDEN void fmx_verify_destroy(const fast_mutex_t *m);
FMX_HIDDEN void fmx_verify_before_wait(const fast_mutex_t *m, const void *site, const void *outer);
FMX_HIDDEN void fmx_verify_acquired(const fast_mutex_t *m, const void *site, const void *outer, bool try);
FMX_HIDDEN void fmx_verify_release(const fast_mutex_t *m);

/* stats.c: the contention profile (FASTMUTEX_STATS=on or =FILE).  Setup
 * makes the table fmx stat reads (stats_table.h) and, when `file` is not
 * NULL, writes the profile there at exit. */
FMX_HIDDEN void fmx_stats_setup(const char *file);
/* m (inside FAST_MUTEX `outer`, or NULL) was taken at `site` after
 * `wait_ns` (waited: it had to wait at all). */
FMX_HIDDEN void fmx_stats_acquired(const fast_mutex_t *m, const void *site, const void *outer,
                                   uint64_t wait_ns, bool waited);
/* m, taken at `site`, was held `hold_ns`. */
FMX_HIDDEN void fmx_stats_released(const fast_mutex_t *m, const void *site, uint64_t hold_ns);

/* The library's one JSON string writer (stats.c): s in quotes, with
 * quotes, backslashes and control bytes escaped. */
FMX_HIDDEN void fmx_json_string(FILE *f, const char *s);
/* "function+0xoff (address)" for a code address, into buf. */
FMX_HIDDEN void fmx_site_text(const void *site, char *buf, size_t size);

/* trace.c: the timeline (FASTMUTEX_TRACE=FILE), Chrome trace event JSON.
 * Setup takes the FILE; false when there is no memory for the trace. */
FMX_HIDDEN bool fmx_trace_setup(const char *path);
/* One span of the calling thread: a wait for m (inside FAST_MUTEX `outer`,
 * or NULL), or a hold of it, taken at `site`, from start_ns for dur_ns. */
FMX_HIDDEN void fmx_trace_span(bool hold, const fast_mutex_t *m, const void *outer, const void *site,
                               uint64_t start_ns, uint64_t dur_ns);
/* Writes what the trace holds (at exit, and before an abort). */
FMX_HIDDEN void fmx_trace_flush(void);

/* helgrind.c, drd.c: Valgrind's client requests, while under Valgrind. */
FMX_HIDDEN void fmx_helgrind_seen(const fast_mutex_t *m);
FMX_HIDDEN void fmx_helgrind_pre_lock(const fast_mutex_t *m, bool try);
FMX_HIDDEN void fmx_helgrind_post_lock(const fast_mutex_t *m);
FMX_HIDDEN void fmx_helgrind_pre_unlock(const fast_mutex_t *m);
FMX_HIDDEN void fmx_helgrind_post_unlock(const fast_mutex_t *m);
FMX_HIDDEN void fmx_helgrind_destroy(const fast_mutex_t *m);
FMX_HIDDEN void fmx_drd_ignore(const void *start, size_t size);
FMX_HIDDEN void fmx_helgrind_ignore(const void *start, size_t size);
FMX_HIDDEN void fmx_drd_seen(const fast_mutex_t *m);
FMX_HIDDEN void fmx_drd_acquired(const fast_mutex_t *m);
FMX_HIDDEN void fmx_drd_release(const fast_mutex_t *m);
FMX_HIDDEN void fmx_drd_destroy(const fast_mutex_t *m);

/* fastmutex.c: the slow path with its call site and, for a FAST_MUTEX,
 * the address of the FAST_MUTEX around m (NULL otherwise). */
FMX_HIDDEN int fmx_acquire(fast_mutex_t *m, const struct timespec *deadline, const void *site,
                           const void *outer);
/* Takes m, the Event.Lock of FAST_MUTEX `outer`, now if it is free (with
 * what the inline fast path does, and what it leaves to the library while
 * the thread id is not cached); false if it is held.  For the compat
 * layer's own acquire. */
FMX_HIDDEN bool fmx_take_now(fast_mutex_t *m, const void *site, const void *outer);
/* fast_mutex_try_acquire() of m, the Event.Lock of FAST_MUTEX `outer`,
 * called from `site` (without ThreadSanitizer's annotations, which the
 * caller makes).  For the compat layer's try. */
FMX_HIDDEN bool fmx_try_take(fast_mutex_t *m, const void *site, const void *outer);
/* fast_mutex_init() for a mutex made at `site`. */
FMX_HIDDEN void fmx_init_at(fast_mutex_t *m, const void *site);
/* Reports, if the caller does not hold m, the release that is misuse. */
FMX_HIDDEN void fmx_check_release(const fast_mutex_t *m, const void *site);

#endif /* FASTMUTEX_INTERNAL_H */
