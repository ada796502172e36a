/* fmx-bench adapter: glibc's pthread_mutex_t with default attributes, what
 * most C programs use.  Its fast path is a call into libc: glibc offers no
 * inline version.  lock_pthread_adaptive.c builds this same adapter for
 * another mutex type. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef ADAPTER_MUTEX_TYPE
#define ADAPTER_MUTEX_TYPE PTHREAD_MUTEX_DEFAULT
#define ADAPTER_NAME "pthread"
#define ADAPTER_ID pthread
#endif

typedef pthread_mutex_t adapter_lock_t;

static inline void adapter_init(adapter_lock_t *m)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    if (pthread_mutexattr_settype(&attr, ADAPTER_MUTEX_TYPE) != 0) {
        fprintf(stderr, "fmx-bench: this libc lacks the mutex type of %s\n", ADAPTER_NAME);
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

#define ADAPTER_FAST_PATH "library call"
#include "worker.h"
