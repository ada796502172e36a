/* System threads, events and waits: pthreads and futexes under the
 * dispatcher objects' names.  A thread object and a KEVENT both begin with
 * a DISPATCHER_HEADER whose SignalState is the futex word waiters sleep on,
 * so that KeWaitForSingleObject waits on either the same way. */
#include "wdk_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../internal.h"

_Static_assert(FAST_MUTEX_WDK_THREAD_NAME_LEN == FMX_THREAD_NAME_LEN,
               "a system thread's name fits its registry record whole");

#define THREAD_OBJECT 6 /* DISPATCHER_HEADER.Type of a thread, as Windows numbers it */
/* 100 ns units between 1601-01-01 and 1970-01-01. */
#define EPOCH_1601 116444736000000000LL

struct _OBJECT_TYPE {
    const char *name;
};
static struct _OBJECT_TYPE thread_type = {"Thread"};
static POBJECT_TYPE thread_type_pointer = &thread_type;
POBJECT_TYPE *PsThreadType = &thread_type_pointer;

struct thread_object {
    DISPATCHER_HEADER header; /* first: what ObReferenceObjectByHandle hands out */
    struct fmx_wdk_object base; /* references: the running thread, handles, Ob */
    PKSTART_ROUTINE routine;
    PVOID context;
    char name[FAST_MUTEX_WDK_THREAD_NAME_LEN];
    NTSTATUS exit_status;
    struct thread_object *next; /* in the list of running threads */
};

static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t threads_ended = PTHREAD_COND_INITIALIZER;
static struct thread_object *running; /* guarded by threads_lock */
static unsigned started;              /* guarded by threads_lock */
static fast_mutex_wdk_namer_t namer;
static _Thread_local struct thread_object *current_thread;
static _Thread_local unsigned critical_regions;

static int futex(LONG *word, int op, LONG value, const struct timespec *timeout)
{
    return (int)syscall(SYS_futex, word, op | FUTEX_PRIVATE_FLAG, value, timeout, NULL,
                        FUTEX_BITSET_MATCH_ANY);
}

int64_t fmx_wdk_system_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return EPOCH_1601 + (int64_t)ts.tv_sec * 10000000 + ts.tv_nsec / 100;
}

struct timespec fmx_wdk_deadline(const LARGE_INTEGER *timeout)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    /* Negative: relative; positive: an absolute system time, turned into a
     * span from now (a clock change meanwhile is not followed). */
    int64_t span = timeout->QuadPart < 0 ? -timeout->QuadPart
                                         : timeout->QuadPart - fmx_wdk_system_time();
    if (span < 0)
        span = 0;
    int64_t ns = now.tv_nsec + (span % 10000000) * 100;
    return (struct timespec){now.tv_sec + (time_t)(span / 10000000) + (time_t)(ns / 1000000000),
                             (long)(ns % 1000000000)};
}

VOID KeQuerySystemTime(PLARGE_INTEGER CurrentTime)
{
    CurrentTime->QuadPart = fmx_wdk_system_time();
}

VOID KeQuerySystemTimePrecise(PLARGE_INTEGER CurrentTime)
{
    CurrentTime->QuadPart = fmx_wdk_system_time();
}

NTSTATUS KeDelayExecutionThread(KPROCESSOR_MODE WaitMode, BOOLEAN Alertable, PLARGE_INTEGER Interval)
{
    REQUIRE_IRQL("KeDelayExecutionThread", APC_LEVEL);
    (void)WaitMode;
    (void)Alertable; /* no alerts or APCs exist here to end the sleep early */
    if (Interval == NULL)
        return STATUS_INVALID_PARAMETER;
    if (Interval->QuadPart == 0) {
        sched_yield();
        return STATUS_SUCCESS;
    }
    struct timespec deadline = fmx_wdk_deadline(Interval);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL) == EINTR)
        continue;
    return STATUS_SUCCESS;
}

VOID KeInitializeEvent(PRKEVENT Event, EVENT_TYPE Type, BOOLEAN State)
{
    Event->Header.Type = (UCHAR)Type;
    Event->Header.Signalling = 0;
    Event->Header.Size = sizeof(KEVENT) / sizeof(LONG);
    Event->Header.Reserved1 = 0;
    __atomic_store_n(&Event->Header.SignalState, State ? 1 : 0, __ATOMIC_RELEASE);
    Event->Header.WaitListHead.Flink = &Event->Header.WaitListHead;
    Event->Header.WaitListHead.Blink = &Event->Header.WaitListHead;
}

/* Signals a dispatcher object: a notification releases every waiter, a
 * synchronization event one.  Returns the previous state. */
static LONG signal(DISPATCHER_HEADER *header)
{
    /* Release: what the signaller wrote is seen by the waiter it frees;
     * pairs with the acquire loads and CAS in wait_signaled(). */
    LONG previous = __atomic_exchange_n(&header->SignalState, 1, __ATOMIC_RELEASE);
    if (previous == 0)
        futex(&header->SignalState, FUTEX_WAKE, header->Type == SynchronizationEvent ? 1 : INT_MAX,
              NULL);
    return previous;
}

LONG KeSetEvent(PRKEVENT Event, KPRIORITY Increment, BOOLEAN Wait)
{
    REQUIRE_IRQL("KeSetEvent", DISPATCH_LEVEL);
    (void)Increment; /* a priority boost: the Linux scheduler decides */
    (void)Wait;
    return signal(&Event->Header);
}

LONG KeResetEvent(PRKEVENT Event)
{
    REQUIRE_IRQL("KeResetEvent", DISPATCH_LEVEL);
    return __atomic_exchange_n(&Event->Header.SignalState, 0, __ATOMIC_RELAXED);
}

VOID KeClearEvent(PRKEVENT Event)
{
    __atomic_store_n(&Event->Header.SignalState, 0, __ATOMIC_RELAXED);
}

LONG KeReadStateEvent(PRKEVENT Event)
{
    return __atomic_load_n(&Event->Header.SignalState, __ATOMIC_ACQUIRE);
}

/* Takes the signal when there is one (consuming it for a synchronization
 * event); true when the wait is over. */
static bool take_signal(DISPATCHER_HEADER *header)
{
    LONG state = __atomic_load_n(&header->SignalState, __ATOMIC_ACQUIRE);
    while (state > 0) {
        if (header->Type != SynchronizationEvent)
            return true;
        if (__atomic_compare_exchange_n(&header->SignalState, &state, 0, false, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return true;
    }
    return false;
}

static NTSTATUS wait_signaled(DISPATCHER_HEADER *header, const LARGE_INTEGER *timeout)
{
    struct timespec deadline;
    if (timeout != NULL)
        deadline = fmx_wdk_deadline(timeout);
    for (;;) {
        if (take_signal(header))
            return STATUS_SUCCESS;
        if (timeout != NULL && timeout->QuadPart == 0)
            return STATUS_TIMEOUT;
        int r = futex(&header->SignalState, FUTEX_WAIT_BITSET, 0, timeout != NULL ? &deadline : NULL);
        if (r != 0 && errno == ETIMEDOUT)
            return take_signal(header) ? STATUS_SUCCESS : STATUS_TIMEOUT;
    }
}

NTSTATUS KeWaitForSingleObject(PVOID Object, KWAIT_REASON WaitReason, KPROCESSOR_MODE WaitMode,
                               BOOLEAN Alertable, PLARGE_INTEGER Timeout)
{
    (void)WaitReason;
    (void)WaitMode;
    (void)Alertable;
    DISPATCHER_HEADER *header = Object;
    /* A zero timeout only tests, and may do so at DISPATCH_LEVEL. */
    fast_mutex_wdm_require_irql_("KeWaitForSingleObject",
                                 Timeout != NULL && Timeout->QuadPart == 0 ? DISPATCH_LEVEL : APC_LEVEL,
                                 __builtin_return_address(0));
    if (header->Type != NotificationEvent && header->Type != SynchronizationEvent &&
        header->Type != THREAD_OBJECT)
        fmx_misuse("KeWaitForSingleObject on an object that is not one", NULL,
                   __builtin_return_address(0),
                   "object %p has dispatcher type %u: this subset waits on KEVENTs and threads",
                   Object, header->Type);
    return wait_signaled(header, Timeout);
}

static struct thread_object *thread_of(struct fmx_wdk_object *object)
{
    return (struct thread_object *)((char *)object - offsetof(struct thread_object, base));
}

void fmx_wdk_thread_free(struct fmx_wdk_object *object)
{
    free(thread_of(object));
}

/* The thread's name: its start routine's symbol, as far as
 * FAST_MUTEX_WDK_THREAD_NAME_LEN - 1 bytes go. */
static void name_thread(struct thread_object *t)
{
    Dl_info info;
    const void *routine = (const void *)(uintptr_t)t->routine;
    if (dladdr(routine, &info) != 0 && info.dli_sname != NULL && info.dli_saddr == routine)
        snprintf(t->name, sizeof t->name, "%s", info.dli_sname);
    else if (namer == NULL || namer(routine, t->name, sizeof t->name) != 0)
        snprintf(t->name, sizeof t->name, "SystemThread");
}

VOID KeEnterCriticalRegion(void)
{
    critical_regions++;
}

VOID KeLeaveCriticalRegion(void)
{
    if (critical_regions == 0)
        fmx_misuse("KeLeaveCriticalRegion outside a critical region", NULL,
                   __builtin_return_address(0), "no KeEnterCriticalRegion to match it%s", "");
    critical_regions--;
}

/* Runs when the thread ends, by return or PsTerminateSystemThread. */
static void thread_ended(void *arg)
{
    struct thread_object *t = arg;
    if (critical_regions != 0)
        fmx_misuse("system thread ended in a critical region", NULL,
                   (const void *)(uintptr_t)t->routine,
                   "system thread %s ended with %u KeEnterCriticalRegion not left", t->name,
                   critical_regions);
    if (KeGetCurrentIrql() != PASSIVE_LEVEL)
        fmx_misuse("IRQL check failed, IRQL_GT_ZERO_AT_SYSTEM_SERVICE", NULL,
                   (const void *)(uintptr_t)t->routine,
                   "system thread %s ended at IRQL %u (it must end at PASSIVE_LEVEL)", t->name,
                   KeGetCurrentIrql());
    pthread_mutex_lock(&threads_lock);
    for (struct thread_object **p = &running; *p != NULL; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            break;
        }
    pthread_cond_broadcast(&threads_ended);
    pthread_mutex_unlock(&threads_lock);
    signal(&t->header); /* waiters on the thread object go on */
    fmx_wdk_object_put(&t->base);
}

static void *system_thread_main(void *arg)
{
    struct thread_object *t = arg;
    current_thread = t;
    /* The kernel keeps 15 bytes of a name (PR_SET_NAME cuts it there);
     * the registry, reports and fmx show the whole of it. */
    prctl(PR_SET_NAME, t->name);
    fast_mutex_set_thread_name(t->name);
    pthread_cleanup_push(thread_ended, t);
    t->routine(t->context);
    pthread_cleanup_pop(1);
    return NULL;
}

/* Puts t in the running list and starts it; false if it could not start. */
static bool start_thread(struct thread_object *t)
{
    pthread_attr_t attr;
    pthread_t thread;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_mutex_lock(&threads_lock);
    bool ok = pthread_create(&thread, &attr, system_thread_main, t) == 0;
    if (ok) {
        t->next = running;
        running = t;
        started++;
    }
    pthread_mutex_unlock(&threads_lock);
    pthread_attr_destroy(&attr);
    return ok;
}

NTSTATUS PsCreateSystemThread(PHANDLE ThreadHandle, ULONG DesiredAccess,
                              POBJECT_ATTRIBUTES ObjectAttributes, HANDLE ProcessHandle,
                              PCLIENT_ID ClientId, PKSTART_ROUTINE StartRoutine, PVOID StartContext)
{
    REQUIRE_IRQL("PsCreateSystemThread", PASSIVE_LEVEL);
    (void)DesiredAccess;
    (void)ObjectAttributes;
    (void)ClientId; /* only for threads in a user process, which this is not asked for */
    if (ThreadHandle == NULL || StartRoutine == NULL ||
        (ProcessHandle != NULL && ProcessHandle != NtCurrentProcess()))
        return STATUS_INVALID_PARAMETER;
    struct thread_object *t = calloc(1, sizeof *t);
    if (t == NULL)
        return STATUS_INSUFFICIENT_RESOURCES;
    t->header.Type = THREAD_OBJECT;
    t->base.type = FMX_WDK_THREAD;
    t->base.refs = 2; /* the thread while it runs, and its handle */
    t->routine = StartRoutine;
    t->context = StartContext;
    name_thread(t);
    *ThreadHandle = fmx_wdk_handle_open(&t->base);
    if (*ThreadHandle == NULL) {
        free(t);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    if (!start_thread(t)) {
        fmx_wdk_handle_close(*ThreadHandle);
        *ThreadHandle = NULL;
        free(t);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    return STATUS_SUCCESS;
}

NTSTATUS PsTerminateSystemThread(NTSTATUS ExitStatus)
{
    if (current_thread == NULL)
        return STATUS_INVALID_PARAMETER;
    current_thread->exit_status = ExitStatus;
    pthread_exit(NULL);
}

HANDLE PsGetCurrentThreadId(void)
{
    return (HANDLE)(uintptr_t)gettid();
}

HANDLE PsGetCurrentProcessId(void)
{
    return (HANDLE)(uintptr_t)getpid();
}

NTSTATUS ObReferenceObjectByHandle(HANDLE Handle, ACCESS_MASK DesiredAccess, POBJECT_TYPE ObjectType,
                                   KPROCESSOR_MODE AccessMode, PVOID *Object, PVOID HandleInformation)
{
    REQUIRE_IRQL("ObReferenceObjectByHandle", DISPATCH_LEVEL);
    (void)DesiredAccess;
    (void)AccessMode;
    (void)HandleInformation;
    NTSTATUS status;
    *Object = NULL;
    /* Threads are the only objects this subset hands out. */
    if (ObjectType != NULL && ObjectType != *PsThreadType)
        return STATUS_OBJECT_TYPE_MISMATCH;
    struct fmx_wdk_object *object = fmx_wdk_handle_get(Handle, FMX_WDK_THREAD, &status);
    if (object == NULL)
        return status;
    /* The lookup's reference is the one ObDereferenceObject drops. */
    *Object = &thread_of(object)->header;
    return STATUS_SUCCESS;
}

VOID ObDereferenceObject(PVOID Object)
{
    REQUIRE_IRQL("ObDereferenceObject", DISPATCH_LEVEL);
    DISPATCHER_HEADER *header = Object;
    if (header == NULL || header->Type != THREAD_OBJECT)
        fmx_misuse("ObDereferenceObject of an object it did not reference", NULL,
                   __builtin_return_address(0), "object %p is no thread object", Object);
    fmx_wdk_object_put(&((struct thread_object *)Object)->base);
}

unsigned fast_mutex_wdk_wait_threads(long timeout_ms, char (*names)[FAST_MUTEX_WDK_THREAD_NAME_LEN],
                                     unsigned max)
{
    struct timespec deadline;
    unsigned left = 0;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&threads_lock);
    while (running != NULL) {
        if (timeout_ms < 0)
            pthread_cond_wait(&threads_ended, &threads_lock);
        else if (pthread_cond_timedwait(&threads_ended, &threads_lock, &deadline) == ETIMEDOUT)
            break;
    }
    for (struct thread_object *t = running; t != NULL; t = t->next, left++)
        if (left < max)
            memcpy(names[left], t->name, sizeof t->name);
    pthread_mutex_unlock(&threads_lock);
    return left;
}

unsigned fast_mutex_wdk_threads_started(void)
{
    pthread_mutex_lock(&threads_lock);
    unsigned n = started;
    pthread_mutex_unlock(&threads_lock);
    return n;
}

void fast_mutex_wdk_set_namer(fast_mutex_wdk_namer_t new_namer)
{
    namer = new_namer;
}
