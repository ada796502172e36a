/* fmx-bench adapter: Google's nsync mutex (libnsync-dev), a call into
 * libnsync.so. */
#include <nsync.h>

typedef nsync_mu adapter_lock_t;

static inline void adapter_init(adapter_lock_t *m)
{
    nsync_mu_init(m);
}

static inline void adapter_destroy(adapter_lock_t *m)
{
    (void)m;
}

static inline void adapter_lock(adapter_lock_t *m)
{
    nsync_mu_lock(m);
}

static inline void adapter_unlock(adapter_lock_t *m)
{
    nsync_mu_unlock(m);
}

#define ADAPTER_NAME "nsync"
#define ADAPTER_ID nsync
#define ADAPTER_FAST_PATH "library call"
#include "worker.h"
