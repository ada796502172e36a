/* fmx-bench adapter: glibc's pthread_mutex_t of type PTHREAD_MUTEX_ADAPTIVE_NP,
 * which spins a bounded while before sleeping.  A call into libc, as for the
 * default type. */
#define ADAPTER_MUTEX_TYPE PTHREAD_MUTEX_ADAPTIVE_NP
#define ADAPTER_NAME "pthread-adaptive"
#define ADAPTER_ID pthread_adaptive
#include "lock_pthread.c"
