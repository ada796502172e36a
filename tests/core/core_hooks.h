/* A report hook for the core tests that link fastmutex (core_test.h serves
 * the pthread build of the stress test too, so it cannot need fastmutex). */
#ifndef FASTMUTEX_CORE_HOOKS_H
#define FASTMUTEX_CORE_HOOKS_H

#include <fastmutex.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

/* A report hook that counts reports, so that a test can assert that a call
 * made none.  Reports are echoed so that a failure shows them.  Every test
 * file that includes this header gets its own counter. */
static atomic_int core_reports_seen;

static inline void core_counting_hook(const char *report, bool fatal)
{
    atomic_fetch_add(&core_reports_seen, 1);
    fprintf(stderr, "unexpected report (fatal=%d):\n%s\n", (int)fatal, report);
}

/* cmocka setup: count reports from here on. */
static inline int core_install_counting_hook(void **state)
{
    (void)state;
    atomic_store(&core_reports_seen, 0);
    fast_mutex_set_report_hook(core_counting_hook);
    return 0;
}

/* cmocka teardown: the default reporter again. */
static inline int core_remove_hook(void **state)
{
    (void)state;
    fast_mutex_set_report_hook(NULL);
    return 0;
}


#endif /* FASTMUTEX_CORE_HOOKS_H */
