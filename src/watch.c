/* The switch of the diagnostics that must see every acquire and release,
 * and the one place that hands each event to them.
 *
 * The inline functions of fastmutex.h take the slow path whenever the
 * thread id cache fast_mutex_self_tid_ is 0, which it is only before a
 * thread's first call into the library.  While a diagnostic is on,
 * fast_mutex_self_tid_init_() never fills the cache (registry.c), so every
 * call comes to the library, and the fast path of a program that runs
 * without any pays nothing: no flag of its own, no extra branch. */
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/drd.h>
#include <valgrind/valgrind.h>

#include "internal.h"

static bool verify_order;
static bool stats, trace;

/* The mutexes the calling thread holds, with where and when each was
 * taken, to time the holds (stats, trace). */
#define MAX_HELD 32
struct holding {
    const fast_mutex_t *m;
    const void *outer; /* the FAST_MUTEX around m, NULL for a fast_mutex_t */
    const void *site;
    uint64_t since_ns;
};
static _Thread_local struct holding holding[MAX_HELD];
static _Thread_local int holding_count;
/* Under Valgrind: DRD, or another tool (Helgrind's requests then). */
static bool valgrind, drd;
static bool watching;
static pthread_once_t settings_once = PTHREAD_ONCE_INIT;

/* The library's own words (its writable data, and the waiter registry)
 * change under atomics and its own locks, which DRD and Helgrind do not
 * model: the tool is told to ignore them, as it is told to ignore each
 * mutex's words.  The user's data stays checked. */
static void valgrind_ignore(const void *start, size_t size)
{
    if (drd)
        fmx_drd_ignore(start, size);
    else
        fmx_helgrind_ignore(start, size);
}

/* Ignores the writable segments of the object this code is in. */
static int ignore_own_data(struct dl_phdr_info *info, size_t size, void *unused)
{
    (void)size;
    (void)unused;
    uintptr_t here = (uintptr_t)&ignore_own_data;
    bool ours = false;
    for (int i = 0; i < info->dlpi_phnum && !ours; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        ours = ph->p_type == PT_LOAD && here >= start && here - start < ph->p_memsz;
    }
    if (!ours)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W))
            valgrind_ignore((const void *)(info->dlpi_addr + ph->p_vaddr), ph->p_memsz);
    }
    return 1;
}

/* FASTMUTEX_VERIFY, FASTMUTEX_STATS, FASTMUTEX_TRACE (parsed in
 * settings.c), and whether we run under Valgrind, read once. */
static void read_settings(void)
{
    const struct fmx_watch_settings *settings = fmx_watch_settings();
    verify_order = settings->verify_order;
    valgrind = RUNNING_ON_VALGRIND != 0;
    /* DRD numbers its threads from 1; other tools answer the default 0. */
    drd = valgrind && DRD_GET_DRD_THREADID != 0;
    if (valgrind)
        dl_iterate_phdr(ignore_own_data, NULL);
    stats = settings->stats;
    if (stats)
        fmx_stats_setup(settings->stats_file);
    trace = settings->trace_file != NULL && fmx_trace_setup(settings->trace_file);
    watching = verify_order || stats || trace || valgrind;
}

bool fmx_watching(void)
{
    pthread_once(&settings_once, read_settings);
    return watching;
}

/* Read before the program starts threads, so that the tools see the
 * settings written before any thread reads them. */
__attribute__((constructor)) static void watch_setup(void)
{
    (void)fmx_watching();
}

void fmx_watch_registry(const void *registry, size_t size)
{
    if (fmx_watching() && valgrind)
        valgrind_ignore(registry, size);
}

/* Tells the Valgrind tools of m before each use: a statically initialised
 * mutex is never announced otherwise. */
static void valgrind_seen(const fast_mutex_t *m)
{
    if (drd)
        fmx_drd_seen(m);
    else
        fmx_helgrind_seen(m);
}

void fmx_watch_init(const fast_mutex_t *m, const void *site)
{
    if (verify_order)
        fmx_verify_init(m, site);
    if (valgrind)
        valgrind_seen(m);
}

void fmx_watch_destroy(const fast_mutex_t *m)
{
    if (verify_order)
        fmx_verify_destroy(m);
    if (drd)
        fmx_drd_destroy(m);
    else if (valgrind)
        fmx_helgrind_destroy(m);
}

void fmx_watch_before_wait(const fast_mutex_t *m, const void *site, const void *outer)
{
    if (verify_order)
        fmx_verify_before_wait(m, site, outer);
    if (valgrind)
        valgrind_seen(m);
    if (valgrind && !drd)
        fmx_helgrind_pre_lock(m, false);
}

/* The wait, if any, and the start of the hold. */
static void timed_acquired(const fast_mutex_t *m, const void *site, const void *outer,
                           uint64_t wait_start_ns)
{
    uint64_t now = fmx_now_ns();
    uint64_t wait = wait_start_ns != 0 && now > wait_start_ns ? now - wait_start_ns : 0;
    if (stats)
        fmx_stats_acquired(m, site, outer, wait, wait_start_ns != 0);
    if (trace && wait_start_ns != 0)
        fmx_trace_span(false, m, outer, site, wait_start_ns, wait);
    if (holding_count < MAX_HELD)
        holding[holding_count] = (struct holding){.m = m, .outer = outer, .site = site, .since_ns = now};
    holding_count++;
}

/* The end of a hold: any order of release is allowed. */
static void timed_release(const fast_mutex_t *m)
{
    int n = holding_count < MAX_HELD ? holding_count : MAX_HELD;
    for (int i = n - 1; i >= 0; i--) {
        if (holding[i].m != m)
            continue;
        uint64_t hold = fmx_now_ns() - holding[i].since_ns;
        if (stats)
            fmx_stats_released(m, holding[i].site, hold);
        if (trace)
            fmx_trace_span(true, m, holding[i].outer, holding[i].site, holding[i].since_ns, hold);
        memmove(&holding[i], &holding[i + 1], (size_t)(n - i - 1) * sizeof holding[0]);
        holding_count--;
        return;
    }
    if (holding_count > MAX_HELD)
        holding_count--; /* one past the bound: its hold is not timed */
}

void fmx_watch_acquired(const fast_mutex_t *m, const void *site, const void *outer, bool try,
                        uint64_t wait_start_ns)
{
    if (verify_order)
        fmx_verify_acquired(m, site, outer, try);
    if (stats || trace)
        timed_acquired(m, site, outer, wait_start_ns);
    if (drd) {
        fmx_drd_seen(m);
        fmx_drd_acquired(m);
    } else if (valgrind) {
        if (try) {
            fmx_helgrind_seen(m);
            fmx_helgrind_pre_lock(m, true);
        }
        fmx_helgrind_post_lock(m);
    }
}

void fmx_watch_gave_up(const fast_mutex_t *m)
{
    (void)m;
}

void fmx_watch_release(const fast_mutex_t *m, const void *site)
{
    (void)site;
    if (verify_order)
        fmx_verify_release(m);
    if (stats || trace)
        timed_release(m);
    if (drd)
        fmx_drd_release(m);
    else if (valgrind)
        fmx_helgrind_pre_unlock(m);
}

void fmx_watch_released(const fast_mutex_t *m)
{
    if (valgrind && !drd)
        fmx_helgrind_post_unlock(m);
}
