/* fmx-bench adapter: glibc's pthread_mutex_t with default attributes, what
 * most C programs use.  Its fast path is a call into libc: glibc offers no
 * inline version. */
#include <pthread.h>

typedef pthread_mutex_t adapter_lock_t;

static inline void adapter_init(adapter_lock_t *m)
{
    pthread_mutex_init(m, NULL);
}

static inline void adapter_destroy(adapter_lock_t *m)
{
    pthread_mutex_destroy(m);
}

static inline void adapter_lock(adapter_lock_t *m)
{
    pthread_mutex_lock(m);
}

static inline void adapter_unlock(adapter_lock_t *m)
{
    pthread_mutex_unlock(m);
}

#define ADAPTER_NAME "pthread"
#define ADAPTER_ID pthread
#define ADAPTER_FAST_PATH "library call"
#include "worker.h"
