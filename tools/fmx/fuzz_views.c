/* libFuzzer target: fmx's views end to end on arbitrary registry bytes,
 * as fmx shows a registry another process wrote: the waiters table, the
 * waiters JSON and the mutex view of every mutex a record names, over the
 * fuzzer's own process (its /proc files, memory and symbols stand in for
 * the target's).  Built with AddressSanitizer and UBSan, it must neither
 * crash nor read out of bounds, and what the views print must stay text:
 * no control character but newlines, and the JSON one whole document. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inspect.h"

static struct fmx_symbolizer *symbols;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char why[256];
    /* Once: opening a process's modules costs far more than a view. */
    symbols = fmx_symbolizer_open(getpid(), why, sizeof why);
    return 0;
}

/* Printable text: what another process wrote reaches a terminal only
 * sanitized. */
static void check_text(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((text[i] < 0x20 && text[i] != '\n') || text[i] == 0x7f)
            abort();
}

/* One JSON document: strings closed, escapes valid, brackets balanced and
 * matched, nothing after the closing brace but a newline. */
static void check_json(const char *text, size_t len)
{
    char stack[64];
    int depth = 0;
    bool in_string = false;
    size_t i = 0;
    for (; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\') {
                char e = i + 1 < len ? text[++i] : '\0';
                if (e == 'u' && i + 4 < len)
                    i += 4;
                else if (strchr("\"\\/bfnrt", e) == NULL || e == '\0')
                    abort();
            } else if (c == '"') {
                in_string = false;
            } else if ((unsigned char)c < 0x20) {
                abort();
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (depth == (int)sizeof stack)
                abort();
            stack[depth++] = c == '{' ? '}' : ']';
        } else if (c == '}' || c == ']') {
            if (depth == 0 || stack[--depth] != c)
                abort();
            if (depth == 0)
                break;
        }
    }
    if (in_string || depth != 0 || len == 0 || text[0] != '{' || i + 2 != len || text[i + 1] != '\n')
        abort();
}

/* Runs view() with stdout captured, then checks what it printed. */
static void capture(void (*view)(struct fmx_target *, uint64_t), struct fmx_target *target,
                    uint64_t arg, bool json)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (out == NULL)
        return;
    FILE *saved = stdout;
    stdout = out;
    view(target, arg);
    stdout = saved;
    fclose(out);
    check_text(text, len);
    if (json)
        check_json(text, len);
    free(text);
}

static void table_view(struct fmx_target *target, uint64_t unused)
{
    (void)unused;
    fmx_waiters_show(target, false);
}

static void json_view(struct fmx_target *target, uint64_t unused)
{
    (void)unused;
    fmx_waiters_show(target, true);
}

static void mutex_view(struct fmx_target *target, uint64_t address)
{
    fmx_mutex_show(target, address, false);
}

static void wdm_view(struct fmx_target *target, uint64_t address)
{
    fmx_mutex_show(target, address, true);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fmx_target target = {.pid = getpid(), .now_ns = 5000000000u, .now_known = true, .symbols = symbols};
    snprintf(target.name, sizeof target.name, "fuzzed");
    char why[256];
    if (fmx_registry_from_image(data, size, &target.registry, why, sizeof why) != 0)
        return 0;
    capture(table_view, &target, 0, false);
    capture(json_view, &target, 0, true);
    /* The mutex view of the first few mutexes the records name. */
    for (uint32_t slot = 0, shown = 0; slot < target.registry.layout.records && shown < 4; slot++) {
        struct fmx_waiter w;
        if (fmx_registry_record(&target.registry, slot, &w) != FMX_RECORD_READ_WAITING)
            continue;
        capture(mutex_view, &target, w.mutex, false);
        capture(wdm_view, &target, w.outer, false);
        shown++;
    }
    target.symbols = NULL; /* kept for the next input */
    fmx_target_close(&target);
    return 0;
}
