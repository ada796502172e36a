/* fmx waiters [--json] [PID...]: every thread waiting for a fastmutex, one
 * row each, as WinDbg's !WrFastMutex lists them. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasym.h"
#include "fmx.h"
#include "inspect.h"

/* The columns of the table, in order. */
enum column {
    COL_PROCESS,
    COL_PID,
    COL_THREAD,
    COL_TID,
    COL_CTXSW,
    COL_USER,
    COL_KERNEL,
    COL_STATE,
    COL_WAITED,
    COL_MUTEX,
    COL_OWNER,
    COL_SITE,
    COLUMNS
};

static const char *const column_titles[COLUMNS] = {
    "Process", "PID", "Thread", "TID", "CtxSw", "User", "Kernel", "State", "Waited", "Mutex", "Owner", "Site",
};

/* Everything shown about one waiting thread. */
struct row {
    fmx_comm process;
    pid_t pid;
    pid_t tid;
    struct fmx_thread_info info; /* info.known: which figures could be read */
    struct fmx_waiter waiter;
    bool waited_known; /* false in a core whose moment is unknown */
    uint64_t waited_ns;
    uint64_t mutex_address;
    fmx_display_name mutex_name;
    char mutex_symbol[256]; /* the variable it is, "" when not a global or static */
    struct fmx_owner owner;
    struct fmx_location site;
};

struct table {
    struct row *rows;
    size_t count, capacity;
    unsigned changing; /* records that kept changing while read */
};

static int add_row(struct table *table, const struct row *row)
{
    if (table->count == table->capacity) {
        size_t capacity = table->capacity ? table->capacity * 2 : 16;
        struct row *rows = realloc(table->rows, capacity * sizeof *rows);
        if (rows == NULL)
            return ENOMEM;
        table->rows = rows;
        table->capacity = capacity;
    }
    table->rows[table->count++] = *row;
    return 0;
}

/* Adds a row for every waiting thread of an opened process. */
static int collect(struct fmx_target *target, struct table *table)
{
    for (uint32_t slot = 0; slot < target->registry.layout.records; slot++) {
        struct row row = {.pid = target->pid};
        enum fmx_record_result got = fmx_registry_record(&target->registry, slot, &row.waiter);
        if (got == FMX_RECORD_READ_CHANGING)
            table->changing++;
        if (got != FMX_RECORD_READ_WAITING)
            continue;
        memcpy(row.process, target->name, sizeof row.process);
        row.tid = row.waiter.tid;
        /* The name the thread has now, else the one it had when it began
         * to wait. */
        if (fmx_target_thread_info(target, row.tid, &row.info) != 0 || strcmp(row.info.name, "?") == 0)
            snprintf(row.info.name, sizeof row.info.name, "%s", row.waiter.thread_name);
        row.waited_known = target->now_known;
        row.waited_ns = fmx_waited_ns(row.waiter.wait_start_ns, target->now_ns);
        row.mutex_address = fmx_waiter_mutex_address(&row.waiter);
        fmx_waiter_mutex_name(target, &row.waiter, &row.mutex_name);
        fmx_data_symbol(target->symbols, row.mutex_address, row.mutex_symbol, sizeof row.mutex_symbol);
        fmx_find_owner(target, &row.waiter, &row.owner);
        fmx_symbolize(target->symbols, row.waiter.site, true, &row.site);
        if (add_row(table, &row) != 0)
            return ENOMEM;
    }
    return 0;
}

static void format_cell(const struct row *row, enum column col, char *buf, size_t size)
{
    switch (col) {
    case COL_PROCESS:
        snprintf(buf, size, "%s", row->process);
        break;
    case COL_PID:
        snprintf(buf, size, "%d", (int)row->pid);
        break;
    case COL_THREAD:
        snprintf(buf, size, "%s", row->info.name);
        break;
    case COL_TID:
        snprintf(buf, size, "%d", (int)row->tid);
        break;
    case COL_CTXSW:
        if (row->info.known & FMX_KNOWN_SWITCHES)
            snprintf(buf, size, "%llu", row->info.context_switches);
        else
            snprintf(buf, size, "-");
        break;
    case COL_USER:
    case COL_KERNEL:
        if (row->info.known & FMX_KNOWN_TIMES)
            snprintf(buf, size, "%.3fs", col == COL_USER ? row->info.user_seconds : row->info.kernel_seconds);
        else
            snprintf(buf, size, "-");
        break;
    case COL_STATE:
        snprintf(buf, size, "%c", (row->info.known & FMX_KNOWN_STATE) ? row->info.state : '-');
        break;
    case COL_WAITED:
        if (row->waited_known)
            fmx_format_waited(row->waited_ns, buf, size);
        else
            snprintf(buf, size, "-");
        break;
    case COL_MUTEX:
        fmx_format_mutex(row->mutex_address, row->mutex_name, row->mutex_symbol, buf, size);
        break;
    case COL_OWNER:
        fmx_format_owner(&row->owner, buf, size);
        break;
    case COL_SITE:
    case COLUMNS:
        fmx_format_site(&row->site, buf, size);
        break;
    }
}

/* Prints a cell padded to its column's width; the last one ends the line
 * instead, so that lines carry no trailing blanks. */
static void print_cell(const char *text, size_t width, bool last)
{
    if (last)
        printf("%s\n", text);
    else
        printf("%-*s  ", (int)width, text);
}

static void print_table(const struct table *table)
{
    enum { CELL = 512 };
    size_t width[COLUMNS];
    char cell[CELL];
    for (int col = 0; col < COLUMNS; col++)
        width[col] = strlen(column_titles[col]);
    for (size_t i = 0; i < table->count; i++)
        for (int col = 0; col < COLUMNS; col++) {
            format_cell(&table->rows[i], (enum column)col, cell, sizeof cell);
            if (strlen(cell) > width[col])
                width[col] = strlen(cell);
        }
    if (table->count > 0) {
        for (int col = 0; col < COLUMNS; col++)
            print_cell(column_titles[col], width[col], col + 1 == COLUMNS);
        for (size_t i = 0; i < table->count; i++)
            for (int col = 0; col < COLUMNS; col++) {
                format_cell(&table->rows[i], (enum column)col, cell, sizeof cell);
                print_cell(cell, width[col], col + 1 == COLUMNS);
            }
    }
    printf("%zu thread%s waiting.\n", table->count, table->count == 1 ? "" : "s");

    size_t in_deadlock = 0;
    for (size_t i = 0; i < table->count; i++)
        in_deadlock += table->rows[i].waiter.deadlock;
    if (in_deadlock > 0) {
        printf("Deadlock: the deadlock check found a cycle through");
        for (size_t i = 0, shown = 0; i < table->count; i++)
            if (table->rows[i].waiter.deadlock)
                printf("%s %d (%s)", shown++ == 0 ? "" : ",", (int)table->rows[i].tid,
                       table->rows[i].info.name);
        printf(".\n");
    }
    if (table->changing > 0)
        printf("%u record%s kept changing and could not be read.\n", table->changing,
               table->changing == 1 ? "" : "s");
}

/* Writes a JSON string: quotes, backslashes and control characters are
 * escaped; other bytes pass as they are. */
static void json_string(const char *text)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

/* Writes `"key": "text"`, or `"key": null` when text is empty. */
static void json_optional(const char *key, const char *text)
{
    printf(", \"%s\": ", key);
    if (text[0] == '\0')
        printf("null");
    else
        json_string(text);
}

/* The thread's figures and the time waited; null where unknown. */
static void print_figures(const struct row *row)
{
    const struct fmx_thread_info *info = &row->info;
    if (info->known & FMX_KNOWN_SWITCHES)
        printf(", \"context_switches\": %llu", info->context_switches);
    else
        printf(", \"context_switches\": null");
    if (info->known & FMX_KNOWN_TIMES)
        printf(", \"user_seconds\": %.3f, \"kernel_seconds\": %.3f", info->user_seconds,
               info->kernel_seconds);
    else
        printf(", \"user_seconds\": null, \"kernel_seconds\": null");
    if (info->known & FMX_KNOWN_STATE)
        printf(", \"state\": \"%c\"", info->state);
    else
        printf(", \"state\": null");
    if (row->waited_known) {
        char waited[32];
        fmx_format_waited(row->waited_ns, waited, sizeof waited);
        printf(", \"waited_ms\": %llu, \"waited\": \"%s\"", (unsigned long long)(row->waited_ns / 1000000u),
               waited);
    } else {
        printf(", \"waited_ms\": null, \"waited\": null");
    }
}

static void print_json(const struct table *table)
{
    printf("{\"waiters\": [");
    for (size_t i = 0; i < table->count; i++) {
        const struct row *row = &table->rows[i];
        printf("%s\n  {\"process\": ", i == 0 ? "" : ",");
        json_string(row->process);
        printf(", \"pid\": %d, \"thread\": ", (int)row->pid);
        json_string(row->info.name);
        printf(", \"tid\": %d", (int)row->tid);
        print_figures(row);
        printf(", \"mutex\": \"0x%llx\"", (unsigned long long)row->mutex_address);
        json_optional("mutex_name", row->mutex_name);
        json_optional("mutex_symbol", row->mutex_symbol);
        printf(", \"kind\": \"%s\"", row->waiter.kind == FMX_KIND_WDM ? "FAST_MUTEX" : "fast_mutex_t");
        if (row->owner.tid != 0) {
            printf(", \"owner_tid\": %d", (int)row->owner.tid);
            json_optional("owner_name", row->owner.exited ? "" : row->owner.name);
        } else {
            printf(", \"owner_tid\": null, \"owner_name\": null");
        }
        printf(", \"owner_exited\": %s", row->owner.exited ? "true" : "false");
        printf(", \"owner_from\": \"%s\"", row->owner.from_lock ? "lock word" : "owner_seen");
        printf(", \"site\": \"0x%llx\"", (unsigned long long)row->site.address);
        json_optional("site_function", row->site.symbol);
        printf(", \"site_offset\": %llu", (unsigned long long)row->site.offset);
        const struct fmx_source_line *line = fmx_caller_line(&row->site);
        if (line != NULL) {
            json_optional("site_file", line->file);
            printf(", \"site_line\": %d", line->line);
        } else {
            printf(", \"site_file\": null, \"site_line\": null");
        }
        printf(", \"deadlock\": %s}", row->waiter.deadlock ? "true" : "false");
    }
    printf("%s], \"count\": %zu, \"changing\": %u}\n", table->count > 0 ? "\n" : "", table->count,
           table->changing);
}

/* Collects from every process of the calling user that has a registry;
 * the ones that cannot be read (gone, not dumpable) are passed over. */
static int collect_all(struct table *table)
{
    DIR *proc = opendir("/proc");
    if (proc == NULL) {
        fprintf(stderr, "fmx: cannot list processes: /proc: %s\n", strerror(errno));
        return 1;
    }
    int status = 0;
    struct dirent *entry;
    while ((entry = readdir(proc)) != NULL) {
        pid_t pid;
        struct stat st;
        char path[64];
        if (!fmx_parse_id(entry->d_name, &pid) || pid == getpid())
            continue;
        snprintf(path, sizeof path, "/proc/%d", (int)pid);
        if (stat(path, &st) != 0 || st.st_uid != geteuid())
            continue;
        struct fmx_target target;
        if (fmx_target_open(pid, &target, true) != 0)
            continue;
        int err = collect(&target, table);
        fmx_target_close(&target);
        if (err != 0) {
            fprintf(stderr, "fmx: out of memory\n");
            status = 1;
            break;
        }
    }
    closedir(proc);
    return status;
}

#define USAGE "usage: fmx waiters [--json] [PID...] | fmx waiters [--json] --core CORE [--exe EXE]"

/* Collects the named processes, or all of this user's; returns the exit
 * status, and in *shown whether there is a table to show. */
static int collect_processes(const pid_t *pids, int npids, struct table *table, bool *shown)
{
    if (npids == 0) {
        *shown = true;
        return collect_all(table);
    }
    int status = 0;
    *shown = false;
    for (int i = 0; i < npids; i++) {
        struct fmx_target target;
        if (fmx_target_open(pids[i], &target, false) != 0) {
            status = 1;
            continue;
        }
        /* When no named process could be read there is no table to show,
         * only the errors already printed. */
        *shown = true;
        int err = collect(&target, table);
        fmx_target_close(&target);
        if (err != 0) {
            fprintf(stderr, "fmx: out of memory\n");
            *shown = false;
            return 1;
        }
    }
    return status;
}

static int collect_core(const char *core, const char *exe, struct table *table, bool *shown)
{
    struct fmx_target target;
    bool exe_trouble;
    *shown = false;
    if (fmx_target_open_core(core, exe, &target, &exe_trouble) != 0)
        return 1;
    int err = collect(&target, table);
    fmx_target_close(&target);
    if (err != 0) {
        fprintf(stderr, "fmx: out of memory\n");
        return 1;
    }
    *shown = true;
    return exe_trouble ? 1 : 0;
}

/* The parsed command line. */
struct waiters_args {
    bool json;
    const char *core, *exe;
    pid_t *pids; /* malloc'd, checked before any process is read */
    int npids;
};

/* Returns 0, or the exit status after a line on stderr (-1: help shown). */
static int parse_options(int argc, char **argv, struct waiters_args *args)
{
    struct fmx_view_options view;
    int status = fmx_view_options(argc, argv, "fmx waiters", USAGE, FMX_VIEW_JSON, false, &view);
    args->json = view.json;
    args->core = view.core;
    args->exe = view.exe;
    if (status != 0)
        return status;
    if (args->exe != NULL && args->core == NULL) {
        fprintf(stderr, "fmx waiters: --exe goes with --core (%s)\n", USAGE);
        return 2;
    }
    if (args->core != NULL && optind < argc) {
        fprintf(stderr, "fmx waiters: a core and process ids do not go together (%s)\n", USAGE);
        return 2;
    }
    return 0;
}

static int parse_args(int argc, char **argv, struct waiters_args *args)
{
    *args = (struct waiters_args){0};
    int status = parse_options(argc, argv, args);
    if (status != 0)
        return status;
    args->pids = calloc((size_t)argc, sizeof *args->pids);
    if (args->pids == NULL) {
        fprintf(stderr, "fmx: out of memory\n");
        return 1;
    }
    for (int i = optind; i < argc; i++) {
        if (!fmx_parse_id(argv[i], &args->pids[args->npids++])) {
            fprintf(stderr, "fmx waiters: '%s' is not a process id\n", argv[i]);
            return 2;
        }
    }
    return 0;
}

int fmx_waiters_main(int argc, char **argv)
{
    struct waiters_args args;
    int status = parse_args(argc, argv, &args);
    if (status != 0) {
        free(args.pids);
        return status < 0 ? 0 : status;
    }
    struct table table = {0};
    bool shown;
    status = args.core != NULL ? collect_core(args.core, args.exe, &table, &shown)
                               : collect_processes(args.pids, args.npids, &table, &shown);
    /* With --json the output is one whole document even when nothing could
     * be read (no waiters then), so that a pipe into a JSON reader holds;
     * the errors are already on stderr. */
    if (args.json)
        print_json(&table);
    else if (shown)
        print_table(&table);
    free(table.rows);
    free(args.pids);
    return status;
}

int fmx_waiters_show(struct fmx_target *target, bool json)
{
    struct table table = {0};
    int err = collect(target, &table);
    if (err == 0 && json)
        print_json(&table);
    else if (err == 0)
        print_table(&table);
    free(table.rows);
    return err;
}
