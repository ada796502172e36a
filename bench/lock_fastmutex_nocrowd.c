/* fmx-bench adapter: fastmutex without the crowd rule of its spin policy
 * (src/policy.c: park at once when more threads want the mutex than there
 * are CPUs).  Not a peer: run next to "fastmutex" it gives the paired A/B
 * of that rule in the same run. */
#define ADAPTER_DIAGNOSTICS true
#define ADAPTER_CROWD_RULE false
#define ADAPTER_NAME "fastmutex-nocrowd"
#define ADAPTER_ID fastmutex_nocrowd
#include "lock_fastmutex.c"
