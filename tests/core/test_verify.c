/* The lock-order verifier (FASTMUTEX_VERIFY=order).  Built once and run
 * twice by ctest: with the verifier on, every order problem must be
 * reported, with the text this test reads; with it off, nothing is, and
 * the inline fast path keeps the thread id cached (it never calls into the
 * library).  Orders are set up by threads that run one after the other:
 * nothing ever waits, which is the point of the verifier. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dlfcn.h>
#include <fastmutex.h>
#include <fastmutex/wdm.h>
#include <pthread.h>
#include <stdatomic.h>

#include "core_test.h"
#include "registry.h"
#include "registry_fd.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

static bool verifying;

/* Every report of the run, kept for the test to read. */
static char reports[16384];
static atomic_int report_count;
static pthread_mutex_t reports_lock = PTHREAD_MUTEX_INITIALIZER;

static void keep_report(const char *report, bool fatal)
{
    (void)fatal;
    pthread_mutex_lock(&reports_lock);
    strncat(reports, report, sizeof reports - strlen(reports) - 1);
    pthread_mutex_unlock(&reports_lock);
    atomic_fetch_add(&report_count, 1);
}

static int catch_reports(void **state)
{
    (void)state;
    reports[0] = '\0';
    atomic_store(&report_count, 0);
    fast_mutex_set_report_hook(keep_report);
    return 0;
}

static int restore_reports(void **state)
{
    (void)state;
    fast_mutex_set_report_hook(NULL);
    return 0;
}

/* A thread that takes `first` then `second` and lets both go. */
struct nesting {
    fast_mutex_t *first, *second;
    const char *name;
    bool try_second;
};

/* Exported (not static) so that reports name it. */
void *nest(void *arg);
void *nest(void *arg)
{
    struct nesting *n = arg;
    pthread_setname_np(pthread_self(), n->name);
    fast_mutex_acquire(n->first);
    if (n->try_second)
        assert_true(fast_mutex_try_acquire(n->second));
    else
        fast_mutex_acquire(n->second);
    fast_mutex_release(n->second);
    fast_mutex_release(n->first);
    return NULL;
}

static void run_nesting(fast_mutex_t *first, fast_mutex_t *second, const char *name, bool try_second)
{
    struct nesting n = {first, second, name, try_second};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, nest, &n), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
}

/* Names a mutex made by the caller.  Each test makes its mutexes at call
 * sites of its own: mutexes made at one site are one class, and a class
 * shared by two tests would carry orders from one into the other. */
static void name(fast_mutex_t *m, const char *name)
{
    assert_int_equal(fast_mutex_set_name(m, name), 0);
}

static void expect_reports(int n)
{
    if (atomic_load(&report_count) != (verifying ? n : 0))
        fprintf(stderr, "reports:\n%s", reports);
    assert_int_equal(atomic_load(&report_count), verifying ? n : 0);
}

static void expect_text(const char *text)
{
    if (verifying && strstr(reports, text) == NULL)
        fail_msg("report lacks \"%s\":\n%s", text, reports);
}

static void test_ab_ba(void **state)
{
    (void)state;
    static fast_mutex_t a, b;
    fast_mutex_init(&a);
    fast_mutex_init(&b);
    name(&a, "order-A");
    name(&b, "order-B");
    run_nesting(&a, &b, "taker-ab", false);
    expect_reports(0);
    run_nesting(&b, &a, "taker-ba", false);
    expect_reports(1);
    expect_text("fastmutex: lock order inversion (a possible deadlock, nothing waits yet): thread ");
    expect_text("(taker-ba) takes mutex ");
    expect_text("(order-A)\n  while holding mutex ");
    expect_text("(order-B), taken at nest+");
    expect_text("\n  called from nest+");
    expect_text("the opposite order was seen before:\n    thread ");
    expect_text("(taker-ab) took mutex ");
    /* Learned once, reported once. */
    run_nesting(&b, &a, "taker-ba", false);
    expect_reports(1);
    fast_mutex_destroy(&a);
    fast_mutex_destroy(&b);
}

static void test_three_lock_cycle(void **state)
{
    (void)state;
    static fast_mutex_t a, b, c;
    fast_mutex_init(&a);
    fast_mutex_init(&b);
    name(&a, "three-A");
    name(&b, "three-B");
    fast_mutex_init(&c);
    name(&c, "three-C");
    run_nesting(&a, &b, "t-ab", false);
    run_nesting(&b, &c, "t-bc", false);
    expect_reports(0);
    run_nesting(&c, &a, "t-ca", false);
    expect_reports(1);
    expect_text("(t-ca) takes mutex ");
    expect_text("(t-ab) took mutex ");
    expect_text("(t-bc) took mutex ");
    expect_text("(three-C)");
}

/* Per-object mutexes made at one call site: one class. */
static fast_mutex_t objects[8];

static void make_objects(void)
{
    for (int i = 0; i < 8; i++)
        fast_mutex_init(&objects[i]);
}

static void *walk_objects(void *arg)
{
    (void)arg;
    for (int i = 0; i + 1 < 8; i++) {
        fast_mutex_acquire(&objects[i]);
        fast_mutex_acquire(&objects[i + 1]);
        fast_mutex_release(&objects[i + 1]);
        fast_mutex_release(&objects[i]);
    }
    return NULL;
}

static void test_one_class_consistent_order(void **state)
{
    (void)state;
    make_objects();
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, walk_objects, NULL), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    expect_reports(0);
    /* Two objects of the class the other way round: the mutex graph. */
    run_nesting(&objects[5], &objects[2], "backwards", false);
    expect_reports(1);
    expect_text("(backwards) takes mutex ");
}

/* Two classes, each a call site making one object per call. */
__attribute__((noinline)) void make_x(fast_mutex_t *m);
__attribute__((noinline)) void make_x(fast_mutex_t *m)
{
    fast_mutex_init(m);
    name(m, "class-x"); /* also keeps the init from being a tail call */
}

__attribute__((noinline)) void make_y(fast_mutex_t *m);
__attribute__((noinline)) void make_y(fast_mutex_t *m)
{
    fast_mutex_init(m);
    name(m, "class-y");
}

static void test_class_inversion(void **state)
{
    (void)state;
    static fast_mutex_t x1, y1, x2, y2;
    make_x(&x1);
    make_x(&x2);
    make_y(&y1);
    make_y(&y2);
    run_nesting(&x1, &y1, "x-then-y", false);
    expect_reports(0);
    /* Other objects, never nested before: only their classes were. */
    run_nesting(&y2, &x2, "y-then-x", false);
    expect_reports(1);
    expect_text("(y-then-x) takes class make_x+");
    expect_text("while holding class make_y+");
}

static void test_try_adds_no_edge(void **state)
{
    (void)state;
    static fast_mutex_t a, b, c, d;
    fast_mutex_init(&a);
    fast_mutex_init(&b);
    name(&a, "try-A");
    name(&b, "try-B");
    fast_mutex_init(&c);
    fast_mutex_init(&d);
    name(&c, "try-C");
    name(&d, "try-D");
    /* A try into B teaches nothing: B then A is no inversion. */
    run_nesting(&a, &b, "tries-b", true);
    run_nesting(&b, &a, "takes-a", false);
    expect_reports(0);
    /* A try cannot close a cycle: D then C, then C and a try of D. */
    run_nesting(&d, &c, "d-then-c", false);
    run_nesting(&c, &d, "c-tries-d", true);
    expect_reports(0);
    /* What a try took is held: orders nested under it count. */
    run_nesting(&c, &d, "c-takes-d", false);
    expect_reports(1);
}

/* A, B taken; A let go first (not the reverse order: allowed); then C
 * under B, and the thread exits holding nothing. */
void *release_out_of_order(void *arg);
void *release_out_of_order(void *arg)
{
    fast_mutex_t *m = arg;
    fast_mutex_acquire(&m[0]);
    fast_mutex_acquire(&m[1]);
    fast_mutex_release(&m[0]);
    fast_mutex_acquire(&m[2]);
    fast_mutex_release(&m[2]);
    fast_mutex_release(&m[1]);
    return NULL;
}

static void test_release_any_order(void **state)
{
    (void)state;
    static fast_mutex_t m[3];
    fast_mutex_init(&m[0]);
    fast_mutex_init(&m[1]);
    fast_mutex_init(&m[2]);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, release_out_of_order, m), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    expect_reports(0);
}

void *exit_holding(void *arg);
void *exit_holding(void *arg)
{
    pthread_setname_np(pthread_self(), "leaver");
    fast_mutex_acquire(arg);
    return NULL;
}

static void test_exit_holding(void **state)
{
    (void)state;
    static fast_mutex_t left;
    fast_mutex_init(&left);
    name(&left, "left-held");
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, exit_holding, &left), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    expect_reports(1);
    expect_text("(leaver) exits holding 1 mutex\n  mutex ");
    expect_text("(left-held), taken at exit_holding+");
}

/* Two FAST_MUTEXes taken in both orders: the report names each by its own
 * address, the one its user and fmx know, not by the fast_mutex_t inside. */
static void test_wdm_inversion(void **state)
{
    (void)state;
    static FAST_MUTEX a, b;
    ExInitializeFastMutex(&a);
    ExInitializeFastMutex(&b);
    name(&a.Event.Lock, "wdm-A");
    name(&b.Event.Lock, "wdm-B");
    ExAcquireFastMutex(&a);
    ExAcquireFastMutex(&b);
    ExReleaseFastMutex(&b);
    ExReleaseFastMutex(&a);
    ExAcquireFastMutex(&b);
    ExAcquireFastMutex(&a);
    ExReleaseFastMutex(&a);
    ExReleaseFastMutex(&b);
    expect_reports(1);
    char text[256];
    snprintf(text, sizeof text, "takes mutex %p (wdm-A)\n  while holding mutex %p (wdm-B), taken at ",
             (void *)&a, (void *)&b);
    expect_text(text);
    snprintf(text, sizeof text, "took mutex %p (wdm-B) at ", (void *)&b);
    expect_text(text);
    snprintf(text, sizeof text, "\n      while holding mutex %p (wdm-A), taken at ", (void *)&a);
    expect_text(text);
    /* No wait happened: Windows' Contention stays 0. */
    assert_int_equal(a.Contention, 0);
    assert_int_equal(b.Contention, 0);
}

/* A new thread's first call, and every call while verifying, comes to the
 * library without the inline fast path's try: a free mutex must still be
 * taken at once, and not counted as a wait. */
static void *take_free_shared(void *arg)
{
    fast_mutex_acquire(arg);
    fast_mutex_release(arg);
    return NULL;
}

static void test_free_mutex_is_no_contention(void **state)
{
    (void)state;
    static fast_mutex_t shared;
    fast_mutex_init_shared(&shared);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, take_free_shared, &shared), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    take_free_shared(&shared);
    assert_int_equal(fast_mutex_contention(&shared), 0);
    expect_reports(0);
}

/* The switch itself: off, the inline fast path caches the thread id and
 * never calls into the library; on, the cache stays 0. */
static void test_fast_path_switch(void **state)
{
    (void)state;
    static fast_mutex_t m;
    fast_mutex_acquire(&m);
    fast_mutex_release(&m);
    if (verifying)
        assert_int_equal(fast_mutex_self_tid_, 0);
    else
        assert_int_equal(fast_mutex_self_tid_, (uint32_t)gettid());
}

/* A thread that holds three mutexes, nobody waiting for any, until told
 * to let go.  Exported so that its call sites can be told apart. */
struct holder {
    fast_mutex_t *m[3];
    _Atomic pid_t tid;
    atomic_bool holding, let_go_middle, middle_gone, let_go;
    uint64_t before_ns, after_ns; /* around the three acquisitions */
};

void *hold_three(void *arg);
void *hold_three(void *arg)
{
    struct holder *h = arg;
    h->before_ns = core_now_ns();
    for (int i = 0; i < 3; i++)
        fast_mutex_acquire(h->m[i]);
    h->after_ns = core_now_ns();
    atomic_store(&h->tid, gettid());
    atomic_store(&h->holding, true);
    while (!atomic_load(&h->let_go_middle))
        core_sleep_ms(1);
    fast_mutex_release(h->m[1]); /* out of order: the list closes up */
    atomic_store(&h->middle_gone, true);
    while (!atomic_load(&h->let_go))
        core_sleep_ms(1);
    fast_mutex_release(h->m[2]);
    fast_mutex_release(h->m[0]);
    return NULL;
}

/* Copies the record of thread `tid` out of this process's registry, read
 * through /proc as fmx reads it, under its seqlock; false when the thread
 * has no record (or there is no registry). */
static bool copy_record(pid_t tid, struct fmx_record *out)
{
    int fd = find_registry_fd();
    if (fd < 0)
        return false;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int ro = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(ro >= 0);
    const struct fmx_registry *reg = mmap(NULL, FMX_REGISTRY_SIZE, PROT_READ, MAP_SHARED, ro, 0);
    close(ro);
    assert_true(reg != MAP_FAILED);
    const struct fmx_record *recs = (const void *)((const char *)reg + reg->records_offset);
    bool found = false;
    uint32_t used = atomic_load(&((struct fmx_registry *)reg)->threads_used);
    for (uint32_t slot = 0; slot < used && slot < FMX_REGISTRY_THREADS && !found; slot++) {
        uint32_t seq;
        do {
            seq = atomic_load_explicit(&recs[slot].seq, memory_order_acquire);
            memcpy(out, (const void *)&recs[slot], sizeof *out);
            atomic_thread_fence(memory_order_acquire);
        } while ((seq & 1) || atomic_load_explicit(&recs[slot].seq, memory_order_relaxed) != seq);
        found = out->tid == tid && atomic_load(&out->state) != FMX_RECORD_FREE;
    }
    munmap((void *)reg, FMX_REGISTRY_SIZE);
    return found;
}

/* While the verifier is on, a thread's record lists every mutex it holds,
 * in the order taken, with where and when; nobody need wait.  Off, the
 * thread claims no record at all: nothing new on the fast path. */
static void test_held_published(void **state)
{
    (void)state;
    static fast_mutex_t m[3];
    struct holder h = {.m = {&m[0], &m[1], &m[2]}};
    for (int i = 0; i < 3; i++)
        fast_mutex_init(&m[i]);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, hold_three, &h), 0);
    bool ok;
    CORE_POLL_UNTIL(ok, atomic_load(&h.holding), CORE_POLL_LIMIT_MS);
    assert_true(ok);
    struct fmx_record rec;
    bool has_record = copy_record(atomic_load(&h.tid), &rec);
    if (!verifying) {
        assert_false(has_record);
    } else {
        assert_true(has_record);
        assert_int_equal(rec.held_count, 3);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(rec.held[i].mutex, (uint64_t)(uintptr_t)&m[i]);
            assert_in_range(rec.held[i].since_ns, h.before_ns, h.after_ns);
            Dl_info where = {0};
            assert_true(dladdr((void *)(uintptr_t)rec.held[i].site, &where) != 0);
            assert_string_equal(where.dli_sname, "hold_three");
        }
    }
    atomic_store(&h.let_go_middle, true);
    CORE_POLL_UNTIL(ok, atomic_load(&h.middle_gone), CORE_POLL_LIMIT_MS);
    assert_true(ok);
    if (verifying) {
        assert_true(copy_record(atomic_load(&h.tid), &rec));
        assert_int_equal(rec.held_count, 2);
        assert_int_equal(rec.held[0].mutex, (uint64_t)(uintptr_t)&m[0]);
        assert_int_equal(rec.held[1].mutex, (uint64_t)(uintptr_t)&m[2]);
    } else {
        assert_false(copy_record(atomic_load(&h.tid), &rec));
    }
    atomic_store(&h.let_go, true);
    assert_int_equal(pthread_join(t, NULL), 0);
    expect_reports(0);
}

/* A thread that holds three FAST_MUTEXes, taken by ExAcquireFastMutex,
 * ExTryToAcquireFastMutex and ExAcquireFastMutexUnsafe, until told to let
 * go.  Exported so that its call sites can be told apart. */
struct wdm_holder {
    FAST_MUTEX *m[3];
    _Atomic pid_t tid;
    atomic_bool holding, let_go;
};

void *hold_three_wdm(void *arg);
void *hold_three_wdm(void *arg)
{
    struct wdm_holder *h = arg;
    ExAcquireFastMutex(h->m[0]);
    assert_true(ExTryToAcquireFastMutex(h->m[1]));
    ExAcquireFastMutexUnsafe(h->m[2]);
    atomic_store(&h->tid, gettid());
    atomic_store(&h->holding, true);
    while (!atomic_load(&h->let_go))
        core_sleep_ms(1);
    ExReleaseFastMutexUnsafe(h->m[2]);
    ExReleaseFastMutex(h->m[1]);
    ExReleaseFastMutex(h->m[0]);
    return NULL;
}

/* A held FAST_MUTEX is listed by its own address (outer) beside the
 * fast_mutex_t inside it, whichever call took it, with the caller's site. */
static void test_wdm_held_published(void **state)
{
    (void)state;
    static FAST_MUTEX m[3];
    struct wdm_holder h = {.m = {&m[0], &m[1], &m[2]}};
    for (int i = 0; i < 3; i++)
        ExInitializeFastMutex(&m[i]);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, hold_three_wdm, &h), 0);
    bool ok;
    CORE_POLL_UNTIL(ok, atomic_load(&h.holding), CORE_POLL_LIMIT_MS);
    assert_true(ok);
    struct fmx_record rec;
    bool has_record = copy_record(atomic_load(&h.tid), &rec);
    if (verifying) {
        assert_true(has_record);
        assert_int_equal(rec.held_count, 3);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(rec.held[i].mutex, (uint64_t)(uintptr_t)&m[i].Event.Lock);
            assert_int_equal(rec.held[i].outer, (uint64_t)(uintptr_t)&m[i]);
            Dl_info where = {0};
            assert_true(dladdr((void *)(uintptr_t)rec.held[i].site, &where) != 0);
            assert_string_equal(where.dli_sname, "hold_three_wdm");
        }
    }
    atomic_store(&h.let_go, true);
    assert_int_equal(pthread_join(t, NULL), 0);
    expect_reports(0);
}

/* A thread that exits holding a FAST_MUTEX: the report names it by its own
 * address. */
static void *exit_holding_wdm(void *arg)
{
    pthread_setname_np(pthread_self(), "wdm-leaver");
    ExAcquireFastMutex(arg);
    return NULL;
}

static void test_exit_holding_wdm(void **state)
{
    (void)state;
    static FAST_MUTEX left;
    ExInitializeFastMutex(&left);
    name(&left.Event.Lock, "wdm-left");
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, exit_holding_wdm, &left), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    expect_reports(1);
    char text[128];
    snprintf(text, sizeof text, "(wdm-leaver) exits holding 1 mutex\n  mutex %p (wdm-left), taken at ",
             (void *)&left);
    expect_text(text);
}

int main(void)
{
    const char *v = getenv("FASTMUTEX_VERIFY");
    verifying = v != NULL && strcmp(v, "order") == 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ab_ba, catch_reports, restore_reports),
        cmocka_unit_test_setup_teardown(test_three_lock_cycle, catch_reports, restore_reports),
        cmocka_unit_test_setup_teardown(test_one_class_consistent_order, catch_reports,
                                        restore_reports),
        cmocka_unit_test_setup_teardown(test_class_inversion, catch_reports, restore_reports),
        cmocka_unit_test_setup_teardown(test_try_adds_no_edge, catch_reports, restore_reports),
        cmocka_unit_test_setup_teardown(test_release_any_order, catch_reports, restore_reports),
        cmocka_unit_test_setup_teardown(test_exit_holding, catch_reports, restore_reports),
        cmocka_unit_test_setup_teardown(test_wdm_inversion, catch_reports, restore_reports),
        cmocka_unit_test_setup_teardown(test_free_mutex_is_no_contention, catch_reports,
                                        restore_reports),
        cmocka_unit_test_setup_teardown(test_fast_path_switch, catch_reports, restore_reports),
        cmocka_unit_test_setup_teardown(test_held_published, catch_reports, restore_reports),
        cmocka_unit_test_setup_teardown(test_wdm_held_published, catch_reports, restore_reports),
        cmocka_unit_test_setup_teardown(test_exit_holding_wdm, catch_reports, restore_reports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
