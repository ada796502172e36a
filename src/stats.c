/* The contention profile (FASTMUTEX_STATS=FILE), as Linux's lock_stat and
 * mutrace give it: per mutex and call site, how many acquisitions, how
 * many had to wait, the total and longest wait, the total and longest
 * hold; written to FILE when the process exits, sorted by total wait (as
 * JSON when FILE ends in ".json").
 *
 * A debugging mode: one process-wide lock guards a bounded table (past its
 * size, new mutex-and-site pairs are counted in one overflow row). */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define STATS_SLOTS 4096u /* a power of two: open addressing */

struct site_stats {
    const fast_mutex_t *m; /* NULL: free slot */
    const void *site;
    uint64_t acquisitions, contended;
    uint64_t wait_total_ns, wait_max_ns;
    uint64_t hold_total_ns, hold_max_ns;
};

static struct site_stats table[STATS_SLOTS];
static struct site_stats overflow; /* pairs past the table's size */
static uint32_t used;
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *out_path;

static void after_fork_in_child(void)
{
    pthread_mutex_init(&stats_lock, NULL);
}

/* The row of (m, site), made if new.  Stats lock held. */
static struct site_stats *row_of(const fast_mutex_t *m, const void *site)
{
    uint64_t h = ((uint64_t)(uintptr_t)m ^ ((uint64_t)(uintptr_t)site << 7)) * 0x9e3779b97f4a7c15ull;
    for (uint32_t i = (uint32_t)(h >> 40) & (STATS_SLOTS - 1), n = 0; n < STATS_SLOTS;
         i = (i + 1) & (STATS_SLOTS - 1), n++) {
        if (table[i].m == m && table[i].site == site)
            return &table[i];
        if (table[i].m == NULL && used < STATS_SLOTS / 2) {
            table[i].m = m;
            table[i].site = site;
            used++;
            return &table[i];
        }
    }
    return &overflow;
}

void fmx_stats_acquired(const fast_mutex_t *m, const void *site, uint64_t wait_ns, bool waited)
{
    pthread_mutex_lock(&stats_lock);
    struct site_stats *row = row_of(m, site);
    row->acquisitions++;
    if (waited) {
        row->contended++;
        row->wait_total_ns += wait_ns;
        if (wait_ns > row->wait_max_ns)
            row->wait_max_ns = wait_ns;
    }
    pthread_mutex_unlock(&stats_lock);
}

void fmx_stats_released(const fast_mutex_t *m, const void *site, uint64_t hold_ns)
{
    pthread_mutex_lock(&stats_lock);
    struct site_stats *row = row_of(m, site);
    row->hold_total_ns += hold_ns;
    if (hold_ns > row->hold_max_ns)
        row->hold_max_ns = hold_ns;
    pthread_mutex_unlock(&stats_lock);
}

static int by_total_wait(const void *a, const void *b)
{
    const struct site_stats *x = a, *y = b;
    if (x->wait_total_ns != y->wait_total_ns)
        return x->wait_total_ns < y->wait_total_ns ? 1 : -1;
    return x->acquisitions < y->acquisitions ? 1 : x->acquisitions > y->acquisitions ? -1 : 0;
}

void fmx_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

void fmx_site_text(const void *site, char *buf, size_t size)
{
    struct fmx_report r = {.len = 0};
    fmx_report_add_site(&r, site);
    size_t n = r.len < size - 1 ? r.len : size - 1;
    memcpy(buf, r.text, n);
    buf[n] = '\0';
}

static void write_row(FILE *f, const struct site_stats *s, bool json, bool first)
{
    char name[FMX_NAME_LEN] = "";
    char site[256] = "(other mutexes and sites)";
    if (s != &overflow) {
        fmx_name_of(s->m, name, sizeof name);
        fmx_site_text(s->site, site, sizeof site);
    }
    if (json) {
        fprintf(f, "%s\n  {\"mutex\": \"%p\", \"name\": ", first ? "" : ",", (const void *)s->m);
        fmx_json_string(f, name);
        fprintf(f, ", \"site\": ");
        fmx_json_string(f, site);
        fprintf(f,
                ", \"acquisitions\": %" PRIu64 ", \"contended\": %" PRIu64
                ", \"wait_total_ns\": %" PRIu64 ", \"wait_max_ns\": %" PRIu64
                ", \"hold_total_ns\": %" PRIu64 ", \"hold_max_ns\": %" PRIu64 "}",
                s->acquisitions, s->contended, s->wait_total_ns, s->wait_max_ns, s->hold_total_ns,
                s->hold_max_ns);
        return;
    }
    fprintf(f, "%12" PRIu64 " %10" PRIu64 " %14.1f %12.1f %14.1f %12.1f  %p %-16s %s\n",
            s->acquisitions, s->contended, s->wait_total_ns / 1e3, s->wait_max_ns / 1e3,
            s->hold_total_ns / 1e3, s->hold_max_ns / 1e3, (const void *)s->m,
            name[0] ? name : "-", site);
}

/* At exit: the table, sorted by total wait. */
static void write_profile(void)
{
    pthread_mutex_lock(&stats_lock);
    static struct site_stats rows[STATS_SLOTS + 1];
    size_t n = 0;
    for (uint32_t i = 0; i < STATS_SLOTS; i++)
        if (table[i].m != NULL)
            rows[n++] = table[i];
    pthread_mutex_unlock(&stats_lock);
    qsort(rows, n, sizeof rows[0], by_total_wait);
    FILE *f = fopen(out_path, "w");
    if (f == NULL) {
        fprintf(stderr, "fastmutex: FASTMUTEX_STATS=%s: cannot write the profile there\n", out_path);
        return;
    }
    size_t len = strlen(out_path);
    bool json = len >= 5 && strcmp(out_path + len - 5, ".json") == 0;
    if (json)
        fprintf(f, "{\"pid\": %d, \"rows\": [", (int)getpid());
    else
        fprintf(f, "fastmutex contention profile of process %d, by total wait (times in us)\n"
                   "%12s %10s %14s %12s %14s %12s  %-14s %-16s %s\n",
                (int)getpid(), "acquired", "contended", "wait total", "wait max", "hold total",
                "hold max", "mutex", "name", "call site");
    for (size_t i = 0; i < n; i++)
        write_row(f, &rows[i], json, i == 0);
    if (overflow.acquisitions != 0)
        write_row(f, &overflow, json, n == 0);
    if (json)
        fprintf(f, "\n]}\n");
    fclose(f);
}

bool fmx_stats_setup(const char *path)
{
    if (path == NULL || *path == '\0')
        return false;
    out_path = path;
    pthread_atfork(NULL, NULL, after_fork_in_child);
    atexit(write_profile);
    return true;
}
