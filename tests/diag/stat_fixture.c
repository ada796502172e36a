/* The program `fmx stat` looks into (stat_e2e.sh), run with
 * FASTMUTEX_STATS=on.  Two named mutexes with known contention:
 *   "hot":  the main thread holds it for 100 ms while two workers start
 *           and block on it; each worker then takes it 50 times more,
 *           holding it 1 ms each time.  103 acquisitions at three sites;
 *           the workers' first ones waited about 100 ms.
 *   "warm": each worker takes it 20 times, holding it no time.  40
 *           acquisitions, little or no waiting.
 *   "fast": a FAST_MUTEX; each worker takes it 10 times by
 *           ExAcquireFastMutex, then main once by ExTryToAcquireFastMutex
 *           and once by ExAcquireFastMutexUnsafe.  22 acquisitions, its rows
 *           naming the FAST_MUTEX's own address.
 * Then it prints "ready pid=PID hot=ADDR warm=ADDR fast=ADDR" and, the profile
 * standing still, waits to be looked at (at most 120 s).  With "fork", it
 * forks first, and the child takes "warm" 5 times more (45 in its profile,
 * the parent's staying at 40) and is named in the ready line (child=PID). */
#include <fastmutex.h>
#include <fastmutex/wdm.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static fast_mutex_t hot, warm;
static FAST_MUTEX fast;

static void sleep_us(long us)
{
    struct timespec t = {.tv_sec = us / 1000000, .tv_nsec = us % 1000000 * 1000};
    nanosleep(&t, NULL);
}

static void *worker(void *arg)
{
    (void)arg;
    fast_mutex_acquire(&hot); /* FMX-STAT-FIRST: waits for main */
    fast_mutex_release(&hot);
    for (int i = 0; i < 50; i++) {
        fast_mutex_acquire(&hot); /* FMX-STAT-HOT */
        sleep_us(1000);
        fast_mutex_release(&hot);
    }
    for (int i = 0; i < 20; i++) {
        fast_mutex_acquire(&warm); /* FMX-STAT-WARM */
        fast_mutex_release(&warm);
    }
    for (int i = 0; i < 10; i++) {
        ExAcquireFastMutex(&fast); /* FMX-STAT-FAST */
        ExReleaseFastMutex(&fast);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    fast_mutex_init(&hot);
    fast_mutex_init(&warm);
    fast_mutex_set_name(&hot, "hot");
    fast_mutex_set_name(&warm, "warm");
    ExInitializeFastMutex(&fast);
    fast_mutex_set_name(&fast.Event.Lock, "fast");
    fast_mutex_acquire(&hot); /* FMX-STAT-MAIN */
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    sleep_us(100000);
    fast_mutex_release(&hot);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    if (ExTryToAcquireFastMutex(&fast)) /* FMX-STAT-FAST-TRY */
        ExReleaseFastMutex(&fast);
    ExAcquireFastMutexUnsafe(&fast); /* FMX-STAT-FAST-UNSAFE */
    ExReleaseFastMutexUnsafe(&fast);
    pid_t child = 0;
    if (argc > 1 && strcmp(argv[1], "fork") == 0) {
        fflush(stdout);
        child = fork();
        if (child == 0) {
            for (int i = 0; i < 5; i++) {
                fast_mutex_acquire(&warm);
                fast_mutex_release(&warm);
            }
            for (int i = 0; i < 1200; i++)
                sleep_us(100000);
            return 0;
        }
    }
    printf("ready pid=%d hot=%p warm=%p fast=%p child=%d\n", (int)getpid(), (void *)&hot, (void *)&warm,
           (void *)&fast, (int)child);
    fflush(stdout);
    for (int i = 0; i < 1200; i++)
        sleep_us(100000);
    return 0;
}
