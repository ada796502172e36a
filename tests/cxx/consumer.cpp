// A C++ consumer of every public header, built by cxx_consumer.sh with g++
// and clang++ at each standard from C++11 on, warning-free.
#include <fastmutex.h>
#include <fastmutex.hpp>
#include <fastmutex/wdm.h>

#include <cstddef>
#include <cstdio>
#include <mutex>

// The layout seen from C++ (the C side asserts the same in consumer.c).
static_assert(sizeof(fast_mutex_t) == 16, "fast_mutex_t size");
static_assert(offsetof(fast_mutex_t, word) == 0, "word offset");
static_assert(offsetof(fast_mutex_t, contention) == 4, "contention offset");
static_assert(offsetof(fast_mutex_t, queue) == 8, "queue offset");
static_assert(offsetof(fast_mutex_t, queue_lock) == 12, "queue_lock offset");
static_assert(sizeof(FAST_MUTEX) == 0x38, "FAST_MUTEX size");
static_assert(offsetof(FAST_MUTEX, Event) == 0x18, "FAST_MUTEX.Event offset");
static_assert(offsetof(FAST_MUTEX, OldIrql) == 0x30, "FAST_MUTEX.OldIrql offset");

static fast_mutex_t c_mutex = FAST_MUTEX_INITIALIZER;
static fastmutex::mutex cxx_mutex;
static FAST_MUTEX wdm_mutex;

int main()
{
    fast_mutex_acquire(&c_mutex);
    bool again = fast_mutex_try_acquire(&c_mutex);
    fast_mutex_release(&c_mutex);
    {
        std::lock_guard<fastmutex::mutex> guard(cxx_mutex);
    }
    ExInitializeFastMutex(&wdm_mutex);
    ExAcquireFastMutex(&wdm_mutex);
    KIRQL held_at = KeGetCurrentIrql();
    ExReleaseFastMutex(&wdm_mutex);
    if (again || held_at != APC_LEVEL || KeGetCurrentIrql() != PASSIVE_LEVEL ||
        fast_mutex_owner(&c_mutex) != 0 || cxx_mutex.owner() != 0) {
        std::printf("consumer: wrong state\n");
        return 1;
    }
    std::printf("consumer: ok (C++ %ld)\n", static_cast<long>(__cplusplus));
    return 0;
}
