/* fmx driver DRIVER.so: what `sc create` and `sc start` (and then `sc stop`)
 * do for a Windows driver, for driver source built against fastmutex's WDK
 * subset.  It loads the shared object, calls DriverEntry with a driver
 * object and a registry path, waits for the system threads the driver
 * started, calls DriverUnload, and prints the status of each step by name.
 *
 * The driver links libfastmutex.so (pkg-config --libs fastmutex-wdk), and
 * the runtime calls made here are looked up through the driver's handle, so
 * that they reach the same copy of the library as the driver's own calls:
 * fmx itself carries a static copy, whose state the driver never sees.
 *
 * Exit status: 0 when DriverEntry succeeded and the driver was unloaded, 1
 * when DriverEntry failed or a thread did not end in time, 2 for bad
 * arguments or a shared object that is no driver. */
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ntddk.h>

#include "fmx.h"
#include "symbolize.h"

#define EXIT_DRIVER_FAILED 1
#define EXIT_USAGE 2
#define DEFAULT_TIMEOUT_S 60L
#define MAX_TIMEOUT_S 86400L
#define MAX_REPORTED_THREADS 8u

struct driver_options {
    const char *path;
    const char *root; /* NULL: FASTMUTEX_WDK_ROOT, else a fresh folder */
    long timeout_s;
};

/* The runtime calls, looked up in the driver's copy of libfastmutex. */
struct runtime {
    NTSTATUS (*set_root)(const char *root);
    unsigned (*wait_threads)(long timeout_ms, char (*names)[FAST_MUTEX_WDK_THREAD_NAME_LEN], unsigned max);
    unsigned (*threads_started)(void);
    const char *(*status_name)(NTSTATUS status);
    void (*set_namer)(fast_mutex_wdk_namer_t namer);
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: fmx driver DRIVER.so [--root DIR] [--timeout SECONDS]\n"
            "\n"
            "Loads a driver built against fastmutex's WDK subset (pkg-config fastmutex-wdk),\n"
            "calls DriverEntry, waits for the system threads it started, calls DriverUnload,\n"
            "and prints the NTSTATUS of each step.\n"
            "\n"
            "options:\n"
            "  --root DIR       the folder NT paths map to: \\??\\C:\\x is DIR/C/x (default:\n"
            "                   $FASTMUTEX_WDK_ROOT, else a fresh folder under $TMPDIR, kept)\n"
            "  --timeout S      how long to wait for the system threads (default %ld s)\n"
            "  -h, --help       show this help\n"
            "\n"
            "Exit status: 0 when the driver loaded and unloaded, 1 when DriverEntry failed or\n"
            "a thread did not end in time, 2 for bad arguments or a file that is no driver.\n",
            DEFAULT_TIMEOUT_S);
}

/* Returns 0 with *opt filled, 1 after the help, -1 after one line. */
static int parse_options(int argc, char **argv, struct driver_options *opt)
{
    static const struct option longopts[] = {
        {"root", required_argument, NULL, 'r'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char *end;
    int c;
    *opt = (struct driver_options){.timeout_s = DEFAULT_TIMEOUT_S};
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'r': opt->root = optarg; break;
        case 't':
            errno = 0;
            opt->timeout_s = strtol(optarg, &end, 10);
            if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0' || errno != 0 ||
                opt->timeout_s < 1 || opt->timeout_s > MAX_TIMEOUT_S) {
                fprintf(stderr, "fmx driver: --timeout '%s': give whole seconds from 1 to %ld\n",
                        optarg, MAX_TIMEOUT_S);
                return -1;
            }
            break;
        case 'h': usage(stdout); return 1;
        case ':':
            fprintf(stderr, "fmx driver: %s needs a value\n", argv[optind - 1]);
            return -1;
        default:
            fprintf(stderr, "fmx driver: unknown option '%s' (try 'fmx driver --help')\n",
                    argv[optind - 1]);
            return -1;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "fmx driver: which driver? give DRIVER.so (try 'fmx driver --help')\n");
        return -1;
    }
    if (optind + 1 < argc) {
        fprintf(stderr, "fmx driver: unexpected argument '%s' (try 'fmx driver --help')\n",
                argv[optind + 1]);
        return -1;
    }
    opt->path = argv[optind];
    return 0;
}

/* "STATUS_X (0x...)" for a status, in buf. */
static const char *describe(const struct runtime *rt, NTSTATUS status, char *buf, size_t size)
{
    const char *name = rt->status_name(status);
    if (name != NULL)
        snprintf(buf, size, "%s (0x%08X)", name, (unsigned)status);
    else
        snprintf(buf, size, "0x%08X", (unsigned)status);
    return buf;
}

/* The folder NT paths map to, made when none is given; with a C folder,
 * since every Windows has a C: drive.  Returns false after one line. */
static bool prepare_root(const struct driver_options *opt, char *root, size_t size)
{
    struct stat st;
    const char *given = opt->root != NULL ? opt->root : getenv("FASTMUTEX_WDK_ROOT");
    if (given != NULL && given[0] != '\0') {
        if (stat(given, &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "fmx driver: root '%s' is not a folder\n", given);
            return false;
        }
        if (realpath(given, root) == NULL) {
            fprintf(stderr, "fmx driver: root '%s': %s\n", given, strerror(errno));
            return false;
        }
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(root, size, "%s/fmx-driver-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
        if (mkdtemp(root) == NULL) {
            fprintf(stderr, "fmx driver: cannot make a root folder '%s': %s\n", root,
                    strerror(errno));
            return false;
        }
    }
    char drive[PATH_MAX + 8];
    snprintf(drive, sizeof drive, "%s/C", root);
    if (mkdir(drive, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "fmx driver: cannot make '%s': %s\n", drive, strerror(errno));
        return false;
    }
    return true;
}

/* Looks up the runtime in the driver's libfastmutex; false after a line. */
static bool find_runtime(void *handle, const char *path, struct runtime *rt)
{
    *(void **)&rt->set_root = dlsym(handle, "fast_mutex_wdk_set_root");
    *(void **)&rt->wait_threads = dlsym(handle, "fast_mutex_wdk_wait_threads");
    *(void **)&rt->threads_started = dlsym(handle, "fast_mutex_wdk_threads_started");
    *(void **)&rt->status_name = dlsym(handle, "fast_mutex_wdk_status_name");
    *(void **)&rt->set_namer = dlsym(handle, "fast_mutex_wdk_set_namer");
    if (rt->set_root == NULL || rt->wait_threads == NULL || rt->threads_started == NULL ||
        rt->status_name == NULL || rt->set_namer == NULL) {
        fprintf(stderr,
                "fmx driver: '%s' does not link libfastmutex: build it with "
                "$(pkg-config --cflags --libs fastmutex-wdk)\n",
                path);
        return false;
    }
    return true;
}

/* Names a thread after a start routine that dladdr() cannot name (a static
 * function), from the symbol table, with libdwfl.  The symbolizer is closed
 * again at once: libelf maps the files it reads, and such a mapping of the
 * driver, left in /proc/PID/maps, would mislead `fmx waiters` about where
 * the driver is loaded. */
static int name_from_symbols(const void *routine, char *name, size_t size)
{
    struct fmx_location loc;
    char why[256];
    struct fmx_symbolizer *sym = fmx_symbolizer_open(getpid(), why, sizeof why);
    if (sym == NULL)
        return -1;
    fmx_symbolize(sym, (uint64_t)(uintptr_t)routine, false, &loc);
    fmx_symbolizer_close(sym);
    if (loc.symbol[0] == '\0' || loc.offset != 0)
        return -1;
    snprintf(name, size, "%s", loc.symbol);
    return 0;
}

/* The driver object for the image at `path`, with \Driver\NAME and the
 * service's registry path, as the service control manager makes them. */
struct loaded_driver {
    DRIVER_OBJECT object;
    DRIVER_EXTENSION extension;
    WCHAR name[128];
    WCHAR registry_path[192];
    UNICODE_STRING registry;
};

/* Appends ASCII text to a UTF-16 buffer of `room` units; other bytes
 * become '_', as a service name has no place for them. */
static void append_wide(WCHAR *buf, size_t room, const char *text)
{
    size_t at = 0;
    while (at + 1 < room && buf[at] != 0)
        at++;
    for (; *text != '\0' && at + 1 < room; text++)
        buf[at++] = (unsigned char)*text < 0x80 ? (WCHAR)*text : L'_';
    buf[at] = 0;
}

static void make_driver_object(struct loaded_driver *d, const char *path, PDRIVER_INITIALIZE entry)
{
    char service[64];
    const char *base = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
    snprintf(service, sizeof service, "%s", base);
    char *dot = strchr(service, '.');
    if (dot != NULL)
        *dot = '\0';
    memset(d, 0, sizeof *d);
    append_wide(d->name, 128, "\\Driver\\");
    append_wide(d->name, 128, service);
    append_wide(d->registry_path, 192,
                "\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Services\\");
    append_wide(d->registry_path, 192, service);
    d->object.Type = IO_TYPE_DRIVER;
    d->object.Size = sizeof d->object;
    d->object.DriverExtension = &d->extension;
    d->extension.DriverObject = &d->object;
    d->object.DriverInit = entry;
    for (int pass = 0; pass < 2; pass++) {
        UNICODE_STRING *u = pass == 0 ? &d->object.DriverName : &d->registry;
        WCHAR *text = pass == 0 ? d->name : d->registry_path;
        size_t units = 0;
        while (text[units] != 0)
            units++;
        u->Buffer = text;
        u->Length = (USHORT)(units * sizeof(WCHAR));
        u->MaximumLength = (USHORT)(u->Length + sizeof(WCHAR));
    }
    d->extension.ServiceKeyName = d->registry;
}

/* Waits for the driver's threads; false (after saying which still run)
 * when they outlast the timeout. */
static bool wait_for_threads(const struct runtime *rt, long timeout_s)
{
    char names[MAX_REPORTED_THREADS][FAST_MUTEX_WDK_THREAD_NAME_LEN];
    unsigned started = rt->threads_started();
    printf("threads:      %u started; waiting for them to end (--timeout %ld s)\n", started,
           timeout_s);
    fflush(stdout);
    unsigned left = rt->wait_threads(timeout_s * 1000, names, MAX_REPORTED_THREADS);
    if (left == 0) {
        printf("threads:      all %u ended\n", started);
        return true;
    }
    printf("threads:      %u still running after %ld s:", left, timeout_s);
    for (unsigned i = 0; i < left && i < MAX_REPORTED_THREADS; i++)
        printf(" %s", names[i]);
    printf("\n");
    fflush(stdout);
    fprintf(stderr, "fmx driver: %u system thread%s still running after %ld s (%s%s); "
                    "DriverUnload not called\n",
            left, left == 1 ? "" : "s", timeout_s, names[0], left > 1 ? ", ..." : "");
    return false;
}

/* DriverEntry, the wait, DriverUnload: the steps of a run once loaded. */
static int run_driver(const struct runtime *rt, const char *path, PDRIVER_INITIALIZE entry,
                      long timeout_s)
{
    char text[96];
    struct loaded_driver *d = calloc(1, sizeof *d);
    if (d == NULL) {
        fprintf(stderr, "fmx driver: out of memory\n");
        return EXIT_USAGE;
    }
    make_driver_object(d, path, entry);
    fflush(stdout);
    NTSTATUS status = entry(&d->object, &d->registry);
    printf("DriverEntry:  %s\n", describe(rt, status, text, sizeof text));
    fflush(stdout);
    bool ended = wait_for_threads(rt, timeout_s);
    if (!NT_SUCCESS(status)) {
        fprintf(stderr, "fmx driver: DriverEntry failed: %s\n", text);
        /* Windows unloads a driver whose DriverEntry fails without calling
         * DriverUnload; its threads, if any, must be gone first. */
        return EXIT_DRIVER_FAILED;
    }
    if (!ended)
        return EXIT_DRIVER_FAILED;
    if (d->object.DriverUnload == NULL) {
        printf("DriverUnload: none: the driver cannot be unloaded (as sc stop would say)\n");
        free(d);
        return 0;
    }
    d->object.DriverUnload(&d->object);
    fflush(stdout);
    printf("DriverUnload: returned\n");
    free(d);
    return 0;
}

/* Loads the driver: its handle, or NULL after one line. */
static void *load(const char *path, PDRIVER_INITIALIZE *entry)
{
    char local[PATH_MAX + 3];
    /* A bare name means the file here, not a search of the library path. */
    if (strchr(path, '/') == NULL)
        snprintf(local, sizeof local, "./%s", path);
    else
        snprintf(local, sizeof local, "%s", path);
    void *handle = dlopen(local, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        fprintf(stderr, "fmx driver: cannot load '%s': %s\n", path, dlerror());
        return NULL;
    }
    *(void **)entry = dlsym(handle, "DriverEntry");
    if (*entry == NULL) {
        fprintf(stderr, "fmx driver: '%s' has no DriverEntry (STATUS_DRIVER_ENTRYPOINT_NOT_FOUND)\n",
                path);
        dlclose(handle);
        return NULL;
    }
    return handle;
}

int fmx_driver_main(int argc, char **argv)
{
    struct driver_options opt;
    struct runtime rt;
    PDRIVER_INITIALIZE entry;
    char root[PATH_MAX];
    switch (parse_options(argc, argv, &opt)) {
    case 0: break;
    case 1: return 0;
    default: return EXIT_USAGE;
    }
    void *handle = load(opt.path, &entry);
    if (handle == NULL)
        return EXIT_USAGE;
    if (!find_runtime(handle, opt.path, &rt) || !prepare_root(&opt, root, sizeof root))
        return EXIT_USAGE;
    if (!NT_SUCCESS(rt.set_root(root))) {
        fprintf(stderr, "fmx driver: cannot use root '%s'\n", root);
        return EXIT_USAGE;
    }
    rt.set_namer(name_from_symbols);
    printf("driver:       %s (pid %d)\n", opt.path, (int)getpid());
    printf("root:         %s (\\??\\C:\\ is %s/C)\n", root, root);
    int status = run_driver(&rt, opt.path, entry, opt.timeout_s);
    fflush(stdout);
    fflush(stderr);
    /* Threads that outlived the timeout still run driver code: leave at
     * once, without unloading the image under them or running exit
     * handlers beside them. */
    _exit(status);
}
