/* A user's program under a race detector (ThreadSanitizer, Helgrind, DRD),
 * built against the installed, uninstrumented library.  The mode says what
 * it does:
 *   guarded    threads add to a counter under a fast mutex (acquire, try
 *              and timed acquire): a correct program, no report expected
 *   unguarded  the same counter without the mutex: a race to be reported
 *   inversion  one thread takes A then B, later B then A (no deadlock
 *              happens): ThreadSanitizer reports a lock-order inversion */
#include <fastmutex.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define THREADS 4
#define ROUNDS 2000

static fast_mutex_t lock = FAST_MUTEX_INITIALIZER;
static long counter;
static int guarded;

static void add_one(int round)
{
    if (!guarded) {
        counter++;
        return;
    }
    /* Each way of taking the mutex in turn. */
    if (round % 3 == 1) {
        while (!fast_mutex_try_acquire(&lock))
            sched_yield();
    } else if (round % 3 == 2) {
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += 60;
        if (fast_mutex_acquire_until(&lock, &deadline) != 0)
            return;
    } else {
        fast_mutex_acquire(&lock);
    }
    counter++;
    fast_mutex_release(&lock);
}

static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++)
        add_one(i);
    return NULL;
}

static void nest(fast_mutex_t *outer, fast_mutex_t *inner)
{
    fast_mutex_acquire(outer);
    fast_mutex_acquire(inner);
    fast_mutex_release(inner);
    fast_mutex_release(outer);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "inversion") == 0) {
        static fast_mutex_t a, b;
        fast_mutex_init(&a);
        fast_mutex_init(&b);
        nest(&a, &b);
        nest(&b, &a);
        printf("inversion done\n");
        return 0;
    }
    if (strcmp(mode, "guarded") != 0 && strcmp(mode, "unguarded") != 0) {
        fprintf(stderr, "usage: fixture guarded|unguarded|inversion\n");
        return 2;
    }
    guarded = strcmp(mode, "guarded") == 0;
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    printf("counter %ld of %d\n", counter, THREADS * ROUNDS);
    return guarded && counter != THREADS * ROUNDS ? 1 : 0;
}
