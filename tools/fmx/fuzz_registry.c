/* libFuzzer target: the registry reader on arbitrary bytes, as fmx would
 * read a registry that another process wrote.  It must refuse or read every
 * input without a crash, an out-of-bounds access or undefined behaviour
 * (built with AddressSanitizer and UBSan), and what it hands out must obey
 * its own contract: strings bounded, terminated and printable. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry_reader.h"

/* Checks a string the reader made for display. */
static void check_display(const char *text, size_t bound)
{
    size_t n = strnlen(text, bound + 1);
    if (n > bound)
        abort();
    for (size_t i = 0; i < n; i++)
        if (text[i] < 0x20 || text[i] > 0x7e)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fmx_registry_reader reader;
    char why[256];
    if (fmx_registry_from_image(data, size, &reader, why, sizeof why) != 0) {
        check_display(why, sizeof why - 1);
        return 0;
    }
    /* Every record, and the name of every mutex a waiter waits for, as
     * `fmx waiters` reads them. */
    for (uint32_t slot = 0; slot < reader.layout.records; slot++) {
        struct fmx_waiter w;
        enum fmx_record_result got = fmx_registry_record(&reader, slot, &w);
        if (got == FMX_RECORD_READ_CHANGING)
            continue;
        check_display(w.thread_name, FMX_THREAD_NAME_LEN);
        /* Whatever count the record claims, no more than the array is listed. */
        if (w.held_listed > FMX_RECORD_HELD || w.held_listed > w.held_count)
            abort();
        fmx_display_name name;
        for (uint32_t i = 0; i < w.held_listed; i++)
            if (fmx_registry_name(&reader, w.held[i].mutex, &name))
                check_display(name, FMX_NAME_LEN);
        if (fmx_registry_name(&reader, w.mutex, &name))
            check_display(name, FMX_NAME_LEN);
        if (fmx_registry_name(&reader, w.outer, &name))
            check_display(name, FMX_NAME_LEN);
    }
    /* A slot past the end reads as nothing. */
    struct fmx_waiter w;
    if (fmx_registry_record(&reader, reader.layout.records, &w) != FMX_RECORD_READ_NOT_WAITING)
        abort();
    fmx_registry_close(&reader);
    return 0;
}
