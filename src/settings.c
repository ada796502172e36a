/* Every FASTMUTEX_* variable, read once and parsed strictly.
 *
 * A number is decimal digits only (no sign, no blanks, no unit) within its
 * range; a word is one of a fixed list, spelled exactly; a file is any
 * other value, and must name a file this process may write (one that
 * exists, or may be made in a folder that exists).  An unset or empty
 * variable takes its default silently; any other value that does not parse
 * is reported in one line on standard error and the default is used. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define DEADLOCK_MS_DEFAULT 1000u
#define DEADLOCK_MS_MAX 86399999u /* one day less a millisecond */

static uint64_t deadlock_after_ns;
static struct fmx_watch_settings watch_settings;
static enum fmx_on_deadlock on_deadlock;
static _Atomic bool diagnostics = true;
static pthread_once_t settings_once = PTHREAD_ONCE_INIT;

/* One line on standard error, in one write so that it does not interleave
 * with the program's own output. */
static void complain(const char *name, const char *value, const char *want, const char *fallback)
{
    char line[512];
    int n = snprintf(line, sizeof line, "fastmutex: ignoring %s='%s' (want %s); using %s\n", name,
                     value, want, fallback);
    if (n <= 0)
        return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    ssize_t written = write(STDERR_FILENO, line, len);
    (void)written; /* nowhere left to say that stderr failed */
}

bool fmx_parse_number(const char *text, uint64_t min, uint64_t max, uint64_t *value)
{
    if (text[0] == '\0')
        return false;
    uint64_t v = 0;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return false;
        unsigned digit = (unsigned)(*p - '0');
        if (digit > max || v > (max - digit) / 10)
            return false; /* past max, and so never past UINT64_MAX */
        v = v * 10 + digit;
    }
    if (v < min)
        return false;
    *value = v;
    return true;
}

int fmx_parse_word(const char *text, const char *const *words, int count)
{
    for (int i = 0; i < count; i++)
        if (strcmp(text, words[i]) == 0)
            return i;
    return -1;
}

static void read_deadlock_ms(void)
{
    const char *text = getenv("FASTMUTEX_DEADLOCK_MS");
    uint64_t ms = DEADLOCK_MS_DEFAULT;
    if (text != NULL && text[0] != '\0' && !fmx_parse_number(text, 1, DEADLOCK_MS_MAX, &ms)) {
        complain("FASTMUTEX_DEADLOCK_MS", text, "milliseconds, digits only, from 1 to 86399999",
                 "1000");
        ms = DEADLOCK_MS_DEFAULT;
    }
    deadlock_after_ns = ms * 1000000u;
}

static void read_on_deadlock(void)
{
    static const char *const words[] = {
        [FMX_ON_DEADLOCK_REPORT] = "report",
        [FMX_ON_DEADLOCK_ABORT] = "abort",
        [FMX_ON_DEADLOCK_IGNORE] = "ignore",
    };
    const char *text = getenv("FASTMUTEX_ON_DEADLOCK");
    on_deadlock = FMX_ON_DEADLOCK_REPORT;
    if (text == NULL || text[0] == '\0')
        return;
    int choice = fmx_parse_word(text, words, 3);
    if (choice < 0)
        complain("FASTMUTEX_ON_DEADLOCK", text, "report, abort or ignore", "report");
    else
        on_deadlock = (enum fmx_on_deadlock)choice;
}

static void read_diagnostics(void)
{
    /* "0"/"off" and "1"/"on", by index: even is off, odd is on. */
    static const char *const words[] = {"0", "1", "off", "on"};
    const char *text = getenv("FASTMUTEX_DIAGNOSTICS");
    if (text == NULL || text[0] == '\0')
        return;
    int choice = fmx_parse_word(text, words, 4);
    if (choice < 0)
        complain("FASTMUTEX_DIAGNOSTICS", text, "0, off, 1 or on", "on");
    else if (choice % 2 == 0)
        atomic_store_explicit(&diagnostics, false, memory_order_relaxed);
}

/* Whether this process may write the file at `path`: it exists and is
 * writable, or it does not exist and its folder is one we may write in.
 * Checked when the setting is read, so that a mistyped name is told at
 * once rather than lost at exit. */
static bool can_write_file(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0)
        return !S_ISDIR(st.st_mode) && access(path, W_OK) == 0;
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return access(".", W_OK | X_OK) == 0;
    char folder[4096];
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    if (len >= sizeof folder)
        return false;
    memcpy(folder, path, len);
    folder[len] = '\0';
    return stat(folder, &st) == 0 && S_ISDIR(st.st_mode) && access(folder, W_OK | X_OK) == 0;
}

/* What read_file_setting() found, besides the index of one of its words. */
enum { SETTING_OFF = -1, SETTING_BAD = -2, SETTING_FILE = -3 };

/* A setting that is "off" (or unset, or empty), one of `words` (its index
 * returned), or the name of a file to write (*file set).  A bad value is
 * told in one line on stderr. */
static int read_file_setting(const char *name, const char *const *words, int count, const char *want,
                             const char *fallback, const char **file)
{
    const char *text = getenv(name);
    *file = NULL;
    if (text == NULL || text[0] == '\0' || strcmp(text, "off") == 0)
        return SETTING_OFF;
    int choice = fmx_parse_word(text, words, count);
    if (choice >= 0)
        return choice;
    if (can_write_file(text)) {
        *file = text;
        return SETTING_FILE;
    }
    complain(name, text, want, fallback);
    return SETTING_BAD;
}

static void read_verify(void)
{
    static const char *const words[] = {"order"};
    const char *text = getenv("FASTMUTEX_VERIFY");
    if (text == NULL || text[0] == '\0' || strcmp(text, "off") == 0)
        return;
    if (fmx_parse_word(text, words, 1) == 0)
        watch_settings.verify_order = true;
    else
        complain("FASTMUTEX_VERIFY", text, "order or off", "off");
}

/* FASTMUTEX_STATS: "on" keeps the table fmx stat reads; a FILE also gets
 * the profile at exit.  A file that cannot be written leaves the table
 * on: the user asked for a profile. */
static void read_stats(void)
{
    static const char *const words[] = {"on"};
    int choice = read_file_setting("FASTMUTEX_STATS", words, 1,
                                   "on, off, or the name of a file this process can write",
                                   "on (fmx stat only)", &watch_settings.stats_file);
    watch_settings.stats = choice != SETTING_OFF;
}

static void read_trace(void)
{
    (void)read_file_setting("FASTMUTEX_TRACE", NULL, 0, "off, or the name of a file this process can write",
                            "off", &watch_settings.trace_file);
}

static pthread_once_t watch_once = PTHREAD_ONCE_INIT;

static void read_watch_settings(void)
{
    read_verify();
    read_stats();
    read_trace();
}

const struct fmx_watch_settings *fmx_watch_settings(void)
{
    pthread_once(&watch_once, read_watch_settings);
    return &watch_settings;
}

static void read_settings(void)
{
    read_diagnostics();
    read_deadlock_ms();
    read_on_deadlock();
}

enum fmx_on_deadlock fmx_on_deadlock(void)
{
    pthread_once(&settings_once, read_settings);
    return on_deadlock;
}

uint64_t fmx_deadlock_after_ns(void)
{
    if (!fmx_diagnostics())
        return 0;
    return on_deadlock == FMX_ON_DEADLOCK_IGNORE ? 0 : deadlock_after_ns;
}

bool fmx_diagnostics(void)
{
    pthread_once(&settings_once, read_settings);
    return atomic_load_explicit(&diagnostics, memory_order_relaxed);
}

void fmx_set_diagnostics(bool on)
{
    pthread_once(&settings_once, read_settings);
    atomic_store_explicit(&diagnostics, on, memory_order_relaxed);
}
