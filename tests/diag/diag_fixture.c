/* A program for fmx to look into: threads that wait for named mutexes at
 * known source lines (the FMX-SITE markers, which the tests look up), and
 * threads that deadlock.
 *
 *   diag_fixture hold [--traced]   DiagOwner holds DiagMutex (a fast_mutex_t)
 *                                  and DiagFastMutex (a FAST_MUTEX); DiagWaiter
 *                                  and DiagWdmWaiter wait for them for ever.
 *                                  --traced: a child process ptrace-seizes
 *                                  DiagWaiter, so nobody else may trace it.
 *   diag_fixture deadlock          DeadlockA holds LockA and waits for LockB,
 *                                  DeadlockB holds LockB and waits for LockA.
 *   diag_fixture timed             the same with fast_mutex_acquire_until()
 *                                  and a distant deadline; prints what each
 *                                  acquire returned and exits.
 *   diag_fixture named             names DiagMutex, which nobody holds, and
 *                                  sleeps: a registry with nobody waiting.
 *   diag_fixture orphan            Leaver takes g_queue.lock and exits holding
 *                                  it; then Orphaned waits for it for ever.
 *   diag_fixture holds             DiagHolderOfThreeMutexes (a long name) holds
 *                                  HeldOne, HeldTwo and HeldThree, and HeldFast
 *                                  (a FAST_MUTEX); nobody waits.
 *                                  Run with FASTMUTEX_VERIFY=order, its record
 *                                  lists them.
 *
 * It prints "ready KEY=VALUE..." once its threads are set up, and ends by
 * itself after FIXTURE_SECONDS so that a failed test leaves nothing behind. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fastmutex.h>
#include <fastmutex/wdm.h>

#define FIXTURE_SECONDS 120

static fast_mutex_t diag_mutex = FAST_MUTEX_INITIALIZER;
static FAST_MUTEX diag_fast_mutex;
static fast_mutex_t lock_a = FAST_MUTEX_INITIALIZER;
static fast_mutex_t lock_b = FAST_MUTEX_INITIALIZER;
/* A mutex inside a global struct, which fmx names "g_queue.lock". */
static struct {
    int items;
    fast_mutex_t lock;
} g_queue = {0, FAST_MUTEX_INITIALIZER};

/* Every thread of a mode meets here once it is set up: holding what it
 * holds, and just before the acquire it will wait in. */
static pthread_barrier_t setup;
static fast_mutex_t held_one = FAST_MUTEX_INITIALIZER;
static fast_mutex_t held_two = FAST_MUTEX_INITIALIZER;
static fast_mutex_t held_three = FAST_MUTEX_INITIALIZER;
static FAST_MUTEX held_fast;
static _Atomic pid_t holder_tid;
static _Atomic pid_t owner_tid, waiter_tid, wdm_waiter_tid, a_tid, b_tid, leaver_tid, orphaned_tid;

static void fail(const char *what, int err)
{
    fprintf(stderr, "diag_fixture: %s: %s\n", what, strerror(err));
    exit(1);
}

static void name_thread(const char *name)
{
    prctl(PR_SET_NAME, name);
}

static void sleep_for_ever(void)
{
    for (;;)
        pause();
}

static void *owner_thread(void *arg)
{
    (void)arg;
    name_thread("DiagOwner");
    owner_tid = gettid();
    fast_mutex_acquire(&diag_mutex);
    ExAcquireFastMutex(&diag_fast_mutex);
    pthread_barrier_wait(&setup);
    sleep_for_ever();
    return NULL;
}

static void *waiter_thread(void *arg)
{
    (void)arg;
    name_thread("DiagWaiter");
    waiter_tid = gettid();
    pthread_barrier_wait(&setup);
    fast_mutex_acquire(&diag_mutex); /* FMX-SITE-WAIT */
    fast_mutex_release(&diag_mutex);
    return NULL;
}

static void *wdm_waiter_thread(void *arg)
{
    (void)arg;
    name_thread("DiagWdmWaiter");
    wdm_waiter_tid = gettid();
    pthread_barrier_wait(&setup);
    ExAcquireFastMutex(&diag_fast_mutex); /* FMX-SITE-WDM */
    ExReleaseFastMutex(&diag_fast_mutex);
    return NULL;
}

/* Makes a child process that ptrace-seizes thread `tid` and keeps it
 * seized until this process ends: a thread can have one tracer only, so
 * every other PTRACE_ATTACH to it is refused with EPERM. */
static void seize_from_child(pid_t tid)
{
    pid_t parent = getpid();
    int ready[2];
    if (pipe(ready) != 0)
        fail("pipe", errno);
    pid_t child = fork();
    if (child < 0)
        fail("fork", errno);
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(0);
        char ok = ptrace(PTRACE_SEIZE, tid, NULL, NULL) == 0 ? 'y' : 'n';
        if (write(ready[1], &ok, 1) != 1)
            _exit(1);
        /* A seized thread runs on; stay its tracer without stopping it. */
        for (;;) {
            int status;
            if (waitpid(-1, &status, __WALL) < 0 && errno == ECHILD)
                pause();
        }
    }
    char ok = 'n';
    if (read(ready[0], &ok, 1) != 1 || ok != 'y')
        fail("the child could not ptrace-seize the waiter", EPERM);
    close(ready[0]);
    close(ready[1]);
}

static void start(pthread_t *thread, void *(*body)(void *))
{
    int err = pthread_create(thread, NULL, body, NULL);
    if (err != 0)
        fail("pthread_create", err);
}

static int hold(bool traced)
{
    pthread_t owner, waiter, wdm_waiter;
    ExInitializeFastMutex(&diag_fast_mutex);
    fast_mutex_set_name(&diag_mutex, "DiagMutex");
    fast_mutex_set_name(&diag_fast_mutex.Event.Lock, "DiagFastMutex");
    pthread_barrier_init(&setup, NULL, 4);
    start(&owner, owner_thread);
    start(&waiter, waiter_thread);
    start(&wdm_waiter, wdm_waiter_thread);
    pthread_barrier_wait(&setup);
    if (traced)
        seize_from_child(waiter_tid);
    printf("ready pid=%d owner=%d waiter=%d wdm_waiter=%d mutex=%p fast_mutex=%p queue_lock=%p\n",
           (int)getpid(), (int)owner_tid, (int)waiter_tid, (int)wdm_waiter_tid, (void *)&diag_mutex,
           (void *)&diag_fast_mutex, (void *)&g_queue.lock);
    fflush(stdout);
    sleep_for_ever();
    return 0;
}

/* The two threads of a deadlock: each takes its first lock, meets the
 * other at the barrier, then asks for the other's lock. */
static bool timed_mode;

/* The timed variant: waits with a deadline far beyond the deadlock check,
 * and says what the acquire returned. */
static void timed_side(fast_mutex_t *first, fast_mutex_t *second, const char *name)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += 60;
    int result = fast_mutex_acquire_until(second, &deadline); /* FMX-SITE-TIMED */
    printf("%s: %s\n", name,
           result == 0           ? "acquired"
           : result == EDEADLK   ? "EDEADLK"
           : result == ETIMEDOUT ? "ETIMEDOUT"
                                 : "unexpected");
    fflush(stdout);
    if (result == 0)
        fast_mutex_release(second);
    fast_mutex_release(first);
}

static void *thread_a(void *arg)
{
    (void)arg;
    name_thread("DeadlockA");
    a_tid = gettid();
    fast_mutex_acquire(&lock_a);
    pthread_barrier_wait(&setup);
    if (timed_mode) {
        timed_side(&lock_a, &lock_b, "DeadlockA");
        return NULL;
    }
    fast_mutex_acquire(&lock_b); /* FMX-SITE-AB */
    fast_mutex_release(&lock_b);
    fast_mutex_release(&lock_a);
    return NULL;
}

static void *thread_b(void *arg)
{
    (void)arg;
    name_thread("DeadlockB");
    b_tid = gettid();
    fast_mutex_acquire(&lock_b);
    pthread_barrier_wait(&setup);
    if (timed_mode) {
        timed_side(&lock_b, &lock_a, "DeadlockB");
        return NULL;
    }
    fast_mutex_acquire(&lock_a); /* FMX-SITE-BA */
    fast_mutex_release(&lock_a);
    fast_mutex_release(&lock_b);
    return NULL;
}

static int deadlock(bool timed)
{
    pthread_t a, b;
    timed_mode = timed;
    fast_mutex_set_name(&lock_a, "LockA");
    fast_mutex_set_name(&lock_b, "LockB");
    pthread_barrier_init(&setup, NULL, 3);
    start(&a, thread_a);
    start(&b, thread_b);
    pthread_barrier_wait(&setup);
    printf("ready pid=%d a=%d b=%d lock_a=%p lock_b=%p\n", (int)getpid(), (int)a_tid, (int)b_tid,
           (void *)&lock_a, (void *)&lock_b);
    fflush(stdout);
    if (!timed)
        sleep_for_ever();
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("timed: done\n");
    return 0;
}

static int named(void)
{
    fast_mutex_set_name(&diag_mutex, "DiagMutex");
    printf("ready pid=%d mutex=%p\n", (int)getpid(), (void *)&diag_mutex);
    fflush(stdout);
    sleep_for_ever();
    return 0;
}

static void *leaver_thread(void *arg)
{
    (void)arg;
    name_thread("Leaver");
    leaver_tid = gettid();
    fast_mutex_acquire(&g_queue.lock);
    return NULL; /* exits holding it */
}

static void *orphaned_thread(void *arg)
{
    (void)arg;
    name_thread("Orphaned");
    orphaned_tid = gettid();
    pthread_barrier_wait(&setup);
    fast_mutex_acquire(&g_queue.lock); /* FMX-SITE-ORPHAN */
    return NULL;
}

static int orphan(void)
{
    pthread_t leaver, orphaned;
    fast_mutex_set_name(&g_queue.lock, "QueueLock");
    start(&leaver, leaver_thread);
    pthread_join(leaver, NULL);
    pthread_barrier_init(&setup, NULL, 2);
    start(&orphaned, orphaned_thread);
    pthread_barrier_wait(&setup);
    printf("ready pid=%d leaver=%d orphaned=%d queue_lock=%p\n", (int)getpid(), (int)leaver_tid,
           (int)orphaned_tid, (void *)&g_queue.lock);
    fflush(stdout);
    sleep_for_ever();
    return 0;
}

static void *holder_thread(void *arg)
{
    (void)arg;
    const char *name = "DiagHolderOfThreeMutexes";
    name_thread(name); /* the kernel keeps 15 bytes */
    fast_mutex_set_thread_name(name);
    holder_tid = gettid();
    fast_mutex_acquire(&held_one); /* FMX-SITE-HOLD-ONE */
    fast_mutex_acquire(&held_two); /* FMX-SITE-HOLD-TWO */
    fast_mutex_acquire(&held_three); /* FMX-SITE-HOLD-THREE */
    ExAcquireFastMutex(&held_fast); /* FMX-SITE-HOLD-FAST */
    pthread_barrier_wait(&setup);
    sleep_for_ever();
    return NULL;
}

static int holds(void)
{
    pthread_t holder;
    fast_mutex_set_name(&held_one, "HeldOne");
    fast_mutex_set_name(&held_two, "HeldTwo");
    fast_mutex_set_name(&held_three, "HeldThree");
    ExInitializeFastMutex(&held_fast);
    fast_mutex_set_name(&held_fast.Event.Lock, "HeldFast");
    pthread_barrier_init(&setup, NULL, 2);
    /* The holder has to wait for HeldFast before it gets it, so that its
     * record names the FAST_MUTEX it last waited for and got. */
    ExAcquireFastMutex(&held_fast);
    start(&holder, holder_thread);
    usleep(300 * 1000);
    ExReleaseFastMutex(&held_fast);
    pthread_barrier_wait(&setup);
    printf("ready pid=%d holder=%d one=%p two=%p three=%p fast=%p\n", (int)getpid(), (int)holder_tid,
           (void *)&held_one, (void *)&held_two, (void *)&held_three, (void *)&held_fast);
    fflush(stdout);
    sleep_for_ever();
    return 0;
}

int main(int argc, char **argv)
{
    /* However a test goes, this process does not outlive it for long. */
    alarm(FIXTURE_SECONDS);
    if (argc == 2 && strcmp(argv[1], "hold") == 0)
        return hold(false);
    if (argc == 3 && strcmp(argv[1], "hold") == 0 && strcmp(argv[2], "--traced") == 0)
        return hold(true);
    if (argc == 2 && strcmp(argv[1], "deadlock") == 0)
        return deadlock(false);
    if (argc == 2 && strcmp(argv[1], "timed") == 0)
        return deadlock(true);
    if (argc == 2 && strcmp(argv[1], "named") == 0)
        return named();
    if (argc == 2 && strcmp(argv[1], "orphan") == 0)
        return orphan();
    if (argc == 2 && strcmp(argv[1], "holds") == 0)
        return holds();
    fprintf(stderr, "usage: diag_fixture hold [--traced] | deadlock | timed | named | orphan | holds\n");
    return 2;
}
