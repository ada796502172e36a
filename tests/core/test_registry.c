/* The waiter registry, read as fmx reads it: through /proc/self/fd, mapped
 * read-only, trusting nothing but the layout of src/registry.h.  While a
 * thread waits its record says so (state, thread, mutex, wait start, call
 * site, thread name); when the wait ends, the record stops saying so; when
 * the thread exits, its slot is given back.  Mutex names live there too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <dlfcn.h>
#include <fastmutex.h>
#include <fastmutex/wdm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "core_test.h"
#include "registry.h"
#include "registry_fd.h"


/* This process's registry, mapped read-only, or NULL when there is none. */
struct mapped_registry {
    const struct fmx_registry *header;
    size_t size;
};

/* Maps the registry the way another process would: opening the /proc link
 * read-only, so that nothing here can write to it. */
static bool map_registry(struct mapped_registry *reg)
{
    int fd = find_registry_fd();
    if (fd < 0)
        return false;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int ro = open(path, O_RDONLY | O_CLOEXEC);
    if (ro < 0)
        return false;
    struct stat st;
    bool ok = fstat(ro, &st) == 0 && (size_t)st.st_size >= sizeof(struct fmx_registry);
    void *p = ok ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, ro, 0) : MAP_FAILED;
    close(ro);
    if (p == MAP_FAILED)
        return false;
    reg->header = p;
    reg->size = (size_t)st.st_size;
    return true;
}

static void unmap_registry(struct mapped_registry *reg)
{
    munmap((void *)reg->header, reg->size);
    reg->header = NULL;
}

static const struct fmx_record *record_slot(const struct mapped_registry *reg, uint32_t slot)
{
    const char *base = (const char *)reg->header;
    return (const struct fmx_record *)(base + reg->header->records_offset +
                                       (size_t)slot * reg->header->record_size);
}

/* Copies a record consistently: retries until its seqlock reads even and
 * unchanged around the copy. */
static bool read_record(const struct mapped_registry *reg, uint32_t slot, struct fmx_record *out)
{
    const struct fmx_record *rec = record_slot(reg, slot);
    for (int attempt = 0; attempt < 100000; attempt++) {
        uint32_t before = atomic_load_explicit(&rec->seq, memory_order_acquire);
        if (before & 1u)
            continue;
        memcpy(out, (const void *)rec, sizeof *out);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&rec->seq, memory_order_relaxed) == before)
            return true;
    }
    return false;
}

/* Finds the record of thread `tid` that is not free; false if none. */
static bool find_record(const struct mapped_registry *reg, pid_t tid, struct fmx_record *out)
{
    uint32_t used = atomic_load(&((struct fmx_registry *)reg->header)->threads_used);
    if (used > reg->header->thread_capacity)
        used = reg->header->thread_capacity;
    for (uint32_t slot = 0; slot < used; slot++) {
        struct fmx_record rec;
        if (!read_record(reg, slot, &rec))
            continue;
        if (rec.tid == tid && atomic_load(&rec.state) != FMX_RECORD_FREE) {
            *out = rec;
            return true;
        }
    }
    return false;
}

/* True when thread `tid` has a record in state WAITING; copies it. */
static bool find_waiting(pid_t tid, struct fmx_record *out)
{
    struct mapped_registry reg;
    if (!map_registry(&reg))
        return false;
    bool found = find_record(&reg, tid, out) && atomic_load(&out->state) == FMX_RECORD_WAITING;
    unmap_registry(&reg);
    return found;
}

/* Polls until thread `tid` has a WAITING record and copies it; failing the
 * test if it never shows. */
static void expect_waiting(pid_t tid, struct fmx_record *out)
{
    bool ok;
    CORE_POLL_UNTIL(ok, find_waiting(tid, out), CORE_POLL_LIMIT_MS);
    if (!ok)
        fail_msg("no WAITING record for thread %d (registry fd %d)", (int)tid, find_registry_fd());
}

/* The header says what src/registry.h says, about this process. */
static void check_header(const struct mapped_registry *reg)
{
    const struct fmx_registry *h = reg->header;
    assert_int_equal(h->magic, FMX_REGISTRY_MAGIC);
    assert_int_equal(h->version, FMX_REGISTRY_VERSION);
    assert_int_equal(h->header_size, sizeof(struct fmx_registry));
    assert_int_equal(h->record_size, sizeof(struct fmx_record));
    assert_int_equal(h->name_size, sizeof(struct fmx_name));
    assert_int_equal(h->thread_capacity, FMX_REGISTRY_THREADS);
    assert_int_equal(h->name_capacity, FMX_REGISTRY_NAMES);
    assert_int_equal(h->pid, getpid());
    assert_in_range(atomic_load(&((struct fmx_registry *)h)->threads_used), 1, h->thread_capacity);
    assert_true(h->records_offset >= h->header_size);
    assert_true(h->names_offset >=
                h->records_offset + (uint64_t)h->thread_capacity * h->record_size);
    assert_true(h->names_offset + (uint64_t)h->name_capacity * h->name_size <= reg->size);
    assert_true(reg->size >= FMX_REGISTRY_SIZE);
    /* Nothing has aborted: no stamp.  The offset was taken when the
     * registry was made; NTP may have moved the clocks a little since. */
    assert_int_equal(atomic_load(&((struct fmx_registry *)h)->stamp_mono_ns), 0);
    int64_t drift = h->realtime_offset_ns - core_realtime_offset_ns();
    if (drift < -100000000 || drift > 100000000)
        fail_msg("realtime_offset_ns %lld is %lld ns off the clocks' offset now",
                 (long long)h->realtime_offset_ns, (long long)drift);
}

/* A thread that waits for a mutex and then keeps it until told to go.  It
 * is exported (the test links with -rdynamic) so that dladdr() can tell
 * whether a recorded call site lies inside it. */
struct waiter {
    fast_mutex_t *m;
    PFAST_MUTEX fm;           /* when set, wait with ExAcquireFastMutex */
    const struct timespec *deadline; /* when set, wait with acquire_until */
    const char *long_name;    /* when set, given with fast_mutex_set_thread_name */
    const char *renamed;      /* when set, the comm given after the long name */
    pthread_t thread;
    _Atomic pid_t tid;
    atomic_bool returned;
    atomic_bool let_go;
    int result;
};

void *registry_waiter_main(void *arg);

void *registry_waiter_main(void *arg)
{
    struct waiter *w = arg;
    pthread_setname_np(pthread_self(), "reg-waiter");
    if (w->long_name != NULL) {
        prctl(PR_SET_NAME, w->long_name); /* the kernel keeps 15 bytes */
        fast_mutex_set_thread_name(w->long_name);
    }
    if (w->renamed != NULL)
        pthread_setname_np(pthread_self(), w->renamed);
    atomic_store(&w->tid, gettid());
    int result = 0;
    if (w->fm != NULL)
        ExAcquireFastMutex(w->fm);
    else if (w->deadline != NULL)
        result = fast_mutex_acquire_until(w->m, w->deadline);
    else
        fast_mutex_acquire(w->m);
    w->result = result;
    atomic_store(&w->returned, true);
    while (!atomic_load(&w->let_go))
        core_sleep_ms(1);
    if (w->fm != NULL)
        ExReleaseFastMutex(w->fm);
    else if (result == 0)
        fast_mutex_release(w->m);
    return NULL;
}

static void waiter_start(struct waiter *w)
{
    assert_int_equal(pthread_create(&w->thread, NULL, registry_waiter_main, w), 0);
    bool ok;
    CORE_POLL_UNTIL(ok, atomic_load(&w->tid) != 0, CORE_POLL_LIMIT_MS);
    assert_true(ok);
}

/* A thread that waits notes in its record the CPU it runs on (as 1 + the
 * CPU): at its first wait, and again when it waits from another CPU
 * (begin_wait() in src/fastmutex.c).  The thread pins itself to each
 * CPU of the test's affinity in turn (the first two) and waits there for
 * a mutex this thread holds. */
struct roaming_waiter {
    fast_mutex_t *m;
    int cpus[2];
    int n;
    _Atomic pid_t tid;
    atomic_int go;   /* waits the thread may start */
    atomic_int done; /* waits it has finished */
};

static void *roaming_waiter_main(void *arg)
{
    struct roaming_waiter *w = arg;
    atomic_store(&w->tid, gettid());
    for (int k = 0; k < w->n; k++) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(w->cpus[k], &one);
        if (pthread_setaffinity_np(pthread_self(), sizeof one, &one) != 0)
            return NULL;
        while (atomic_load(&w->go) <= k)
            core_sleep_ms(1);
        fast_mutex_acquire(w->m);
        fast_mutex_release(w->m);
        atomic_store(&w->done, k + 1);
    }
    return NULL;
}

static void test_waiter_notes_its_cpu(void **state)
{
    (void)state;
    cpu_set_t allowed;
    assert_int_equal(sched_getaffinity(0, sizeof allowed, &allowed), 0);
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    struct roaming_waiter w = {.m = &m};
    for (int cpu = 0; cpu < CPU_SETSIZE && w.n < 2; cpu++)
        if (CPU_ISSET(cpu, &allowed))
            w.cpus[w.n++] = cpu;
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, roaming_waiter_main, &w), 0);
    bool started;
    CORE_POLL_UNTIL(started, atomic_load(&w.tid) != 0, CORE_POLL_LIMIT_MS);
    assert_true(started);
    for (int k = 0; k < w.n; k++) {
        fast_mutex_acquire(&m);
        atomic_store(&w.go, k + 1);
        struct fmx_record rec;
        expect_waiting(atomic_load(&w.tid), &rec);
        uint32_t noted = atomic_load(&rec.cpu);
        fast_mutex_release(&m);
        bool ok;
        CORE_POLL_UNTIL(ok, atomic_load(&w.done) == k + 1, CORE_POLL_LIMIT_MS);
        assert_true(ok);
        if (noted != (uint32_t)w.cpus[k] + 1)
            fail_msg("wait %d on CPU %d: the record notes %u (1 + CPU)", k, w.cpus[k], noted);
    }
    assert_int_equal(pthread_join(thread, NULL), 0);
    fast_mutex_destroy(&m);
}

/* Waits in a thread made by `w` for a mutex this thread holds, and
 * returns its record's name. */
static void waiting_name(struct waiter *w, char name[FMX_THREAD_NAME_LEN])
{
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    w->m = &m;
    fast_mutex_acquire(&m);
    waiter_start(w);
    struct fmx_record rec;
    expect_waiting(atomic_load(&w->tid), &rec);
    memcpy(name, rec.thread_name, FMX_THREAD_NAME_LEN);
    fast_mutex_release(&m);
    bool ok;
    CORE_POLL_UNTIL(ok, atomic_load(&w->returned), CORE_POLL_LIMIT_MS);
    assert_true(ok);
    atomic_store(&w->let_go, true);
    assert_int_equal(pthread_join(w->thread, NULL), 0);
    fast_mutex_destroy(&m);
}

/* A long name (fast_mutex_set_thread_name) is what the record shows, cut
 * to the field and terminated when it is longer. */
static void test_long_thread_name(void **state)
{
    (void)state;
    char name[FMX_THREAD_NAME_LEN];
    struct waiter fits = {.long_name = "RegistryWaiterWithALongName"};
    waiting_name(&fits, name);
    assert_string_equal(name, "RegistryWaiterWithALongName");

    char longer[FMX_THREAD_NAME_LEN + 20];
    for (size_t i = 0; i < sizeof longer - 1; i++)
        longer[i] = (char)('a' + i % 26);
    longer[sizeof longer - 1] = '\0';
    struct waiter cut = {.long_name = longer};
    waiting_name(&cut, name);
    assert_int_equal(name[FMX_THREAD_NAME_LEN - 1], '\0');
    assert_int_equal(strlen(name), FMX_THREAD_NAME_LEN - 1);
    assert_memory_equal(name, longer, FMX_THREAD_NAME_LEN - 1);

    /* Renamed since: its comm is no longer the long name's beginning. */
    struct waiter renamed = {.long_name = "RegistryWaiterWithALongName", .renamed = "renamed"};
    waiting_name(&renamed, name);
    assert_string_equal(name, "renamed");
}

/* After the thread is gone, no record claims it. */
static void check_slot_given_back(pid_t tid)
{
    struct mapped_registry reg;
    assert_true(map_registry(&reg));
    struct fmx_record rec;
    bool still_there = find_record(&reg, tid, &rec);
    unmap_registry(&reg);
    if (still_there)
        fail_msg("exited thread %d still has a record in state %u", (int)tid,
                 (unsigned)atomic_load(&rec.state));
}

/* While a thread waits, its record shows it; after it got the mutex, the
 * record is no longer WAITING and names the mutex it got. */
static void test_waiting_record(void **state)
{
    (void)state;
    static fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    fast_mutex_acquire(&m);
    uint64_t before = core_now_ns();
    struct waiter w = {.m = &m};
    waiter_start(&w);
    pid_t tid = atomic_load(&w.tid);

    struct fmx_record rec;
    expect_waiting(tid, &rec);
    uint64_t after = core_now_ns();

    /* The descriptor is the memfd, and its header describes this process. */
    int fd = find_registry_fd();
    assert_true(fd >= 0);
    char path[64], target[256];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, target, sizeof target - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, REGISTRY_LINK);
    struct mapped_registry reg;
    assert_true(map_registry(&reg));
    check_header(&reg);
    unmap_registry(&reg);

    assert_int_equal(rec.tid, tid);
    assert_int_equal(atomic_load(&rec.state), FMX_RECORD_WAITING);
    assert_int_equal(rec.kind, FMX_KIND_FAST_MUTEX);
    assert_int_equal(rec.mutex, (uint64_t)(uintptr_t)&m);
    assert_int_equal(atomic_load(&rec.wake), FMX_WAKE_NONE);
    assert_in_range(rec.wait_start_ns, before, after);
    assert_string_equal(rec.thread_name, "reg-waiter");
    assert_true(rec.owner_seen == 0 || rec.owner_seen == gettid());

    /* The call site is the return address into the function that called
     * fast_mutex_acquire(): registry_waiter_main. */
    Dl_info where;
    memset(&where, 0, sizeof where);
    if (dladdr((void *)(uintptr_t)rec.site, &where) == 0 || where.dli_sname == NULL)
        fail_msg("site 0x%llx is in no known function", (unsigned long long)rec.site);
    assert_string_equal(where.dli_sname, "registry_waiter_main");
    assert_ptr_equal(where.dli_saddr, (void *)(uintptr_t)registry_waiter_main);

    fast_mutex_release(&m);
    bool ok;
    CORE_POLL_UNTIL(ok, atomic_load(&w.returned), CORE_POLL_LIMIT_MS);
    assert_true(ok);
    assert_true(map_registry(&reg));
    bool has_record = find_record(&reg, tid, &rec);
    unmap_registry(&reg);
    /* The thread lives on, so it keeps its slot, now idle. */
    assert_true(has_record);
    assert_int_equal(atomic_load(&rec.state), FMX_RECORD_IDLE);
    assert_int_equal(rec.acquired_mutex, (uint64_t)(uintptr_t)&m);
    atomic_store(&w.let_go, true);
    assert_int_equal(pthread_join(w.thread, NULL), 0);
    check_slot_given_back(tid);
    assert_int_equal(fast_mutex_owner(&m), 0);
}

/* A wait that times out leaves no WAITING record behind. */
static void test_timed_out_wait_leaves_no_waiting_record(void **state)
{
    (void)state;
    static fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    fast_mutex_acquire(&m);
    struct timespec deadline = core_deadline_ms(200);
    struct waiter w = {.m = &m, .deadline = &deadline};
    waiter_start(&w);
    pid_t tid = atomic_load(&w.tid);
    bool ok;
    CORE_POLL_UNTIL(ok, atomic_load(&w.returned), CORE_POLL_LIMIT_MS);
    assert_true(ok);
    assert_int_equal(w.result, ETIMEDOUT);
    struct fmx_record rec;
    assert_false(find_waiting(tid, &rec));
    fast_mutex_release(&m);
    atomic_store(&w.let_go, true);
    assert_int_equal(pthread_join(w.thread, NULL), 0);
    check_slot_given_back(tid);
}

/* A thread waiting in ExAcquireFastMutex is recorded as waiting on the
 * lock inside the FAST_MUTEX, with the FAST_MUTEX as `outer`. */
static void test_wdm_waiting_record(void **state)
{
    (void)state;
    static FAST_MUTEX fm;
    ExInitializeFastMutex(&fm);
    ExAcquireFastMutex(&fm);
    struct waiter w = {.fm = &fm};
    waiter_start(&w);
    pid_t tid = atomic_load(&w.tid);
    struct fmx_record rec;
    expect_waiting(tid, &rec);
    assert_int_equal(rec.kind, FMX_KIND_WDM);
    assert_int_equal(rec.outer, (uint64_t)(uintptr_t)&fm);
    assert_int_equal(rec.mutex, (uint64_t)(uintptr_t)&fm.Event.Lock);
    ExReleaseFastMutex(&fm);
    bool ok;
    CORE_POLL_UNTIL(ok, atomic_load(&w.returned), CORE_POLL_LIMIT_MS);
    assert_true(ok);
    assert_false(find_waiting(tid, &rec));
    atomic_store(&w.let_go, true);
    assert_int_equal(pthread_join(w.thread, NULL), 0);
}

/* Finds the name entry of mutex `m`; false if none. */
static bool find_name(const void *m, char *name, size_t size)
{
    struct mapped_registry reg;
    if (!map_registry(&reg))
        return false;
    const char *base = (const char *)reg.header + reg.header->names_offset;
    bool found = false;
    for (uint32_t i = 0; i < reg.header->name_capacity && !found; i++) {
        const struct fmx_name *entry =
            (const struct fmx_name *)(base + (size_t)i * reg.header->name_size);
        if (atomic_load((_Atomic uint64_t *)&entry->mutex) == (uint64_t)(uintptr_t)m) {
            snprintf(name, size, "%.*s", (int)FMX_NAME_LEN, entry->name);
            found = true;
        }
    }
    unmap_registry(&reg);
    return found;
}

/* Names given with fast_mutex_set_name() are in the registry, for fmx to
 * show, and leave it when removed. */
static void test_names_in_registry(void **state)
{
    (void)state;
    static fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    assert_int_equal(fast_mutex_set_name(&m, "registry-named"), 0);
    char name[64];
    assert_true(find_name(&m, name, sizeof name));
    assert_string_equal(name, "registry-named");
    assert_int_equal(fast_mutex_set_name(&m, NULL), 0);
    assert_false(find_name(&m, name, sizeof name));
}

/* Forks a child that runs `body` with standard error sent into a pipe;
 * returns the child's wait status and what it wrote there. */
static int run_in_child(void (*body)(void), char *err, size_t size)
{
    int err_fd;
    pid_t pid = core_fork_child(&err_fd);
    if (pid == 0) {
        body();
        _exit(0);
    }
    return core_collect_child(pid, err_fd, err, size);
}

static void expect_clean_exit(int status, const char *err)
{
    if (WIFSIGNALED(status))
        fail_msg("child died of signal %d; stderr:\n%s", WTERMSIG(status), err);
    if (WEXITSTATUS(status) != 0)
        fail_msg("child exited with %d; stderr:\n%s", WEXITSTATUS(status), err);
}

/* ---- the stamp a core's reader takes "now" from ---- */

static uint64_t stamp_lower_bound;

/* The report hook of the aborting child: the library has stamped the
 * registry by now, just before it aborts.  Exits with 0 when the stamp
 * lies between the test's start and now and the offset is the clocks'. */
static void check_stamp_hook(const char *report, bool fatal)
{
    (void)report;
    struct mapped_registry reg;
    if (!fatal || !map_registry(&reg))
        _exit(71);
    uint64_t stamp = atomic_load(&((struct fmx_registry *)reg.header)->stamp_mono_ns);
    uint64_t now = core_now_ns();
    int64_t drift = reg.header->realtime_offset_ns - core_realtime_offset_ns();
    if (stamp < stamp_lower_bound || stamp > now) {
        fprintf(stderr, "stamp_mono_ns %llu is not within [%llu, %llu]\n", (unsigned long long)stamp,
                (unsigned long long)stamp_lower_bound, (unsigned long long)now);
        _exit(72);
    }
    if (drift < -10000000 || drift > 10000000) {
        fprintf(stderr, "realtime_offset_ns is %lld ns off\n", (long long)drift);
        _exit(73);
    }
    _exit(0);
}

static fast_mutex_t stamped_mutex = FAST_MUTEX_INITIALIZER;

static void abort_with_stamp_body(void)
{
    /* A name makes the registry without any wait. */
    fast_mutex_set_name(&stamped_mutex, "stamped");
    struct mapped_registry reg;
    if (!map_registry(&reg))
        _exit(74);
    if (atomic_load(&((struct fmx_registry *)reg.header)->stamp_mono_ns) != 0)
        _exit(75);
    unmap_registry(&reg);
    stamp_lower_bound = core_now_ns();
    fast_mutex_set_report_hook(check_stamp_hook);
    fast_mutex_acquire(&stamped_mutex);
    fast_mutex_acquire(&stamped_mutex); /* misuse: reported, stamped, aborted */
    _exit(76);
}

/* A misuse report that aborts leaves the moment in the registry, for a
 * reader of the core (the deadlock abort shares the path; the fmx core
 * tests check it through a core). */
static void test_abort_stamps_registry(void **state)
{
    (void)state;
    char err[4096];
    int status = run_in_child(abort_with_stamp_body, err, sizeof err);
    expect_clean_exit(status, err);
}

/* ---- fork from a thread that has a record ---- */

static fast_mutex_t fork_mutex = FAST_MUTEX_INITIALIZER;

static void *hold_fork_mutex_briefly(void *arg)
{
    atomic_bool *holding = arg;
    fast_mutex_acquire(&fork_mutex);
    atomic_store(holding, true);
    core_sleep_ms(50);
    fast_mutex_release(&fork_mutex);
    return NULL;
}

/* Makes the calling thread wait once for fork_mutex, so that it owns a
 * registry record. */
static void wait_once(void)
{
    atomic_bool holding = false;
    pthread_t t;
    if (pthread_create(&t, NULL, hold_fork_mutex_briefly, &holding) != 0)
        _exit(30);
    while (!atomic_load(&holding))
        core_sleep_ms(1);
    fast_mutex_acquire(&fork_mutex);
    fast_mutex_release(&fork_mutex);
    pthread_join(t, NULL);
}

/* In the child, the forking thread is the only one.  When it ends by
 * returning from its thread function (which runs thread-exit cleanup, then
 * exits the process with status 0) nothing of the parent's registry may be
 * touched, whether or not it waited in the child; when it waits, it gets a
 * registry of its own, naming the child's pid. */
static void *fork_from_waiting_thread(void *arg)
{
    (void)arg;
    wait_once();
    /* First child: exits at once, waiting for nothing itself. */
    pid_t pid = fork();
    if (pid < 0)
        _exit(31);
    if (pid == 0)
        return NULL; /* the child's last thread exits */
    int status;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "first fork child died of signal %d\n", WTERMSIG(status));
        _exit(42);
    }
    if (WEXITSTATUS(status) != 0) {
        fprintf(stderr, "first fork child exited with %d\n", WEXITSTATUS(status));
        _exit(43);
    }
    /* Second child: waits, then checks it has a registry of its own. */
    pid = fork();
    if (pid < 0)
        _exit(31);
    if (pid == 0) {
        wait_once();
        struct mapped_registry reg;
        if (!map_registry(&reg))
            _exit(32);
        if (reg.header->pid != getpid())
            _exit(33);
        struct fmx_record rec;
        if (!find_record(&reg, gettid(), &rec))
            _exit(34);
        unmap_registry(&reg);
        return NULL; /* the child's last thread exits */
    }
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "fork child died of signal %d\n", WTERMSIG(status));
        _exit(40);
    }
    if (WEXITSTATUS(status) != 0) {
        fprintf(stderr, "fork child exited with %d\n", WEXITSTATUS(status));
        _exit(41);
    }
    return NULL;
}

static void fork_test_body(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, fork_from_waiting_thread, NULL) != 0)
        _exit(20);
    pthread_join(t, NULL);
}

/* The test runs in a child of its own so that the grandchild is forked
 * from a process whose registry was made by another thread than main. */
static void test_fork_from_thread_with_record(void **state)
{
    (void)state;
    char err[4096];
    int status = run_in_child(fork_test_body, err, sizeof err);
    expect_clean_exit(status, err);
}

/* ---- many first waits at once ---- */

enum { FIRST_WAITERS = 1024 };
static fast_mutex_t first_mutex = FAST_MUTEX_INITIALIZER;
static pid_t first_tids[FIRST_WAITERS];
static pthread_barrier_t first_start;
static unsigned long first_counter;
static atomic_int first_inside, first_overlaps;

static void *first_waiter(void *arg)
{
    pid_t *tid = arg;
    *tid = gettid();
    pthread_barrier_wait(&first_start);
    fast_mutex_acquire(&first_mutex);
    if (atomic_fetch_add(&first_inside, 1) != 0)
        atomic_fetch_add(&first_overlaps, 1);
    first_counter++;
    atomic_fetch_sub(&first_inside, 1);
    fast_mutex_release(&first_mutex);
    return NULL;
}

/* How many of the first waiters have a WAITING record of their own for
 * first_mutex; prints the first few that have none when `tell`. */
static unsigned first_waiters_recorded(bool tell)
{
    struct mapped_registry reg;
    if (!map_registry(&reg))
        return 0;
    unsigned recorded = 0, told = 0;
    for (unsigned i = 0; i < FIRST_WAITERS; i++) {
        struct fmx_record rec;
        if (find_record(&reg, first_tids[i], &rec) &&
            atomic_load(&rec.state) == FMX_RECORD_WAITING &&
            rec.mutex == (uint64_t)(uintptr_t)&first_mutex)
            recorded++;
        else if (tell && told++ < 5)
            fprintf(stderr, "thread %d has no WAITING record of its own\n", (int)first_tids[i]);
    }
    unmap_registry(&reg);
    return recorded;
}

/* Every thread waiting at the same moment, most for the first time, gets a
 * record of its own: none is shared by two threads (which would lose one
 * of them from fmx's view and, worse, hand the lock to the wrong thread). */
static void first_waits_body(void)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    static pthread_t threads[FIRST_WAITERS];
    pthread_barrier_init(&first_start, NULL, FIRST_WAITERS);
    fast_mutex_acquire(&first_mutex);
    for (unsigned i = 0; i < FIRST_WAITERS; i++)
        if (pthread_create(&threads[i], &attr, first_waiter, &first_tids[i]) != 0)
            _exit(60);
    bool ok;
    CORE_POLL_UNTIL(ok, first_waiters_recorded(false) == FIRST_WAITERS, CORE_POLL_LIMIT_MS);
    if (!ok) {
        fprintf(stderr, "only %u of %u waiting threads have a record\n",
                first_waiters_recorded(true), (unsigned)FIRST_WAITERS);
        _exit(61);
    }
    fast_mutex_release(&first_mutex);
    for (unsigned i = 0; i < FIRST_WAITERS; i++)
        pthread_join(threads[i], NULL);
    if (atomic_load(&first_overlaps) != 0 || first_counter != FIRST_WAITERS) {
        fprintf(stderr, "%d overlaps, counter %lu of %u\n", atomic_load(&first_overlaps),
                first_counter, (unsigned)FIRST_WAITERS);
        _exit(62);
    }
}

static void test_concurrent_first_waits_get_own_records(void **state)
{
    (void)state;
    /* Each round in a new child, whose registry starts empty, so that
     * every record is a new one. */
    for (int round = 0; round < 3; round++) {
        char err[8192];
        int status = run_in_child(first_waits_body, err, sizeof err);
        expect_clean_exit(status, err);
    }
}

/* ---- more threads than the registry has records ---- */

static fast_mutex_t crowd_mutex = FAST_MUTEX_INITIALIZER;
static fast_mutex_t late_mutex = FAST_MUTEX_INITIALIZER;
static atomic_uint crowd_done;
/* The crowd stays alive, asleep, until told to go: thousands of threads
 * polling would starve the ones the test watches. */
static pthread_mutex_t crowd_gate = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t crowd_opened = PTHREAD_COND_INITIALIZER;
static bool crowd_may_exit;

static void *crowd_member(void *arg)
{
    (void)arg;
    fast_mutex_acquire(&crowd_mutex);
    fast_mutex_release(&crowd_mutex);
    atomic_fetch_add(&crowd_done, 1);
    pthread_mutex_lock(&crowd_gate);
    while (!crowd_may_exit)
        pthread_cond_wait(&crowd_opened, &crowd_gate);
    pthread_mutex_unlock(&crowd_gate);
    return NULL;
}

static void *late_waiter(void *arg)
{
    atomic_bool *got = arg;
    fast_mutex_acquire(&late_mutex);
    fast_mutex_release(&late_mutex);
    atomic_store(got, true);
    return NULL;
}

/* FMX_REGISTRY_THREADS live threads have waited, and so hold every record;
 * one more thread must still be able to wait ("a thread beyond that waits
 * unrecorded"), not be refused. */
static void crowd_body(void)
{
    enum { CROWD = FMX_REGISTRY_THREADS };
    static pthread_t threads[CROWD];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);

    fast_mutex_acquire(&crowd_mutex);
    for (unsigned i = 0; i < CROWD; i++)
        if (pthread_create(&threads[i], &attr, crowd_member, NULL) != 0)
            _exit(50);
    /* Each has found the mutex held and waits: every one has a record. */
    bool ok;
    CORE_POLL_UNTIL(ok, fast_mutex_contention(&crowd_mutex) == CROWD, CORE_POLL_LIMIT_MS * 2);
    if (!ok)
        _exit(51);
    fast_mutex_release(&crowd_mutex);
    CORE_POLL_UNTIL(ok, atomic_load(&crowd_done) == CROWD, CORE_POLL_LIMIT_MS * 2);
    if (!ok)
        _exit(52);

    fast_mutex_acquire(&late_mutex);
    atomic_bool got = false;
    pthread_t late;
    if (pthread_create(&late, &attr, late_waiter, &got) != 0)
        _exit(53);
    CORE_POLL_UNTIL(ok, fast_mutex_contention(&late_mutex) == 1, CORE_POLL_LIMIT_MS);
    if (!ok)
        _exit(54);
    fast_mutex_release(&late_mutex);
    CORE_POLL_UNTIL(ok, atomic_load(&got), CORE_POLL_LIMIT_MS);
    if (!ok)
        _exit(55);
    pthread_mutex_lock(&crowd_gate);
    crowd_may_exit = true;
    pthread_cond_broadcast(&crowd_opened);
    pthread_mutex_unlock(&crowd_gate);
    pthread_join(late, NULL);
    for (unsigned i = 0; i < CROWD; i++)
        pthread_join(threads[i], NULL);
}

static void test_thread_beyond_capacity_still_waits(void **state)
{
    (void)state;
    char err[8192];
    int status = run_in_child(crowd_body, err, sizeof err);
    expect_clean_exit(status, err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_waiting_record),
        cmocka_unit_test(test_long_thread_name),
        cmocka_unit_test(test_waiter_notes_its_cpu),
        cmocka_unit_test(test_timed_out_wait_leaves_no_waiting_record),
        cmocka_unit_test(test_wdm_waiting_record),
        cmocka_unit_test(test_names_in_registry),
        cmocka_unit_test(test_fork_from_thread_with_record),
        cmocka_unit_test(test_abort_stamps_registry),
        cmocka_unit_test(test_concurrent_first_waits_get_own_records),
        cmocka_unit_test(test_thread_beyond_capacity_still_waits),
    };
    return cmocka_run_group_tests_name("fastmutex registry", tests, NULL, NULL);
}
