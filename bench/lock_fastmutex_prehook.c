/* fmx-bench adapter: fastmutex with the inline fast paths as they were
 * before the diagnostics that see every call (FASTMUTEX_VERIFY and the
 * others, src/watch.c) were switched through the thread id cache: the
 * cached id, or the call that fills it, then the compare-and-swap.  The
 * same slow paths.  Not a peer: the "fastmutex" row paired with it by round
 * shows what the switch costs the uncontended path. */
#include <fastmutex.h>

#include "internal.h"

typedef fast_mutex_t adapter_lock_t;

static inline void adapter_init(adapter_lock_t *m)
{
    fast_mutex_init(m);
}

static inline void adapter_destroy(adapter_lock_t *m)
{
    fast_mutex_destroy(m);
}

static inline void adapter_lock(adapter_lock_t *m)
{
    uint32_t expected = 0;
    uint32_t self = fast_mutex_self_();
    if (fast_mutex_cas_strong_(&m->word, &expected, self, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return;
    if (!fast_mutex_take_free_(m, expected, self, 0))
        (void)fast_mutex_acquire_slow_(m, NULL);
}

static inline void adapter_unlock(adapter_lock_t *m)
{
    uint32_t expected = fast_mutex_self_();
    if (!fast_mutex_cas_strong_(&m->word, &expected, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
        fast_mutex_release_slow_(m);
}

static inline uint32_t adapter_contention(adapter_lock_t *m)
{
    return fast_mutex_contention(m);
}

#define ADAPTER_NAME "fastmutex-prehook"
#define ADAPTER_ID fastmutex_prehook
#define ADAPTER_FAST_PATH "inline"
#define ADAPTER_CONTENTION adapter_contention
#define ADAPTER_NOT_A_PEER
#include "worker.h"
