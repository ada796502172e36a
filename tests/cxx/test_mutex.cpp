// GoogleTest tests of fastmutex::mutex, written as a C++ user would: through
// the standard's lock types, with the mutex shared between std::threads.
#include <fastmutex.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include <unistd.h>

using namespace std::chrono_literals;

static_assert(!std::is_copy_constructible<fastmutex::mutex>::value, "not copyable");
static_assert(!std::is_copy_assignable<fastmutex::mutex>::value, "not copy-assignable");
static_assert(!std::is_move_constructible<fastmutex::mutex>::value, "not movable");
static_assert(sizeof(fastmutex::mutex) == sizeof(fast_mutex_t), "no space beyond the C mutex");

// Runs `body` on another thread and returns what it returned.
template <class F> static bool on_other_thread(F body)
{
    bool result = false;
    std::thread t([&] { result = body(); });
    t.join();
    return result;
}

TEST(FastmutexMutex, LockGuardHoldsAndReleases)
{
    fastmutex::mutex m;
    {
        std::lock_guard<fastmutex::mutex> guard(m);
        EXPECT_EQ(m.owner(), gettid());
        EXPECT_FALSE(on_other_thread([&] { return m.try_lock(); }));
    }
    EXPECT_EQ(m.owner(), 0);
    EXPECT_TRUE(on_other_thread([&] {
        bool got = m.try_lock();
        if (got)
            m.unlock();
        return got;
    }));
}

TEST(FastmutexMutex, TryLockFailsWhenAlreadyHeldBySelf)
{
    fastmutex::mutex m;
    ASSERT_TRUE(m.try_lock());
    EXPECT_FALSE(m.try_lock());
    m.unlock();
}

TEST(FastmutexMutex, UniqueLockDeferAndTryToLock)
{
    fastmutex::mutex m;
    std::unique_lock<fastmutex::mutex> lock(m, std::defer_lock);
    EXPECT_FALSE(lock.owns_lock());
    lock.lock();
    EXPECT_TRUE(lock.owns_lock());
    EXPECT_EQ(m.owner(), gettid());
    lock.unlock();
    std::unique_lock<fastmutex::mutex> tried(m, std::try_to_lock);
    EXPECT_TRUE(tried.owns_lock());
}

TEST(FastmutexMutex, UniqueLockTimedFailsWhileHeld)
{
    fastmutex::mutex m;
    std::lock_guard<fastmutex::mutex> guard(m);
    EXPECT_FALSE(on_other_thread([&] {
        std::unique_lock<fastmutex::mutex> lock(m, 20ms);
        return lock.owns_lock();
    }));
}

#if __cplusplus >= 201703L
TEST(FastmutexMutex, ScopedLockTakesTwoWithoutDeadlock)
{
    fastmutex::mutex a, b;
    std::atomic<int> rounds{0};
    // Two threads take the pair in opposite orders; std::scoped_lock's
    // deadlock avoidance (try_lock and back off) must see them through.
    auto worker = [&](fastmutex::mutex &first, fastmutex::mutex &second) {
        for (int i = 0; i < 2000; i++) {
            std::scoped_lock lock(first, second);
            EXPECT_EQ(a.owner(), gettid());
            EXPECT_EQ(b.owner(), gettid());
            rounds++;
        }
    };
    std::thread t1(worker, std::ref(a), std::ref(b));
    std::thread t2(worker, std::ref(b), std::ref(a));
    t1.join();
    t2.join();
    EXPECT_EQ(rounds.load(), 4000);
}
#endif

TEST(FastmutexMutex, KeepsCounterExact)
{
    fastmutex::mutex m;
    long counter = 0; // guarded by m, deliberately not atomic
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; t++)
        threads.emplace_back([&] {
            for (int i = 0; i < 50000; i++) {
                std::lock_guard<fastmutex::mutex> guard(m);
                counter++;
            }
        });
    for (auto &t : threads)
        t.join();
    EXPECT_EQ(counter, 4 * 50000);
}

TEST(FastmutexMutex, ConditionVariableAnyWaitsAndWakes)
{
    fastmutex::mutex m;
    std::condition_variable_any cv;
    bool ready = false;
    int seen = 0;
    std::thread consumer([&] {
        std::unique_lock<fastmutex::mutex> lock(m);
        cv.wait(lock, [&] { return ready; });
        EXPECT_EQ(m.owner(), gettid());
        seen = 1;
    });
    {
        std::lock_guard<fastmutex::mutex> guard(m);
        ready = true;
    }
    cv.notify_one();
    consumer.join();
    EXPECT_EQ(seen, 1);
    EXPECT_EQ(m.owner(), 0);
}

TEST(FastmutexMutex, ConditionVariableAnyTimesOut)
{
    fastmutex::mutex m;
    std::condition_variable_any cv;
    std::unique_lock<fastmutex::mutex> lock(m);
    EXPECT_EQ(cv.wait_for(lock, 10ms), std::cv_status::timeout);
    EXPECT_TRUE(lock.owns_lock());
    EXPECT_EQ(m.owner(), gettid());
}

TEST(FastmutexMutex, TryLockForWaitsAtLeastItsTimeout)
{
    fastmutex::mutex m;
    std::lock_guard<fastmutex::mutex> guard(m);
    auto waited = std::chrono::steady_clock::duration::zero();
    EXPECT_FALSE(on_other_thread([&] {
        auto start = std::chrono::steady_clock::now();
        bool got = m.try_lock_for(30ms);
        waited = std::chrono::steady_clock::now() - start;
        return got;
    }));
    EXPECT_GE(waited, 30ms);
}

TEST(FastmutexMutex, TryLockForGetsItWhenReleased)
{
    fastmutex::mutex m;
    std::atomic<bool> waiting{false};
    m.lock();
    std::thread waiter([&] {
        waiting = true;
        bool got = m.try_lock_for(60s);
        EXPECT_TRUE(got);
        if (got) {
            EXPECT_EQ(m.owner(), gettid());
            m.unlock();
        }
    });
    while (!waiting)
        std::this_thread::yield();
    std::this_thread::sleep_for(5ms);
    m.unlock();
    waiter.join();
}

TEST(FastmutexMutex, TryLockUntilPastDeadlineIsTryLock)
{
    fastmutex::mutex m;
    auto past = std::chrono::steady_clock::now() - 1s;
    EXPECT_TRUE(m.try_lock_until(past));
    EXPECT_FALSE(on_other_thread([&] { return m.try_lock_until(past); }));
    m.unlock();
}

TEST(FastmutexMutex, TryLockUntilOtherClock)
{
    fastmutex::mutex m;
    std::lock_guard<fastmutex::mutex> guard(m);
    auto deadline = std::chrono::system_clock::now() + 20ms;
    EXPECT_FALSE(on_other_thread([&] { return m.try_lock_until(deadline); }));
    EXPECT_GE(std::chrono::system_clock::now(), deadline);
}

TEST(FastmutexMutex, NameSetterReachesTheCApi)
{
    fastmutex::mutex m;
    EXPECT_EQ(m.name(), "");
    EXPECT_TRUE(m.set_name("jobs_lock"));
    EXPECT_EQ(m.name(), "jobs_lock");
    char buf[32];
    fast_mutex_get_name(m.native_handle(), buf, sizeof buf);
    EXPECT_STREQ(buf, "jobs_lock");
    EXPECT_TRUE(m.set_name(""));
    EXPECT_EQ(m.name(), "");
}

TEST(FastmutexMutex, ContentionCountsWaits)
{
    fastmutex::mutex m;
    std::atomic<bool> started{false};
    m.lock();
    std::thread waiter([&] {
        started = true;
        std::lock_guard<fastmutex::mutex> guard(m);
    });
    while (!started)
        std::this_thread::yield();
    // Long enough that the waiter stops spinning and sleeps.
    std::this_thread::sleep_for(100ms);
    m.unlock();
    waiter.join();
    EXPECT_GE(m.contention(), 1u);
}

// Two threads each hold one mutex and wait for the other's: the deadlock
// check finds the cycle, and the wait it ends throws, as std::timed_mutex
// may with resource_deadlock_would_occur.  (FASTMUTEX_DEADLOCK_MS is set
// short for this test by ctest.)
TEST(FastmutexMutex, DeadlockCycleThrows)
{
    fastmutex::mutex a, b;
    std::atomic<int> holding{0}, thrown{0}, got{0};
    auto worker = [&](fastmutex::mutex &mine, fastmutex::mutex &theirs) {
        std::unique_lock<fastmutex::mutex> hold(mine);
        holding++;
        while (holding.load() < 2)
            std::this_thread::yield();
        try {
            if (theirs.try_lock_for(std::chrono::seconds(30))) {
                got++;
                theirs.unlock();
            }
        } catch (const std::system_error &e) {
            EXPECT_EQ(e.code(), std::errc::resource_deadlock_would_occur);
            thrown++;
        }
    };
    std::thread t1(worker, std::ref(a), std::ref(b));
    std::thread t2(worker, std::ref(b), std::ref(a));
    t1.join();
    t2.join();
    // At least one wait saw the cycle; whoever did let go, so the other
    // either got its lock or saw the cycle too.
    EXPECT_GE(thrown.load(), 1);
    EXPECT_EQ(thrown.load() + got.load(), 2);
}

// A static mutex is constant-initialized: usable before main and in any order.
static fastmutex::mutex static_mutex;

TEST(FastmutexMutex, StaticMutexIsFree)
{
    EXPECT_EQ(static_mutex.owner(), 0);
    std::lock_guard<fastmutex::mutex> guard(static_mutex);
    EXPECT_EQ(static_mutex.owner(), gettid());
}
