/* The contention profile (FASTMUTEX_STATS=on or =FILE), as Linux's
 * lock_stat and mutrace give it: per mutex and call site, how many
 * acquisitions, how many had to wait, the total and longest wait, the
 * total and longest hold.  Kept in a table other processes can read
 * (stats_table.h: `fmx stat PID`, and in a core dump); with a FILE also
 * written there when the process exits, sorted by total wait (as JSON when
 * FILE ends in ".json").
 *
 * A debugging mode: one process-wide lock guards the bounded table (past
 * half its slots, new mutex-and-site pairs are counted in the overflow
 * row). */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "stats_table.h"

/* The region: header, then FMX_STATS_SLOTS rows, then the overflow row. */
static struct fmx_stats_header *header;
static struct fmx_stats_row *table;
#define overflow (table[FMX_STATS_SLOTS])
/* The memfd behind the region, -1 with none, and which file it is. */
static int table_fd = -1;
static struct fmx_memfd_id table_file;
/* Slots in use: counted here, never read back from the shared region. */
static uint32_t used;
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *out_path;

/* Maps a fresh table: a memfd fmx can open through /proc/PID/fd, or, if
 * the kernel refuses one, private memory so that the exit profile still
 * works (unseen by fmx stat). */
static void map_table(void)
{
    int fd;
    void *mem = fmx_memfd_map(FMX_STATS_NAME, FMX_STATS_SIZE, &table_file, &fd);
    header = mem;
    *header = (struct fmx_stats_header){
        .magic = FMX_STATS_MAGIC,
        .version = FMX_STATS_VERSION,
        .header_size = sizeof(struct fmx_stats_header),
        .row_size = sizeof(struct fmx_stats_row),
        .rows = FMX_STATS_ROWS,
        .pid = getpid(),
        .rows_offset = sizeof(struct fmx_stats_header),
    };
    table = (struct fmx_stats_row *)((char *)mem + sizeof(struct fmx_stats_header));
    table_fd = fd;
}

/* The table is held across fork() so that the child's copy is whole. */
static void before_fork(void)
{
    pthread_mutex_lock(&stats_lock);
}

static void after_fork_in_parent(void)
{
    pthread_mutex_unlock(&stats_lock);
}

/* The child must not write to the parent's shared table: it gets its own,
 * starting from the counts it inherited (they are in its exit profile). */
static void after_fork_in_child(void)
{
    pthread_mutex_init(&stats_lock, NULL);
    struct fmx_stats_header *old = header;
    int old_fd = table_fd;
    struct fmx_memfd_id old_file = table_file;
    map_table();
    memcpy(table, (char *)old + sizeof(struct fmx_stats_header), FMX_STATS_ROWS * sizeof(struct fmx_stats_row));
    munmap(old, FMX_STATS_SIZE);
    /* Only if the number is still that memfd: the application may have
     * closed it and opened a file of its own under the same number. */
    if (fmx_memfd_is(old_fd, &old_file))
        close(old_fd);
}

/* Bracket every change to a row (the seqlock of stats_table.h). */
static void row_write_begin(struct fmx_stats_row *row)
{
    /* The release fence keeps the field stores below the increment, as a
     * reader checking seq before and after sees them. */
    atomic_fetch_add_explicit(&row->seq, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
}

static void row_write_end(struct fmx_stats_row *row)
{
    atomic_fetch_add_explicit(&row->seq, 1, memory_order_release);
}

/* The row of (m, site), made if new.  Stats lock held.  The keys are
 * compared as numbers only, so a region scribbled on by another process
 * can misplace counts, never steer the library outside the table. */
static struct fmx_stats_row *row_of(const fast_mutex_t *m, const void *site)
{
    uint64_t key_m = (uint64_t)(uintptr_t)m, key_site = (uint64_t)(uintptr_t)site;
    uint64_t h = (key_m ^ (key_site << 7)) * 0x9e3779b97f4a7c15ull;
    for (uint32_t i = (uint32_t)(h >> 40) & (FMX_STATS_SLOTS - 1), n = 0; n < FMX_STATS_SLOTS;
         i = (i + 1) & (FMX_STATS_SLOTS - 1), n++) {
        if (table[i].mutex == key_m && table[i].site == key_site)
            return &table[i];
        if (table[i].mutex == 0 && used < FMX_STATS_SLOTS / 2) {
            row_write_begin(&table[i]);
            table[i].mutex = key_m;
            table[i].site = key_site;
            row_write_end(&table[i]);
            used++;
            return &table[i];
        }
    }
    return &overflow;
}

void fmx_stats_acquired(const fast_mutex_t *m, const void *site, const void *outer, uint64_t wait_ns,
                        bool waited)
{
    pthread_mutex_lock(&stats_lock);
    struct fmx_stats_row *row = row_of(m, site);
    row_write_begin(row);
    /* Each acquisition says again, as the memory at m may have become
     * another kind of mutex since the row was made. */
    if (row != &overflow)
        row->outer = (uint64_t)(uintptr_t)outer;
    row->acquisitions++;
    if (waited) {
        row->contended++;
        row->wait_total_ns += wait_ns;
        if (wait_ns > row->wait_max_ns)
            row->wait_max_ns = wait_ns;
    }
    row_write_end(row);
    pthread_mutex_unlock(&stats_lock);
}

void fmx_stats_released(const fast_mutex_t *m, const void *site, uint64_t hold_ns)
{
    pthread_mutex_lock(&stats_lock);
    struct fmx_stats_row *row = row_of(m, site);
    row_write_begin(row);
    row->hold_total_ns += hold_ns;
    if (hold_ns > row->hold_max_ns)
        row->hold_max_ns = hold_ns;
    row_write_end(row);
    pthread_mutex_unlock(&stats_lock);
}

static int by_total_wait(const void *a, const void *b)
{
    const struct fmx_stats_row *x = a, *y = b;
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

/* A row names its mutex by the address its user knows: a FAST_MUTEX's own,
 * not that of the fast_mutex_t inside it, which keys the row.  The text
 * column: "0x55d0c0a0", or "FAST_MUTEX 0x55d0c0a0"; returns its length. */
static int mutex_text(const struct fmx_stats_row *s, char *buf, size_t size)
{
    const void *outer = (const void *)(uintptr_t)s->outer;
    int n = snprintf(buf, size, "%s%p", outer != NULL ? "FAST_MUTEX " : "",
                     outer != NULL ? outer : (const void *)(uintptr_t)s->mutex);
    return n > 0 ? n : 0;
}

/* One row; `width` is the text's mutex column. */
static void write_row(FILE *f, const struct fmx_stats_row *s, bool is_overflow, bool json, bool first,
                      int width)
{
    const void *m = (const void *)(uintptr_t)s->mutex;
    const void *outer = (const void *)(uintptr_t)s->outer;
    const void *shown = outer != NULL ? outer : m;
    char name[FMX_NAME_LEN] = "";
    char site[256] = "(other mutexes and sites)";
    char mutex[48];
    if (!is_overflow) {
        fmx_name_of(m, name, sizeof name);
        if (name[0] == '\0' && outer != NULL)
            fmx_name_of(outer, name, sizeof name);
        fmx_site_text((const void *)(uintptr_t)s->site, site, sizeof site);
    }
    (void)mutex_text(s, mutex, sizeof mutex);
    if (json) {
        fprintf(f, "%s\n  {\"mutex\": \"%p\", \"kind\": \"%s\", \"name\": ", first ? "" : ",", shown,
                outer != NULL ? "FAST_MUTEX" : "fast_mutex_t");
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
    fprintf(f, "%12" PRIu64 " %10" PRIu64 " %14.1f %12.1f %14.1f %12.1f  %-*s %-16s %s\n",
            s->acquisitions, s->contended, s->wait_total_ns / 1e3, s->wait_max_ns / 1e3,
            s->hold_total_ns / 1e3, s->hold_max_ns / 1e3, width, mutex,
            name[0] ? name : "-", site);
}

/* At exit: the table, sorted by total wait. */
static void write_profile(void)
{
    static struct fmx_stats_row rows[FMX_STATS_SLOTS], other;
    size_t n = 0;
    pthread_mutex_lock(&stats_lock);
    for (uint32_t i = 0; i < FMX_STATS_SLOTS; i++)
        if (table[i].mutex != 0)
            rows[n++] = table[i];
    other = overflow;
    pthread_mutex_unlock(&stats_lock);
    qsort(rows, n, sizeof rows[0], by_total_wait);
    FILE *f = fopen(out_path, "w");
    if (f == NULL) {
        fprintf(stderr, "fastmutex: FASTMUTEX_STATS=%s: cannot write the profile there\n", out_path);
        return;
    }
    size_t len = strlen(out_path);
    bool json = len >= 5 && strcmp(out_path + len - 5, ".json") == 0;
    /* The mutex column is as wide as its widest entry, 14 at least. */
    int width = 14;
    for (size_t i = 0; i < n; i++) {
        char text[48];
        int w = mutex_text(&rows[i], text, sizeof text);
        width = w > width ? w : width;
    }
    if (json)
        fprintf(f, "{\"pid\": %d, \"rows\": [", (int)getpid());
    else
        fprintf(f, "fastmutex contention profile of process %d, by total wait (times in us)\n"
                   "%12s %10s %14s %12s %14s %12s  %-*s %-16s %s\n",
                (int)getpid(), "acquired", "contended", "wait total", "wait max", "hold total",
                "hold max", width, "mutex", "name", "call site");
    for (size_t i = 0; i < n; i++)
        write_row(f, &rows[i], false, json, i == 0, width);
    if (other.acquisitions != 0)
        write_row(f, &other, true, json, n == 0, width);
    if (json)
        fprintf(f, "\n]}\n");
    fclose(f);
}

void fmx_stats_setup(const char *file)
{
    map_table();
    pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
    if (file != NULL) {
        out_path = file;
        atexit(write_profile);
    }
}
