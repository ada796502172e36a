/* fmx-drain: how long a crowd of threads queued on one held mutex takes to
 * get through it once it is released, for fast_mutex_t and
 * pthread_mutex_t in the same run, rounds interleaved (issue 16, C10: more
 * waiters than the registry's 4096 records).  Each round: the main thread
 * takes the lock, starts N threads that each take it once, waits until all
 * have arrived and settled into their waits, then releases it and measures
 * the wall time and the process's CPU time until every thread has been
 * joined.  Prints one line per round and the medians.
 *
 * Usage: fmx-drain [THREADS [ROUNDS]]   (defaults 10000 and 3) */
#include <errno.h>
#include <fastmutex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ROUNDS 15

struct lock_ops {
    const char *name;
    void (*acquire)(void);
    void (*release)(void);
};

static fast_mutex_t fm = FAST_MUTEX_INITIALIZER;
static pthread_mutex_t pm = PTHREAD_MUTEX_INITIALIZER;
static void fm_acquire(void) { fast_mutex_acquire(&fm); }
static void fm_release(void) { fast_mutex_release(&fm); }
static void pm_acquire(void) { pthread_mutex_lock(&pm); }
static void pm_release(void) { pthread_mutex_unlock(&pm); }

static const struct lock_ops locks[] = {
    {"pthread_mutex_t", pm_acquire, pm_release},
    {"fast_mutex_t", fm_acquire, fm_release},
};

static const struct lock_ops *current;
static atomic_int arrived;
static long counter;

static uint64_t clock_ns(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void *one_acquire(void *arg)
{
    (void)arg;
    atomic_fetch_add(&arrived, 1);
    current->acquire();
    counter++;
    current->release();
    return NULL;
}

/* One round; stores the drain's wall and CPU time in ms.  False when the
 * threads could not all be started. */
static bool drain_once(const struct lock_ops *lock, int threads, pthread_t *tids, double *wall_ms,
                       double *cpu_ms)
{
    current = lock;
    atomic_store(&arrived, 0);
    counter = 0;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    lock->acquire();
    int started = 0;
    while (started < threads && pthread_create(&tids[started], &attr, one_acquire, NULL) == 0)
        started++;
    pthread_attr_destroy(&attr);
    while (atomic_load(&arrived) < started) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    struct timespec settle = {0, 300000000};
    nanosleep(&settle, NULL);
    uint64_t wall0 = clock_ns(CLOCK_MONOTONIC), cpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    lock->release();
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    *wall_ms = (double)(clock_ns(CLOCK_MONOTONIC) - wall0) / 1e6;
    *cpu_ms = (double)(clock_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0) / 1e6;
    if (counter != started) {
        fprintf(stderr, "fmx-drain: %s: %ld acquisitions counted, %d expected\n", lock->name,
                counter, started);
        exit(1);
    }
    return started == threads;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, compare_doubles);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int parse_count(const char *arg, int max, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0' || v < 1 || v > max) {
        fprintf(stderr, "fmx-drain: bad %s '%s' (want 1 to %d)\n", what, arg, max);
        exit(2);
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    if (argc > 3) {
        fprintf(stderr, "usage: fmx-drain [THREADS [ROUNDS]]\n");
        return 2;
    }
    int threads = argc > 1 ? parse_count(argv[1], 100000, "thread count") : 10000;
    int rounds = argc > 2 ? parse_count(argv[2], MAX_ROUNDS, "round count") : 3;
    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    if (tids == NULL) {
        fprintf(stderr, "fmx-drain: out of memory\n");
        return 1;
    }
    enum { NLOCKS = sizeof locks / sizeof locks[0] };
    double wall[NLOCKS][MAX_ROUNDS], cpu[NLOCKS][MAX_ROUNDS];
    printf("%d threads queued on one held mutex, then released; %d rounds\n", threads, rounds);
    for (int r = 0; r < rounds; r++)
        for (int l = 0; l < NLOCKS; l++) {
            if (!drain_once(&locks[l], threads, tids, &wall[l][r], &cpu[l][r])) {
                fprintf(stderr, "fmx-drain: could not start %d threads\n", threads);
                return 1;
            }
            printf("round %d  %-16s drain %8.1f ms wall %8.1f ms CPU\n", r + 1, locks[l].name,
                   wall[l][r], cpu[l][r]);
            fflush(stdout);
        }
    double mw[NLOCKS], mc[NLOCKS];
    for (int l = 0; l < NLOCKS; l++) {
        mw[l] = median(wall[l], rounds);
        mc[l] = median(cpu[l], rounds);
        printf("median   %-16s drain %8.1f ms wall %8.1f ms CPU\n", locks[l].name, mw[l], mc[l]);
    }
    printf("fast_mutex_t / pthread_mutex_t: wall %.2fx, CPU %.2fx\n", mw[1] / mw[0], mc[1] / mc[0]);
    free(tids);
    return 0;
}
