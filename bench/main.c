/* fmx-bench: fastmutex side by side with the mutexes a C programmer would
 * pick instead, in one run on one machine.
 *
 * For each workload and thread count, every lock runs once per round, in an
 * order rotated from round to round so that no lock always follows the same
 * neighbour, for several rounds; the table and the CSV give the median of
 * the rounds and their spread.  See bench/README.md for what each workload
 * is and how to read the results.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

/* ---- The locks and the workloads ---------------------------------------- */

static const struct bench_lock *const all_locks[] = {
    &bench_lock_fastmutex,
    &bench_lock_fastmutex_nodiag,
    &bench_lock_fastmutex_prehook,
    &bench_lock_futex3,
    &bench_lock_pthread,
    &bench_lock_pthread_adaptive,
#ifdef FMX_BENCH_HAVE_NSYNC
    &bench_lock_nsync,
#endif
#ifdef FMX_BENCH_HAVE_CK
    &bench_lock_ck_ticket,
    &bench_lock_ck_mcs,
#endif
#ifdef FMX_BENCH_HAVE_ABSL
    &bench_lock_absl,
#endif
#ifdef FMX_BENCH_HAVE_PARKING_LOT
    &bench_lock_parking_lot,
#endif
};
#define ALL_LOCKS (sizeof all_locks / sizeof all_locks[0])

/* The grid: every critical section length with every length of private
 * work between acquires, each at every thread count, plus the uncontended
 * loop.  Named csC-pwP, C and P in nanoseconds.  The critical section
 * increments one shared line, then spends its time in writes scattered
 * over all eight (bench_critical_section()), so longer sections also touch
 * more shared lines. */
static const double grid_cs_ns[] = {0, 25, 100, 400, 2000};
static const double grid_private_ns[] = {0, 100, 1000, 10000};
#define GRID_CS (sizeof grid_cs_ns / sizeof grid_cs_ns[0])
#define GRID_PRIVATE (sizeof grid_private_ns / sizeof grid_private_ns[0])
#define ALL_WORKLOADS (1 + GRID_CS * GRID_PRIVATE)
static struct workload all_workloads[ALL_WORKLOADS];

/* The --quick subset: one cell from each corner of the grid that behaves
 * differently (short and long sections, little and much private work). */
static const char quick_workloads[] = "uncontended,cs0-pw0,cs100-pw1000,cs2000-pw100";

/* Cells off the grid, named on the command line (csC-pwP with any C and P
 * up to OFF_GRID_MAX_NS): a policy fitted to the grid shows there. */
static struct workload off_grid_workloads[MAX_WORKLOADS];
static unsigned n_off_grid;
#define OFF_GRID_MAX_NS 1000000u

static void make_workload(struct workload *w, double cs_ns, double private_ns)
{
    snprintf(w->name, sizeof w->name, "cs%.0f-pw%.0f", cs_ns, private_ns);
    snprintf(w->description, sizeof w->description,
             "critical section ~%.0f ns on 1 to 8 shared lines; ~%.0f ns private work", cs_ns,
             private_ns);
    w->cs_lines = 1;
    w->cs_extra_ns = cs_ns;
    w->private_ns = private_ns;
}

static void build_grid(void)
{
    struct workload *w = all_workloads;
    snprintf(w->name, sizeof w->name, "uncontended");
    snprintf(w->description, sizeof w->description,
             "one thread locks and unlocks its own lock, a second thread sleeps");
    w->uncontended = true;
    for (unsigned c = 0; c < GRID_CS; c++)
        for (unsigned p = 0; p < GRID_PRIVATE; p++)
            make_workload(++w, grid_cs_ns[c], grid_private_ns[p]);
}

_Static_assert(ALL_LOCKS <= MAX_LOCKS, "raise MAX_LOCKS");
_Static_assert(ALL_WORKLOADS <= MAX_WORKLOADS, "raise MAX_WORKLOADS");

/* ---- Options ------------------------------------------------------------- */

static const char usage[] =
    "usage: fmx-bench [--quick] [--duration SECONDS] [--share MS] [--rounds N]\n"
    "                 [--threads N,N,...] [--locks NAME,...] [--workloads NAME,...]\n"
    "                 [--out DIR]\n"
    "       fmx-bench --list-locks | --list-workloads | --help\n"
    "\n"
    "Runs every lock in every workload and thread count, R rounds in rotated order,\n"
    "and prints the medians.  --out DIR also writes DIR/results.csv, DIR/runs.csv\n"
    "(every run), DIR/table.txt and DIR/machine.txt; bench/plot.sh DIR draws the\n"
    "charts from them.\n"
    "A run lasts --duration seconds, or longer when it has more threads than CPUs:\n"
    "long enough for each thread's share of the CPUs to come to --share ms.\n"
    "Defaults: --duration 0.1 --share 5 --rounds 5 --threads 1,2,3,4,8,16,64, every lock\n"
    "but fastmutex's variants, the whole grid.  --quick (the CI smoke test): --duration\n"
    "0.02 --share 0 --rounds 3 --threads 1,2,16 and workloads %s.\n"
    "--workloads takes cells off the grid too: csC-pwP, any C and P in ns up to 1000000.\n"
    "A lock that never sleeps (a spinlock) runs only where the threads have a CPU each.\n";

/* Reports bad usage in one line and exits with status 2. */
static _Noreturn __attribute__((format(printf, 1, 2))) void bad_usage(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fputs("fmx-bench: ", stderr);
    vfprintf(stderr, format, args);
    fputs(" (see fmx-bench --help)\n", stderr);
    va_end(args);
    exit(2);
}

static const struct bench_lock *find_lock(const char *name, size_t length)
{
    for (unsigned i = 0; i < ALL_LOCKS; i++)
        if (strlen(all_locks[i]->name) == length && strncmp(all_locks[i]->name, name, length) == 0)
            return all_locks[i];
    return NULL;
}

static const struct workload *find_workload(const char *name, size_t length)
{
    for (unsigned i = 0; i < ALL_WORKLOADS; i++)
        if (strlen(all_workloads[i].name) == length &&
            strncmp(all_workloads[i].name, name, length) == 0)
            return &all_workloads[i];
    return NULL;
}

/* Reads the decimal number of nanoseconds at `text` (digits only, at most
 * OFF_GRID_MAX_NS) into *ns; returns the end of it, or NULL. */
static const char *parse_off_grid_ns(const char *text, unsigned *ns)
{
    if (!isdigit((unsigned char)*text))
        return NULL;
    errno = 0;
    char *end;
    unsigned long value = strtoul(text, &end, 10);
    if (errno != 0 || value > OFF_GRID_MAX_NS)
        return NULL;
    *ns = (unsigned)value;
    return end;
}

/* A cell off the grid for a name csC-pwP (decimal nanoseconds, each at
 * most OFF_GRID_MAX_NS); NULL for any other name. */
static const struct workload *off_grid_workload(const char *name, size_t length)
{
    char text[sizeof off_grid_workloads[0].name];
    unsigned cs, private_ns;
    if (length >= sizeof text)
        return NULL;
    memcpy(text, name, length);
    text[length] = '\0';
    const char *end = strncmp(text, "cs", 2) == 0 ? parse_off_grid_ns(text + 2, &cs) : NULL;
    if (end == NULL || strncmp(end, "-pw", 3) != 0 ||
        (end = parse_off_grid_ns(end + 3, &private_ns)) == NULL || *end != '\0')
        return NULL;
    /* By its canonical name, so that cs025-pw0 is the grid's cs25-pw0. */
    struct workload made = {0};
    make_workload(&made, cs, private_ns);
    const struct workload *known = find_workload(made.name, strlen(made.name));
    for (unsigned i = 0; known == NULL && i < n_off_grid; i++)
        if (strcmp(off_grid_workloads[i].name, made.name) == 0)
            known = &off_grid_workloads[i];
    if (known != NULL || n_off_grid == MAX_WORKLOADS)
        return known;
    off_grid_workloads[n_off_grid] = made;
    return &off_grid_workloads[n_off_grid++];
}

static bool lock_available(const struct bench_lock *lock)
{
    return lock->available == NULL || lock->available();
}

static void parse_thread_counts(struct options *o, const char *text)
{
    o->n_thread_counts = 0;
    const char *p = text;
    for (;;) {
        char *end;
        errno = 0;
        unsigned long n = strtoul(p, &end, 10);
        if (!isdigit((unsigned char)*p) || errno != 0 || n < 1 || n > MAX_THREADS ||
            (*end != ',' && *end != '\0'))
            bad_usage("--threads: expected a list of thread counts from 1 to %d, got '%s'",
                      MAX_THREADS, text);
        if (o->n_thread_counts == MAX_THREAD_COUNTS)
            bad_usage("--threads: at most %d thread counts, got '%s'", MAX_THREAD_COUNTS, text);
        o->thread_counts[o->n_thread_counts++] = (unsigned)n;
        if (*end == '\0')
            break;
        p = end + 1;
    }
}

static void parse_locks(struct options *o, const char *text)
{
    o->n_locks = 0;
    for (const char *p = text;;) {
        size_t length = strcspn(p, ",");
        const struct bench_lock *lock = find_lock(p, length);
        if (lock == NULL)
            bad_usage("--locks: unknown lock '%.*s' (fmx-bench --list-locks shows them)",
                      (int)length, p);
        if (!lock_available(lock))
            bad_usage("--locks: %s cannot run on this machine", lock->name);
        for (unsigned i = 0; i < o->n_locks; i++)
            if (o->locks[i] == lock)
                bad_usage("--locks: '%s' is listed twice", lock->name);
        o->locks[o->n_locks++] = lock;
        if (p[length] == '\0')
            break;
        p += length + 1;
    }
}

static void parse_workloads(struct options *o, const char *text)
{
    o->n_workloads = 0;
    for (const char *p = text;;) {
        size_t length = strcspn(p, ",");
        if (o->n_workloads == MAX_WORKLOADS)
            bad_usage("--workloads: at most %d workloads, got '%s'", MAX_WORKLOADS, text);
        const struct workload *workload = find_workload(p, length);
        if (workload == NULL)
            workload = off_grid_workload(p, length);
        if (workload == NULL)
            bad_usage("--workloads: unknown workload '%.*s' (fmx-bench --list-workloads "
                      "shows the grid; any csC-pwP with C and P in ns up to %u runs too)",
                      (int)length, p, OFF_GRID_MAX_NS);
        for (unsigned i = 0; i < o->n_workloads; i++)
            if (o->workloads[i] == workload)
                bad_usage("--workloads: '%s' is listed twice", workload->name);
        o->workloads[o->n_workloads++] = workload;
        if (p[length] == '\0')
            break;
        p += length + 1;
    }
}

/* Reads all of `value` as a real number; false if it is not one. */
static bool parse_real(const char *value, double *number)
{
    char *end;
    errno = 0;
    *number = strtod(value, &end);
    return end != value && *end == '\0' && errno == 0;
}

static void parse_options(int argc, char **argv, struct options *o)
{
    bool quick = false;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--quick") == 0)
            quick = true;

    o->duration = quick ? 0.02 : 0.1;
    o->share = quick ? 0 : 0.005;
    o->rounds = quick ? 3 : 5;
    parse_thread_counts(o, quick ? "1,2,16" : "1,2,3,4,8,16,64");
    o->n_locks = 0;
    for (unsigned i = 0; i < ALL_LOCKS; i++)
        if (!lock_available(all_locks[i]))
            fprintf(stderr, "fmx-bench: skipping %s: it cannot run on this machine\n",
                    all_locks[i]->name);
        else if (all_locks[i]->peer || all_locks[i] == &bench_lock_fastmutex)
            o->locks[o->n_locks++] = all_locks[i];
    if (quick) {
        parse_workloads(o, quick_workloads);
    } else {
        o->n_workloads = ALL_WORKLOADS;
        for (unsigned i = 0; i < ALL_WORKLOADS; i++)
            o->workloads[i] = &all_workloads[i];
    }
    o->out_dir = NULL;

    for (int i = 1; i < argc; i++) {
        const char *option = argv[i];
        if (strcmp(option, "--quick") == 0)
            continue;
        if (strcmp(option, "--help") == 0) {
            printf(usage, quick_workloads);
            exit(0);
        }
        if (strcmp(option, "--list-locks") == 0) {
            for (unsigned j = 0; j < ALL_LOCKS; j++)
                if (lock_available(all_locks[j]))
                    printf("%s\n", all_locks[j]->name);
            exit(0);
        }
        if (strcmp(option, "--list-workloads") == 0) {
            for (unsigned j = 0; j < ALL_WORKLOADS; j++)
                printf("%s\n", all_workloads[j].name);
            exit(0);
        }
        static const char *const valued[] = {"--duration", "--share", "--rounds",   "--threads",
                                             "--locks",    "--workloads", "--out"};
        bool known = false;
        for (size_t j = 0; j < sizeof valued / sizeof valued[0]; j++)
            known |= strcmp(option, valued[j]) == 0;
        if (!known)
            bad_usage(strncmp(option, "--", 2) == 0 ? "unknown option '%s'" : "unexpected '%s'",
                      option);
        if (i + 1 >= argc)
            bad_usage("%s needs a value", option);
        const char *value = argv[++i];
        double number;
        if (strcmp(option, "--duration") == 0) {
            if (!parse_real(value, &number) || !(number > 0 && number <= 60))
                bad_usage("--duration: expected seconds in (0, 60], got '%s'", value);
            o->duration = number;
        } else if (strcmp(option, "--share") == 0) {
            if (!parse_real(value, &number) || !(number >= 0 && number <= 1000))
                bad_usage("--share: expected milliseconds in [0, 1000], got '%s'", value);
            o->share = number / 1000;
        } else if (strcmp(option, "--rounds") == 0) {
            char *end;
            errno = 0;
            unsigned long n = strtoul(value, &end, 10);
            if (!isdigit((unsigned char)value[0]) || *end != '\0' || errno != 0 || n < 1 ||
                n > MAX_ROUNDS)
                bad_usage("--rounds: expected a count from 1 to %d, got '%s'", MAX_ROUNDS, value);
            o->rounds = (unsigned)n;
        } else if (strcmp(option, "--threads") == 0) {
            parse_thread_counts(o, value);
        } else if (strcmp(option, "--locks") == 0) {
            parse_locks(o, value);
        } else if (strcmp(option, "--workloads") == 0) {
            parse_workloads(o, value);
        } else {
            if (value[0] == '\0')
                bad_usage("--out: expected a directory");
            o->out_dir = value;
        }
    }
}

/* ---- Main ---------------------------------------------------------------- */

/* How long a run of `threads` threads lasts: --duration, or longer when the
 * threads outnumber the CPUs, so that each thread's share of them comes to
 * --share.  In a shorter run a thread runs only a few of the scheduler's
 * time slices (of some milliseconds each), one more or one less of which
 * moves its count by a third: Jain's index then measures the scheduler
 * more than the lock (at 64 threads on 2 CPUs, 0.25 s gave every lock a
 * lower index than 1 or 2 s did, by 0.05 to 0.2). */
double run_seconds(const struct options *o, unsigned threads)
{
    double fair = (double)threads * o->share / (double)allowed_cpus();
    return fair > o->duration ? fair : o->duration;
}

unsigned allowed_cpus(void)
{
    /* taskset may leave the process fewer CPUs than the machine has. */
    cpu_set_t allowed;
    int cpus = sched_getaffinity(0, sizeof allowed, &allowed) == 0 ? CPU_COUNT(&allowed) : 1;
    return cpus > 0 ? (unsigned)cpus : 1u;
}

/* A spinlock's waiters never give their CPU away: with more threads than
 * CPUs a preempted holder stalls them all, and every run of the earlier
 * benchmark found it 30 to 300 times behind every sleeping lock there, its
 * runs lasting seconds past their end.  It cannot be the strongest peer in
 * such a cell, and would take most of the grid's time. */
bool lock_runs_in(const struct bench_lock *lock, unsigned threads)
{
    return !lock->never_sleeps || threads <= allowed_cpus();
}

static FILE *open_output(const char *dir, const char *name)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        fail("output path too long: %s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        fail("cannot write %s: %s", path, strerror(errno));
    return f;
}

static void close_output(FILE *f, const char *name)
{
    if (fclose(f) != 0)
        fail("cannot write %s: %s", name, strerror(errno));
}

/* Runs every lock of one cell for every round into runs[lock * rounds +
 * round].  Each round runs every lock once, starting one lock further on
 * than the round before, so that no lock always runs right after the same
 * neighbour or always first. */
static void run_rounds(const struct options *o, const struct workload *w,
                       const struct bench_work *work, unsigned threads, struct run_metrics *runs,
                       FILE *runs_csv)
{
    double probe = w->uncontended ? NAN : probe_line_ns();
    for (unsigned r = 0; r < o->rounds; r++)
        for (unsigned k = 0; k < o->n_locks; k++) {
            unsigned l = (k + r) % o->n_locks;
            struct run_metrics *m = &runs[l * o->rounds + r];
            if (!lock_runs_in(o->locks[l], threads))
                continue;
            if (w->uncontended) {
                run_uncontended(o->locks[l], o->duration, m);
                m->line_ns = NAN;
            } else {
                run_contended(o->locks[l], w, work, threads, run_seconds(o, threads), m);
                /* The CPUs can move apart or together within a run: the
                 * run counts as far if either end was. */
                double after = probe_line_ns();
                m->line_ns = isnan(probe) || isnan(after) ? NAN : fmax(probe, after);
                probe = after;
            }
            if (runs_csv != NULL)
                write_run(runs_csv, o->locks[l]->name, w, threads, r, m);
        }
}

/* The medians of one cell's rounds, by lock, printed as they come. */
static void summarize_cell(const struct options *o, const struct workload *w, unsigned threads,
                           const struct run_metrics *runs, struct summary *by_lock)
{
    for (unsigned l = 0; l < o->n_locks; l++) {
        if (lock_runs_in(o->locks[l], threads))
            by_lock[l] = summarize(&runs[l * o->rounds], o->rounds);
        else
            by_lock[l] = (struct summary){.ran = false};
        print_row(o->locks[l]->name, threads, w, &by_lock[l]);
    }
    print_comparison(o, w, by_lock);
}

int main(int argc, char **argv)
{
    struct options o;
    build_grid();
    parse_options(argc, argv, &o);

    FILE *csv = NULL, *machine = NULL, *runs_csv = NULL, *verdicts = NULL;
    if (o.out_dir != NULL) {
        if (mkdir(o.out_dir, 0777) != 0 && errno != EEXIST)
            fail("cannot create %s: %s", o.out_dir, strerror(errno));
        csv = open_output(o.out_dir, "results.csv");
        runs_csv = open_output(o.out_dir, "runs.csv");
        verdicts = open_output(o.out_dir, "verdicts.csv");
        write_runs_header(runs_csv);
        table_file = open_output(o.out_dir, "table.txt");
        machine = open_output(o.out_dir, "machine.txt");
    }

    bench_calibrate_ticks();
    calibrate_work();
    print_machine(stdout, &o);
    if (table_file != NULL)
        print_machine(table_file, &o);
    if (machine != NULL) {
        print_machine(machine, &o);
        close_output(machine, "machine.txt");
    }
    warm_up(&o);

    results_t *results = calloc(1, sizeof *results);
    struct run_metrics *runs = calloc((size_t)o.n_locks * o.rounds, sizeof *runs);
    if (results == NULL || runs == NULL)
        fail("out of memory");

    for (unsigned wi = 0; wi < o.n_workloads; wi++) {
        const struct workload *w = o.workloads[wi];
        struct bench_work work = work_of(w);
        print_workload_header(w);
        for (unsigned ti = 0; ti < thread_counts_of(&o, w); ti++) {
            unsigned threads = thread_count_of(&o, w, ti);
            run_rounds(&o, w, &work, threads, runs, runs_csv);
            summarize_cell(&o, w, threads, runs, (*results)[wi][ti]);
        }
    }
    print_verdicts(&o, *results, verdicts);
    char load[64];
    say("\nload average at the end: %s\n", load_average(load, sizeof load));

    if (csv != NULL) {
        write_csv(csv, &o, *results);
        close_output(csv, "results.csv");
        close_output(runs_csv, "runs.csv");
        close_output(verdicts, "verdicts.csv");
    }
    if (table_file != NULL)
        close_output(table_file, "table.txt");
    free(runs);
    free(results);
    return 0;
}
