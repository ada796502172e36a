/* The timeline (FASTMUTEX_TRACE=FILE): every wait for a mutex and every
 * hold of one, as "complete" events ("ph": "X", ts and dur in
 * microseconds) of the Chrome trace event format that Perfetto and
 * chrome://tracing open, one track per thread.  Kept in memory, bounded
 * (MAX_EVENTS; past it events are dropped and counted), and written once:
 * at exit, or before the library aborts the process on a report. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* About 150 bytes of JSON each: the file stays under about 15 MB. */
#define MAX_EVENTS 100000u

struct span {
    uint64_t start_ns, dur_ns;
    const fast_mutex_t *m;
    const void *outer; /* the FAST_MUTEX around m, NULL for a fast_mutex_t */
    const void *site;
    uint32_t tid;
    bool hold;
    char thread[FMX_THREAD_NAME_LEN];
};

static struct span *spans;
static uint32_t span_count, dropped;
static bool written;
static const char *out_path;
static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
/* The thread's name, read once per thread (a system call). */
static _Thread_local char thread_name[FMX_THREAD_NAME_LEN];

static void after_fork_in_child(void)
{
    pthread_mutex_init(&trace_lock, NULL);
    span_count = dropped = 0; /* the parent's events are the parent's */
}

void fmx_trace_span(bool hold, const fast_mutex_t *m, const void *outer, const void *site,
                    uint64_t start_ns, uint64_t dur_ns)
{
    if (thread_name[0] == '\0')
        fmx_current_thread_name(thread_name);
    pthread_mutex_lock(&trace_lock);
    if (span_count < MAX_EVENTS) {
        struct span *s = &spans[span_count++];
        *s = (struct span){.start_ns = start_ns, .dur_ns = dur_ns, .m = m, .outer = outer, .site = site,
                           .tid = fast_mutex_self_(), .hold = hold};
        memcpy(s->thread, thread_name, sizeof s->thread);
    } else {
        dropped++;
    }
    pthread_mutex_unlock(&trace_lock);
}

/* A span names its mutex by the address its user knows: a FAST_MUTEX's
 * own, not that of the fast_mutex_t inside it. */
static void write_span(FILE *f, const struct span *s, int pid)
{
    char name[FMX_NAME_LEN] = "";
    char site[256];
    char label[FMX_NAME_LEN + 32];
    const void *shown = s->outer != NULL ? s->outer : (const void *)s->m;
    fmx_name_of(s->m, name, sizeof name);
    if (name[0] == '\0' && s->outer != NULL)
        fmx_name_of(s->outer, name, sizeof name);
    fmx_site_text(s->site, site, sizeof site);
    if (name[0] != '\0')
        snprintf(label, sizeof label, "%s %s", s->hold ? "hold" : "wait", name);
    else
        snprintf(label, sizeof label, "%s %p", s->hold ? "hold" : "wait", shown);
    fprintf(f, ",\n{\"ph\":\"X\",\"cat\":\"%s\",\"name\":", s->hold ? "hold" : "wait");
    fmx_json_string(f, label);
    fprintf(f, ",\"pid\":%d,\"tid\":%u,\"ts\":%.3f,\"dur\":%.3f,\"args\":{\"mutex\":\"%p\",\"site\":",
            pid, s->tid, s->start_ns / 1e3, s->dur_ns / 1e3, shown);
    fmx_json_string(f, site);
    fprintf(f, ",\"thread\":");
    fmx_json_string(f, s->thread);
    fprintf(f, "}}");
}

void fmx_trace_flush(void)
{
    pthread_mutex_lock(&trace_lock);
    if (written || spans == NULL) {
        pthread_mutex_unlock(&trace_lock);
        return;
    }
    written = true;
    FILE *f = fopen(out_path, "w");
    if (f == NULL) {
        pthread_mutex_unlock(&trace_lock);
        fprintf(stderr, "fastmutex: FASTMUTEX_TRACE=%s: cannot write the trace there\n", out_path);
        return;
    }
    int pid = (int)getpid();
    fprintf(f, "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"dropped_events\":%u},\"traceEvents\":[\n"
               "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%d,\"args\":{\"name\":\"fastmutex\"}}",
            dropped, pid);
    for (uint32_t i = 0; i < span_count; i++)
        write_span(f, &spans[i], pid);
    fprintf(f, "\n]}\n");
    fclose(f);
    pthread_mutex_unlock(&trace_lock);
}

bool fmx_trace_setup(const char *path)
{
    if (path == NULL || *path == '\0')
        return false;
    spans = calloc(MAX_EVENTS, sizeof *spans);
    if (spans == NULL) {
        fprintf(stderr, "fastmutex: FASTMUTEX_TRACE=%s: no memory for the trace\n", path);
        return false;
    }
    out_path = path;
    pthread_atfork(NULL, NULL, after_fork_in_child);
    atexit(fmx_trace_flush);
    return true;
}
