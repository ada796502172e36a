/* fmx-bench: the verdict of every cell of the grid, and the goals of issue
 * 17 checked over them.
 *
 * A round runs every lock back to back, so the runs of one round met the
 * same machine: the verdict of a cell comes from the rounds paired by
 * round.  Its ratio is the median of the per-round ratios fastmutex /
 * strongest peer (the peer with the highest median throughput in the
 * cell), and its 95% interval a percentile bootstrap of that median over
 * the rounds.  Ahead when the interval lies above 1, behind when it lies
 * below, a tie only when it contains 1.  Every number printed here is
 * computed from the runs of this program; nothing is typed in. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Resamples of the bootstrap: enough that the interval's ends move by less
 * than the rounds' own spread from one program run to the next. */
#define BOOTSTRAP_RESAMPLES 4000
/* The goals of issue 17. */
#define GOAL_SHARE_NOT_BEHIND 0.90
#define GOAL_WORST_RATIO 0.90
#define GOAL_JAIN 0.95

enum verdict_kind { AHEAD, TIE, BEHIND };

static const char *const verdict_names[] = {"ahead", "tie", "behind"};

struct verdict {
    int peer; /* the strongest peer; -1 when the cell has none */
    double ratio, low, high;
    enum verdict_kind kind;
};

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_sorted(const double *v, unsigned n)
{
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double median(const double *values, unsigned n)
{
    double v[MAX_ROUNDS];
    memcpy(v, values, n * sizeof *v);
    qsort(v, n, sizeof *v, compare_doubles);
    return median_sorted(v, n);
}

/* xorshift64*: the same resamples in every program run, so that a verdict
 * changes only when the measurements do. */
static uint64_t next_random(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 2685821657736338717u;
}

/* The median of `ratios` and its 95% percentile-bootstrap interval. */
static void bootstrap_median(const double *ratios, unsigned n, double *mid, double *low,
                             double *high)
{
    static double medians[BOOTSTRAP_RESAMPLES];
    uint64_t state = 0x2545f4914f6cdd1du;
    double sample[MAX_ROUNDS];
    for (unsigned b = 0; b < BOOTSTRAP_RESAMPLES; b++) {
        for (unsigned i = 0; i < n; i++)
            sample[i] = ratios[next_random(&state) % n];
        medians[b] = median(sample, n);
    }
    qsort(medians, BOOTSTRAP_RESAMPLES, sizeof *medians, compare_doubles);
    *mid = median(ratios, n);
    *low = medians[(unsigned)(0.025 * BOOTSTRAP_RESAMPLES)];
    *high = medians[(unsigned)(0.975 * BOOTSTRAP_RESAMPLES) - 1];
}

/* The paired verdict of `mine` against `theirs`, over `rounds` rounds. */
static struct verdict versus(const struct summary *mine, const struct summary *theirs,
                             unsigned rounds)
{
    double ratios[MAX_ROUNDS];
    for (unsigned r = 0; r < rounds; r++)
        ratios[r] = mine->round_ops[r] / theirs->round_ops[r];
    struct verdict v = {.peer = -1};
    bootstrap_median(ratios, rounds, &v.ratio, &v.low, &v.high);
    v.kind = v.low > 1 ? AHEAD : v.high < 1 ? BEHIND : TIE;
    return v;
}

static int lock_named(const struct options *o, const char *name)
{
    for (unsigned l = 0; l < o->n_locks; l++)
        if (strcmp(o->locks[l]->name, name) == 0)
            return (int)l;
    return -1;
}

/* The peer with the highest median throughput in the cell, -1 if none. */
static int strongest_peer(const struct options *o, const struct summary *by_lock)
{
    int best = -1;
    for (unsigned l = 0; l < o->n_locks; l++)
        if (o->locks[l]->peer && by_lock[l].ran &&
            (best < 0 || by_lock[l].median.ops_per_sec > by_lock[best].median.ops_per_sec))
            best = (int)l;
    return best;
}

static struct verdict cell_verdict(const struct options *o, const struct summary *by_lock, int me)
{
    int peer = strongest_peer(o, by_lock);
    if (me < 0 || peer < 0 || !by_lock[me].ran)
        return (struct verdict){.peer = -1};
    struct verdict v = versus(&by_lock[me], &by_lock[peer], o->rounds);
    v.peer = peer;
    return v;
}

/* A peer that beats fastmutex by the interval rule and also has the lower
 * median max wait: the max-wait goal fails in that cell.  -1 if none. */
static int max_wait_beaten_by(const struct options *o, const struct summary *by_lock, int me)
{
    for (unsigned l = 0; l < o->n_locks; l++) {
        if (!o->locks[l]->peer || !by_lock[l].ran)
            continue;
        struct verdict v = versus(&by_lock[me], &by_lock[l], o->rounds);
        if (v.kind == BEHIND && by_lock[l].median.wait_max_ns < by_lock[me].median.wait_max_ns)
            return (int)l;
    }
    return -1;
}

/* One contended cell, judged. */
struct cell {
    const struct workload *w;
    unsigned threads;
    struct verdict v;
    double jain, wait_max_ns;
    int max_wait_peer;
};

static int by_ratio(const void *a, const void *b)
{
    const struct cell *x = a, *y = b;
    return compare_doubles(&x->v.ratio, &y->v.ratio);
}

static struct cell judge(const struct options *o, const struct summary *by_lock,
                         const struct workload *w, unsigned threads)
{
    int me = lock_named(o, "fastmutex");
    struct cell c = {.w = w, .threads = threads, .v = cell_verdict(o, by_lock, me)};
    if (c.v.peer < 0)
        return c;
    c.jain = by_lock[me].median.jain;
    c.wait_max_ns = by_lock[me].median.wait_max_ns;
    c.max_wait_peer = threads > 1 ? max_wait_beaten_by(o, by_lock, me) : -1;
    return c;
}

static void write_cell(FILE *csv, const struct options *o, const struct cell *c)
{
    fprintf(csv, "%s,%.0f,%.0f,%u,%s,%.4f,%.4f,%.4f,%s,%.4f,%.0f,%s", c->w->name,
            c->w->cs_extra_ns, c->w->private_ns, c->threads, o->locks[c->v.peer]->name,
            c->v.ratio, c->v.low, c->v.high, verdict_names[c->v.kind], c->jain, c->wait_max_ns,
            c->max_wait_peer < 0 ? "" : o->locks[c->max_wait_peer]->name);
    fputc('\n', csv);
}

static void say_cell(const struct options *o, const struct cell *c)
{
    say("%-15s %3u  %.3fx [%.3f, %.3f] %-6s %-16s jain %.3f%s", c->w->name, c->threads,
        c->v.ratio, c->v.low, c->v.high, verdict_names[c->v.kind], o->locks[c->v.peer]->name,
        c->jain, c->threads > 1 && c->jain < GOAL_JAIN ? " LOW" : "");
    if (c->max_wait_peer >= 0)
        say("  max wait beaten by %s", o->locks[c->max_wait_peer]->name);
    say("\n");
}

/* The uncontended goals: within 1.05x futex3's time, below pthread's. */
static void say_uncontended(const struct options *o, results_t results)
{
    int me = lock_named(o, "fastmutex"), futex3 = lock_named(o, "futex3"),
        pthread = lock_named(o, "pthread");
    for (unsigned wi = 0; wi < o->n_workloads; wi++) {
        if (!o->workloads[wi]->uncontended || me < 0)
            continue;
        const struct summary *by_lock = results[wi][0];
        double mine = by_lock[me].median.ns_per_op;
        say("uncontended: fastmutex %.2f ns/pair", mine);
        if (futex3 >= 0) {
            double ratio = mine / by_lock[futex3].median.ns_per_op;
            say("; %.3fx futex3's time (goal <= 1.05: %s)", ratio, ratio <= 1.05 ? "met" : "NOT met");
        }
        if (pthread >= 0) {
            double ratio = mine / by_lock[pthread].median.ns_per_op;
            say("; %.3fx pthread's (goal < 1: %s)", ratio, ratio < 1 ? "met" : "NOT met");
        }
        say("\n");
    }
}

/* The counts over the grid and whether each goal is met. */
static void say_goals(const struct cell *cells, unsigned n)
{
    unsigned count[3] = {0}, below = 0, unfair = 0;
    unsigned judged_fair = 0, waits = 0;
    for (unsigned i = 0; i < n; i++) {
        count[cells[i].v.kind]++;
        below += cells[i].v.ratio < GOAL_WORST_RATIO;
        if (cells[i].threads > 1) {
            judged_fair++;
            unfair += cells[i].jain < GOAL_JAIN;
        }
        waits += cells[i].max_wait_peer >= 0;
    }
    double not_behind = n ? (double)(count[AHEAD] + count[TIE]) / n : 0;
    say("grid: %u cells: ahead %u, tie %u, behind %u (ahead or tied: %.1f%%, goal >= %.0f%%: "
        "%s)\n",
        n, count[AHEAD], count[TIE], count[BEHIND], 100 * not_behind, 100 * GOAL_SHARE_NOT_BEHIND,
        not_behind >= GOAL_SHARE_NOT_BEHIND ? "met" : "NOT met");
    say("cells below %.2fx the strongest peer: %u (goal 0: %s)\n", GOAL_WORST_RATIO, below,
        below == 0 ? "met" : "NOT met");
    say("cells with 2+ threads and Jain's index below %.2f: %u of %u (goal 0: %s)\n", GOAL_JAIN,
        unfair, judged_fair, unfair == 0 ? "met" : "NOT met");
    say("cells where a peer is ahead by the interval rule with a lower max wait: %u (goal 0: %s)\n",
        waits, waits == 0 ? "met" : "NOT met");
}

void print_verdicts(const struct options *o, results_t results, FILE *csv)
{
    static struct cell cells[MAX_WORKLOADS * MAX_THREAD_COUNTS];
    unsigned n = 0;
    say("\n== fastmutex against the goals of issue 17 (paired by round, %u rounds) ==\n",
        o->rounds);
    say_uncontended(o, results);
    if (csv != NULL)
        fprintf(csv, "workload,cs_ns,private_ns,threads,peer,ratio,ci_low,ci_high,verdict,jain,"
                     "wait_max_ns,max_wait_beaten_by\n");
    for (unsigned wi = 0; wi < o->n_workloads; wi++) {
        const struct workload *w = o->workloads[wi];
        if (w->uncontended)
            continue;
        for (unsigned ti = 0; ti < o->n_thread_counts; ti++) {
            struct cell c = judge(o, results[wi][ti], w, o->thread_counts[ti]);
            if (c.v.peer < 0)
                continue;
            if (csv != NULL)
                write_cell(csv, o, &c);
            cells[n++] = c;
        }
    }
    if (n == 0)
        return;
    qsort(cells, n, sizeof *cells, by_ratio);
    say("every cell, the worst first: ratio to the strongest peer [95%% interval], verdict\n");
    for (unsigned i = 0; i < n; i++)
        say_cell(o, &cells[i]);
    say_goals(cells, n);
}
