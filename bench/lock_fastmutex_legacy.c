/* fmx-bench adapter: fastmutex with the spin policy it had before issue 17
 * (src/policy_legacy.c: spin up to 10 us whatever the crowd, the per-thread
 * far-lines detector, the holder's-CPU check).  Not a peer: run next to
 * "fastmutex" it gives the paired A/B of the two policies in one run. */
#define ADAPTER_DIAGNOSTICS true
#define ADAPTER_LEGACY_SPIN true
#define ADAPTER_NAME "fastmutex-legacy"
#define ADAPTER_ID fastmutex_legacy
#include "lock_fastmutex.c"
