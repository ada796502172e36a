/* Three busy threads and no lock on this 2-CPU machine, for 0.1 s (a
 * grid run's length): how many loops each made and on which CPU it ran
 * (sched_getcpu() at every loop), and Jain's index of the loop counts.
 * bench/README.md, "Three threads on two CPUs".
 *   cc -O2 -pthread bench/results/ab/ab10-three-threads.c -o three && ./three */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

static atomic_int stop;
static long loops[3], on_cpu[3][2];

static void *run(void *arg)
{
    long i = (long)arg;
    volatile unsigned x = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        for (int k = 0; k < 1000; k++)
            x += k;
        loops[i]++;
        int cpu = sched_getcpu();
        if (cpu == 0 || cpu == 1)
            on_cpu[i][cpu]++;
    }
    return NULL;
}

int main(void)
{
    pthread_t t[3];
    for (long i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, run, (void *)i);
    usleep(100000);
    atomic_store(&stop, 1);
    double sum = 0, squares = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        sum += loops[i];
        squares += (double)loops[i] * loops[i];
        printf("thread %d: %ld loops, %ld on cpu 0, %ld on cpu 1\n", i, loops[i], on_cpu[i][0],
               on_cpu[i][1]);
    }
    printf("Jain's index %.3f\n", sum * sum / (3 * squares));
    return 0;
}
