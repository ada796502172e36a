/* Unit tests of fmx's registry reader: valid, corrupt and truncated images,
 * names that are not terminated, a record caught mid-write, and the live
 * path through /proc/self/fd with a writer changing a record meanwhile. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "registry_reader.h"

/* A small registry image, laid out as the library lays out a real one but
 * with room for few records and names. */
enum { THREADS = 4, NAMES = 3 };
struct image {
    struct fmx_registry header;
    struct fmx_record records[THREADS];
    struct fmx_name names[NAMES];
};

static void make_image(struct image *img)
{
    memset(img, 0, sizeof *img);
    img->header.magic = FMX_REGISTRY_MAGIC;
    img->header.version = FMX_REGISTRY_VERSION;
    img->header.header_size = sizeof img->header;
    img->header.record_size = sizeof(struct fmx_record);
    img->header.name_size = sizeof(struct fmx_name);
    img->header.thread_capacity = THREADS;
    img->header.name_capacity = NAMES;
    img->header.threads_used = 2;
    img->header.pid = 4242;
    img->header.records_offset = offsetof(struct image, records);
    img->header.names_offset = offsetof(struct image, names);
    img->header.realtime_offset_ns = -5;
    img->header.stamp_mono_ns = 987654321;

    struct fmx_record *waiting = &img->records[0];
    waiting->seq = 4;
    waiting->state = FMX_RECORD_WAITING;
    waiting->tid = 4244;
    waiting->kind = FMX_KIND_WDM;
    waiting->owner_seen = 4243;
    waiting->mutex = 0x1014;
    waiting->outer = 0x1000;
    waiting->wait_start_ns = 123456789;
    waiting->site = 0x5555;
    waiting->deadlock = 1;
    memcpy(waiting->thread_name, "FileMove", 9);

    struct fmx_record *idle = &img->records[1];
    idle->seq = 2;
    idle->state = FMX_RECORD_IDLE;
    idle->tid = 4243;

    img->names[1].mutex = 0x1014;
    memcpy(img->names[1].name, "FastMutex", 10);
}

static int open_image(const void *data, size_t size, struct fmx_registry_reader *reader, char *why)
{
    return fmx_registry_from_image(data, size, reader, why, 200);
}

static void test_valid_image(void **state)
{
    (void)state;
    struct image img;
    struct fmx_registry_reader reader;
    struct fmx_waiter w;
    char why[200];
    make_image(&img);
    assert_int_equal(open_image(&img, sizeof img, &reader, why), 0);
    assert_int_equal(reader.layout.records, 2);
    assert_int_equal(reader.layout.pid, 4242);
    assert_int_equal(reader.layout.realtime_offset_ns, -5);
    assert_int_equal(reader.layout.stamp_mono_ns, 987654321);

    assert_int_equal(fmx_registry_record(&reader, 0, &w), FMX_RECORD_READ_WAITING);
    assert_int_equal(w.tid, 4244);
    assert_int_equal(w.kind, FMX_KIND_WDM);
    assert_int_equal(w.owner_seen, 4243);
    assert_int_equal(w.mutex, 0x1014);
    assert_int_equal(w.outer, 0x1000);
    assert_int_equal(w.wait_start_ns, 123456789);
    assert_int_equal(w.site, 0x5555);
    assert_true(w.deadlock);
    assert_string_equal(w.thread_name, "FileMove");

    assert_int_equal(fmx_registry_record(&reader, 1, &w), FMX_RECORD_READ_NOT_WAITING);
    assert_int_equal(w.tid, 4243);
    /* Slots past threads_used are never read, even inside the capacity. */
    assert_int_equal(fmx_registry_record(&reader, 2, &w), FMX_RECORD_READ_NOT_WAITING);
    assert_int_equal(w.tid, 0);

    fmx_display_name name;
    assert_true(fmx_registry_name(&reader, 0x1014, &name));
    assert_string_equal(name, "FastMutex");
    assert_false(fmx_registry_name(&reader, 0x1000, &name));
    assert_string_equal(name, "");
    assert_false(fmx_registry_name(&reader, 0, &name));
    fmx_registry_close(&reader);
}

/* Every prefix of a valid image is refused, and so is an image whose
 * header promises more than the bytes hold. */
static void test_truncated(void **state)
{
    (void)state;
    struct image img;
    struct fmx_registry_reader reader;
    char why[200];
    make_image(&img);
    for (size_t size = 0; size < sizeof img; size++) {
        assert_int_equal(open_image(&img, size, &reader, why), EPROTO);
        assert_non_null(strstr(why, "truncated"));
    }
}

/* Changes one header field of a valid image and expects a refusal whose
 * reason mentions `word`. */
static void expect_refused(void (*spoil)(struct image *), const char *word)
{
    struct image img;
    struct fmx_registry_reader reader;
    char why[200] = "";
    make_image(&img);
    spoil(&img);
    assert_int_equal(open_image(&img, sizeof img, &reader, why), EPROTO);
    if (strstr(why, word) == NULL)
        fail_msg("reason '%s' does not mention '%s'", why, word);
}

static void bad_magic(struct image *img) { img->header.magic ^= 1; }
static void bad_version(struct image *img) { img->header.version = FMX_REGISTRY_VERSION + 1; }
static void bad_header_size(struct image *img) { img->header.header_size = 56; }
static void bad_record_size(struct image *img) { img->header.record_size = 8; }
static void bad_name_size(struct image *img) { img->header.name_size = 0xffffffff; }
static void too_many_used(struct image *img) { img->header.threads_used = THREADS + 1; }
static void bad_pid(struct image *img) { img->header.pid = -1; }
static void records_past_end(struct image *img) { img->header.records_offset = sizeof *img - sizeof img->records + 1; }
static void huge_capacity(struct image *img) { img->header.thread_capacity = 0xffffffff; }
static void names_past_end(struct image *img) { img->header.name_capacity = NAMES + 1; }
static void records_offset_wraps(struct image *img) { img->header.records_offset = UINT64_MAX - 8; }
static void names_offset_wraps(struct image *img) { img->header.names_offset = UINT64_MAX; }
static void records_in_header(struct image *img) { img->header.records_offset = 8; }
static void overlap(struct image *img) { img->header.names_offset = img->header.records_offset + 8; img->header.name_capacity = 1; }

static void test_corrupt_headers(void **state)
{
    (void)state;
    expect_refused(bad_magic, "magic");
    expect_refused(bad_version, "version");
    expect_refused(bad_header_size, "sizes");
    expect_refused(bad_record_size, "sizes");
    expect_refused(bad_name_size, "sizes");
    expect_refused(too_many_used, "in use");
    expect_refused(bad_pid, "process id");
    expect_refused(records_past_end, "offsets");
    expect_refused(huge_capacity, "capacity");
    expect_refused(names_past_end, "offsets");
    expect_refused(records_offset_wraps, "offsets");
    expect_refused(names_offset_wraps, "offsets");
    expect_refused(records_in_header, "offsets");
    expect_refused(overlap, "overlap");
}

/* Capacities above the library's are refused even when the image is large
 * enough to hold them: no library writes them, and fmx would read as many
 * garbage records. */
static void expect_capacity_refused(uint32_t threads, uint32_t names)
{
    size_t records = sizeof(struct fmx_registry);
    size_t names_at = records + (size_t)threads * sizeof(struct fmx_record);
    size_t size = names_at + (size_t)names * sizeof(struct fmx_name);
    unsigned char *big = calloc(1, size);
    assert_non_null(big);
    struct image img;
    make_image(&img);
    img.header.thread_capacity = threads;
    img.header.name_capacity = names;
    img.header.threads_used = threads;
    img.header.records_offset = records;
    img.header.names_offset = names_at;
    memcpy(big, &img.header, sizeof img.header);
    struct fmx_registry_reader reader;
    char why[200] = "";
    int got = open_image(big, size, &reader, why);
    free(big);
    if (got == 0)
        fmx_registry_close(&reader);
    assert_int_equal(got, EPROTO);
    if (strstr(why, "capacity") == NULL)
        fail_msg("reason '%s' does not mention the capacity", why);
}

static void test_capacity_beyond_library(void **state)
{
    (void)state;
    expect_capacity_refused(FMX_REGISTRY_THREADS + 1, 1);
    expect_capacity_refused(1, FMX_REGISTRY_NAMES + 1);
    expect_capacity_refused(100000, 1);
}

/* Strings another process wrote are bounded and made harmless. */
static void test_unterminated_strings(void **state)
{
    (void)state;
    struct image img;
    struct fmx_registry_reader reader;
    struct fmx_waiter w;
    char why[200];
    make_image(&img);
    memset(img.names[1].name, 'n', FMX_NAME_LEN);
    img.names[1].name[3] = '\033';
    memset(img.records[0].thread_name, 't', FMX_THREAD_NAME_LEN);
    img.records[0].thread_name[0] = (char)0xff;
    assert_int_equal(open_image(&img, sizeof img, &reader, why), 0);

    fmx_display_name name;
    assert_true(fmx_registry_name(&reader, 0x1014, &name));
    assert_int_equal(strlen(name), FMX_NAME_LEN);
    assert_int_equal(name[3], '?');
    assert_int_equal(fmx_registry_record(&reader, 0, &w), FMX_RECORD_READ_WAITING);
    assert_int_equal(strlen(w.thread_name), FMX_THREAD_NAME_LEN);
    assert_int_equal(w.thread_name[0], '?');
    fmx_registry_close(&reader);
}

/* The held list (FASTMUTEX_VERIFY=order): as written, oldest first; and a
 * count past the array lists the array only, whatever it claims. */
static void test_held_list(void **state)
{
    (void)state;
    struct image img;
    struct fmx_registry_reader reader;
    struct fmx_waiter w;
    char why[200];
    make_image(&img);
    struct fmx_record *idle = &img.records[1];
    idle->held_count = 3;
    for (uint32_t i = 0; i < FMX_RECORD_HELD; i++)
        idle->held[i] = (struct fmx_held){.mutex = 0x2000 + 16 * i, .site = 0x6000 + i, .since_ns = 1000 + i};
    assert_int_equal(open_image(&img, sizeof img, &reader, why), 0);
    assert_int_equal(fmx_registry_record(&reader, 1, &w), FMX_RECORD_READ_NOT_WAITING);
    assert_int_equal(w.held_count, 3);
    assert_int_equal(w.held_listed, 3);
    for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(w.held[i].mutex, 0x2000 + 16 * i);
        assert_int_equal(w.held[i].site, 0x6000 + i);
        assert_int_equal(w.held[i].since_ns, 1000 + i);
    }
    assert_int_equal(fmx_registry_record(&reader, 0, &w), FMX_RECORD_READ_WAITING);
    assert_int_equal(w.held_listed, 0);
    fmx_registry_close(&reader);

    idle->held_count = 0xffffffffu;
    assert_int_equal(open_image(&img, sizeof img, &reader, why), 0);
    assert_int_equal(fmx_registry_record(&reader, 1, &w), FMX_RECORD_READ_NOT_WAITING);
    assert_int_equal(w.held_count, 0xffffffffu);
    assert_int_equal(w.held_listed, FMX_RECORD_HELD);
    assert_int_equal(w.held[FMX_RECORD_HELD - 1].mutex, 0x2000 + 16 * (FMX_RECORD_HELD - 1));
    fmx_registry_close(&reader);
}

/* A held FAST_MUTEX carries its own address (outer), which the reader lets
 * stand only where the mutex is that FAST_MUTEX's Event.Lock: anything else
 * another process wrote is shown as the fast_mutex_t it is. */
static void test_held_outer(void **state)
{
    (void)state;
    struct image img;
    struct fmx_registry_reader reader;
    struct fmx_waiter w;
    char why[200];
    make_image(&img);
    struct fmx_record *idle = &img.records[1];
    idle->held_count = 4;
    idle->held[0] = (struct fmx_held){.mutex = 0x3018, .outer = 0x3000};
    idle->held[1] = (struct fmx_held){.mutex = 0x3018, .outer = 0x9000};   /* not around it */
    idle->held[2] = (struct fmx_held){.mutex = 0x10, .outer = UINT64_MAX - 7}; /* would wrap */
    idle->held[3] = (struct fmx_held){.mutex = 0x4000, .outer = 0};
    assert_int_equal(open_image(&img, sizeof img, &reader, why), 0);
    assert_int_equal(fmx_registry_record(&reader, 1, &w), FMX_RECORD_READ_NOT_WAITING);
    assert_int_equal(w.held_listed, 4);
    assert_int_equal(w.held[0].mutex, 0x3018);
    assert_int_equal(w.held[0].outer, 0x3000);
    assert_int_equal(w.held[1].outer, 0);
    assert_int_equal(w.held[2].outer, 0);
    assert_int_equal(w.held[3].outer, 0);
    fmx_registry_close(&reader);
}

/* A record whose seq is odd was being written when the image was taken. */
static void test_record_mid_write(void **state)
{
    (void)state;
    struct image img;
    struct fmx_registry_reader reader;
    struct fmx_waiter w;
    char why[200];
    make_image(&img);
    img.records[0].seq = 5;
    assert_int_equal(open_image(&img, sizeof img, &reader, why), 0);
    assert_int_equal(fmx_registry_record(&reader, 0, &w), FMX_RECORD_READ_CHANGING);
    fmx_registry_close(&reader);
}

/* The live path: a memfd named like the library's in this very process,
 * found through /proc/self/fd. */
static struct image *live;
static int live_fd = -1;

static void make_live_registry(void)
{
    live_fd = memfd_create(FMX_REGISTRY_NAME, MFD_CLOEXEC);
    assert_true(live_fd >= 0);
    assert_int_equal(ftruncate(live_fd, sizeof *live), 0);
    live = mmap(NULL, sizeof *live, PROT_READ | PROT_WRITE, MAP_SHARED, live_fd, 0);
    assert_true(live != MAP_FAILED);
    make_image(live);
    live->header.pid = getpid();
}

static void drop_live_registry(void)
{
    if (live_fd < 0)
        return;
    munmap(live, sizeof *live);
    close(live_fd);
    live_fd = -1;
}

/* A failed assertion leaves its test at once: the teardown still drops
 * the registry, so that the next test does not find a stale one. */
static int teardown_live(void **state)
{
    (void)state;
    drop_live_registry();
    return 0;
}

static void test_open_live(void **state)
{
    (void)state;
    struct fmx_registry_reader reader;
    struct fmx_waiter w;
    char why[300];

    /* Before it exists: no registry. */
    assert_int_equal(fmx_registry_open(getpid(), &reader, why, sizeof why), ENOENT);
    assert_non_null(strstr(why, "has no fastmutex registry"));

    make_live_registry();
    assert_int_equal(fmx_registry_open(getpid(), &reader, why, sizeof why), 0);
    assert_int_equal(fmx_registry_record(&reader, 0, &w), FMX_RECORD_READ_WAITING);
    assert_int_equal(w.tid, 4244);
    fmx_registry_close(&reader);

    /* One made by another process (a forked child inherits its parent's)
     * does not describe this one. */
    live->header.pid = getpid() + 1;
    assert_int_equal(fmx_registry_open(getpid(), &reader, why, sizeof why), ENOENT);

    live->header.pid = getpid();
    live->header.magic = 0;
    assert_int_equal(fmx_registry_open(getpid(), &reader, why, sizeof why), EPROTO);
    assert_non_null(strstr(why, "magic"));
    drop_live_registry();

    assert_int_equal(fmx_registry_open(0, &reader, why, sizeof why), ESRCH);
    assert_int_equal(fmx_registry_open(4194304, &reader, why, sizeof why), ESRCH);
    assert_non_null(strstr(why, "no process"));
}

/* A record whose seq stays odd (a writer that died mid-write, or a hostile
 * one) is reported as changing after a bounded number of reads. */
static void test_live_stuck_record(void **state)
{
    (void)state;
    struct fmx_registry_reader reader;
    struct fmx_waiter w;
    char why[300];
    make_live_registry();
    assert_int_equal(fmx_registry_open(getpid(), &reader, why, sizeof why), 0);
    live->records[0].seq = 7;
    assert_int_equal(fmx_registry_record(&reader, 0, &w), FMX_RECORD_READ_CHANGING);
    fmx_registry_close(&reader);
    drop_live_registry();
}

/* A writer rewrites record 0 under the seqlock, keeping tid, mutex and site
 * equal to each other; a reader must never see them disagree. */
static _Atomic int writer_stop;

/* Spins for about `ns` nanoseconds, to hold a record odd for a while. */
static void spin_ns(long ns)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do
        clock_gettime(CLOCK_MONOTONIC, &now);
    while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) < ns);
}

static void *rewrite_record(void *arg)
{
    (void)arg;
    struct fmx_record *rec = &live->records[0];
    /* Bursts of writes that each stay half done for a while, which a reader
     * that skipped the seqlock would catch, then a pause in which a reader
     * can get a settled copy. */
    const struct timespec pause = {.tv_nsec = 200000};
    for (uint32_t k = 1; !atomic_load(&writer_stop); k++) {
        if (k % 64 == 0)
            nanosleep(&pause, NULL);
        atomic_fetch_add_explicit(&rec->seq, 1, memory_order_relaxed);
        atomic_thread_fence(memory_order_release);
        rec->tid = (int32_t)k;
        spin_ns(2000);
        rec->mutex = k;
        rec->site = k;
        rec->wait_start_ns = k;
        atomic_fetch_add_explicit(&rec->seq, 1, memory_order_release);
    }
    return NULL;
}

static void test_live_seqlock(void **state)
{
    (void)state;
    struct fmx_registry_reader reader;
    char why[300];
    make_live_registry();
    assert_int_equal(fmx_registry_open(getpid(), &reader, why, sizeof why), 0);
    /* The writer's invariant holds from the start. */
    live->records[0].tid = 0;
    live->records[0].mutex = live->records[0].site = live->records[0].wait_start_ns = 0;
    pthread_t writer;
    atomic_store(&writer_stop, 0);
    assert_int_equal(pthread_create(&writer, NULL, rewrite_record, NULL), 0);
    /* Read for 300 ms once the writer has begun: many bursts and pauses. */
    while (atomic_load_explicit(&live->records[0].seq, memory_order_relaxed) <= 4)
        ;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int consistent = 0;
    do {
        struct fmx_waiter w;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (fmx_registry_record(&reader, 0, &w) != FMX_RECORD_READ_WAITING)
            continue;
        if ((uint64_t)w.tid != w.mutex || w.mutex != w.site || w.site != w.wait_start_ns)
            fail_msg("torn record: tid %d mutex %llu site %llu start %llu", w.tid,
                     (unsigned long long)w.mutex, (unsigned long long)w.site,
                     (unsigned long long)w.wait_start_ns);
        consistent++;
    } while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < 300);
    atomic_store(&writer_stop, 1);
    pthread_join(writer, NULL);
    assert_true(consistent > 0);
    fmx_registry_close(&reader);
    drop_live_registry();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_image),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_corrupt_headers),
        cmocka_unit_test(test_capacity_beyond_library),
        cmocka_unit_test(test_unterminated_strings),
        cmocka_unit_test(test_record_mid_write),
        cmocka_unit_test(test_held_list),
        cmocka_unit_test(test_held_outer),
        cmocka_unit_test_teardown(test_open_live, teardown_live),
        cmocka_unit_test_teardown(test_live_stuck_record, teardown_live),
        cmocka_unit_test_teardown(test_live_seqlock, teardown_live),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
