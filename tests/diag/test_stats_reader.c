/* Unit tests of fmx's contention profile table reader (stats_reader.h):
 * a valid image, every header field corrupted, every truncation, rows
 * caught mid-write, thousands of randomly mutated images, and the live
 * path through /proc/self/fd with a writer changing a row meanwhile. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "stats_reader.h"

/* A compact table: four slots and the overflow row. */
enum { ROWS = 5 };
struct image {
    struct fmx_stats_header header;
    struct fmx_stats_row rows[ROWS];
};

static void make_image(struct image *img, int32_t pid)
{
    memset(img, 0, sizeof *img);
    img->header = (struct fmx_stats_header){
        .magic = FMX_STATS_MAGIC,
        .version = FMX_STATS_VERSION,
        .header_size = sizeof img->header,
        .row_size = sizeof(struct fmx_stats_row),
        .rows = ROWS,
        .pid = pid,
        .rows_offset = sizeof img->header,
    };
    img->rows[1].mutex = 0x1000;
    img->rows[1].site = 0x2000;
    img->rows[1].acquisitions = 7;
    img->rows[1].contended = 3;
    img->rows[1].wait_total_ns = 300;
    img->rows[1].wait_max_ns = 200;
    img->rows[1].hold_total_ns = 700;
    img->rows[1].hold_max_ns = 100;
    img->rows[3].mutex = 0x1040;
    img->rows[3].site = 0x2000;
    img->rows[3].acquisitions = 1;
    img->rows[ROWS - 1].acquisitions = 2; /* the overflow row */
}

/* Reads the rows of an image; returns how many parse() accepted (-1 none). */
static int rows_of(const void *data, size_t size, struct fmx_stats_entry **rows, size_t *count, unsigned *changing,
                   char *why, size_t whylen)
{
    struct fmx_stats_reader reader;
    int err = fmx_stats_from_image(data, size, &reader, why, whylen);
    if (err != 0)
        return -1;
    assert_int_equal(fmx_stats_rows(&reader, rows, count, changing), 0);
    fmx_stats_close(&reader);
    return (int)*count;
}

static void test_valid_image(void **state)
{
    (void)state;
    struct image img;
    struct fmx_stats_entry *rows;
    size_t count;
    unsigned changing;
    char why[200];
    make_image(&img, 4242);
    assert_int_equal(rows_of(&img, sizeof img, &rows, &count, &changing, why, sizeof why), 3);
    assert_int_equal(changing, 0);
    assert_true(rows[0].mutex == 0x1000 && rows[0].site == 0x2000 && !rows[0].overflow);
    assert_true(rows[0].acquisitions == 7 && rows[0].contended == 3 && rows[0].wait_total_ns == 300 &&
                rows[0].wait_max_ns == 200 && rows[0].hold_total_ns == 700 && rows[0].hold_max_ns == 100);
    assert_true(rows[1].mutex == 0x1040 && rows[1].acquisitions == 1);
    assert_true(rows[2].overflow && rows[2].acquisitions == 2);
    free(rows);

    /* An overflow row that counted nothing is not shown. */
    img.rows[ROWS - 1].acquisitions = 0;
    assert_int_equal(rows_of(&img, sizeof img, &rows, &count, &changing, why, sizeof why), 2);
    free(rows);
}

/* A FAST_MUTEX's row carries its own address (outer), which the reader
 * lets stand only where the row's mutex is that FAST_MUTEX's Event.Lock:
 * anything else another process wrote shows as the fast_mutex_t it is. */
static void test_outer(void **state)
{
    (void)state;
    struct image img;
    struct fmx_stats_entry *rows;
    size_t count;
    unsigned changing;
    char why[200];
    make_image(&img, 4242);
    img.rows[1].mutex = 0x3018;
    img.rows[1].outer = 0x3000;
    img.rows[3].mutex = 0x4018;
    img.rows[3].outer = 0x9000; /* not around it */
    assert_int_equal(rows_of(&img, sizeof img, &rows, &count, &changing, why, sizeof why), 3);
    assert_true(rows[0].mutex == 0x3018 && rows[0].outer == 0x3000);
    assert_true(rows[1].mutex == 0x4018 && rows[1].outer == 0);
    free(rows);
    img.rows[3].mutex = 0x10;
    img.rows[3].outer = UINT64_MAX - 7; /* would wrap to 0x10 */
    assert_int_equal(rows_of(&img, sizeof img, &rows, &count, &changing, why, sizeof why), 3);
    assert_true(rows[1].mutex == 0x10 && rows[1].outer == 0);
    free(rows);
}

/* Every size short of the whole image is refused, never read past. */
static void test_truncated(void **state)
{
    (void)state;
    struct image img;
    char why[200];
    make_image(&img, 4242);
    for (size_t size = 0; size < sizeof img; size++) {
        unsigned char *copy = malloc(size + 1);
        memcpy(copy, &img, size);
        struct fmx_stats_layout layout;
        assert_int_equal(fmx_stats_parse(copy, size, &layout, why, sizeof why), -1);
        assert_non_null(strstr(why, "truncated"));
        free(copy);
    }
}

static void expect_refused(const struct image *img, const char *word)
{
    struct fmx_stats_reader reader;
    char why[200] = "";
    assert_int_equal(fmx_stats_from_image(img, sizeof *img, &reader, why, sizeof why), EPROTO);
    if (strstr(why, word) == NULL)
        fail_msg("reason '%s' does not say '%s'", why, word);
}

static void test_corrupt_headers(void **state)
{
    (void)state;
    struct image img;
    make_image(&img, 4242);
    img.header.magic ^= 1;
    expect_refused(&img, "magic");
    make_image(&img, 4242);
    img.header.version = FMX_STATS_VERSION + 1;
    expect_refused(&img, "version");
    make_image(&img, 4242);
    img.header.header_size = 16;
    expect_refused(&img, "sizes");
    make_image(&img, 4242);
    img.header.row_size = 8;
    expect_refused(&img, "sizes");
    make_image(&img, 4242);
    img.header.rows = 0;
    expect_refused(&img, "rows");
    make_image(&img, 4242);
    img.header.rows = FMX_STATS_ROWS + 1;
    expect_refused(&img, "rows");
    make_image(&img, 4242);
    img.header.rows = 0xffffffffu;
    expect_refused(&img, "rows");
    make_image(&img, 4242);
    img.header.pid = 0;
    expect_refused(&img, "process id");
    make_image(&img, -5);
    expect_refused(&img, "process id");
    make_image(&img, 4242);
    img.header.rows_offset = 8; /* inside the header */
    expect_refused(&img, "out of range");
    make_image(&img, 4242);
    img.header.rows_offset = UINT64_MAX - 8; /* would wrap */
    expect_refused(&img, "out of range");
    make_image(&img, 4242);
    img.header.rows_offset = sizeof img.header + 8; /* the last row runs off the end */
    expect_refused(&img, "out of range");
}

/* A row whose seq is odd was caught mid-write: left out, and counted. */
static void test_row_mid_write(void **state)
{
    (void)state;
    struct image img;
    struct fmx_stats_entry *rows;
    size_t count;
    unsigned changing;
    char why[200];
    make_image(&img, 4242);
    img.rows[1].seq = 3;
    img.rows[2].seq = 1; /* a free slot being claimed */
    assert_int_equal(rows_of(&img, sizeof img, &rows, &count, &changing, why, sizeof why), 2);
    assert_int_equal(changing, 2);
    assert_true(rows[0].mutex == 0x1040);
    free(rows);
}

/* Random bytes written over random places of a valid image, biased to the
 * header: the reader refuses or reads each without a crash, and never
 * reports more rows than the image has.  (diag.fuzz_stats does the same
 * under AddressSanitizer, guided by coverage, where clang is installed.) */
static void test_mutated_images(void **state)
{
    (void)state;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    unsigned accepted = 0;
    for (int round = 0; round < 20000; round++) {
        struct image img;
        make_image(&img, 4242);
        unsigned char *bytes = (unsigned char *)&img;
        int flips = 1 + round % 8;
        for (int i = 0; i < flips; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t at = (x >> 8) % (i % 2 == 0 ? sizeof img.header : sizeof img);
            bytes[at] = (unsigned char)x;
        }
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t size = round % 3 == 0 ? (size_t)(x % (sizeof img + 1)) : sizeof img;
        struct fmx_stats_entry *rows;
        size_t count;
        unsigned changing;
        char why[200];
        int n = rows_of(&img, size, &rows, &count, &changing, why, sizeof why);
        if (n < 0)
            continue;
        accepted++;
        assert_true(count + changing <= img.header.rows && img.header.rows <= ROWS);
        free(rows);
    }
    /* Some mutations leave the header whole: the row paths ran too. */
    assert_true(accepted > 100);
}

/* A table in a memfd of this process, as the library makes one. */
static struct image *live;
static int live_fd = -1;

static void make_live_table(int32_t pid)
{
    live_fd = memfd_create(FMX_STATS_NAME, MFD_CLOEXEC);
    assert_true(live_fd >= 0);
    assert_int_equal(ftruncate(live_fd, sizeof *live), 0);
    live = mmap(NULL, sizeof *live, PROT_READ | PROT_WRITE, MAP_SHARED, live_fd, 0);
    assert_true(live != MAP_FAILED);
    make_image(live, pid);
}

static int teardown_live(void **state)
{
    (void)state;
    if (live != NULL)
        munmap(live, sizeof *live);
    if (live_fd >= 0)
        close(live_fd);
    live = NULL;
    live_fd = -1;
    return 0;
}

static void test_open_live(void **state)
{
    (void)state;
    struct fmx_stats_reader reader;
    char why[300];
    struct fmx_stats_entry *rows;
    size_t count;
    unsigned changing;

    assert_int_equal(fmx_stats_open(getpid(), &reader, why, sizeof why), ENOENT);
    assert_non_null(strstr(why, "does not record a contention profile; start it with FASTMUTEX_STATS=on"));

    /* One a parent made (a forked child keeps it open) is not ours. */
    make_live_table(getpid() + 1);
    assert_int_equal(fmx_stats_open(getpid(), &reader, why, sizeof why), ENOENT);

    live->header.pid = getpid();
    assert_int_equal(fmx_stats_open(getpid(), &reader, why, sizeof why), 0);
    /* Rows are read again from the file: a change after the copy shows. */
    live->rows[1].acquisitions = 8;
    assert_int_equal(fmx_stats_rows(&reader, &rows, &count, &changing), 0);
    assert_int_equal(count, 3);
    assert_true(rows[0].acquisitions == 8);
    free(rows);
    /* A row stuck odd is reported changing after a bounded number of reads. */
    live->rows[1].seq = 7;
    assert_int_equal(fmx_stats_rows(&reader, &rows, &count, &changing), 0);
    assert_int_equal(count, 2);
    assert_int_equal(changing, 1);
    free(rows);
    fmx_stats_close(&reader);

    live->header.magic = 0;
    assert_int_equal(fmx_stats_open(getpid(), &reader, why, sizeof why), EPROTO);
    assert_non_null(strstr(why, "magic"));
    assert_int_equal(fmx_stats_open(4194304, &reader, why, sizeof why), ESRCH);
    assert_non_null(strstr(why, "no process"));
}

/* A writer rewrites row 1 under the seqlock as the library does, keeping
 * its counters equal to each other; a reader never sees them disagree. */
static _Atomic int writer_stop;

static void *rewrite_row(void *arg)
{
    (void)arg;
    struct fmx_stats_row *row = &live->rows[1];
    const struct timespec pause = {.tv_nsec = 100000};
    for (uint64_t k = 1; !atomic_load(&writer_stop); k++) {
        if (k % 64 == 0)
            nanosleep(&pause, NULL);
        atomic_fetch_add_explicit(&row->seq, 1, memory_order_relaxed);
        atomic_thread_fence(memory_order_release);
        row->acquisitions = k;
        for (volatile int spin = 0; spin < 2000; spin++)
            ;
        row->contended = k;
        row->wait_total_ns = k;
        row->hold_max_ns = k;
        atomic_fetch_add_explicit(&row->seq, 1, memory_order_release);
    }
    return NULL;
}

static void test_live_seqlock(void **state)
{
    (void)state;
    struct fmx_stats_reader reader;
    char why[300];
    make_live_table(getpid());
    live->rows[1].acquisitions = live->rows[1].contended = live->rows[1].wait_total_ns = live->rows[1].hold_max_ns = 0;
    assert_int_equal(fmx_stats_open(getpid(), &reader, why, sizeof why), 0);
    pthread_t writer;
    atomic_store(&writer_stop, 0);
    assert_int_equal(pthread_create(&writer, NULL, rewrite_row, NULL), 0);
    int consistent = 0;
    for (int i = 0; i < 2000; i++) {
        struct fmx_stats_entry *rows;
        size_t count;
        unsigned changing;
        assert_int_equal(fmx_stats_rows(&reader, &rows, &count, &changing), 0);
        for (size_t r = 0; r < count; r++) {
            if (rows[r].mutex != 0x1000)
                continue;
            if (rows[r].acquisitions != rows[r].contended || rows[r].contended != rows[r].wait_total_ns ||
                rows[r].wait_total_ns != rows[r].hold_max_ns)
                fail_msg("torn row: %llu %llu %llu %llu", (unsigned long long)rows[r].acquisitions,
                         (unsigned long long)rows[r].contended, (unsigned long long)rows[r].wait_total_ns,
                         (unsigned long long)rows[r].hold_max_ns);
            consistent++;
        }
        free(rows);
    }
    atomic_store(&writer_stop, 1);
    pthread_join(writer, NULL);
    assert_true(consistent > 0);
    fmx_stats_close(&reader);
}

/* "--seed FILE": writes the valid compact image, the fuzzer's seed. */
static int write_seed(const char *path)
{
    struct image img;
    make_image(&img, 4242);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(&img, sizeof img, 1, f) != 1) {
        fprintf(stderr, "test_stats_reader: cannot write %s\n", path);
        return 1;
    }
    return fclose(f) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--seed") == 0)
        return write_seed(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outer),
        cmocka_unit_test(test_valid_image),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_corrupt_headers),
        cmocka_unit_test(test_row_mid_write),
        cmocka_unit_test(test_mutated_images),
        cmocka_unit_test_teardown(test_open_live, teardown_live),
        cmocka_unit_test_teardown(test_live_seqlock, teardown_live),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
