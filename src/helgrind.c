/* Helgrind's client requests (<valgrind/helgrind.h>): fastmutex is a mutex
 * to Helgrind, so that the critical sections it orders are not races.
 * Called only while the process runs under Valgrind (watch.c), where a
 * client request is a message to the tool; elsewhere never reached.  The
 * mutex's own words change under atomics that Helgrind does not
 * understand: it is told not to check them. */
#include <valgrind/helgrind.h>

#include "internal.h"

void fmx_helgrind_ignore(const void *start, size_t size)
{
    VALGRIND_HG_DISABLE_CHECKING(start, size);
}

void fmx_helgrind_seen(const fast_mutex_t *m)
{
    VALGRIND_HG_DISABLE_CHECKING(m, sizeof *m);
}

void fmx_helgrind_pre_lock(const fast_mutex_t *m, bool try)
{
    VALGRIND_HG_MUTEX_LOCK_PRE(m, try);
}

void fmx_helgrind_post_lock(const fast_mutex_t *m)
{
    VALGRIND_HG_MUTEX_LOCK_POST(m);
}

void fmx_helgrind_pre_unlock(const fast_mutex_t *m)
{
    VALGRIND_HG_MUTEX_UNLOCK_PRE(m);
}

void fmx_helgrind_post_unlock(const fast_mutex_t *m)
{
    VALGRIND_HG_MUTEX_UNLOCK_POST(m);
}

void fmx_helgrind_destroy(const fast_mutex_t *m)
{
    VALGRIND_HG_MUTEX_DESTROY_PRE(m);
}
