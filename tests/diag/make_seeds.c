/* Writes the fuzzers' seed corpus from the registry layout this build
 * compiles (src/registry.h), so that it cannot go stale when the layout
 * changes: registries with waiting, idle and free records, both kinds of
 * mutex, names, a deadlock, a record caught mid-write, and truncated
 * copies.  Capacities are cut down to what the records use, so that seeds
 * stay small (the reader accepts capacities up to the library's).
 *
 *   make_seeds DIR          writes the seeds into DIR
 *   make_seeds --check DIR  checks that every "*-valid" seed in DIR is
 *                           accepted by the reader and has a waiter
 *   make_seeds --offsets    prints where a record keeps its thread id and
 *                           its mutex, for make_core_corpus.py */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "registry_reader.h"

enum { THREADS = 4, NAMES = 3 };

struct image {
    struct fmx_registry header;
    struct fmx_record records[THREADS];
    struct fmx_name names[NAMES];
};

static void header(struct image *img, uint32_t used)
{
    memset(img, 0, sizeof *img);
    img->header = (struct fmx_registry){
        .magic = FMX_REGISTRY_MAGIC,
        .version = FMX_REGISTRY_VERSION,
        .header_size = sizeof(struct fmx_registry),
        .record_size = sizeof(struct fmx_record),
        .name_size = sizeof(struct fmx_name),
        .thread_capacity = THREADS,
        .name_capacity = NAMES,
        .threads_used = used,
        .pid = 4242,
        .records_offset = offsetof(struct image, records),
        .names_offset = offsetof(struct image, names),
    };
}

static void waiting(struct fmx_record *rec, int32_t tid, uint64_t mutex, int32_t owner, const char *name)
{
    rec->seq = 2;
    rec->state = FMX_RECORD_WAITING;
    rec->tid = tid;
    rec->kind = FMX_KIND_FAST_MUTEX;
    rec->owner_seen = owner;
    rec->mutex = mutex;
    rec->wait_start_ns = 1000000000u;
    rec->site = 0x401000;
    snprintf(rec->thread_name, sizeof rec->thread_name, "%s", name);
}

static void name(struct fmx_name *entry, uint64_t mutex, const char *text)
{
    entry->mutex = mutex;
    snprintf(entry->name, sizeof entry->name, "%s", text);
}

/* A waiter on a fast_mutex_t, one on a FAST_MUTEX, an idle and a free slot. */
static void hold(struct image *img)
{
    header(img, THREADS);
    waiting(&img->records[0], 4244, 0x7f0000001000, 4243, "DiagWaiter");
    waiting(&img->records[1], 4245, 0x7f0000002018, 4243, "DiagWdmWaiter");
    img->records[1].kind = FMX_KIND_WDM;
    img->records[1].outer = 0x7f0000002000;
    img->records[2] = (struct fmx_record){.seq = 2, .state = FMX_RECORD_IDLE, .tid = 4243};
    memcpy(img->records[2].thread_name, "DiagOwner", 10);
    /* The owner's held list (FASTMUTEX_VERIFY=order): both mutexes. */
    img->records[2].held_count = 2;
    img->records[2].held[0] = (struct fmx_held){.mutex = 0x7f0000001000, .site = 0x401100,
                                                .since_ns = 900000000u};
    img->records[2].held[1] = (struct fmx_held){.mutex = 0x7f0000002018, .outer = 0x7f0000002000, .site = 0x401200,
                                                .since_ns = 950000000u};
    name(&img->names[0], 0x7f0000001000, "DiagMutex");
    name(&img->names[2], 0x7f0000002000, "DiagFastMutex");
}

/* Two threads, each waiting for the mutex the other holds. */
static void deadlock(struct image *img)
{
    header(img, 2);
    waiting(&img->records[0], 5001, 0x7f0000003000, 5002, "DeadlockA");
    waiting(&img->records[1], 5002, 0x7f0000003010, 5001, "DeadlockB");
    img->records[0].deadlock = img->records[1].deadlock = 1;
    name(&img->names[0], 0x7f0000003000, "LockB");
    name(&img->names[1], 0x7f0000003010, "LockA");
}

/* A waiter whose record is being written (odd seq). */
static void mid_write(struct image *img)
{
    hold(img);
    img->records[0].seq = 3;
}

static int write_file(const char *dir, const char *file, const void *data, size_t size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        fprintf(stderr, "make_seeds: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

static int write_seeds(const char *dir)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "make_seeds: cannot make %s: %s\n", dir, strerror(errno));
        return 1;
    }
    static const struct {
        const char *name;
        void (*make)(struct image *);
    } kinds[] = {{"hold", hold}, {"deadlock", deadlock}, {"midwrite", mid_write}};
    /* Cuts: inside the header, inside the second record, inside the names. */
    const size_t cuts[] = {sizeof(struct fmx_registry) / 2,
                           offsetof(struct image, records) + sizeof(struct fmx_record) * 3 / 2,
                           sizeof(struct image) - sizeof(struct fmx_name) / 2};
    int status = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        struct image img;
        kinds[k].make(&img);
        char file[128];
        snprintf(file, sizeof file, "%s-valid", kinds[k].name);
        status |= write_file(dir, file, &img, sizeof img);
        for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
            snprintf(file, sizeof file, "%s-truncated-%zu", kinds[k].name, cuts[c]);
            status |= write_file(dir, file, &img, cuts[c]);
        }
    }
    return status;
}

/* A valid seed must pass the reader and show a waiter, or the fuzzers
 * would start from inputs that stop at the first check. */
static int check_seed(const char *path)
{
    static unsigned char data[65536];
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "make_seeds: cannot read %s\n", path);
        return 1;
    }
    size_t size = fread(data, 1, sizeof data, f);
    fclose(f);
    struct fmx_registry_reader reader;
    char why[256];
    if (fmx_registry_from_image(data, size, &reader, why, sizeof why) != 0) {
        fprintf(stderr, "make_seeds: seed %s is refused: %s\n", path, why);
        return 1;
    }
    unsigned waiters = 0;
    for (uint32_t slot = 0; slot < reader.layout.records; slot++) {
        struct fmx_waiter w;
        waiters += fmx_registry_record(&reader, slot, &w) == FMX_RECORD_READ_WAITING;
    }
    fmx_registry_close(&reader);
    if (waiters == 0) {
        fprintf(stderr, "make_seeds: seed %s has no waiter the reader can see\n", path);
        return 1;
    }
    printf("%s: %u waiting\n", path, waiters);
    return 0;
}

static int check_seeds(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "make_seeds: cannot open %s: %s\n", dir, strerror(errno));
        return 1;
    }
    int status = 0, checked = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        size_t len = strlen(entry->d_name);
        if (len < 6 || strcmp(entry->d_name + len - 6, "-valid") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
        status |= check_seed(path);
        checked++;
    }
    closedir(d);
    if (checked == 0) {
        fprintf(stderr, "make_seeds: no valid seeds in %s\n", dir);
        return 1;
    }
    return status;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--offsets") != 0)
        return write_seeds(argv[1]);
    if (argc == 3 && strcmp(argv[1], "--check") == 0)
        return check_seeds(argv[2]);
    if (argc == 2 && strcmp(argv[1], "--offsets") == 0) {
        printf("tid=%zu mutex=%zu\n", offsetof(struct fmx_record, tid), offsetof(struct fmx_record, mutex));
        return 0;
    }
    fprintf(stderr, "usage: make_seeds DIR | make_seeds --check DIR | make_seeds --offsets\n");
    return 2;
}
