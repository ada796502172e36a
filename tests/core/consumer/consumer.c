/* A program that uses an installed fastmutex the way a user would: both
 * headers, the inline fast paths and the library's slow-path functions.
 * Exits 0 and prints "consumer ok" when every call behaved. */
#define _GNU_SOURCE
#include <fastmutex.h>
#include <fastmutex/wdm.h>
#include <stdio.h>
#include <unistd.h>

#define CHECK(cond)                                                                          \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "consumer: check failed: %s\n", #cond);                       \
            return 1;                                                                     \
        }                                                                                 \
    } while (0)

int main(void)
{
    static fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    CHECK(fast_mutex_set_name(&m, "consumer") == 0);
    fast_mutex_acquire(&m);
    CHECK(fast_mutex_owner(&m) == gettid());
    CHECK(!fast_mutex_try_acquire(&m));
    fast_mutex_release(&m);
    CHECK(fast_mutex_owner(&m) == 0);
    CHECK(fast_mutex_try_acquire(&m));
    fast_mutex_release(&m);
    struct timespec past = {0, 0};
    CHECK(fast_mutex_acquire_until(&m, &past) == 0);
    CHECK(fast_mutex_owner(&m) == gettid());
    fast_mutex_release(&m);
    fast_mutex_destroy(&m);

    FAST_MUTEX fm;
    ExInitializeFastMutex(&fm);
    ExAcquireFastMutex(&fm);
    CHECK(KeGetCurrentIrql() == APC_LEVEL);
    CHECK(fm.Owner == (PVOID)KeGetCurrentThread());
    ExReleaseFastMutex(&fm);
    CHECK(KeGetCurrentIrql() == PASSIVE_LEVEL);
    CHECK(fm.Count == 1);

    puts("consumer ok");
    return 0;
}
