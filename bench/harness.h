/* fmx-bench: what main.c, run.c and report.c share (the harness side; the
 * lock adapters see only bench.h). */
#ifndef FMX_BENCH_HARNESS_H
#define FMX_BENCH_HARNESS_H

#include <stdbool.h>
#include <stdio.h>

#include "bench.h"

#define MAX_LOCKS 16
#define MAX_WORKLOADS 24
#define MAX_THREAD_COUNTS 16
#define MAX_THREADS 1024
#define MAX_ROUNDS 100

/* A workload: how long the critical section and the private work between
 * acquires last, as nanosecond targets turned into step counts at start-up
 * (see work_of()). */
struct workload {
    char name[24];
    char description[96];
    bool uncontended;
    unsigned cs_lines;
    double cs_extra_ns;
    double private_ns;
};

/* What the command line asked for. */
struct options {
    double duration; /* seconds, the shortest run */
    double share;    /* seconds of CPU each thread gets in a run, at least */
    unsigned rounds;
    unsigned thread_counts[MAX_THREAD_COUNTS];
    unsigned n_thread_counts;
    const struct bench_lock *locks[MAX_LOCKS];
    unsigned n_locks;
    const struct workload *workloads[MAX_WORKLOADS];
    unsigned n_workloads;
    const char *out_dir;
};

/* What one run of one lock measured.  NAN marks a metric that does not
 * apply (wait times of the uncontended loop, contention of a lock that does
 * not count it). */
struct run_metrics {
    double ops_per_sec; /* acquisitions per second, all threads together */
    double ns_per_op;   /* wall time per acquisition (uncontended: per pair) */
    double jain;        /* Jain's index over per-thread acquisitions */
    double count_min, count_max;
    double wait_p50_ns, wait_p99_ns, wait_max_ns;
    double contention;      /* the lock's own count of acquires that waited */
    double contended_share; /* contention / acquisitions */
    double switches_per_sec; /* context switches of all its threads a second */
    double line_ns;         /* the slower of the CPU probes just before and just after
                             * the run (probe_line_ns()); NAN when not probed */
};

/* The rounds of one lock in one workload and thread count: medians of every
 * metric, and the spread of the throughput (minimum, quartiles, maximum). */
struct summary {
    bool ran; /* false: the lock was skipped in this cell (see lock_runs_in()) */
    struct run_metrics median;
    double ops_min, ops_q1, ops_q3, ops_max;
    double ns_min, ns_max;
    unsigned far_rounds; /* rounds run while the CPUs were far apart (FAR_LINE_NS) */
    double round_ops[MAX_ROUNDS];     /* each round's throughput, */
    double round_line_ns[MAX_ROUNDS]; /* and its probe, to compare rounds alike */
};

/* The summaries of a whole program run, by workload, thread count, lock. */
typedef struct summary results_t[MAX_WORKLOADS][MAX_THREAD_COUNTS][MAX_LOCKS];

/* Printing to stdout and, once opened, to table.txt alike. */
extern FILE *table_file;
void say(const char *format, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fail(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* run.c */
void calibrate_work(void);
double private_step_ns(void);
double cs_step_ns(void);
struct bench_work work_of(const struct workload *w);
void warm_up(const struct options *o);
/* How long a cache line takes to pass from one CPU to another at the
 * moment, in ns (the median of a few batches of round trips); NAN when the
 * process may run on only one CPU (probe.c). */
double probe_line_ns(void);
/* Above this the host has placed the CPUs far apart: the probe reads
 * 25-50 ns when they are near, 100-300 when far (probe.c). */
#define FAR_LINE_NS 80.0

/* How long a contended run of `threads` threads lasts (main.c). */
double run_seconds(const struct options *o, unsigned threads);
/* The CPUs this process may run on (main.c). */
unsigned allowed_cpus(void);
/* Whether `lock` runs with `threads` threads: a lock that never sleeps
 * runs only where every thread has a CPU of its own (main.c). */
bool lock_runs_in(const struct bench_lock *lock, unsigned threads);
void run_uncontended(const struct bench_lock *lock, double duration, struct run_metrics *m);
void run_contended(const struct bench_lock *lock, const struct workload *workload,
                   const struct bench_work *work, unsigned threads, double duration,
                   struct run_metrics *m);

/* report.c */
struct summary summarize(const struct run_metrics *runs, unsigned n);
const char *load_average(char *buf, size_t size);
void print_machine(FILE *f, const struct options *o);
void print_workload_header(const struct workload *w);
void print_row(const char *lock, unsigned threads, const struct workload *w,
               const struct summary *s);
void print_comparison(const struct options *o, const struct workload *w,
                      const struct summary *by_lock);
/* verdict.c: the grid's verdicts, paired by round (see there). */
void print_verdicts(const struct options *o, results_t results, FILE *csv);
void write_csv(FILE *csv, const struct options *o, results_t results);
/* runs.csv: every run as it ends, for analyses of one's own (pairing
 * rounds, say). */
void write_runs_header(FILE *csv);
void write_run(FILE *csv, const char *lock, const struct workload *w, unsigned threads,
               unsigned round, const struct run_metrics *m);

/* The thread counts a workload runs at: just 1 for the uncontended loop. */
static inline unsigned thread_count_of(const struct options *o, const struct workload *w,
                                       unsigned index)
{
    return w->uncontended ? 1 : o->thread_counts[index];
}

static inline unsigned thread_counts_of(const struct options *o, const struct workload *w)
{
    return w->uncontended ? 1 : o->n_thread_counts;
}

#endif /* FMX_BENCH_HARNESS_H */
