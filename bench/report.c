/* fmx-bench: medians over rounds, the table on stdout, and the CSV (the
 * verdicts against the goals are in verdict.c).  Every number printed here is computed
 * from the runs of this program; nothing is typed in. */
#include <gnu/libc-version.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "harness.h"

FILE *table_file;

void say(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vprintf(format, args);
    va_end(args);
    if (table_file != NULL) {
        va_start(args, format);
        vfprintf(table_file, format, args);
        va_end(args);
    }
    fflush(stdout);
}

_Noreturn void fail(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fputs("fmx-bench: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    exit(1);
}

/* ---- Medians ------------------------------------------------------------- */

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The value at fraction q (0..1) of n sorted values, interpolated between
 * neighbours: q = 0.5 is the median; with 5 values, q = 0.25 and 0.75 are
 * the second and the fourth. */
static double quantile_of_sorted(const double *sorted, unsigned n, double q)
{
    double position = q * (n - 1);
    unsigned below = (unsigned)position;
    if (below + 1 >= n)
        return sorted[n - 1];
    return sorted[below] + (position - below) * (sorted[below + 1] - sorted[below]);
}

/* The median of n values, NAN ("does not apply") left out, NAN if all are;
 * also, when `spread` is not NULL, their minimum, quartiles and maximum.
 * Reorders the values. */
static double median_of(double *values, unsigned n, double spread[4])
{
    unsigned kept = 0;
    for (unsigned i = 0; i < n; i++)
        if (!isnan(values[i]))
            values[kept++] = values[i];
    if (kept == 0) {
        if (spread != NULL)
            spread[0] = spread[1] = spread[2] = spread[3] = NAN;
        return NAN;
    }
    qsort(values, kept, sizeof *values, compare_doubles);
    if (spread != NULL) {
        spread[0] = values[0];
        spread[1] = quantile_of_sorted(values, kept, 0.25);
        spread[2] = quantile_of_sorted(values, kept, 0.75);
        spread[3] = values[kept - 1];
    }
    return quantile_of_sorted(values, kept, 0.5);
}

struct summary summarize(const struct run_metrics *runs, unsigned n)
{
    struct summary s;
    double values[MAX_ROUNDS], ops[4], ns[4];
#define MEDIAN_OF(field, spread)                                                               \
    do {                                                                                       \
        for (unsigned i = 0; i < n; i++)                                                       \
            values[i] = runs[i].field;                                                         \
        s.median.field = median_of(values, n, spread);                                         \
    } while (0)
    MEDIAN_OF(ops_per_sec, ops);
    MEDIAN_OF(ns_per_op, ns);
    MEDIAN_OF(jain, NULL);
    MEDIAN_OF(count_min, NULL);
    MEDIAN_OF(count_max, NULL);
    MEDIAN_OF(wait_p50_ns, NULL);
    MEDIAN_OF(wait_p99_ns, NULL);
    MEDIAN_OF(wait_max_ns, NULL);
    MEDIAN_OF(contention, NULL);
    MEDIAN_OF(contended_share, NULL);
    MEDIAN_OF(switches_per_sec, NULL);
#undef MEDIAN_OF
    s.ops_min = ops[0];
    s.ops_q1 = ops[1];
    s.ops_q3 = ops[2];
    s.ops_max = ops[3];
    s.ns_min = ns[0];
    s.ns_max = ns[3];
    s.ran = true;
    s.far_rounds = 0;
    for (unsigned i = 0; i < n; i++) {
        s.round_ops[i] = runs[i].ops_per_sec;
        s.round_line_ns[i] = runs[i].line_ns;
        s.far_rounds += runs[i].line_ns > FAR_LINE_NS; /* NAN: not far */
    }
    return s;
}

/* ---- The machine --------------------------------------------------------- */

/* The 1-, 5- and 15-minute load averages from /proc/loadavg: how busy the
 * shared machine was, which the reader needs to judge the spread. */
const char *load_average(char *buf, size_t size)
{
    snprintf(buf, size, "unknown");
    FILE *f = fopen("/proc/loadavg", "r");
    if (f == NULL)
        return buf;
    double one, five, fifteen;
    if (fscanf(f, "%lf %lf %lf", &one, &five, &fifteen) == 3)
        snprintf(buf, size, "%.2f %.2f %.2f", one, five, fifteen);
    fclose(f);
    return buf;
}

void print_machine(FILE *f, const struct options *o)
{
    char load[64];
    char model[256] = "unknown";
    FILE *cpuinfo = fopen("/proc/cpuinfo", "r");
    if (cpuinfo != NULL) {
        char line[512];
        while (fgets(line, sizeof line, cpuinfo) != NULL) {
            char *colon = strchr(line, ':');
            if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
                snprintf(model, sizeof model, "%s", colon + 2);
                model[strcspn(model, "\n")] = '\0';
                break;
            }
        }
        fclose(cpuinfo);
    }
    struct utsname host;
    uname(&host);
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    fprintf(f, "date: %s\n", date);
    fprintf(f, "cpu: %s, %ld online CPUs\n", model, sysconf(_SC_NPROCESSORS_ONLN));
    fprintf(f, "system: %s %s, glibc %s\n", host.sysname, host.release, gnu_get_libc_version());
    fprintf(f, "run: %.3f s per run (%.0f ms of CPU a thread at least:", o->duration,
            o->share * 1000);
    for (unsigned i = 0; i < o->n_thread_counts; i++)
        fprintf(f, " %.3f s at %u%s", run_seconds(o, o->thread_counts[i]), o->thread_counts[i],
                i + 1 < o->n_thread_counts ? "," : ")");
    fprintf(f, ", %u rounds\n", o->rounds);
    fprintf(f, "work: private step %.2f ns, critical-section step %.2f ns, TSC tick %.4f ns\n",
            private_step_ns(), cs_step_ns(), bench_ns_per_tick());
    fprintf(f, "load average at start: %s\n", load_average(load, sizeof load));
    fprintf(f, "cache line from one CPU to another: %.0f ns\n", probe_line_ns());
    fprintf(f, "fast paths:");
    for (unsigned i = 0; i < o->n_locks; i++)
        fprintf(f, "%s %s (%s)", i == 0 ? "" : ",", o->locks[i]->name, o->locks[i]->fast_path);
    fputc('\n', f);
}

/* ---- The table ----------------------------------------------------------- */

/* Nanoseconds as a short string: 850ns, 12.3us, 4.56ms, or "-". */
static const char *human_ns(double ns, char *buf, size_t size)
{
    if (isnan(ns))
        snprintf(buf, size, "-");
    else if (ns < 1e3)
        snprintf(buf, size, "%.0fns", ns);
    else if (ns < 1e6)
        snprintf(buf, size, "%.1fus", ns / 1e3);
    else
        snprintf(buf, size, "%.2fms", ns / 1e6);
    return buf;
}

/* A rate as a short string: 12.34M, 95.1k, 312. */
static const char *human_rate(double rate, char *buf, size_t size)
{
    if (rate >= 1e6)
        snprintf(buf, size, "%.2fM", rate / 1e6);
    else if (rate >= 1e3)
        snprintf(buf, size, "%.1fk", rate / 1e3);
    else
        snprintf(buf, size, "%.0f", rate);
    return buf;
}

void print_workload_header(const struct workload *w)
{
    say("\n== %s: %s ==\n", w->name, w->description);
    if (w->uncontended)
        say("  %-17s %12s  %-19s\n", "lock", "ns/pair", "(min-max)");
    else
        say("  %3s %-17s %8s %-17s %6s %17s %8s %8s %8s %9s  %s\n", "thr", "lock", "acq/s",
            "(min-max)", "jain", "per-thread", "wait p50", "p99", "max", "switch/s", "contention");
}

void print_row(const char *lock, unsigned threads, const struct workload *w,
               const struct summary *s)
{
    const struct run_metrics *m = &s->median;
    if (!s->ran) {
        say("  %3u %-17s skipped: it never sleeps, and the threads outnumber the CPUs\n",
            threads, lock);
        return;
    }
    if (w->uncontended) {
        say("  %-17s %12.2f  (%.2f-%.2f)\n", lock, m->ns_per_op, s->ns_min, s->ns_max);
        return;
    }
    char rate[16], low[16], high[16], spread[40], counts[40], p50[16], p99[16], max[16];
    char switches[16];
    char contention[48] = "";
    snprintf(spread, sizeof spread, "(%s-%s)", human_rate(s->ops_min, low, sizeof low),
             human_rate(s->ops_max, high, sizeof high));
    snprintf(counts, sizeof counts, "%.0f..%.0f", m->count_min, m->count_max);
    if (!isnan(m->contention))
        snprintf(contention, sizeof contention, "%.0f (%.1f%%)", m->contention,
                 100 * m->contended_share);
    say("  %3u %-17s %8s %-17s %6.3f %17s %8s %8s %8s %9s%s%s\n", threads, lock,
        human_rate(m->ops_per_sec, rate, sizeof rate), spread, m->jain, counts,
        human_ns(m->wait_p50_ns, p50, sizeof p50), human_ns(m->wait_p99_ns, p99, sizeof p99),
        human_ns(m->wait_max_ns, max, sizeof max),
        human_rate(m->switches_per_sec, switches, sizeof switches), contention[0] ? "  " : "",
        contention);
}

/* ---- fastmutex against the peers ----------------------------------------- */

static int lock_index(const struct options *o, const char *name)
{
    for (unsigned l = 0; l < o->n_locks; l++)
        if (strcmp(o->locks[l]->name, name) == 0)
            return (int)l;
    return -1;
}

/* The peer (any lock but fastmutex and its variants) with the highest median
 * throughput, and
 * the fairest one: highest Jain's index, ties broken by the lower max wait.
 * Both -1 when there is no peer. */
static void find_peers(const struct options *o, const struct summary *by_lock, int me,
                       int *best, int *fairest)
{
    *best = *fairest = -1;
    for (unsigned l = 0; l < o->n_locks; l++) {
        if ((int)l == me || !o->locks[l]->peer || !by_lock[l].ran)
            continue;
        const struct run_metrics *m = &by_lock[l].median;
        if (*best < 0 || m->ops_per_sec > by_lock[*best].median.ops_per_sec)
            *best = (int)l;
        const struct run_metrics *f = *fairest < 0 ? NULL : &by_lock[*fairest].median;
        if (f == NULL || m->jain > f->jain ||
            (m->jain == f->jain && m->wait_max_ns < f->wait_max_ns))
            *fairest = (int)l;
    }
}

void print_comparison(const struct options *o, const struct workload *w,
                      const struct summary *by_lock)
{
    int me = lock_index(o, "fastmutex"), best, fairest;
    find_peers(o, by_lock, me, &best, &fairest);
    if (me < 0 || best < 0)
        return;
    const struct run_metrics *mine = &by_lock[me].median;
    if (w->uncontended) {
        const char *separator = "";
        say("  => fastmutex takes");
        for (unsigned l = 0; l < o->n_locks; l++)
            if ((int)l != me && by_lock[l].ran) {
                say("%s %.2fx %s", separator, mine->ns_per_op / by_lock[l].median.ns_per_op,
                    o->locks[l]->name);
                separator = ",";
            }
        say(" (time per pair; below 1 is faster)\n");
        return;
    }
    int pthread = lock_index(o, "pthread");
    char mine_max[16], fair_max[16];
    say("  => fastmutex %.2fx the best peer (%s)",
        mine->ops_per_sec / by_lock[best].median.ops_per_sec, o->locks[best]->name);
    if (pthread >= 0)
        say(", %.2fx pthread", mine->ops_per_sec / by_lock[pthread].median.ops_per_sec);
    say("; jain %.3f vs the fairest peer's %.3f (%s); max wait %s vs %s\n", mine->jain,
        by_lock[fairest].median.jain, o->locks[fairest]->name,
        human_ns(mine->wait_max_ns, mine_max, sizeof mine_max),
        human_ns(by_lock[fairest].median.wait_max_ns, fair_max, sizeof fair_max));
    say("     CPUs far apart in %u of %u of fastmutex's runs\n", by_lock[me].far_rounds,
        o->rounds);
}

/* ---- The CSV ------------------------------------------------------------- */

/* A number for the CSV: an empty field when it does not apply. */
static void csv_number(FILE *csv, double value, const char *format)
{
    fputc(',', csv);
    if (!isnan(value))
        fprintf(csv, format, value);
}

/* The columns results.csv and runs.csv share, from one run's metrics or
 * from the medians of a cell's: fairness, waits and the contention count. */
static void csv_fairness_and_waits(FILE *csv, const struct run_metrics *m)
{
    csv_number(csv, m->jain, "%.4f");
    csv_number(csv, m->count_min, "%.0f");
    csv_number(csv, m->count_max, "%.0f");
    csv_number(csv, m->wait_p50_ns, "%.0f");
    csv_number(csv, m->wait_p99_ns, "%.0f");
    csv_number(csv, m->wait_max_ns, "%.0f");
    csv_number(csv, m->contention, "%.0f");
}

void write_runs_header(FILE *csv)
{
    fprintf(csv, "lock,workload,threads,round,ops_per_sec,ns_per_op,jain,count_min,count_max,"
                 "wait_p50_ns,wait_p99_ns,wait_max_ns,contention,line_ns,switches_per_sec\n");
}

void write_run(FILE *csv, const char *lock, const struct workload *w, unsigned threads,
               unsigned round, const struct run_metrics *m)
{
    fprintf(csv, "%s,%s,%u,%u", lock, w->name, threads, round + 1);
    csv_number(csv, m->ops_per_sec, "%.0f");
    csv_number(csv, m->ns_per_op, "%.2f");
    csv_fairness_and_waits(csv, m);
    csv_number(csv, m->line_ns, "%.0f");
    csv_number(csv, m->switches_per_sec, "%.0f");
    fputc('\n', csv);
}

void write_csv(FILE *csv, const struct options *o, results_t results)
{
    fprintf(csv, "lock,workload,threads,rounds,ops_per_sec_median,ops_per_sec_min,"
                 "ops_per_sec_max,ops_per_sec_q1,ops_per_sec_q3,ns_per_op_median,jain,count_min,count_max,wait_p50_ns,"
                 "wait_p99_ns,wait_max_ns,contention,contended_share,mutual_exclusion,"
                 "fast_path,far_rounds,switches_per_sec\n");
    for (unsigned wi = 0; wi < o->n_workloads; wi++) {
        const struct workload *w = o->workloads[wi];
        for (unsigned l = 0; l < o->n_locks; l++)
            for (unsigned ti = 0; ti < thread_counts_of(o, w); ti++) {
                const struct summary *s = &results[wi][ti][l];
                if (!s->ran)
                    continue;
                fprintf(csv, "%s,%s,%u,%u", o->locks[l]->name, w->name,
                        thread_count_of(o, w, ti), o->rounds);
                csv_number(csv, s->median.ops_per_sec, "%.0f");
                csv_number(csv, s->ops_min, "%.0f");
                csv_number(csv, s->ops_max, "%.0f");
                csv_number(csv, s->ops_q1, "%.0f");
                csv_number(csv, s->ops_q3, "%.0f");
                csv_number(csv, s->median.ns_per_op, "%.2f");
                csv_fairness_and_waits(csv, &s->median);
                csv_number(csv, s->median.contended_share, "%.4f");
                /* A run that broke mutual exclusion ends the program before
                 * any CSV is written; every row here passed the check. */
                fprintf(csv, ",ok,%s,%u", o->locks[l]->fast_path, s->far_rounds);
                csv_number(csv, s->median.switches_per_sec, "%.0f");
                fputc('\n', csv);
            }
    }
}
