/* The Windows names (fastmutex/wdm.h) over fast_mutex_t, with the IRQL
 * rules simulated per thread and the FAST_MUTEX fields kept as Windows
 * keeps them, so that code and dumps read as they do in a driver. */
#include "fastmutex/wdm.h"

#include "internal.h"

static _Thread_local KIRQL current_irql = PASSIVE_LEVEL;

_Static_assert(offsetof(FAST_MUTEX, Event.Lock) == FMX_WDM_LOCK_OFFSET,
               "registry.h tells readers where a FAST_MUTEX's lock lies");

/* Where Windows would bugcheck, report the stop code and abort. */
#define BUGCHECK(code, m, site, ...) fmx_misuse("IRQL check failed, " code, m, site, __VA_ARGS__)
/* The same about a FAST_MUTEX, named by its own address as fmx and the
 * user's &FastMutex name it, not by the fast_mutex_t inside it. */
#define BUGCHECK_WDM(code, m, site, ...)                                                         \
    fmx_misuse_wdm("IRQL check failed, " code, m, &(m)->Event.Lock, site, __VA_ARGS__)

KIRQL KeGetCurrentIrql(void)
{
    return current_irql;
}

void KeRaiseIrql(KIRQL NewIrql, PKIRQL OldIrql)
{
    if (NewIrql < current_irql || NewIrql > HIGH_LEVEL)
        BUGCHECK("IRQL_NOT_GREATER_OR_EQUAL", NULL, __builtin_return_address(0),
                 "KeRaiseIrql to %u from IRQL %u", NewIrql, current_irql);
    *OldIrql = current_irql;
    current_irql = NewIrql;
}

void KeLowerIrql(KIRQL NewIrql)
{
    if (NewIrql > current_irql)
        BUGCHECK("IRQL_NOT_LESS_OR_EQUAL", NULL, __builtin_return_address(0),
                 "KeLowerIrql to %u from IRQL %u", NewIrql, current_irql);
    current_irql = NewIrql;
}

PKTHREAD KeGetCurrentThread(void)
{
    /* The thread's registry record: stable for the thread's life, and what
     * fmx and a debugger map to a thread id.  A thread that finds the
     * registry full is named by a thread-local of its own instead. */
    static _Thread_local char unrecorded_thread;
    struct fmx_record *rec = fmx_self_record();
    return rec != NULL ? (PKTHREAD)rec : (PKTHREAD)&unrecorded_thread;
}

void fast_mutex_wdm_require_irql_(const char *api, KIRQL max, const void *site)
{
    static const char *const level_names[] = {"PASSIVE_LEVEL", "APC_LEVEL", "DISPATCH_LEVEL"};
    if (current_irql > max)
        BUGCHECK("IRQL_NOT_LESS_OR_EQUAL", NULL, site, "%s at IRQL %u (it requires %s%s)", api,
                 current_irql, max == PASSIVE_LEVEL ? "" : "IRQL <= ",
                 max <= DISPATCH_LEVEL ? level_names[max] : "HIGH_LEVEL");
}

void ExInitializeFastMutex(PFAST_MUTEX FastMutex)
{
    FastMutex->Count = FM_LOCK_BIT;
    FastMutex->Owner = NULL;
    FastMutex->Contention = 0;
    fmx_init_at(&FastMutex->Event.Lock, __builtin_return_address(0));
    FastMutex->OldIrql = PASSIVE_LEVEL;
}

/* Takes the mutex and keeps the Windows fields true: Count carries
 * FM_LOCK_WAITER_INC for each thread waiting, and loses FM_LOCK_BIT to the
 * holder; Contention counts the waits.  Both change by atomic operations,
 * as waiting threads change them too; Owner and OldIrql only the holder. */
/* Reports, if the caller does not hold m, the release that is misuse, as
 * fmx_check_release() does for a fast_mutex_t. */
static void check_release(PFAST_MUTEX m, const void *site)
{
    pid_t owner = fast_mutex_owner(&m->Event.Lock);
    if (owner == 0)
        fmx_misuse_wdm("release of a free mutex", m, &m->Event.Lock, site, "nobody holds it");
    if ((uint32_t)owner != fast_mutex_self_())
        fmx_misuse_wdm("release by a thread that does not own the mutex", m, &m->Event.Lock, site,
                       "it is held by thread %d", (int)owner);
}

static void lock(PFAST_MUTEX m, const void *site)
{
    fast_mutex_t *inner = &m->Event.Lock;
    /* As fast_mutex_acquire() tells ThreadSanitizer (when the library is
     * built with it), so that unlock()'s fast_mutex_release() matches. */
    fast_mutex_tsan_pre_lock_(inner, 0);
    /* The acquire's own fast path: a try_acquire would ask the holder to
     * make way for it (TRYING), which a thread about to wait needs not. */
    if (!fmx_take_now(inner, site, m)) {
        /* Caught here rather than in the slow path, to name the FAST_MUTEX. */
        if ((uint32_t)fast_mutex_owner(inner) == fast_mutex_self_())
            fmx_misuse_wdm("recursive acquire", m, inner, site, "the calling thread already holds it");
        /* As Windows does, count the wait when it starts, so that a dump
         * taken meanwhile shows it. */
        __atomic_fetch_add(&m->Contention, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&m->Count, FM_LOCK_WAITER_INC, __ATOMIC_RELAXED);
        fmx_acquire(inner, NULL, site, m);
        __atomic_fetch_sub(&m->Count, FM_LOCK_WAITER_INC, __ATOMIC_RELAXED);
    }
    fast_mutex_tsan_post_lock_(inner, 0);
    __atomic_fetch_and(&m->Count, ~FM_LOCK_BIT, __ATOMIC_RELAXED);
    m->Owner = KeGetCurrentThread();
}

static void unlock(PFAST_MUTEX m)
{
    m->Owner = NULL;
    __atomic_fetch_or(&m->Count, FM_LOCK_BIT, __ATOMIC_RELAXED);
    fast_mutex_release(&m->Event.Lock);
}

static void require_at_most_apc(const char *api, PFAST_MUTEX m, const void *site)
{
    if (current_irql > APC_LEVEL)
        BUGCHECK_WDM("IRQL_NOT_LESS_OR_EQUAL", m, site,
                 "%s at IRQL %u (it requires IRQL <= APC_LEVEL)", api, current_irql);
}

void ExAcquireFastMutex(PFAST_MUTEX FastMutex)
{
    const void *site = __builtin_return_address(0);
    require_at_most_apc("ExAcquireFastMutex", FastMutex, site);
    KIRQL old = current_irql;
    current_irql = APC_LEVEL;
    lock(FastMutex, site);
    FastMutex->OldIrql = old;
}

BOOLEAN ExTryToAcquireFastMutex(PFAST_MUTEX FastMutex)
{
    const void *site = __builtin_return_address(0);
    fast_mutex_t *inner = &FastMutex->Event.Lock;
    require_at_most_apc("ExTryToAcquireFastMutex", FastMutex, site);
    /* fast_mutex_try_acquire(), telling the diagnostics the FAST_MUTEX. */
    fast_mutex_tsan_pre_lock_(inner, FAST_MUTEX_TSAN_TRY_);
    bool taken = fmx_try_take(inner, site, FastMutex);
    fast_mutex_tsan_post_lock_(inner, FAST_MUTEX_TSAN_TRY_ | (taken ? 0u : FAST_MUTEX_TSAN_TRY_FAILED_));
    if (!taken)
        return FALSE;
    __atomic_fetch_and(&FastMutex->Count, ~FM_LOCK_BIT, __ATOMIC_RELAXED);
    FastMutex->Owner = KeGetCurrentThread();
    FastMutex->OldIrql = current_irql;
    current_irql = APC_LEVEL;
    return TRUE;
}

void ExReleaseFastMutex(PFAST_MUTEX FastMutex)
{
    const void *site = __builtin_return_address(0);
    check_release(FastMutex, site);
    if (current_irql != APC_LEVEL)
        BUGCHECK_WDM("IRQL_NOT_LESS_OR_EQUAL", FastMutex, site,
                 "ExReleaseFastMutex at IRQL %u (it requires APC_LEVEL)", current_irql);
    KIRQL old = (KIRQL)FastMutex->OldIrql;
    unlock(FastMutex);
    current_irql = old;
}

void ExAcquireFastMutexUnsafe(PFAST_MUTEX FastMutex)
{
    const void *site = __builtin_return_address(0);
    require_at_most_apc("ExAcquireFastMutexUnsafe", FastMutex, site);
    lock(FastMutex, site);
}

void ExReleaseFastMutexUnsafe(PFAST_MUTEX FastMutex)
{
    const void *site = __builtin_return_address(0);
    check_release(FastMutex, site);
    require_at_most_apc("ExReleaseFastMutexUnsafe", FastMutex, site);
    unlock(FastMutex);
}
