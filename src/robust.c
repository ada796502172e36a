/* Robust process-shared mutexes: what happens when the holder dies.
 *
 * glibc's robust mutexes are the anchor: the next acquirer is told that
 * the owner died (EOWNERDEAD) and holds the mutex; the data it guards may
 * be inconsistent; fast_mutex_consistent() marks it repaired, and a
 * release without that makes the mutex unusable (ENOTRECOVERABLE).
 *
 * glibc hears of a death from the kernel's robust futex list, which glibc
 * owns per thread and which assumes its own mutex layout; fastmutex finds
 * it out itself.  A robust acquire writes a stamp into the mutex's
 * `queue_lock` word (unused by a shared mutex, which has no queue): the
 * holder's thread start time, from /proc.  A waiter that sleeps wakes
 * every ROBUST_CHECK_MS to look at the holder: when /proc has no thread
 * of that id, or has one that started at another time (the id was
 * recycled), the holder is dead.  The stamp is what tells the caller
 * apart from a dead holder whose id the kernel has since given to the
 * caller: that is a take-over, not a recursive acquire.
 *
 * The stamp is written just after the word is taken and cleared just
 * before it is let go; while it is 0 only the holder's existence can be
 * checked.  A take-over first claims the dead stamp (compare-and-swap to
 * 0), so that no other waiter reads the dead stamp against the new owner.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* How often a sleeping waiter of a robust mutex checks that the holder
 * lives: the longest a dead holder goes unnoticed. */
#define ROBUST_CHECK_MS 50

/* The start time, in clock ticks since boot, of thread `tid` as
 * /proc/TID/stat shows it (field 22); false when there is no such thread
 * or the file does not parse.  The file is the kernel's, but the thread's
 * name in it is chosen by the thread: parse from the last ')'. */
static bool thread_start_time(uint32_t tid, unsigned long long *start)
{
    char path[40], buf[1024];
    snprintf(path, sizeof path, "/proc/%u/stat", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (p == NULL)
        return false;
    /* After ")" come field 3 (state) to field 22 (starttime). */
    for (int field = 3; field <= 22; field++) {
        p = strchr(p, ' ');
        if (p == NULL)
            return false;
        p++;
    }
    char *end;
    *start = strtoull(p, &end, 10);
    return end != p;
}

/* A stamp is never 0 (0: none written). */
static uint32_t stamp_of(unsigned long long start)
{
    uint32_t stamp = (uint32_t)start;
    return stamp != 0 ? stamp : 1u;
}

/* The calling thread's stamp, cached with the id it belongs to (a forked
 * child's thread has another id and another start time). */
static uint32_t self_stamp(void)
{
    static _Thread_local uint32_t cached_tid, cached_stamp;
    uint32_t self = fast_mutex_self_();
    if (cached_tid != self) {
        unsigned long long start = 0;
        cached_stamp = thread_start_time(self, &start) ? stamp_of(start) : 1u;
        cached_tid = self;
    }
    return cached_stamp;
}

static uint32_t load_stamp(const fast_mutex_t *m)
{
    return atomic_load_explicit(&((fast_mutex_t *)m)->queue_lock, memory_order_acquire);
}

/* Whether the thread that holds m with id `owner` has died: no thread of
 * that id lives, or the one that does started at another time than the
 * holder the stamp `stamp` names (0: not known, only existence counts). */
static bool holder_dead(uint32_t owner, uint32_t stamp)
{
    unsigned long long start;
    if (!thread_start_time(owner, &start))
        return true;
    return stamp != 0 && stamp_of(start) != stamp;
}

/* Takes m over from its dead holder, as seen in `word` with stamp
 * `stamp`; false when another waiter was first or the word moved on. */
static bool take_over(fast_mutex_t *m, uint32_t word, uint32_t stamp, uint32_t self)
{
    /* Claim the dead stamp first: no other waiter may judge the new owner
     * by it.  Relaxed: the word's CAS below orders what matters. */
    if (stamp != 0 && !atomic_compare_exchange_strong_explicit(&m->queue_lock, &stamp, 0,
                                                               memory_order_relaxed,
                                                               memory_order_relaxed))
        return false;
    uint32_t dead = fmx_owner_of(word);
    uint32_t taken;
    do {
        if (fmx_owner_of(word) != dead)
            return false;
        taken = (word & FAST_MUTEX_WAITERS) | self | FAST_MUTEX_ROBUST_HELD |
                FAST_MUTEX_INCONSISTENT;
        /* Acquire: what the dead holder wrote before it died is visible. */
    } while (!atomic_compare_exchange_weak_explicit(&m->word, &word, taken, memory_order_acquire,
                                                    memory_order_relaxed));
    atomic_store_explicit(&m->queue_lock, self_stamp(), memory_order_release);
    return true;
}

/* Takes m if it is free; keeps WAITERS once we have slept (others may
 * sleep too) and INCONSISTENT never (a free mutex is never inconsistent). */
static bool take_free(fast_mutex_t *m, uint32_t word, uint32_t self, bool slept)
{
    uint32_t taken = self | FAST_MUTEX_ROBUST_HELD | (slept ? FAST_MUTEX_WAITERS : 0) |
                     (word & FAST_MUTEX_WAITERS);
    /* Acquire: pairs with the release that freed the lock. */
    if (!atomic_compare_exchange_weak_explicit(&m->word, &word, taken, memory_order_acquire,
                                               memory_order_relaxed))
        return false;
    atomic_store_explicit(&m->queue_lock, self_stamp(), memory_order_release);
    return true;
}

/* Sleeps on m's word, flagged WAITERS, for at most ROBUST_CHECK_MS. */
static void sleep_a_while(fast_mutex_t *m, uint32_t word)
{
    if (!(word & FAST_MUTEX_WAITERS) &&
        !atomic_compare_exchange_strong_explicit(&m->word, &word, word | FAST_MUTEX_WAITERS,
                                                 memory_order_relaxed, memory_order_relaxed))
        return;
    struct timespec until = fmx_ns_timespec(fmx_now_ns() + ROBUST_CHECK_MS * 1000000ull);
    fmx_futex_wait(&m->word, word | FAST_MUTEX_WAITERS, &until, true);
}

int fast_mutex_acquire_robust(fast_mutex_t *m)
{
    if (atomic_load_explicit(&m->queue, memory_order_relaxed) != FAST_MUTEX_ROBUST_QUEUE)
        fmx_misuse("robust acquire of a mutex that is not robust", m, __builtin_return_address(0),
                   "make it with fast_mutex_init_robust()");
    uint32_t self = fast_mutex_self_();
    bool slept = false;
    for (;;) {
        uint32_t word = atomic_load_explicit(&m->word, memory_order_relaxed);
        if (word & FAST_MUTEX_NOTRECOVERABLE)
            return ENOTRECOVERABLE;
        uint32_t owner = fmx_owner_of(word);
        if (owner == 0) {
            if (take_free(m, word, self, slept))
                return 0;
            continue;
        }
        uint32_t stamp = load_stamp(m);
        if (owner == self && stamp == self_stamp())
            fmx_misuse("recursive acquire", m, __builtin_return_address(0),
                       "the calling thread already holds it");
        /* A holder with our id but not our stamp is a dead thread whose id
         * the kernel gave to us since. */
        if (owner == self || holder_dead(owner, stamp)) {
            if (take_over(m, word, stamp, self))
                return EOWNERDEAD;
            continue;
        }
        sleep_a_while(m, word);
        slept = true;
    }
}

int fast_mutex_consistent(fast_mutex_t *m)
{
    uint32_t word = atomic_load_explicit(&m->word, memory_order_relaxed);
    if (atomic_load_explicit(&m->queue, memory_order_relaxed) != FAST_MUTEX_ROBUST_QUEUE ||
        !(word & FAST_MUTEX_INCONSISTENT) || fmx_owner_of(word) != fast_mutex_self_())
        return EINVAL;
    atomic_fetch_and_explicit(&m->word, ~FAST_MUTEX_INCONSISTENT, memory_order_relaxed);
    return 0;
}

bool fmx_robust_held_by_caller(const fast_mutex_t *m)
{
    return load_stamp(m) == self_stamp();
}

void fmx_release_robust(fast_mutex_t *m)
{
    atomic_store_explicit(&m->queue_lock, 0, memory_order_relaxed);
    uint32_t word = atomic_load_explicit(&m->word, memory_order_relaxed);
    /* Released while still inconsistent: nobody may use it again. */
    uint32_t freed = (word & FAST_MUTEX_INCONSISTENT) ? FAST_MUTEX_NOTRECOVERABLE : 0;
    /* Release: pairs with the next holder's acquire CAS. */
    word = atomic_exchange_explicit(&m->word, freed, memory_order_release);
    if (freed != 0)
        fmx_futex_wake(&m->word, INT32_MAX, true);
    else if (word & FAST_MUTEX_WAITERS)
        fmx_futex_wake(&m->word, 1, true);
}
