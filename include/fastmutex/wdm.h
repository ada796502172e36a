/* fastmutex/wdm.h: the Windows kernel names for the Fast Mutex, so that code
 * written for a driver compiles and runs in a user-space program or test.
 *
 * The IRQL rules are simulated per thread: every thread starts at
 * PASSIVE_LEVEL; ExAcquireFastMutex requires IRQL <= APC_LEVEL, raises the
 * thread to APC_LEVEL and saves the previous level in the mutex's OldIrql;
 * ExReleaseFastMutex requires APC_LEVEL and restores OldIrql.  Where Windows
 * would bugcheck (wrong IRQL, recursive acquire, release by a thread that
 * does not own the mutex) the program gets a report naming the check, the
 * thread and the mutex, and aborts.
 *
 * The fields read as in a Windows 10 x64 dump (dt nt!_FAST_MUTEX):
 *   Count       1 when free, 0 when held with nobody waiting, plus 4 for
 *               every thread waiting for it (FM_LOCK_WAITER_INC).
 *   Owner       the holder (KeGetCurrentThread() of it), NULL when free.
 *   Contention  how many acquires had to wait.
 *   Event       the parking layer waiters sleep in (a fast_mutex_t here).
 *   OldIrql     the IRQL the holder had before ExAcquireFastMutex.
 * Read them for inspection only; change them only through the functions. */
#ifndef FASTMUTEX_WDM_H
#define FASTMUTEX_WDM_H

#include <fastmutex.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef unsigned char UCHAR;
typedef UCHAR BOOLEAN;
typedef int LONG;
typedef unsigned int ULONG;
typedef void *PVOID;
typedef UCHAR KIRQL;
typedef KIRQL *PKIRQL;

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

#define PASSIVE_LEVEL 0
#define APC_LEVEL 1
#define DISPATCH_LEVEL 2
#define HIGH_LEVEL 15

#define FM_LOCK_BIT 0x1
#define FM_LOCK_WAITER_WOKEN 0x2
#define FM_LOCK_WAITER_INC 0x4

/* A thread, as KeGetCurrentThread() names it: stable for the thread's life. */
typedef struct _KTHREAD *PKTHREAD;

typedef struct _FAST_MUTEX {
    volatile LONG Count;
    PVOID Owner;
    ULONG Contention;
    union {
        fast_mutex_t Lock;
        /* KEVENT's size and alignment, so that Event and OldIrql sit at
         * Windows x64's offsets (0x18 and 0x30). */
        unsigned long long Reserved[3];
    } Event;
    ULONG OldIrql;
} FAST_MUTEX, *PFAST_MUTEX;

FAST_MUTEX_STATIC_ASSERT(sizeof(FAST_MUTEX) == 0x38, "FAST_MUTEX has Windows x64's size");

/* Makes *FastMutex a free mutex (Count 1, Owner NULL, Contention 0). */
FAST_MUTEX_API void ExInitializeFastMutex(PFAST_MUTEX FastMutex);

/* Blocks until the calling thread holds *FastMutex.  Requires IRQL <=
 * APC_LEVEL; raises it to APC_LEVEL and keeps the old level in OldIrql. */
FAST_MUTEX_API void ExAcquireFastMutex(PFAST_MUTEX FastMutex);

/* Lets go of *FastMutex and lowers IRQL back to its OldIrql.  Requires
 * that the calling thread hold it and be at APC_LEVEL. */
FAST_MUTEX_API void ExReleaseFastMutex(PFAST_MUTEX FastMutex);

/* Takes *FastMutex if it is free (raising IRQL as ExAcquireFastMutex does)
 * and returns TRUE; returns FALSE at once, with IRQL unchanged, otherwise. */
FAST_MUTEX_API BOOLEAN ExTryToAcquireFastMutex(PFAST_MUTEX FastMutex);

/* The same without touching IRQL: the caller must already be at APC_LEVEL
 * or in a critical region (here: at IRQL <= APC_LEVEL).  OldIrql is left
 * as it was. */
FAST_MUTEX_API void ExAcquireFastMutexUnsafe(PFAST_MUTEX FastMutex);
FAST_MUTEX_API void ExReleaseFastMutexUnsafe(PFAST_MUTEX FastMutex);

/* The calling thread's simulated IRQL. */
FAST_MUTEX_API KIRQL KeGetCurrentIrql(void);

/* Raises IRQL to NewIrql, which must not be below the current level, and
 * stores the previous level in *OldIrql. */
FAST_MUTEX_API void KeRaiseIrql(KIRQL NewIrql, PKIRQL OldIrql);

/* Lowers IRQL to NewIrql, which must not be above the current level. */
FAST_MUTEX_API void KeLowerIrql(KIRQL NewIrql);

/* The calling thread, as a FAST_MUTEX's Owner records it. */
FAST_MUTEX_API PKTHREAD KeGetCurrentThread(void);

/* Reports `api` called at an IRQL above `max` from `site` (the caller's
 * return address), as the Fast Mutex calls report theirs, and aborts; does
 * nothing at IRQL <= max (internal: the WDK subset's runtime). */
FAST_MUTEX_API void fast_mutex_wdm_require_irql_(const char *api, KIRQL max, const void *site);

#ifdef __cplusplus
}
#endif

#endif /* FASTMUTEX_WDM_H */
