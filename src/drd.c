/* DRD's client requests (<valgrind/drd.h>): fastmutex is a lock to DRD (as
 * a writer-locked reader-writer lock, the kind of lock DRD's annotations
 * offer), so that the critical sections it orders are not races.  Called
 * only while the process runs under Valgrind (watch.c).  The mutex's own
 * words change under atomics: DRD is told to ignore them. */
#include <valgrind/drd.h>

#include "internal.h"

void fmx_drd_ignore(const void *start, size_t size)
{
    ANNOTATE_BENIGN_RACE_SIZED(start, size, "fastmutex internal data");
}

void fmx_drd_seen(const fast_mutex_t *m)
{
    ANNOTATE_BENIGN_RACE_SIZED(m, sizeof *m, "fastmutex lock word");
}

void fmx_drd_acquired(const fast_mutex_t *m)
{
    ANNOTATE_RWLOCK_ACQUIRED(m, 1);
}

void fmx_drd_release(const fast_mutex_t *m)
{
    ANNOTATE_RWLOCK_RELEASED(m, 1);
}

void fmx_drd_destroy(const fast_mutex_t *m)
{
    ANNOTATE_RWLOCK_DESTROY(m);
}
