/* A program for the gdb extension's tests to look into, with the states the
 * printers and commands show at known source lines (the FMX- markers, which
 * the tests look up to set breakpoints and to check call sites).
 *
 *   gdb_fixture hold      GdbOwner holds GdbHeld (a fast_mutex_t) and GdbWdm
 *                         (a FAST_MUTEX, taken at APC_LEVEL so that OldIrql
 *                         is 1); GdbWaiter and GdbWdmWaiter wait for them.
 *                         GdbFree is named and free, once the main thread
 *                         has waited for it (at FMX-SITE-GOT) while GdbOwner
 *                         held it for BRIEF_HOLD_MS.  Once both waiters have
 *                         slept for HOLD_WAIT_MS, main prints "ready ..." and
 *                         stops at FMX-BREAK-READY, then sleeps.
 *   gdb_fixture quiet     no thread ever waits and no mutex is named: no
 *                         registry; main stops at FMX-BREAK-QUIET.
 *   gdb_fixture deadlock  DeadlockA holds LockA and waits for LockB, DeadlockB
 *                         the other way round (FASTMUTEX_ON_DEADLOCK=abort
 *                         makes the library abort once the check finds it).
 *   gdb_fixture holds     GdbHolderOfThreeMutexes (a long name) holds HeldOne,
 *                         HeldTwo and HeldThree, and HeldFast (a FAST_MUTEX),
 *                         nobody waiting for them;
 *                         GdbWaiterWithALongName waits for GdbExtra, which
 *                         main holds.  Run with FASTMUTEX_VERIFY=order, the
 *                         holder's record lists its four mutexes.  main
 *                         prints "ready ..." and stops at FMX-BREAK-HOLDS.
 *
 * It ends by itself after FIXTURE_SECONDS so that a failed test leaves
 * nothing behind. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <fastmutex.h>
#include <fastmutex/wdm.h>

#define FIXTURE_SECONDS 120
#define HOLD_WAIT_MS 1200
#define BRIEF_HOLD_MS 300

static fast_mutex_t held_mutex = FAST_MUTEX_INITIALIZER;
static fast_mutex_t free_mutex = FAST_MUTEX_INITIALIZER;
static FAST_MUTEX wdm_mutex;
static fast_mutex_t lock_a = FAST_MUTEX_INITIALIZER;
static fast_mutex_t lock_b = FAST_MUTEX_INITIALIZER;
static fast_mutex_t held_one = FAST_MUTEX_INITIALIZER;
static fast_mutex_t held_two = FAST_MUTEX_INITIALIZER;
static fast_mutex_t held_three = FAST_MUTEX_INITIALIZER;
static FAST_MUTEX held_fast;
static fast_mutex_t extra_mutex = FAST_MUTEX_INITIALIZER;
static _Atomic pid_t holder_tid, long_waiter_tid;
static pthread_barrier_t setup, brief;
static _Atomic pid_t owner_tid, waiter_tid, wdm_waiter_tid;

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0)
        ;
}

static void sleep_for_ever(void)
{
    for (;;)
        pause();
}

static void *owner_thread(void *arg)
{
    (void)arg;
    KIRQL old;
    prctl(PR_SET_NAME, "GdbOwner");
    owner_tid = gettid();
    fast_mutex_acquire(&free_mutex);
    pthread_barrier_wait(&brief);
    sleep_ms(BRIEF_HOLD_MS);
    fast_mutex_release(&free_mutex);
    fast_mutex_acquire(&held_mutex);
    KeRaiseIrql(APC_LEVEL, &old);
    ExAcquireFastMutex(&wdm_mutex);
    pthread_barrier_wait(&setup);
    sleep_for_ever();
    return NULL;
}

static void *waiter_thread(void *arg)
{
    (void)arg;
    prctl(PR_SET_NAME, "GdbWaiter");
    waiter_tid = gettid();
    pthread_barrier_wait(&setup);
    fast_mutex_acquire(&held_mutex); /* FMX-SITE-WAIT */
    return NULL;
}

static void *wdm_waiter_thread(void *arg)
{
    (void)arg;
    prctl(PR_SET_NAME, "GdbWdmWaiter");
    wdm_waiter_tid = gettid();
    pthread_barrier_wait(&setup);
    ExAcquireFastMutex(&wdm_mutex); /* FMX-SITE-WDM */
    return NULL;
}

static void start(void *(*body)(void *))
{
    pthread_t thread;
    if (pthread_create(&thread, NULL, body, NULL) != 0) {
        fprintf(stderr, "gdb_fixture: pthread_create failed\n");
        exit(1);
    }
}

/* Where the tests stop the program: one function per state, so that a
 * breakpoint on its marker line is reached once, after the "ready" line is
 * out. */
static volatile int points_reached;

static void ready_point(void)
{
    points_reached++; /* FMX-BREAK-READY */
}

static void holds_point(void)
{
    points_reached++; /* FMX-BREAK-HOLDS */
}

static void quiet_point(void)
{
    points_reached++; /* FMX-BREAK-QUIET */
}

static int hold(void)
{
    ExInitializeFastMutex(&wdm_mutex);
    fast_mutex_set_name(&held_mutex, "GdbHeld");
    fast_mutex_set_name(&free_mutex, "GdbFree");
    fast_mutex_set_name(&wdm_mutex.Event.Lock, "GdbWdm");
    pthread_barrier_init(&setup, NULL, 4);
    pthread_barrier_init(&brief, NULL, 2);
    start(owner_thread);
    pthread_barrier_wait(&brief);
    fast_mutex_acquire(&free_mutex); /* FMX-SITE-GOT */
    fast_mutex_release(&free_mutex);
    start(waiter_thread);
    start(wdm_waiter_thread);
    pthread_barrier_wait(&setup);
    /* Both waiters count their wait when they go to sleep for it. */
    while (fast_mutex_contention(&held_mutex) == 0 || fast_mutex_contention(&wdm_mutex.Event.Lock) == 0)
        sleep_ms(10);
    sleep_ms(HOLD_WAIT_MS);
    printf("ready pid=%d owner=%d waiter=%d wdm_waiter=%d held=%p free=%p wdm=%p\n", (int)getpid(),
           (int)owner_tid, (int)waiter_tid, (int)wdm_waiter_tid, (void *)&held_mutex,
           (void *)&free_mutex, (void *)&wdm_mutex);
    fflush(stdout);
    ready_point();
    sleep_for_ever();
    return 0;
}

static int quiet(void)
{
    fast_mutex_acquire(&free_mutex);
    fast_mutex_release(&free_mutex);
    printf("ready pid=%d\n", (int)getpid());
    fflush(stdout);
    quiet_point();
    return 0;
}

static void *deadlock_side(void *arg)
{
    fast_mutex_t **locks = arg;
    prctl(PR_SET_NAME, locks[0] == &lock_a ? "DeadlockA" : "DeadlockB");
    fast_mutex_acquire(locks[0]);
    pthread_barrier_wait(&setup);
    fast_mutex_acquire(locks[1]); /* FMX-SITE-DEADLOCK */
    return NULL;
}

static int deadlock(void)
{
    static fast_mutex_t *ab[2] = {&lock_a, &lock_b}, *ba[2] = {&lock_b, &lock_a};
    pthread_t a, b;
    fast_mutex_set_name(&lock_a, "LockA");
    fast_mutex_set_name(&lock_b, "LockB");
    pthread_barrier_init(&setup, NULL, 3);
    pthread_create(&a, NULL, deadlock_side, ab);
    pthread_create(&b, NULL, deadlock_side, ba);
    pthread_barrier_wait(&setup);
    printf("ready pid=%d\n", (int)getpid());
    fflush(stdout);
    sleep_for_ever();
    return 0;
}

/* Gives the calling thread a long name, and its first 15 bytes as comm. */
static void long_name(const char *name)
{
    prctl(PR_SET_NAME, name); /* the kernel keeps 15 bytes */
    fast_mutex_set_thread_name(name);
}

static void *holder_thread(void *arg)
{
    (void)arg;
    long_name("GdbHolderOfThreeMutexes");
    holder_tid = gettid();
    fast_mutex_acquire(&held_one); /* FMX-SITE-HOLD-ONE */
    fast_mutex_acquire(&held_two); /* FMX-SITE-HOLD-TWO */
    fast_mutex_acquire(&held_three); /* FMX-SITE-HOLD-THREE */
    ExAcquireFastMutex(&held_fast); /* FMX-SITE-HOLD-FAST */
    pthread_barrier_wait(&setup);
    sleep_for_ever();
    return NULL;
}

static void *long_waiter_thread(void *arg)
{
    (void)arg;
    long_name("GdbWaiterWithALongName");
    long_waiter_tid = gettid();
    pthread_barrier_wait(&setup);
    fast_mutex_acquire(&extra_mutex); /* FMX-SITE-EXTRA */
    return NULL;
}

static int holds(void)
{
    fast_mutex_set_name(&held_one, "HeldOne");
    fast_mutex_set_name(&held_two, "HeldTwo");
    fast_mutex_set_name(&held_three, "HeldThree");
    ExInitializeFastMutex(&held_fast);
    fast_mutex_set_name(&held_fast.Event.Lock, "HeldFast");
    fast_mutex_set_name(&extra_mutex, "GdbExtra");
    fast_mutex_acquire(&extra_mutex);
    pthread_barrier_init(&setup, NULL, 3);
    /* The holder has to wait for HeldFast before it gets it, so that its
     * record names the FAST_MUTEX it last waited for and got. */
    ExAcquireFastMutex(&held_fast);
    start(holder_thread);
    start(long_waiter_thread);
    sleep_ms(300);
    ExReleaseFastMutex(&held_fast);
    pthread_barrier_wait(&setup);
    while (fast_mutex_contention(&extra_mutex) == 0)
        sleep_ms(10);
    printf("ready pid=%d holder=%d waiter=%d one=%p two=%p three=%p fast=%p extra=%p\n", (int)getpid(),
           (int)holder_tid, (int)long_waiter_tid, (void *)&held_one, (void *)&held_two,
           (void *)&held_three, (void *)&held_fast, (void *)&extra_mutex);
    fflush(stdout);
    holds_point();
    sleep_for_ever();
    return 0;
}

int main(int argc, char **argv)
{
    alarm(FIXTURE_SECONDS);
    if (argc == 2 && strcmp(argv[1], "hold") == 0)
        return hold();
    if (argc == 2 && strcmp(argv[1], "quiet") == 0)
        return quiet();
    if (argc == 2 && strcmp(argv[1], "deadlock") == 0)
        return deadlock();
    if (argc == 2 && strcmp(argv[1], "holds") == 0)
        return holds();
    fprintf(stderr, "usage: gdb_fixture hold | quiet | deadlock | holds\n");
    return 2;
}
