/* fmx-bench: the clock, the histograms, the threads' context switches. */
#include <math.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"

static double ns_per_tick = 1.0;

double bench_ns_per_tick(void)
{
    return ns_per_tick;
}

uint64_t bench_thread_switches(void)
{
    struct rusage usage;
    if (getrusage(RUSAGE_THREAD, &usage) != 0)
        return 0;
    return (uint64_t)usage.ru_nvcsw + (uint64_t)usage.ru_nivcsw;
}

static uint64_t monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* Sets the tick length from the TSC's progress over 50 ms of the monotonic
 * clock; a sleep is enough, since the TSC runs at a constant rate. */
void bench_calibrate_ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
    uint64_t ns0 = monotonic_ns(), ticks0 = bench_ticks();
    struct timespec pause = {0, 50 * 1000 * 1000};
    while (nanosleep(&pause, &pause) != 0)
        continue;
    uint64_t ns1 = monotonic_ns(), ticks1 = bench_ticks();
    if (ticks1 > ticks0)
        ns_per_tick = (double)(ns1 - ns0) / (double)(ticks1 - ticks0);
#endif
}

void bench_histogram_merge(struct bench_histogram *into, const struct bench_histogram *from)
{
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
        into->count[i] += from->count[i];
    into->samples += from->samples;
    if (from->max > into->max)
        into->max = from->max;
}

/* The smallest value of bucket `index`, and the bucket's width. */
static void bucket_bounds(unsigned index, uint64_t *low, uint64_t *width)
{
    if (index < BENCH_HIST_SUB) {
        *low = index;
        *width = 1;
        return;
    }
    unsigned shift = index / BENCH_HIST_SUB - 1;
    uint64_t sub = index % BENCH_HIST_SUB;
    *low = (BENCH_HIST_SUB + sub) << shift;
    *width = (uint64_t)1 << shift;
}

uint64_t bench_histogram_quantile(const struct bench_histogram *h, double q)
{
    if (h->samples == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)h->samples);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen >= rank) {
            uint64_t low, width;
            bucket_bounds(i, &low, &width);
            uint64_t middle = low + width / 2;
            return middle < h->max ? middle : h->max;
        }
    }
    return h->max;
}
