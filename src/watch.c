/* The switch of the diagnostics that must see every acquire and release,
 * and the one place that hands each event to them.
 *
 * The inline functions of fastmutex.h take the slow path whenever the
 * thread id cache fast_mutex_self_tid_ is 0, which it is only before a
 * thread's first call into the library.  While a diagnostic is on,
 * fast_mutex_self_tid_init_() never fills the cache (registry.c), so every
 * call comes to the library, and the fast path of a program that runs
 * without any pays nothing: no flag of its own, no extra branch. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static bool verify_order;
static bool watching;
static pthread_once_t settings_once = PTHREAD_ONCE_INIT;

/* FASTMUTEX_VERIFY, read once. */
static void read_settings(void)
{
    const char *verify = getenv("FASTMUTEX_VERIFY");
    if (verify != NULL && strcmp(verify, "order") == 0)
        verify_order = true;
    else if (verify != NULL && *verify != '\0' && strcmp(verify, "off") != 0)
        fprintf(stderr, "fastmutex: ignoring FASTMUTEX_VERIFY=%s (want order or off)\n", verify);
    watching = verify_order;
}

bool fmx_watching(void)
{
    pthread_once(&settings_once, read_settings);
    return watching;
}

void fmx_watch_init(const fast_mutex_t *m, const void *site)
{
    if (verify_order)
        fmx_verify_init(m, site);
}

void fmx_watch_destroy(const fast_mutex_t *m)
{
    if (verify_order)
        fmx_verify_destroy(m);
}

void fmx_watch_before_wait(const fast_mutex_t *m, const void *site)
{
    if (verify_order)
        fmx_verify_before_wait(m, site);
}

void fmx_watch_acquired(const fast_mutex_t *m, const void *site, bool try, uint64_t wait_start_ns)
{
    (void)wait_start_ns;
    if (verify_order)
        fmx_verify_acquired(m, site, try);
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
}

void fmx_watch_released(const fast_mutex_t *m)
{
    (void)m;
}
