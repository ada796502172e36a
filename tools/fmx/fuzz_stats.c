/* libFuzzer target: the contention profile table reader on arbitrary
 * bytes, as fmx stat would read a table that another process wrote.  It
 * must refuse or read every input without a crash, an out-of-bounds access
 * or undefined behaviour (built with AddressSanitizer and UBSan), and what
 * it hands out must obey its contract: no more rows than the table has,
 * the overflow row only last. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stats_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fmx_stats_reader reader;
    char why[256];
    if (fmx_stats_from_image(data, size, &reader, why, sizeof why) != 0) {
        if (strnlen(why, sizeof why) == sizeof why)
            abort();
        return 0;
    }
    struct fmx_stats_entry *rows;
    size_t count;
    unsigned changing;
    if (fmx_stats_rows(&reader, &rows, &count, &changing) != 0)
        abort();
    if (count + changing > reader.layout.rows)
        abort();
    for (size_t i = 0; i + 1 < count; i++)
        if (rows[i].overflow)
            abort();
    for (size_t i = 0; i < count; i++)
        if (!rows[i].overflow && rows[i].mutex == 0)
            abort();
    free(rows);
    fmx_stats_close(&reader);
    return 0;
}
