/* fmx stat [--json] PID | --core CORE [--exe EXE]: the contention profile
 * of a process that records one (FASTMUTEX_STATS=on or =FILE), read live
 * from its table or from a core: per mutex and call site, acquisitions,
 * contended acquisitions, total and longest wait and hold, sorted by total
 * wait, as lock_stat and mutrace show them. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "datasym.h"
#include "fmx.h"
#include "inspect.h"
#include "internal.h"
#include "stats_reader.h"

#define USAGE "usage: fmx stat [--json] PID | fmx stat [--json] --core CORE [--exe EXE]"

/* One row as shown: the counters and what names its mutex and site. */
struct stat_row {
    struct fmx_stats_entry entry;
    char mutex[512]; /* "0x55d0c0a0 (hot) <hot>" */
    fmx_display_name mutex_name;
    char mutex_symbol[256];
    struct fmx_location site;
};

/* The parsed command line. */
struct stat_args {
    bool json;
    const char *core, *exe;
    pid_t pid;
};

/* The one line for the user: on stderr, and with --json also as the
 * document on stdout, so that a pipe into a JSON reader holds. */
static void fail(bool json, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(bool json, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "fmx: %s\n", line);
    if (json) {
        printf("{\"error\": ");
        fmx_json_string(stdout, line);
        printf("}\n");
    }
}

static int parse_args(int argc, char **argv, struct stat_args *args)
{
    struct fmx_view_options view;
    int status = fmx_view_options(argc, argv, "fmx stat", USAGE, FMX_VIEW_JSON, false, &view);
    *args = (struct stat_args){.json = view.json, .core = view.core, .exe = view.exe};
    if (status != 0)
        return status;
    if (args->exe != NULL && args->core == NULL) {
        fprintf(stderr, "fmx stat: --exe goes with --core (%s)\n", USAGE);
        return 2;
    }
    int operands = argc - optind;
    if (args->core != NULL ? operands != 0 : operands != 1) {
        fprintf(stderr, "fmx stat: %s (%s)\n",
                args->core != NULL ? "a core and a process id do not go together" : "give one process id", USAGE);
        return 2;
    }
    if (args->core == NULL && !fmx_parse_id(argv[optind], &args->pid)) {
        fprintf(stderr, "fmx stat: '%s' is not a process id\n", argv[optind]);
        return 2;
    }
    return 0;
}

/* Finds the table the dumped process made among the core's segments. */
static int core_stats(struct fmx_core *core, struct fmx_stats_reader *reader, char *why, size_t whylen)
{
    char corrupt[200] = "";
    size_t index = 0, size;
    const void *data;
    uint64_t address;
    while (fmx_core_next_region(core, FMX_STATS_MAGIC, FMX_STATS_MAX_IMAGE, &index, &data, &size, &address)) {
        char reason[200];
        if (fmx_stats_from_image(data, size, reader, reason, sizeof reason) != 0) {
            snprintf(corrupt, sizeof corrupt, "%s", reason);
            continue;
        }
        /* A forked child may still map its parent's table. */
        if (reader->layout.pid == core->pid)
            return 0;
        fmx_stats_close(reader);
    }
    if (corrupt[0] != '\0') {
        snprintf(why, whylen, "core of process %d: %s", (int)core->pid, corrupt);
        return EPROTO;
    }
    snprintf(why, whylen,
             "core of process %d (%s) holds no contention profile; start the program with "
             "FASTMUTEX_STATS=on (or FASTMUTEX_STATS=FILE)",
             (int)core->pid, core->name);
    return ENOENT;
}

/* Opens the target and its table.  Returns 0, or the exit status after
 * the one line.  *exe_trouble as fmx_target_open_core() sets it. */
static int open_all(const struct stat_args *args, struct fmx_target *target, struct fmx_stats_reader *reader,
                    bool *exe_trouble)
{
    char why[512];
    *exe_trouble = false;
    if (args->core == NULL) {
        int err = fmx_stats_open(args->pid, reader, why, sizeof why);
        if (err != 0) {
            fail(args->json, "%s", why);
            return 1;
        }
        fmx_target_open_any(args->pid, target);
        return 0;
    }
    /* fmx_target_open_core_any() prints its own line; with --json the
     * document still comes. */
    if (fmx_target_open_core_any(args->core, args->exe, target, exe_trouble) != 0) {
        if (args->json) {
            char line[600];
            snprintf(line, sizeof line, "cannot read core %s", args->core);
            printf("{\"error\": ");
            fmx_json_string(stdout, line);
            printf("}\n");
        }
        return 1;
    }
    if (core_stats(target->core, reader, why, sizeof why) != 0) {
        fail(args->json, "%s", why);
        fmx_target_close(target);
        return 1;
    }
    return 0;
}

/* The address a user knows the row's mutex by: a FAST_MUTEX's own, not
 * that of the fast_mutex_t inside it, which keys the row. */
static uint64_t shown_address(const struct fmx_stats_entry *e)
{
    return e->outer != 0 ? e->outer : e->mutex;
}

/* Names each row's mutex (its registry name, given to the FAST_MUTEX or
 * the fast_mutex_t inside it, and its variable) and site:
 * "FAST_MUTEX 0x55d0c0a0 (name) <symbol>" for a FAST_MUTEX, as fmx thread
 * shows one. */
static void describe(struct fmx_target *target, struct stat_row *row)
{
    const struct fmx_stats_entry *e = &row->entry;
    row->mutex_name[0] = row->mutex_symbol[0] = '\0';
    if (e->overflow) {
        snprintf(row->mutex, sizeof row->mutex, "(other mutexes and sites)");
        row->site = (struct fmx_location){0};
        return;
    }
    if (!fmx_registry_name(&target->registry, e->mutex, &row->mutex_name) && e->outer != 0)
        (void)fmx_registry_name(&target->registry, e->outer, &row->mutex_name);
    fmx_data_symbol(target->symbols, shown_address(e), row->mutex_symbol, sizeof row->mutex_symbol);
    const char *kind = e->outer != 0 ? "FAST_MUTEX " : "";
    size_t n = strlen(kind);
    snprintf(row->mutex, sizeof row->mutex, "%s", kind);
    fmx_format_mutex(shown_address(e), row->mutex_name, row->mutex_symbol, row->mutex + n, sizeof row->mutex - n);
    fmx_symbolize(target->symbols, e->site, true, &row->site);
}

/* Most total wait first; then most acquisitions; the overflow row last
 * among equals. */
static int by_total_wait(const void *a, const void *b)
{
    const struct fmx_stats_entry *x = &((const struct stat_row *)a)->entry;
    const struct fmx_stats_entry *y = &((const struct stat_row *)b)->entry;
    if (x->wait_total_ns != y->wait_total_ns)
        return x->wait_total_ns < y->wait_total_ns ? 1 : -1;
    if (x->acquisitions != y->acquisitions)
        return x->acquisitions < y->acquisitions ? 1 : -1;
    return (int)x->overflow - (int)y->overflow;
}

/* Microseconds, with one decimal, as the exit profile writes them. */
static void us(uint64_t ns, char *buf, size_t size)
{
    snprintf(buf, size, "%" PRIu64 ".%" PRIu64, ns / 1000u, ns % 1000u / 100u);
}

enum { COL_ACQ, COL_CONT, COL_WTOT, COL_WMAX, COL_HTOT, COL_HMAX, COL_MUTEX, COL_SITE, COLUMNS };

static const char *const titles[COLUMNS] = {
    "Acquired", "Contended", "Wait total", "Wait max", "Hold total", "Hold max", "Mutex", "Site",
};

static void cell(const struct stat_row *row, int col, char *buf, size_t size)
{
    const struct fmx_stats_entry *e = &row->entry;
    switch (col) {
    case COL_ACQ:
        snprintf(buf, size, "%" PRIu64, e->acquisitions);
        break;
    case COL_CONT:
        snprintf(buf, size, "%" PRIu64, e->contended);
        break;
    case COL_WTOT:
        us(e->wait_total_ns, buf, size);
        break;
    case COL_WMAX:
        us(e->wait_max_ns, buf, size);
        break;
    case COL_HTOT:
        us(e->hold_total_ns, buf, size);
        break;
    case COL_HMAX:
        us(e->hold_max_ns, buf, size);
        break;
    case COL_MUTEX:
        snprintf(buf, size, "%s", row->mutex);
        break;
    default:
        if (e->overflow)
            snprintf(buf, size, "-");
        else
            fmx_format_site(&row->site, buf, size);
        break;
    }
}

/* Numbers right-aligned, text left; the last column ends the line. */
static void print_cell(const char *text, size_t width, int col)
{
    if (col + 1 == COLUMNS)
        printf("%s\n", text);
    else if (col < COL_MUTEX)
        printf("%*s  ", (int)width, text);
    else
        printf("%-*s  ", (int)width, text);
}

static void print_table(const struct fmx_target *target, const struct stat_row *rows, size_t count,
                        unsigned changing)
{
    char buf[768];
    size_t width[COLUMNS];
    for (int col = 0; col < COLUMNS; col++)
        width[col] = strlen(titles[col]);
    for (size_t i = 0; i < count; i++)
        for (int col = 0; col < COLUMNS; col++) {
            cell(&rows[i], col, buf, sizeof buf);
            if (strlen(buf) > width[col])
                width[col] = strlen(buf);
        }
    printf("Contention profile of %s %d (%s), by total wait; times in microseconds.\n", fmx_target_kind(target),
           (int)target->pid, target->name);
    for (int col = 0; col < COLUMNS; col++)
        print_cell(titles[col], width[col], col);
    for (size_t i = 0; i < count; i++)
        for (int col = 0; col < COLUMNS; col++) {
            cell(&rows[i], col, buf, sizeof buf);
            print_cell(buf, width[col], col);
        }
    printf("%zu row%s.\n", count, count == 1 ? "" : "s");
    if (changing > 0)
        printf("%u row%s kept changing and could not be read.\n", changing, changing == 1 ? "" : "s");
}

/* Writes `, "key": "text"`, or `, "key": null` when text is empty. */
static void json_optional(const char *key, const char *text)
{
    printf(", \"%s\": ", key);
    if (text[0] == '\0')
        printf("null");
    else
        fmx_json_string(stdout, text);
}

static void print_json_row(const struct stat_row *row)
{
    const struct fmx_stats_entry *e = &row->entry;
    if (e->overflow) {
        printf("{\"mutex\": null, \"kind\": null, \"mutex_name\": null, \"mutex_symbol\": null, \"site\": null, "
               "\"site_function\": null, \"site_file\": null, \"site_line\": null, \"other\": true");
    } else {
        printf("{\"mutex\": \"0x%" PRIx64 "\", \"kind\": \"%s\"", shown_address(e),
               e->outer != 0 ? "FAST_MUTEX" : "fast_mutex_t");
        json_optional("mutex_name", row->mutex_name);
        json_optional("mutex_symbol", row->mutex_symbol);
        printf(", \"site\": \"0x%" PRIx64 "\"", e->site);
        json_optional("site_function", row->site.symbol);
        const struct fmx_source_line *line = fmx_caller_line(&row->site);
        json_optional("site_file", line != NULL ? line->file : "");
        if (line != NULL)
            printf(", \"site_line\": %d", line->line);
        else
            printf(", \"site_line\": null");
        printf(", \"other\": false");
    }
    printf(", \"acquisitions\": %" PRIu64 ", \"contended\": %" PRIu64 ", \"wait_total_ns\": %" PRIu64
           ", \"wait_max_ns\": %" PRIu64 ", \"hold_total_ns\": %" PRIu64 ", \"hold_max_ns\": %" PRIu64 "}",
           e->acquisitions, e->contended, e->wait_total_ns, e->wait_max_ns, e->hold_total_ns, e->hold_max_ns);
}

static void print_json(const struct fmx_target *target, const struct stat_row *rows, size_t count,
                       unsigned changing)
{
    printf("{\"pid\": %d, \"process\": ", (int)target->pid);
    fmx_json_string(stdout, target->name);
    printf(", \"core\": %s, \"rows\": [", target->core != NULL ? "true" : "false");
    for (size_t i = 0; i < count; i++) {
        printf("%s\n  ", i == 0 ? "" : ",");
        print_json_row(&rows[i]);
    }
    printf("%s], \"count\": %zu, \"changing\": %u}\n", count > 0 ? "\n" : "", count, changing);
}

/* Reads, names, sorts and prints the rows.  Returns 0 or ENOMEM. */
static int show(struct fmx_target *target, struct fmx_stats_reader *reader, bool json)
{
    struct fmx_stats_entry *entries;
    size_t count;
    unsigned changing;
    if (fmx_stats_rows(reader, &entries, &count, &changing) != 0)
        return ENOMEM;
    struct stat_row *rows = calloc(count + 1, sizeof *rows);
    if (rows == NULL) {
        free(entries);
        return ENOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        rows[i].entry = entries[i];
        describe(target, &rows[i]);
    }
    free(entries);
    qsort(rows, count, sizeof rows[0], by_total_wait);
    if (json)
        print_json(target, rows, count, changing);
    else
        print_table(target, rows, count, changing);
    free(rows);
    return 0;
}

int fmx_stat_main(int argc, char **argv)
{
    struct stat_args args;
    int status = parse_args(argc, argv, &args);
    /* The line is on stderr; a JSON reader on stdout still gets a document. */
    if (status > 0 && args.json)
        printf("{\"error\": \"invalid arguments (%s)\"}\n", USAGE);
    if (status != 0)
        return status < 0 ? 0 : status;
    struct fmx_target target;
    struct fmx_stats_reader reader;
    bool exe_trouble;
    status = open_all(&args, &target, &reader, &exe_trouble);
    if (status != 0)
        return status;
    if (show(&target, &reader, args.json) != 0) {
        fail(args.json, "out of memory");
        status = 1;
    } else {
        status = exe_trouble ? 1 : 0;
    }
    fmx_stats_close(&reader);
    fmx_target_close(&target);
    return status;
}
