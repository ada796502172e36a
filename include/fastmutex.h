/* fastmutex: the Windows kernel Fast Mutex for C programs on Linux.
 *
 * A small, non-recursive lock built for low contention: one compare-and-swap
 * to acquire, one to release, no system call unless a thread must wait.  The
 * lock word holds the owner's kernel thread id, so the owner is known at every
 * instant (to the misuse checks, to `fmx`, to a debugger reading a core dump).
 * Threads that must wait leave a record that `fmx waiters` can read, and a
 * wait that lasts too long is checked for a deadlock.
 *
 * Everything in a fast_mutex_t is internal: read it only through the
 * functions below.  All zeroes is a valid, free, process-private mutex.
 */
#ifndef FASTMUTEX_H
#define FASTMUTEX_H

/* The minimum: C11 (_Atomic, _Thread_local, _Static_assert) or C++11. */
#if defined(__cplusplus) ? __cplusplus < 201103L \
                         : (!defined(__STDC_VERSION__) || __STDC_VERSION__ < 201112L)
#error "fastmutex.h needs C11 or later (-std=c11) or C++11 or later (-std=c++11)"
#endif

#ifndef __cplusplus
#include <stdatomic.h>
#include <stdbool.h>
#endif
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FAST_MUTEX_API __attribute__((visibility("default")))
#define FAST_MUTEX_INLINE static inline __attribute__((always_inline))
#ifdef __cplusplus
#define FAST_MUTEX_STATIC_ASSERT static_assert
#else
#define FAST_MUTEX_STATIC_ASSERT _Static_assert
#endif

/* How the shared words are spelled in each language (internal).  C++ has no
 * _Atomic, and std::atomic<uint32_t> is not promised to have the layout of
 * a C _Atomic uint32_t, so C++ sees plain 32-bit words and the inline
 * functions reach them with the GCC/Clang __atomic builtins, which compile
 * to the same instructions as C's atomics; the static assertions below hold
 * the layout equal in both languages.  C keeps _Atomic so that the library
 * cannot touch a word non-atomically by mistake (and Clang's __atomic
 * builtins refuse _Atomic objects, hence the C11 generic functions there). */
#ifdef __cplusplus
#define FAST_MUTEX_ATOMIC_U32_ uint32_t
#define FAST_MUTEX_THREAD_LOCAL_ __thread
#define fast_mutex_cas_weak_(p, e, d, ok, fail) __atomic_compare_exchange_n(p, e, d, true, ok, fail)
#define fast_mutex_cas_strong_(p, e, d, ok, fail) \
    __atomic_compare_exchange_n(p, e, d, false, ok, fail)
#define fast_mutex_load_(p, order) __atomic_load_n(p, order)
#else
#define FAST_MUTEX_ATOMIC_U32_ _Atomic uint32_t
#define FAST_MUTEX_THREAD_LOCAL_ _Thread_local
#define fast_mutex_cas_weak_(p, e, d, ok, fail) atomic_compare_exchange_weak_explicit(p, e, d, ok, fail)
#define fast_mutex_cas_strong_(p, e, d, ok, fail) \
    atomic_compare_exchange_strong_explicit(p, e, d, ok, fail)
#define fast_mutex_load_(p, order) atomic_load_explicit(p, order)
#endif

/* ThreadSanitizer.  When the program including this header is built with
 * -fsanitize=thread, the inline functions below tell TSan about every
 * acquire, try, timed acquire and release through its mutex annotations
 * (the functions live in the TSan runtime linked into such a program; the
 * flag values are those of compiler-rt's <sanitizer/tsan_interface.h>).
 * The library itself need not be instrumented: TSan then sees fastmutex as
 * a mutex, orders the critical sections by it, and checks lock order.
 * Otherwise the annotations compile to nothing. */
#if defined(__SANITIZE_THREAD__)
#define FAST_MUTEX_TSAN_ 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FAST_MUTEX_TSAN_ 1
#endif
#endif
#ifdef FAST_MUTEX_TSAN_
void __tsan_mutex_pre_lock(void *addr, unsigned flags);
void __tsan_mutex_post_lock(void *addr, unsigned flags, int recursion);
int __tsan_mutex_pre_unlock(void *addr, unsigned flags);
void __tsan_mutex_post_unlock(void *addr, unsigned flags);
#define FAST_MUTEX_TSAN_TRY_ (1u << 4)        /* __tsan_mutex_try_lock */
#define FAST_MUTEX_TSAN_TRY_FAILED_ (1u << 5) /* __tsan_mutex_try_lock_failed */
#define fast_mutex_tsan_pre_lock_(m, flags) __tsan_mutex_pre_lock((void *)(m), flags)
#define fast_mutex_tsan_post_lock_(m, flags) __tsan_mutex_post_lock((void *)(m), flags, 0)
#define fast_mutex_tsan_pre_unlock_(m) (void)__tsan_mutex_pre_unlock((void *)(m), 0)
#define fast_mutex_tsan_post_unlock_(m) __tsan_mutex_post_unlock((void *)(m), 0)
#else
#define FAST_MUTEX_TSAN_TRY_ 0u
#define FAST_MUTEX_TSAN_TRY_FAILED_ 0u
#define fast_mutex_tsan_pre_lock_(m, flags) ((void)0)
#define fast_mutex_tsan_post_lock_(m, flags) ((void)0)
#define fast_mutex_tsan_pre_unlock_(m) ((void)0)
#define fast_mutex_tsan_post_unlock_(m) ((void)0)
#endif

/* The lock word.  Bits 0..21 hold the owner's kernel thread id (Linux never
 * hands out ids of 2^22 or more), 0 when the mutex is free.  The owner bits
 * change by compare-and-swap at any time.  Two flags sit above them:
 *
 *   WAITERS  the waiter queue is not empty; release must take the slow path
 *            and may have to wake somebody.  Set and cleared only with the
 *            queue lock held.
 *   WOKEN    a waiter has been taken off the queue and woken, and is on its
 *            way to retry; releases need not wake another one.  Set by a
 *            release with the queue lock held; cleared by that waiter, in
 *            the same compare-and-swap that takes the lock, or with the
 *            queue lock held when it queues up again or gives up.
 *   TRYING   a fast_mutex_try_acquire() found the mutex held by another
 *            thread.  Set by that call, by compare-and-swap while the
 *            mutex is held; cleared by the holder's release, which then
 *            waits a moment for another thread to take the mutex before it
 *            returns: without it a thread that releases and at once
 *            retakes the mutex leaves it free for a few nanoseconds only,
 *            and a try_acquire loop on another CPU may fail for thousands
 *            of its cycles.
 *   SLEEPERS a thread that has no waiter record (all of the registry's
 *            records belong to live threads) sleeps on the lock word
 *            itself.  Set by that thread, by compare-and-swap while the
 *            mutex is held; cleared by the release that lets go (or hands
 *            off), in the same atomic step, which then wakes one such
 *            sleeper.  A sleeper that takes the mutex sets it again, as
 *            others may still sleep.
 *   SHARED   the mutex is process-shared (fast_mutex_init_shared()).  Set
 *            by that call and never cleared: the inline release succeeds
 *            only on a word that holds the caller's id and nothing else,
 *            so every release of a shared mutex takes the slow path, which
 *            checks that the caller lives in the pid namespace the thread
 *            ids of the word belong to.  Process-private mutexes never
 *            carry it, and pay nothing for it.
 *
 * Three more belong to a robust mutex (fast_mutex_init_robust()) only:
 *
 *   ROBUST_HELD     held by fast_mutex_acquire_robust(), so that the
 *                   release takes the slow path and clears the holder's
 *                   stamp; set with the owner bits, cleared with them.
 *   INCONSISTENT    the holder took the mutex over from a dead holder
 *                   (EOWNERDEAD) and has not yet called
 *                   fast_mutex_consistent(); cleared by that call.
 *   NOTRECOVERABLE  released while INCONSISTENT: stays, with no owner,
 *                   and every robust acquire fails with ENOTRECOVERABLE.
 *
 * A waiter that has waited longer than the handoff bound is not woken to
 * compete: release writes its thread id into the word directly, so the lock
 * passes to it without ever being free.
 *
 * The inline acquire takes a free mutex whatever its flags and keeps them
 * (fast_mutex_take_()), so that its own release acts on them.  The inline
 * release is one compare-and-swap from our id to 0; any flag sends it to
 * the slow path. */
#define FAST_MUTEX_OWNER_MASK 0x003fffffu
#define FAST_MUTEX_WAITERS 0x00400000u
#define FAST_MUTEX_WOKEN 0x00800000u
#define FAST_MUTEX_TRYING 0x01000000u
#define FAST_MUTEX_SLEEPERS 0x02000000u
#define FAST_MUTEX_ROBUST_HELD 0x04000000u
#define FAST_MUTEX_INCONSISTENT 0x08000000u
#define FAST_MUTEX_NOTRECOVERABLE 0x10000000u
#define FAST_MUTEX_SHARED 0x20000000u

/* `queue` value that marks a mutex made by fast_mutex_init_shared(). */
#define FAST_MUTEX_SHARED_QUEUE 0xffffffffu
/* `queue` value that marks a mutex made by fast_mutex_init_robust(); its
 * `queue_lock` holds the holder's stamp (src/robust.c). */
#define FAST_MUTEX_ROBUST_QUEUE 0xfffffffeu

typedef struct fast_mutex {
    FAST_MUTEX_ATOMIC_U32_ word;       /* owner tid | flags, see above */
    FAST_MUTEX_ATOMIC_U32_ contention; /* how many acquires had to sleep */
    FAST_MUTEX_ATOMIC_U32_ queue;      /* queued waiters << 16 | oldest's registry slot + 1 */
    FAST_MUTEX_ATOMIC_U32_ queue_lock; /* 0 free, 1 held, 2 held with sleepers */
} fast_mutex_t;

/* The same layout in C and C++, so that both may share a mutex. */
FAST_MUTEX_STATIC_ASSERT(sizeof(fast_mutex_t) == 16, "fast_mutex_t must stay small");
FAST_MUTEX_STATIC_ASSERT(__alignof__(fast_mutex_t) == 4, "fast_mutex_t is 4-byte aligned");
FAST_MUTEX_STATIC_ASSERT(offsetof(fast_mutex_t, word) == 0, "word comes first");
FAST_MUTEX_STATIC_ASSERT(offsetof(fast_mutex_t, contention) == 4, "contention at 4");
FAST_MUTEX_STATIC_ASSERT(offsetof(fast_mutex_t, queue) == 8, "queue at 8");
FAST_MUTEX_STATIC_ASSERT(offsetof(fast_mutex_t, queue_lock) == 12, "queue_lock at 12");

/* A free, process-private mutex, for static and automatic storage. */
#define FAST_MUTEX_INITIALIZER {0, 0, 0, 0}

/* The calling thread's kernel id, cached per thread (internal).  0 until
 * the thread's first call into the library, and 0 for good while a
 * diagnostic that must see every acquire and release is on (the lock-order
 * verifier, the profile, the trace, Valgrind): the inline functions below
 * take the slow path whenever it is 0, so that switch costs them no
 * instruction of their own. */
extern FAST_MUTEX_API FAST_MUTEX_THREAD_LOCAL_ uint32_t fast_mutex_self_tid_;
FAST_MUTEX_API uint32_t fast_mutex_self_tid_init_(void);

/* Slow paths, called only from the inline functions below (internal).
 * fast_mutex_acquire_slow_ returns 0, or ETIMEDOUT / EDEADLK for a deadline. */
FAST_MUTEX_API __attribute__((cold, noinline)) int
fast_mutex_acquire_slow_(fast_mutex_t *m, const struct timespec *deadline);
FAST_MUTEX_API __attribute__((cold, noinline)) void
fast_mutex_release_slow_(fast_mutex_t *m);
/* The rest of fast_mutex_try_acquire() (internal): with the thread id not
 * cached (see fast_mutex_self_tid_) tries to take *m itself; otherwise, or
 * if *m is held, marks it as wanted by a try_acquire (TRYING) and returns
 * false. */
FAST_MUTEX_API __attribute__((cold, noinline)) bool fast_mutex_try_failed_(fast_mutex_t *m);

FAST_MUTEX_INLINE uint32_t fast_mutex_self_(void)
{
    uint32_t tid = fast_mutex_self_tid_;
    return tid != 0 ? tid : fast_mutex_self_tid_init_();
}

/* Takes *m for `self` if `word`, just read from it, shows it free, keeping
 * the flags but those in `clear`, and tries again while it stays free;
 * false once it is held (internal: fast_mutex_take_() and the slow paths). */
FAST_MUTEX_INLINE bool fast_mutex_take_free_(fast_mutex_t *m, uint32_t word, uint32_t self,
                                             uint32_t clear)
{
    while ((word & FAST_MUTEX_OWNER_MASK) == 0)
        /* Acquire: pairs with the release that freed the lock. */
        if (fast_mutex_cas_weak_(&m->word, &word, (word | self) & ~clear, __ATOMIC_ACQUIRE,
                                 __ATOMIC_RELAXED))
            return true;
    return false;
}

/* The fast path of every acquire: takes *m if it is free and returns true,
 * false at once if it is held (internal).  Free means no owner: the word
 * may carry flags, from a release that has just woken a waiter or with
 * others queued.  Such a mutex is taken all the same, keeping the flags for
 * our own release to act on, as a barging acquire does, without a call
 * into the library. */
FAST_MUTEX_INLINE bool fast_mutex_take_(fast_mutex_t *m)
{
    uint32_t expected = 0;
    uint32_t self = fast_mutex_self_tid_;
    if (self == 0)
        return false; /* first call of the thread, or a diagnostic is on */
    /* Acquire ordering: the critical section may not start before the lock
     * is ours.  Pairs with the release in fast_mutex_release() or in the
     * slow paths. */
    if (fast_mutex_cas_strong_(&m->word, &expected, self, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return true;
    return fast_mutex_take_free_(m, expected, self, 0);
}

/* Makes *m a free, process-private mutex.  Equivalent to
 * FAST_MUTEX_INITIALIZER.  Requires that no thread use *m meanwhile. */
FAST_MUTEX_API void fast_mutex_init(fast_mutex_t *m);

/* Makes *m a free mutex that threads of several processes may use, when *m
 * lies in memory they share (MAP_SHARED, shm_open, memfd).  Waiters of such a
 * mutex sleep on the lock word itself rather than in a queue. */
FAST_MUTEX_API void fast_mutex_init_shared(fast_mutex_t *m);

/* Makes *m a free, process-shared mutex (as fast_mutex_init_shared()) that
 * survives the death of its holder, with the semantics of glibc's robust
 * mutexes: when the holder dies, the next fast_mutex_acquire_robust()
 * gets it with EOWNERDEAD.  Acquire it only with
 * fast_mutex_acquire_robust(); release it with fast_mutex_release(). */
FAST_MUTEX_API void fast_mutex_init_robust(fast_mutex_t *m);

/* Blocks until the calling thread holds the robust mutex *m and returns 0;
 * or returns EOWNERDEAD, the calling thread holding *m, when the previous
 * holder died holding it (noticed within about 50 ms of the death): what
 * *m guards may be inconsistent; repair it and call
 * fast_mutex_consistent(), or release it as it is, which makes *m
 * unusable; or returns ENOTRECOVERABLE, without the mutex, when that
 * happened.  A thread whose id the kernel took from a dead holder is not
 * taken for that holder: it gets EOWNERDEAD, not a recursive-acquire
 * report.  Requires that the calling thread not already hold *m. */
FAST_MUTEX_API int fast_mutex_acquire_robust(fast_mutex_t *m);

/* Marks the robust mutex *m, held by the calling thread after
 * fast_mutex_acquire_robust() returned EOWNERDEAD, consistent again.
 * Returns 0, or EINVAL when *m is not robust, not inconsistent, or not
 * held by the calling thread. */
FAST_MUTEX_API int fast_mutex_consistent(fast_mutex_t *m);

/* Ends the life of *m.  Requires that *m be free and that no thread wait on
 * it; destroying a held mutex is reported as misuse. */
FAST_MUTEX_API void fast_mutex_destroy(fast_mutex_t *m);

/* Blocks until the calling thread holds *m.  Requires that the calling
 * thread not already hold *m: a recursive acquire is reported, naming the
 * thread, the mutex and the call site, and the process aborts. */
FAST_MUTEX_INLINE void fast_mutex_acquire(fast_mutex_t *m)
{
    fast_mutex_tsan_pre_lock_(m, 0);
    if (!fast_mutex_take_(m))
        (void)fast_mutex_acquire_slow_(m, NULL);
    fast_mutex_tsan_post_lock_(m, 0);
}

/* Takes *m if it is free and returns true; returns false at once otherwise,
 * also when the calling thread already holds it.  Never blocks.  A failed
 * call makes the holder's next release wait a moment (about a microsecond)
 * for another thread to take *m, so that a loop of tries gets in soon even
 * when the holder retakes *m right after each release. */
FAST_MUTEX_INLINE bool fast_mutex_try_acquire(fast_mutex_t *m)
{
    fast_mutex_tsan_pre_lock_(m, FAST_MUTEX_TSAN_TRY_);
    bool taken = fast_mutex_take_(m) || fast_mutex_try_failed_(m);
    fast_mutex_tsan_post_lock_(m, FAST_MUTEX_TSAN_TRY_ | (taken ? 0u : FAST_MUTEX_TSAN_TRY_FAILED_));
    return taken;
}

/* Like fast_mutex_acquire(), but gives up at `deadline`, an absolute
 * CLOCK_MONOTONIC time.  Returns 0 when the calling thread holds *m,
 * ETIMEDOUT when the deadline passed first, EDEADLK when the wait was
 * found to close a cycle of threads waiting on each other (the deadlock
 * check, after FASTMUTEX_DEADLOCK_MS), and EINVAL when *m is held and
 * deadline->tv_nsec lies outside 0..999999999.  A deadline too far ahead
 * to count in 64-bit nanoseconds (past the year 2554) never passes. */
FAST_MUTEX_INLINE int fast_mutex_acquire_until(fast_mutex_t *m, const struct timespec *deadline)
{
    /* To TSan a timed acquire is a try: it may fail. */
    fast_mutex_tsan_pre_lock_(m, FAST_MUTEX_TSAN_TRY_);
    int result = fast_mutex_take_(m) ? 0 : fast_mutex_acquire_slow_(m, deadline);
    fast_mutex_tsan_post_lock_(m, FAST_MUTEX_TSAN_TRY_ |
                                      (result == 0 ? 0u : FAST_MUTEX_TSAN_TRY_FAILED_));
    return result;
}

/* Lets go of *m.  Requires that the calling thread hold *m: a release by
 * another thread, or of a free mutex, is reported and the process aborts.
 * Release may touch *m after another thread has acquired it (it may wake a
 * waiter), so a mutex must not be freed by the next holder while the last
 * release could still be running; destroy after joining is always safe. */
FAST_MUTEX_INLINE void fast_mutex_release(fast_mutex_t *m)
{
    fast_mutex_tsan_pre_unlock_(m);
    uint32_t expected = fast_mutex_self_tid_;
    /* Release ordering: the critical section's writes are visible to the
     * next holder.  Pairs with the acquire CAS in fast_mutex_acquire().
     * A compare-and-swap rather than a load and an exchange: it fetches
     * the line once. */
    if (expected == 0 ||
        !fast_mutex_cas_strong_(&m->word, &expected, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
        fast_mutex_release_slow_(m);
    fast_mutex_tsan_post_unlock_(m);
}

/* The kernel thread id of the thread holding *m, 0 when it is free.  A
 * snapshot: by the time it returns another thread may hold *m. */
FAST_MUTEX_INLINE pid_t fast_mutex_owner(const fast_mutex_t *m)
{
    return (pid_t)(fast_mutex_load_(&((fast_mutex_t *)m)->word, __ATOMIC_RELAXED) &
                   FAST_MUTEX_OWNER_MASK);
}

/* How many acquires of *m found it held for longer than a brief spin and
 * had to queue and sleep for it, as Windows' FAST_MUTEX.Contention counts
 * the waits on its event.  Wraps around at 2^32. */
FAST_MUTEX_INLINE uint32_t fast_mutex_contention(const fast_mutex_t *m)
{
    return fast_mutex_load_(&((fast_mutex_t *)m)->contention, __ATOMIC_RELAXED);
}

/* Gives *m a name (at most 31 bytes are kept) that fmx, the misuse and the
 * deadlock reports show instead of its bare address.  NULL removes it.
 * Returns 0, or ENOSPC when the process already names too many mutexes. */
FAST_MUTEX_API int fast_mutex_set_name(fast_mutex_t *m, const char *name);

/* Copies *m's name (or "" when it has none) into buf, NUL-terminated. */
FAST_MUTEX_API void fast_mutex_get_name(const fast_mutex_t *m, char *buf, size_t size);

/* Gives the calling thread a name longer than the kernel's 15 bytes (at
 * most 63 are kept), which fmx, gdb's fmx commands and the reports show
 * while the thread's own name (pthread_setname_np) is still its first 15
 * bytes; set that too.  NULL or "" removes it.  The WDK subset names its
 * system threads this way, after their start routines. */
FAST_MUTEX_API void fast_mutex_set_thread_name(const char *name);

/* What the library does with a misuse or deadlock report.  The default
 * writes the text to standard error; then misuse aborts the process and a
 * deadlock follows FASTMUTEX_ON_DEADLOCK.  A test may install its own hook
 * to catch a report; `fatal` says whether the process is about to abort, and
 * a hook that returns for a fatal report still aborts it. */
typedef void (*fast_mutex_report_hook_t)(const char *report, bool fatal);

/* Installs `hook` (NULL restores the default) and returns the previous one. */
FAST_MUTEX_API fast_mutex_report_hook_t fast_mutex_set_report_hook(fast_mutex_report_hook_t hook);

#ifdef __cplusplus
}
#endif

#endif /* FASTMUTEX_H */
