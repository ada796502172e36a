/* Declarations shared by the library's source files; nothing here is
 * exported.  Every function is fmx_-prefixed and hidden. */
#ifndef FASTMUTEX_INTERNAL_H
#define FASTMUTEX_INTERNAL_H

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
/* Whether tv_nsec lies in 0..999999999. */
FMX_HIDDEN bool fmx_timespec_valid(const struct timespec *ts);
/* Nanoseconds of a valid timespec: 0 before the epoch, UINT64_MAX when too
 * far ahead to count. */
FMX_HIDDEN uint64_t fmx_timespec_ns(const struct timespec *ts);
FMX_HIDDEN struct timespec fmx_ns_timespec(uint64_t ns);

/* registry.c: the calling thread's record, claimed on first use and given
 * back when the thread exits.  Without a memfd the registry falls back to
 * private memory that only this process sees.  NULL when all
 * FMX_REGISTRY_THREADS records belong to live threads. */
FMX_HIDDEN struct fmx_record *fmx_self_record(void);
/* Record by queue link (slot + 1); NULL for 0. */
FMX_HIDDEN struct fmx_record *fmx_record_at(uint32_t link);
FMX_HIDDEN uint32_t fmx_record_link(const struct fmx_record *rec);
/* Notes in `rec` (the caller's own) the CPU it runs on, from
 * sched_getcpu() (negative: unknown), for spinners that hold it as a hint
 * (see spin_acquire() in fastmutex.c). */
FMX_HIDDEN void fmx_note_cpu(struct fmx_record *rec, int cpu);
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

/* symbols.c: call sites for reports, through libdwfl on this process
 * (cold: reports only). */
struct fmx_symbols;
FMX_HIDDEN struct fmx_symbols *fmx_symbols_open(void); /* NULL when it cannot */
FMX_HIDDEN void fmx_symbols_close(struct fmx_symbols *syms);
/* Writes "function+0xoff file:line" for return address `site` into buf;
 * false when syms is NULL or knows no symbol there. */
FMX_HIDDEN bool fmx_symbols_site(struct fmx_symbols *syms, const void *site, char *buf, size_t size);

/* report.c */
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

/* fastmutex.c: the slow path with its call site and, for a FAST_MUTEX,
 * the address of the FAST_MUTEX around m (NULL otherwise). */
FMX_HIDDEN int fmx_acquire(fast_mutex_t *m, const struct timespec *deadline, const void *site,
                           const void *outer);
/* Reports, if the caller does not hold m, the release that is misuse. */
FMX_HIDDEN void fmx_check_release(const fast_mutex_t *m, const void *site);

#endif /* FASTMUTEX_INTERNAL_H */
