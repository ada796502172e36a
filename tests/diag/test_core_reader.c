/* The core reader (tools/fmx/core.c) on its own, against the small crafted
 * cores of the fuzzer's seed corpus (make_core_corpus.py says what they
 * hold): notes, memory reads, the registry lookup, and refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

/* What make_core_corpus.py puts in its cores. */
#define PID 4242
#define REGISTRY_AT 0x10000u
#define MUTEXES_AT 0x20000u

static const char *corpus_dir;

/* Reads a seed core into memory (malloc'd, *size bytes). */
static unsigned char *load(const char *name, size_t *size)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", corpus_dir, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *data = malloc(1 << 16);
    assert_non_null(data);
    *size = fread(data, 1, 1 << 16, f);
    fclose(f);
    assert_true(*size > 64);
    return data;
}

static void test_notes_and_memory(void **state)
{
    (void)state;
    size_t size;
    unsigned char *image = load("hold-valid.core", &size);
    struct fmx_core core;
    char why[256];
    assert_int_equal(fmx_core_from_image(image, size, &core, why, sizeof why), 0);
    assert_int_equal(core.pid, PID);
    assert_string_equal(core.name, "diag_fixture");
    assert_string_equal(core.exe, "/usr/bin/diag_fixture");
    assert_int_equal(core.nthreads, 2);
    const struct fmx_core_thread *thread = fmx_core_thread(&core, PID + 1);
    assert_non_null(thread);
    assert_true(thread->user_seconds > 1.2 && thread->user_seconds < 1.3);
    assert_null(fmx_core_thread(&core, PID + 2));

    uint32_t word;
    assert_int_equal(fmx_core_read(&core, MUTEXES_AT, &word, sizeof word), 0);
    assert_int_equal(word & 0x3fffff, PID + 1);
    /* Past the segment, and straddling its end: not there. */
    assert_int_equal(fmx_core_read(&core, MUTEXES_AT + 4096, &word, sizeof word), EFAULT);
    assert_int_equal(fmx_core_read(&core, MUTEXES_AT + 128 - 2, &word, sizeof word), EFAULT);
    assert_int_equal(fmx_core_read(&core, UINT64_MAX - 1, &word, sizeof word), EFAULT);

    struct fmx_registry_reader reader;
    assert_int_equal(fmx_core_registry(&core, &reader, why, sizeof why), 0);
    assert_int_equal(core.registry_address, REGISTRY_AT);
    assert_int_equal(reader.layout.pid, PID);
    assert_true(reader.layout.records > 0);
    fmx_registry_close(&reader);
    fmx_core_close(&core);
    free(image);
}

/* Finds the registry's pid field in a seed core. */
static size_t registry_pid_at(const unsigned char *image, size_t size)
{
    const uint32_t magic = FMX_REGISTRY_MAGIC;
    for (size_t at = 0; at + 40 < size; at++)
        if (memcmp(image + at, &magic, sizeof magic) == 0)
            return at + offsetof(struct fmx_registry, pid);
    fail_msg("no registry in the seed core");
    return 0;
}

/* A registry that another process made (a forked child's parent's) is
 * not this process's; a corrupt one is refused with the reader's reason. */
static void test_registry_refusals(void **state)
{
    (void)state;
    size_t size;
    unsigned char *image = load("hold-valid.core", &size);
    size_t pid_at = registry_pid_at(image, size);
    struct fmx_core core;
    struct fmx_registry_reader reader;
    char why[256];

    int32_t other = PID + 7;
    memcpy(image + pid_at, &other, sizeof other);
    assert_int_equal(fmx_core_from_image(image, size, &core, why, sizeof why), 0);
    assert_int_equal(fmx_core_registry(&core, &reader, why, sizeof why), ENOENT);
    assert_non_null(strstr(why, "has no fastmutex registry"));
    /* Nothing to close: closing it must not close descriptor 0. */
    assert_int_equal(reader.fd, -1);
    assert_null(reader.image);
    fmx_core_close(&core);

    /* No registry at all: a zeroed reader comes back with nothing to
     * close, not with descriptor 0 to close. */
    uint32_t magic = 0;
    memcpy(image + pid_at - offsetof(struct fmx_registry, pid), &magic, sizeof magic);
    reader = (struct fmx_registry_reader){0};
    assert_int_equal(fmx_core_from_image(image, size, &core, why, sizeof why), 0);
    assert_int_equal(fmx_core_registry(&core, &reader, why, sizeof why), ENOENT);
    assert_int_equal(reader.fd, -1);
    fmx_core_close(&core);
    magic = FMX_REGISTRY_MAGIC;
    memcpy(image + pid_at - offsetof(struct fmx_registry, pid), &magic, sizeof magic);

    uint32_t version = 99;
    memcpy(image + pid_at - offsetof(struct fmx_registry, pid) + offsetof(struct fmx_registry, version),
           &version, sizeof version);
    assert_int_equal(fmx_core_from_image(image, size, &core, why, sizeof why), 0);
    assert_int_equal(fmx_core_registry(&core, &reader, why, sizeof why), EPROTO);
    assert_non_null(strstr(why, "registry has version 99"));
    fmx_core_close(&core);
    free(image);
}

/* The header's checks, each with its own reason. */
static void test_header_refusals(void **state)
{
    (void)state;
    size_t size;
    unsigned char *image = load("deadlock-valid.core", &size);
    struct fmx_core core;
    char why[256];

    assert_int_equal(fmx_core_from_image(image, size - 1, &core, why, sizeof why), EPROTO);
    assert_non_null(strstr(why, "truncated"));

    image[16] = ET_EXEC;
    assert_int_equal(fmx_core_from_image(image, size, &core, why, sizeof why), EPROTO);
    assert_non_null(strstr(why, "not a core dump"));
    image[16] = ET_CORE;

    image[18] = EM_AARCH64;
    assert_int_equal(fmx_core_from_image(image, size, &core, why, sizeof why), EPROTO);
    assert_non_null(strstr(why, "another architecture (AArch64"));
    image[18] = EM_X86_64;

    image[0] = 'X';
    assert_int_equal(fmx_core_from_image(image, size, &core, why, sizeof why), EPROTO);
    assert_non_null(strstr(why, "not an ELF file"));
    free(image);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_core_reader CORE_CORPUS_DIR\n");
        return 2;
    }
    corpus_dir = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notes_and_memory),
        cmocka_unit_test(test_registry_refusals),
        cmocka_unit_test(test_header_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
