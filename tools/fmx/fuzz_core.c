/* libFuzzer target: the core-file reader on arbitrary bytes, as
 * `fmx ... --core` reads a core: its header and notes, the registry found
 * in its segments (with the live reader's checks), the records, names and
 * lock words it leads to.  It must refuse or read every input without a
 * crash, an out-of-bounds access or undefined behaviour (built with
 * AddressSanitizer and UBSan); the strings it hands out stay bounded and
 * printable. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

static void check_display(const char *text, size_t bound)
{
    size_t n = strnlen(text, bound + 1);
    if (n > bound)
        abort();
    for (size_t i = 0; i < n; i++)
        if (text[i] < 0x20 || text[i] > 0x7e)
            abort();
}

/* Everything `fmx waiters --core` reads for one record. */
static void read_waiter(struct fmx_core *core, struct fmx_registry_reader *reader, uint32_t slot)
{
    struct fmx_waiter w;
    if (fmx_registry_record(reader, slot, &w) == FMX_RECORD_READ_CHANGING)
        return;
    check_display(w.thread_name, FMX_THREAD_NAME_LEN);
    fmx_display_name name;
    if (fmx_registry_name(reader, w.mutex, &name))
        check_display(name, FMX_NAME_LEN);
    unsigned char lock[16];
    (void)fmx_core_read(core, w.mutex, lock, sizeof lock);
    (void)fmx_core_read(core, w.outer, lock, sizeof lock);
    (void)fmx_core_thread(core, w.tid);
    /* What `fmx thread --core` reads of the held list: each lock word. */
    if (w.held_listed > FMX_RECORD_HELD)
        abort();
    for (uint32_t i = 0; i < w.held_listed; i++)
        (void)fmx_core_read(core, w.held[i].mutex, lock, sizeof lock);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* libelf is handed memory it may treat as its own. */
    char *image = malloc(size + 1);
    if (image == NULL)
        return 0;
    if (size > 0)
        memcpy(image, data, size);
    struct fmx_core core;
    char why[256];
    if (fmx_core_from_image(image, size, &core, why, sizeof why) != 0) {
        check_display(why, sizeof why - 1);
        free(image);
        return 0;
    }
    check_display(core.name, sizeof core.name - 1);
    check_display(core.exe, sizeof core.exe - 1);
    struct fmx_registry_reader reader;
    if (fmx_core_registry(&core, &reader, why, sizeof why) == 0) {
        for (uint32_t slot = 0; slot < reader.layout.records; slot++)
            read_waiter(&core, &reader, slot);
        fmx_registry_close(&reader);
    } else {
        check_display(why, sizeof why - 1);
    }
    fmx_core_close(&core);
    free(image);
    return 0;
}
