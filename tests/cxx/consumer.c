/* The C side of the layout check: the same assertions as consumer.cpp, so
 * that a mutex shared between C and C++ code is one object to both. */
#include <fastmutex.h>
#include <fastmutex/wdm.h>

#include <stddef.h>
#include <stdio.h>

_Static_assert(sizeof(fast_mutex_t) == 16, "fast_mutex_t size");
_Static_assert(offsetof(fast_mutex_t, word) == 0, "word offset");
_Static_assert(offsetof(fast_mutex_t, contention) == 4, "contention offset");
_Static_assert(offsetof(fast_mutex_t, queue) == 8, "queue offset");
_Static_assert(offsetof(fast_mutex_t, queue_lock) == 12, "queue_lock offset");
_Static_assert(sizeof(FAST_MUTEX) == 0x38, "FAST_MUTEX size");
_Static_assert(offsetof(FAST_MUTEX, Event) == 0x18, "FAST_MUTEX.Event offset");
_Static_assert(offsetof(FAST_MUTEX, OldIrql) == 0x30, "FAST_MUTEX.OldIrql offset");

int main(void)
{
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    fast_mutex_acquire(&m);
    fast_mutex_release(&m);
    printf("consumer: ok (C %ld)\n", (long)__STDC_VERSION__);
    return fast_mutex_owner(&m) == 0 ? 0 : 1;
}
