/* A program for the contention profile and trace tests (stats_test.sh,
 * trace_test.sh): two threads take the mutex "hot" 50 times each and hold
 * it 200 us each time, so they wait for each other; then the main thread
 * takes "cold" 10 times, never waiting.  With the argument "misuse" it
 * then releases "cold" once more, which the library reports and aborts.
 * With "wdm" it then takes the FAST_MUTEX "wdm" 5 times (3 by
 * ExAcquireFastMutex, 1 by ExTryToAcquireFastMutex, 1 by
 * ExAcquireFastMutexUnsafe) and prints "wdm=ADDRESS". */
#include <fastmutex.h>
#include <fastmutex/wdm.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static fast_mutex_t hot, cold;
static FAST_MUTEX wdm;

static void take_wdm(void)
{
    ExInitializeFastMutex(&wdm);
    fast_mutex_set_name(&wdm.Event.Lock, "wdm");
    for (int i = 0; i < 3; i++) {
        ExAcquireFastMutex(&wdm);
        ExReleaseFastMutex(&wdm);
    }
    if (ExTryToAcquireFastMutex(&wdm))
        ExReleaseFastMutex(&wdm);
    ExAcquireFastMutexUnsafe(&wdm);
    ExReleaseFastMutexUnsafe(&wdm);
    printf("wdm=%p\n", (void *)&wdm);
}

static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 50; i++) {
        fast_mutex_acquire(&hot);
        struct timespec hold = {.tv_sec = 0, .tv_nsec = 200000};
        nanosleep(&hold, NULL);
        fast_mutex_release(&hot);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    fast_mutex_init(&hot);
    fast_mutex_init(&cold);
    fast_mutex_set_name(&hot, "hot");
    fast_mutex_set_name(&cold, "cold");
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 10; i++) {
        fast_mutex_acquire(&cold);
        fast_mutex_release(&cold);
    }
    if (argc > 1 && strcmp(argv[1], "misuse") == 0)
        fast_mutex_release(&cold);
    if (argc > 1 && strcmp(argv[1], "wdm") == 0)
        take_wdm();
    return 0;
}
