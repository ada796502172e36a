/* fmx-bench adapter: glibc's pthread_mutex_t of type PTHREAD_MUTEX_ADAPTIVE_NP,
 * which spins a bounded while before sleeping.  A call into libc, as for the
 * default type. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

typedef pthread_mutex_t adapter_lock_t;

static inline void adapter_init(adapter_lock_t *m)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    if (pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP) != 0) {
        fprintf(stderr, "fmx-bench: this libc has no PTHREAD_MUTEX_ADAPTIVE_NP\n");
        exit(1);
    }
    pthread_mutex_init(m, &attr);
    pthread_mutexattr_destroy(&attr);
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

#define ADAPTER_NAME "pthread-adaptive"
#define ADAPTER_ID pthread_adaptive
#define ADAPTER_FAST_PATH "library call"
#include "worker.h"
