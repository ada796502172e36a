/* fmx-bench: how far apart two CPUs are at the moment.
 *
 * The machine this project runs on is a virtual one, and now and then its
 * host places the two vCPUs so that a cache line written by one takes
 * 100-300 ns to reach the other instead of 25-50 (bench/README.md).  That
 * changes for seconds to minutes at a time, and every lock that passes
 * between the CPUs slows down with it, some far more than others.  So
 * between contended runs the program times a line bouncing between the
 * first two CPUs it may run on, and the table says which rounds ran with
 * the CPUs far apart and compares the locks over rounds that ran alike. */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "harness.h"

enum { PROBE_TRIPS = 256, PROBE_BATCHES = 7 };

static struct {
    alignas(BENCH_CACHE_LINE) _Atomic unsigned ball;
} court;

struct player {
    int cpu;
    bool serves; /* plays the even balls, and its batch times are the ones kept */
    bool pinned;
    double trip_ns[PROBE_BATCHES];
};

static void *play(void *arg)
{
    struct player *p = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(p->cpu, &set);
    p->pinned = pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
    /* Both play every ball even when pinning failed, so neither waits
     * forever; the result is then not used. */
    for (unsigned b = 0; b < PROBE_BATCHES; b++) {
        uint64_t start = bench_ticks();
        for (unsigned t = 0; t < PROBE_TRIPS; t++) {
            unsigned n = 2 * (b * PROBE_TRIPS + t);
            unsigned mine = p->serves ? n : n + 1;
            while (atomic_load_explicit(&court.ball, memory_order_acquire) != mine)
                ;
            atomic_store_explicit(&court.ball, mine + 1, memory_order_release);
        }
        p->trip_ns[b] = (double)(bench_ticks() - start) * bench_ns_per_tick() / PROBE_TRIPS / 2;
    }
    return NULL;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double probe_line_ns(void)
{
    /* The first two CPUs this process may run on.  With fewer there is
     * nothing to measure, and two threads waiting for each other's stores
     * on one CPU would take a time slice a ball. */
    cpu_set_t allowed;
    int cpus[2], found = 0;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
        return NAN;
    for (int cpu = 0; cpu < CPU_SETSIZE && found < 2; cpu++)
        if (CPU_ISSET(cpu, &allowed))
            cpus[found++] = cpu;
    if (found < 2)
        return NAN;
    struct player server = {.cpu = cpus[0], .serves = true}, receiver = {.cpu = cpus[1]};
    pthread_t threads[2];
    atomic_store(&court.ball, 0);
    if (pthread_create(&threads[0], NULL, play, &server) != 0)
        return NAN;
    if (pthread_create(&threads[1], NULL, play, &receiver) != 0) {
        /* The server would wait for its partner forever. */
        fail("cannot start the CPU probe's second thread");
    }
    pthread_join(threads[0], NULL);
    pthread_join(threads[1], NULL);
    if (!server.pinned || !receiver.pinned)
        return NAN;
    /* The median batch: a batch stretched by preemption is left out. */
    qsort(server.trip_ns, PROBE_BATCHES, sizeof server.trip_ns[0], by_value);
    return server.trip_ns[PROBE_BATCHES / 2];
}
