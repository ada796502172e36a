/* fastmutex.hpp: fastmutex::mutex, a fast_mutex_t for C++ code.
 *
 * It meets the standard's Lockable and TimedLockable requirements, so
 * std::lock_guard, std::unique_lock, std::scoped_lock, std::lock and
 * std::condition_variable_any work with it as with std::timed_mutex.  It is
 * neither copyable nor movable: its address is what the waiters, fmx and
 * the reports know it by.  C++11 or later. */
#ifndef FASTMUTEX_HPP
#define FASTMUTEX_HPP

#include <fastmutex.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <system_error>

namespace fastmutex {

class mutex {
public:
    /* A free mutex; constant-initialized when static. */
    constexpr mutex() noexcept : m_() {}

    /* Requires that the mutex be free and that no thread wait on it
     * (fast_mutex_destroy() reports a held one as misuse). */
    ~mutex() { fast_mutex_destroy(&m_); }

    mutex(const mutex &) = delete;
    mutex &operator=(const mutex &) = delete;

    /* Blocks until the calling thread holds the mutex.  Requires that it
     * not already hold it: a recursive lock is reported and the process
     * aborts, where std::mutex leaves it undefined. */
    void lock() { fast_mutex_acquire(&m_); }

    /* Takes the mutex if it is free and returns true; false at once
     * otherwise, also when the calling thread already holds it. */
    bool try_lock() noexcept { return fast_mutex_try_acquire(&m_); }

    /* Requires that the calling thread hold the mutex; a release by another
     * thread, or of a free mutex, is reported and the process aborts. */
    void unlock() { fast_mutex_release(&m_); }

    /* Blocks until the calling thread holds the mutex (true) or `timeout`
     * has passed (false), measured on std::chrono::steady_clock.  Throws
     * std::system_error with std::errc::resource_deadlock_would_occur when
     * the wait was found to close a cycle of threads waiting on each other. */
    template <class Rep, class Period>
    bool try_lock_for(const std::chrono::duration<Rep, Period> &timeout)
    {
        return try_lock_until(std::chrono::steady_clock::now() + to_ns_up(timeout));
    }

    /* As try_lock_for(), up to the time point `deadline`.  A steady_clock
     * deadline is waited for directly (steady_clock is CLOCK_MONOTONIC);
     * another clock's is turned into a steady_clock one, and checked again
     * on that clock when the wait ends, as the standard asks. */
    template <class Clock, class Duration>
    bool try_lock_until(const std::chrono::time_point<Clock, Duration> &deadline)
    {
        for (;;) {
            typename Clock::time_point now = Clock::now();
            if (now >= deadline)
                return try_lock();
            if (try_lock_until(std::chrono::steady_clock::now() + to_ns_up(deadline - now)))
                return true;
        }
    }

    template <class Duration>
    bool try_lock_until(const std::chrono::time_point<std::chrono::steady_clock, Duration> &deadline)
    {
        using std::chrono::nanoseconds;
        long long ns = to_ns_up(deadline.time_since_epoch()).count();
        if (ns < 0)
            ns = 0;
        struct timespec ts;
        ts.tv_sec = static_cast<time_t>(ns / 1000000000);
        ts.tv_nsec = static_cast<long>(ns % 1000000000);
        int err = fast_mutex_acquire_until(&m_, &ts);
        if (err == EDEADLK)
            throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur),
                                    "fastmutex::mutex::try_lock_until");
        return err == 0;
    }

    /* Names the mutex for fmx and the reports (at most 31 bytes are kept);
     * an empty name removes it.  Returns false when the process already
     * names too many mutexes. */
    bool set_name(const std::string &name)
    {
        return fast_mutex_set_name(&m_, name.empty() ? nullptr : name.c_str()) == 0;
    }

    /* The name given by set_name(), "" when there is none. */
    std::string name() const
    {
        char buf[32];
        fast_mutex_get_name(&m_, buf, sizeof buf);
        return buf;
    }

    /* The kernel thread id of the holder, 0 when free: a snapshot. */
    pid_t owner() const noexcept { return fast_mutex_owner(&m_); }

    /* How many acquires had to sleep for the mutex. */
    uint32_t contention() const noexcept { return fast_mutex_contention(&m_); }

    typedef fast_mutex_t *native_handle_type;
    native_handle_type native_handle() noexcept { return &m_; }

private:
    /* Rounds a duration up to whole nanoseconds, so that a wait never ends
     * before the time asked for. */
    template <class Rep, class Period>
    static std::chrono::nanoseconds to_ns_up(const std::chrono::duration<Rep, Period> &d)
    {
        std::chrono::nanoseconds ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d);
        return ns < d ? ns + std::chrono::nanoseconds(1) : ns;
    }

    fast_mutex_t m_;
};

} // namespace fastmutex

#endif /* FASTMUTEX_HPP */
