/* fmx-bench adapter: fastmutex with its diagnostics switched off (no call
 * site, thread name or deadlock check in the waiter records; the queue and
 * the misuse checks stay).  Not a peer: it is there to show what the
 * diagnostics cost, next to the "fastmutex" row that keeps them on, which is
 * the one the goals are measured with. */
#define ADAPTER_DIAGNOSTICS false
#define ADAPTER_NAME "fastmutex-nodiag"
#define ADAPTER_ID fastmutex_nodiag
#include "lock_fastmutex.c"
