/* fmx demo: the race that motivates the Fast Mutex, and its fix.
 *
 * The seed is a Windows driver whose DriverEntry starts two system threads on
 * one folder: FileCreationThread creates file_i.txt and writes "Hello,
 * World!\r\n" into it 100 times, FileMoveThread renames file_i.txt into
 * another folder as NewFile_i.txt.  Without a lock the mover finds files that
 * do not exist yet, or moves them half-written.  The seed's fix adds a
 * FAST_MUTEX that each thread holds around its whole loop, which keeps every
 * file whole but moves nothing when the mover happens to get the mutex first.
 *
 * This file runs the same two threads, with the same names, files and
 * counts, in three ways:
 *
 *   race            no lock, and the mover does not wait for a file: the seed's
 *                   first driver.
 *   fixed           FastMutex held around each file: the creation thread holds
 *                   it while it creates and writes file i and then records that
 *                   file i is done; the mover holds it while it renames file i,
 *                   and only once file i is done.  Every file ends in DST whole,
 *                   whatever the scheduling.
 *   fixed --coarse  the seed's fix as written: FastMutex held around each
 *                   whole loop.  No file is ever torn, but which thread takes
 *                   the mutex first decides whether anything is moved.
 *
 * After both threads end, every file is checked by reading it back, and the
 * report says what happened.  Exit status: 0 when the outcome is what the
 * mode promises (race: any outcome; fixed: every file whole in DST; coarse:
 * every file whole in exactly one of SRC and DST), 1 when it is not or when
 * a file operation failed for a reason other than the race itself, 2 for bad
 * arguments or folders, before any file is written. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fastmutex/wdm.h>

#include "fmx.h"

/* The line the seed writes, without its terminating NUL. */
static const char demo_line[] = "Hello, World!\r\n";
#define DEMO_LINE_LEN (sizeof demo_line - 1)
#define DEMO_DEFAULT_FILES 1000u
#define DEMO_DEFAULT_WRITES 100u
#define DEMO_MAX_FILES 1000000u
#define DEMO_MAX_WRITES 1000000u
#define DEMO_MAX_HOLD_MS 600000u
/* How long a thread sleeps before it looks again at something another
 * thread will change: long enough not to steal the CPU from that thread on a
 * small machine, short enough that the waiting costs little. */
#define DEMO_POLL_US 100L

#define EXIT_PROMISE_BROKEN 1
#define EXIT_USAGE 2

enum demo_mode {
    DEMO_RACE,   /* no lock */
    DEMO_FIXED,  /* FastMutex around each file */
    DEMO_COARSE, /* FastMutex around each whole loop, as the seed's fix */
};

enum demo_thread {
    THREAD_ANY,      /* whichever the scheduler runs first */
    THREAD_CREATION, /* FileCreation */
    THREAD_MOVE,     /* FileMove */
};

struct demo_options {
    enum demo_mode mode;
    unsigned files;
    unsigned writes;
    unsigned hold_ms;
    const char *src; /* NULL: a fresh folder under $TMPDIR */
    const char *dst;
    bool keep;
    enum demo_thread first;
};

/* What identifies a file this run made, so that a file left by an earlier
 * run under the same name is never taken for this run's result.  Both are 0
 * when the file could not be made. */
struct file_id {
    dev_t dev;
    ino_t ino;
};

/* The first failure of a file operation in one thread that the race does
 * not explain, and how many there were. */
struct thread_error {
    unsigned count;
    char text[PATH_MAX + 128];
};

/* Everything the two threads share: the seed's StartContext. */
struct demo {
    struct demo_options opt;
    char src_path[PATH_MAX];
    char dst_path[PATH_MAX];
    int src_fd;
    int dst_fd;
    size_t file_size; /* opt.writes lines */

    /* Written by FileCreation only, read after both threads are joined. */
    struct file_id *created; /* [opt.files] */
    unsigned created_count;
    struct thread_error creation_error;

    /* Written by FileMove only, read after both threads are joined. */
    unsigned moved;
    unsigned not_found;     /* renames that found no file to move */
    unsigned moved_partial; /* files seen shorter than file_size just after the move */
    struct thread_error move_error;

    /* Guarded by FastMutex.  files_done: how many files FileCreation has
     * finished with (fixed mode); first_holder: the thread that took the
     * mutex first (coarse mode). */
    unsigned files_done;
    const char *first_holder;

    /* Set once the thread named by opt.first has begun, so that the other
     * one may begin too.  Polled: it happens once per run. */
    atomic_bool first_started;
};

/* What the files look like once both threads have ended. */
struct demo_outcome {
    unsigned intact;    /* this run's file in DST, whole */
    unsigned missing;   /* no file of this run in DST */
    unsigned truncated; /* this run's file in DST, shorter but right so far */
    unsigned corrupted; /* this run's file in DST, wrong bytes or too long */
    unsigned stale;     /* a file of an earlier run under the name, not counted */
    unsigned left;      /* this run's file still in SRC */
    unsigned left_torn; /* of those, the ones that are not whole */
};

/* The seed's global: one Fast Mutex that both threads take. */
static FAST_MUTEX FastMutex;

static const char *mode_name(enum demo_mode mode)
{
    return mode == DEMO_RACE ? "race" : mode == DEMO_FIXED ? "fixed" : "fixed --coarse";
}

static void sleep_us(long us)
{
    struct timespec left = {us / 1000000L, (us % 1000000L) * 1000L};
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        continue;
}

static void note_error(struct thread_error *error, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void note_error(struct thread_error *error, const char *format, ...)
{
    /* Only the first failure is kept: it is the one worth reading, and the
     * count says whether more followed. */
    if (error->count++ == 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(error->text, sizeof error->text, format, args);
        va_end(args);
    }
}

static void src_name(char *buf, size_t size, unsigned i)
{
    snprintf(buf, size, "file_%u.txt", i);
}

static void dst_name(char *buf, size_t size, unsigned i)
{
    snprintf(buf, size, "NewFile_%u.txt", i);
}

/* The thread named by --first announces that it has begun (and, with a
 * lock, holds FastMutex); the other one waits for that before it begins. */
static void announce_start(struct demo *demo, enum demo_thread me)
{
    if (demo->opt.first == me)
        atomic_store_explicit(&demo->first_started, true, memory_order_release);
}

static void wait_for_turn(struct demo *demo, enum demo_thread me)
{
    if (demo->opt.first == THREAD_ANY || demo->opt.first == me)
        return;
    while (!atomic_load_explicit(&demo->first_started, memory_order_acquire))
        sleep_us(DEMO_POLL_US);
}

/* With --hold, FileCreation keeps FastMutex for a while at the first file,
 * so that a person can watch FileMove wait for it with `fmx waiters`. */
static void hold_if_asked(struct demo *demo, unsigned i)
{
    if (demo->opt.hold_ms == 0 || i != 0)
        return;
    printf("FileCreation (tid %d) holds FastMutex for %u ms; watch FileMove wait: fmx waiters %d\n",
           (int)gettid(), demo->opt.hold_ms, (int)getpid());
    fflush(stdout);
    sleep_us((long)demo->opt.hold_ms * 1000L);
    /* Count gains FM_LOCK_WAITER_INC for every thread waiting, as on
     * Windows: read it before letting go, to show who was kept waiting. */
    LONG count = __atomic_load_n(&FastMutex.Count, __ATOMIC_RELAXED);
    printf("FileCreation lets FastMutex go after %u ms; threads waiting for it: %d\n",
           demo->opt.hold_ms, (int)(count / FM_LOCK_WAITER_INC));
    fflush(stdout);
}

/* Creates SRC/file_i.txt, truncating one that is there, and writes the line
 * into it opt.writes times, as the seed's ZwCreateFile/ZwWriteFile loop. */
static void create_file(struct demo *demo, unsigned i)
{
    char name[32];
    struct stat st;
    src_name(name, sizeof name, i);
    int fd = openat(demo->src_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        note_error(&demo->creation_error, "FileCreation: cannot create '%s/%s': %s", demo->src_path,
                   name, strerror(errno));
        return;
    }
    /* Remember which file this is before writing: in the race the mover may
     * rename it while the writes go on. */
    if (fstat(fd, &st) != 0) {
        note_error(&demo->creation_error, "FileCreation: cannot stat '%s/%s': %s", demo->src_path,
                   name, strerror(errno));
        goto close_file;
    }
    demo->created[i] = (struct file_id){st.st_dev, st.st_ino};
    for (unsigned w = 0; w < demo->opt.writes; w++) {
        size_t done = 0;
        while (done < DEMO_LINE_LEN) {
            ssize_t n = write(fd, demo_line + done, DEMO_LINE_LEN - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                note_error(&demo->creation_error, "FileCreation: cannot write '%s/%s': %s",
                           demo->src_path, name, n < 0 ? strerror(errno) : "nothing written");
                goto close_file;
            }
            done += (size_t)n;
        }
    }
    demo->created_count++;
close_file:
    if (close(fd) != 0)
        note_error(&demo->creation_error, "FileCreation: cannot close '%s/%s': %s", demo->src_path,
                   name, strerror(errno));
}

/* Renames SRC/file_i.txt to DST/NewFile_i.txt, replacing one that is there,
 * as the seed's ZwSetInformationFile(FileRenameInformation). */
static void move_file(struct demo *demo, unsigned i)
{
    char from[32], to[32];
    struct stat st;
    src_name(from, sizeof from, i);
    dst_name(to, sizeof to, i);
    if (renameat(demo->src_fd, from, demo->dst_fd, to) != 0) {
        /* A missing file is the race itself, not a failure of the demo. */
        if (errno == ENOENT)
            demo->not_found++;
        else
            note_error(&demo->move_error, "FileMove: cannot rename '%s/%s' to '%s/%s': %s",
                       demo->src_path, from, demo->dst_path, to, strerror(errno));
        return;
    }
    demo->moved++;
    /* Look at once at what was moved: on Linux the creation thread's writes
     * go on into the moved file, so the check at the end cannot see that it
     * was moved half-written. */
    if (fstatat(demo->dst_fd, to, &st, 0) == 0 && (size_t)st.st_size < demo->file_size)
        demo->moved_partial++;
}

/* Fixed mode: returns holding FastMutex once FileCreation is done with file
 * i.  The wait is bounded by FileCreation's progress, which never stops:
 * it finishes with every file, whether it could write it or not. */
static void wait_until_created(struct demo *demo, unsigned i)
{
    for (;;) {
        ExAcquireFastMutex(&FastMutex);
        if (demo->files_done > i)
            return;
        ExReleaseFastMutex(&FastMutex);
        sleep_us(DEMO_POLL_US);
    }
}

static void note_first_holder(struct demo *demo, const char *thread)
{
    if (demo->first_holder == NULL)
        demo->first_holder = thread;
}

static void *FileCreationThread(void *context)
{
    struct demo *demo = context;
    enum demo_mode mode = demo->opt.mode;
    pthread_setname_np(pthread_self(), "FileCreation");
    wait_for_turn(demo, THREAD_CREATION);
    /* Take this thread's record (its KTHREAD, the Owner that fmx mutex and
     * gdb show) before FileMove may begin, so that with --first creation
     * the Owner pointer is the same in every run. */
    (void)KeGetCurrentThread();

    if (mode == DEMO_COARSE) {
        ExAcquireFastMutex(&FastMutex);
        note_first_holder(demo, "FileCreation");
    }
    announce_start(demo, THREAD_CREATION);
    for (unsigned i = 0; i < demo->opt.files; i++) {
        if (mode == DEMO_FIXED)
            ExAcquireFastMutex(&FastMutex);
        hold_if_asked(demo, i);
        create_file(demo, i);
        if (mode == DEMO_FIXED) {
            demo->files_done = i + 1;
            ExReleaseFastMutex(&FastMutex);
        }
    }
    if (mode == DEMO_COARSE)
        ExReleaseFastMutex(&FastMutex);
    return NULL;
}

static void *FileMoveThread(void *context)
{
    struct demo *demo = context;
    enum demo_mode mode = demo->opt.mode;
    pthread_setname_np(pthread_self(), "FileMove");
    wait_for_turn(demo, THREAD_MOVE);

    if (mode == DEMO_COARSE) {
        ExAcquireFastMutex(&FastMutex);
        note_first_holder(demo, "FileMove");
    }
    announce_start(demo, THREAD_MOVE);
    for (unsigned i = 0; i < demo->opt.files; i++) {
        if (mode == DEMO_FIXED)
            wait_until_created(demo, i);
        move_file(demo, i);
        if (mode == DEMO_FIXED)
            ExReleaseFastMutex(&FastMutex);
    }
    if (mode == DEMO_COARSE)
        ExReleaseFastMutex(&FastMutex);
    return NULL;
}

/* Reads `name` in folder `dir_fd` if it is the file this run made as file
 * i.  Returns -1 when there is no such file of this run (counting a file of
 * an earlier run in *stale), 0 when it is whole, 1 when it is shorter and
 * right so far, 2 when its bytes are wrong or too many. */
static int check_file(const struct demo *demo, int dir_fd, const char *name, unsigned i,
                      unsigned *stale)
{
    struct stat st;
    char buf[4096];
    size_t expected_at = 0;
    int verdict = 2;
    int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        verdict = -1;
        goto close_file;
    }
    if (demo->created[i].ino == 0 || st.st_dev != demo->created[i].dev ||
        st.st_ino != demo->created[i].ino) {
        (*stale)++;
        verdict = -1;
        goto close_file;
    }
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) /* a file that cannot be read back is no good either */
            goto close_file;
        if (n == 0)
            break;
        for (ssize_t k = 0; k < n; k++, expected_at++)
            if (expected_at >= demo->file_size || buf[k] != demo_line[expected_at % DEMO_LINE_LEN])
                goto close_file;
    }
    verdict = expected_at == demo->file_size ? 0 : 1;
close_file:
    close(fd);
    return verdict;
}

static void check_files(const struct demo *demo, struct demo_outcome *out)
{
    char name[32];
    *out = (struct demo_outcome){0};
    for (unsigned i = 0; i < demo->opt.files; i++) {
        dst_name(name, sizeof name, i);
        switch (check_file(demo, demo->dst_fd, name, i, &out->stale)) {
        case -1: out->missing++; break;
        case 0: out->intact++; break;
        case 1: out->truncated++; break;
        default: out->corrupted++; break;
        }
        src_name(name, sizeof name, i);
        int left = check_file(demo, demo->src_fd, name, i, &out->stale);
        if (left >= 0)
            out->left++;
        if (left > 0)
            out->left_torn++;
    }
}

/* Says in one line what happened and whether the mode kept its promise. */
static bool judge(const struct demo *demo, const struct demo_outcome *out)
{
    unsigned files = demo->opt.files;
    bool failed = demo->creation_error.count != 0 || demo->move_error.count != 0;
    switch (demo->opt.mode) {
    case DEMO_RACE:
        if (out->intact == files)
            printf("outcome: this time the race did no harm: all %u files moved intact (run it again)\n",
                   files);
        else
            printf("outcome: the race lost files: %u of %u not intact in DST (%u never moved, left in "
                   "SRC; %u truncated; %u corrupted; %u moved while still being written)\n",
                   files - out->intact, files, out->left, out->truncated, out->corrupted,
                   demo->moved_partial);
        return !failed;
    case DEMO_FIXED:
        if (out->intact == files && out->left == 0 && !failed) {
            printf("outcome: every file created, written and moved intact, as 'fixed' promises\n");
            return true;
        }
        printf("outcome: FAILED: %u of %u files not intact in DST ('fixed' promises all of them)\n",
               files - out->intact, files);
        return false;
    case DEMO_COARSE:
        break;
    }
    unsigned whole_files = out->intact + (out->left - out->left_torn);
    bool whole = !failed && out->truncated == 0 && out->corrupted == 0 && out->left_torn == 0 &&
                 whole_files == files;
    const char *first = demo->first_holder != NULL ? demo->first_holder : "no thread";
    if (!whole)
        printf("outcome: FAILED: %s took FastMutex first, and %u of %u files are not whole in "
               "either folder ('--coarse' promises no torn or lost file)\n",
               first, whole_files < files ? files - whole_files : 0, files);
    else if (out->left == 0)
        printf("outcome: %s took FastMutex first: all %u files were created, then all moved intact\n",
               first, files);
    else
        printf("outcome: %s took FastMutex first: %u files moved, %u left whole in SRC (the seed's "
               "fix moves nothing when the mover runs first)\n",
               first, out->intact, out->left);
    return whole;
}

static void report(const struct demo *demo, const struct demo_outcome *out)
{
    printf("created:             %u\n", demo->created_count);
    printf("moved:               %u\n", demo->moved);
    printf("not found by mover:  %u\n", demo->not_found);
    printf("moved half-written:  %u\n", demo->moved_partial);
    printf("intact in DST:       %u\n", out->intact);
    printf("missing from DST:    %u\n", out->missing);
    printf("truncated in DST:    %u\n", out->truncated);
    printf("corrupted in DST:    %u\n", out->corrupted);
    printf("left behind in SRC:  %u\n", out->left);
    if (out->stale != 0)
        printf("older files ignored: %u (same names, not written by this run)\n", out->stale);
    if (demo->opt.mode == DEMO_RACE)
        printf("contention:          none (race takes no mutex)\n");
    else
        printf("contention:          %" PRIu32 "\n", (uint32_t)FastMutex.Contention);
}

static void print_errors(const struct demo *demo)
{
    const struct thread_error *errors[] = {&demo->creation_error, &demo->move_error};
    for (size_t k = 0; k < 2; k++) {
        if (errors[k]->count == 1)
            fprintf(stderr, "fmx demo: %s\n", errors[k]->text);
        else if (errors[k]->count > 1)
            fprintf(stderr, "fmx demo: %s (and %u more failures)\n", errors[k]->text,
                    errors[k]->count - 1);
    }
}

/* As the seed's DriverEntry: initialize the mutex, start both threads. */
static int run_threads(struct demo *demo)
{
    pthread_t creation, move;
    int err;
    ExInitializeFastMutex(&FastMutex);
    /* The name is what fmx and the reports show; without it they show the
     * address, so a full name table is not worth failing the demo for. */
    (void)fast_mutex_set_name(&FastMutex.Event.Lock, "FastMutex");

    err = pthread_create(&creation, NULL, FileCreationThread, demo);
    if (err != 0) {
        fprintf(stderr, "fmx demo: cannot start FileCreation: %s\n", strerror(err));
        return -1;
    }
    err = pthread_create(&move, NULL, FileMoveThread, demo);
    if (err != 0) {
        fprintf(stderr, "fmx demo: cannot start FileMove: %s\n", strerror(err));
        /* FileCreation may be waiting for its turn behind the mover. */
        atomic_store_explicit(&demo->first_started, true, memory_order_release);
        pthread_join(creation, NULL);
        return -1;
    }
    pthread_join(creation, NULL);
    pthread_join(move, NULL);
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: fmx demo race|fixed [options]\n"
            "\n"
            "Two threads share two folders: FileCreation creates SRC/file_i.txt and writes\n"
            "\"Hello, World!\\r\\n\" into it, FileMove renames it to DST/NewFile_i.txt.\n"
            "  race    no lock: files go missing, or are moved before they are written\n"
            "  fixed   a FAST_MUTEX taken for each file: every file ends in DST intact\n"
            "\n"
            "options:\n"
            "  --files N        files to create and move (default %u)\n"
            "  --writes N       lines written into each file (default %u)\n"
            "  --src DIR        folder of the new files, made if missing (default: a fresh\n"
            "                   temporary folder)\n"
            "  --dst DIR        folder they are moved to, made if missing (default: a fresh\n"
            "                   temporary folder too)\n"
            "  --keep           keep the temporary folder and print its path\n"
            "  --coarse         (fixed) hold the mutex around each whole loop, as the seed's fix\n"
            "  --hold MS        (fixed) FileCreation keeps the mutex MS ms at the first file\n"
            "  --first THREAD   'creation' or 'move': that thread starts (and with --coarse,\n"
            "                   takes the mutex) first\n"
            "  -h, --help       show this help\n"
            "\n"
            "Exit status: 0 when the outcome is what the mode promises (race: any; fixed: every\n"
            "file intact in DST; --coarse: every file whole in SRC or DST), 1 when it is not,\n"
            "2 for bad arguments or folders.  See fmx(1).\n",
            DEMO_DEFAULT_FILES, DEMO_DEFAULT_WRITES);
}

/* Parses a whole decimal number in [min, max]; prints one line and returns
 * false for anything else. */
static bool parse_count(const char *option, const char *text, unsigned min, unsigned max,
                        unsigned *value)
{
    char *end;
    unsigned long long n;
    if (text[0] < '0' || text[0] > '9')
        goto bad;
    errno = 0;
    n = strtoull(text, &end, 10);
    if (*end != '\0' || errno == ERANGE || n < min || n > max)
        goto bad;
    *value = (unsigned)n;
    return true;
bad:
    fprintf(stderr, "fmx demo: %s '%s': give a whole number from %u to %u\n", option, text, min,
            max);
    return false;
}

/* Matches "--name VALUE" and "--name=VALUE" at argv[*i]; sets *value (NULL
 * with an error printed when the value is missing) and moves *i past it. */
static bool option_value(const char *name, int argc, char **argv, int *i, const char **value)
{
    const char *arg = argv[*i];
    size_t len = strlen(name);
    if (strncmp(arg, name, len) != 0)
        return false;
    if (arg[len] == '=') {
        *value = arg + len + 1;
        return true;
    }
    if (arg[len] != '\0')
        return false;
    if (*i + 1 >= argc) {
        fprintf(stderr, "fmx demo: %s needs a value\n", name);
        *value = NULL;
        return true;
    }
    *value = argv[++*i];
    return true;
}

/* Returns 0 with *opt filled, 1 after printing the help, -1 after printing
 * one line about bad arguments. */
static int parse_options(int argc, char **argv, struct demo_options *opt)
{
    bool have_mode = false, coarse = false, hold = false;
    *opt = (struct demo_options){.files = DEMO_DEFAULT_FILES, .writes = DEMO_DEFAULT_WRITES};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value;
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            usage(stdout);
            return 1;
        } else if (strcmp(arg, "--keep") == 0) {
            opt->keep = true;
        } else if (strcmp(arg, "--coarse") == 0) {
            coarse = true;
        } else if (option_value("--files", argc, argv, &i, &value)) {
            if (value == NULL || !parse_count("--files", value, 1, DEMO_MAX_FILES, &opt->files))
                return -1;
        } else if (option_value("--writes", argc, argv, &i, &value)) {
            if (value == NULL || !parse_count("--writes", value, 1, DEMO_MAX_WRITES, &opt->writes))
                return -1;
        } else if (option_value("--hold", argc, argv, &i, &value)) {
            if (value == NULL || !parse_count("--hold", value, 0, DEMO_MAX_HOLD_MS, &opt->hold_ms))
                return -1;
            hold = true;
        } else if (option_value("--src", argc, argv, &i, &value)) {
            if (value == NULL)
                return -1;
            opt->src = value;
        } else if (option_value("--dst", argc, argv, &i, &value)) {
            if (value == NULL)
                return -1;
            opt->dst = value;
        } else if (option_value("--first", argc, argv, &i, &value)) {
            if (value == NULL)
                return -1;
            if (strcmp(value, "creation") == 0) {
                opt->first = THREAD_CREATION;
            } else if (strcmp(value, "move") == 0) {
                opt->first = THREAD_MOVE;
            } else {
                fprintf(stderr, "fmx demo: --first '%s': give 'creation' or 'move'\n", value);
                return -1;
            }
        } else if (arg[0] == '-') {
            fprintf(stderr, "fmx demo: unknown option '%s' (try 'fmx demo --help')\n", arg);
            return -1;
        } else if (have_mode) {
            fprintf(stderr, "fmx demo: unexpected argument '%s' (try 'fmx demo --help')\n", arg);
            return -1;
        } else if (strcmp(arg, "race") == 0 || strcmp(arg, "fixed") == 0) {
            opt->mode = strcmp(arg, "race") == 0 ? DEMO_RACE : DEMO_FIXED;
            have_mode = true;
        } else {
            fprintf(stderr, "fmx demo: unknown demo '%s': give 'race' or 'fixed'\n", arg);
            return -1;
        }
    }
    if (!have_mode) {
        fprintf(stderr, "fmx demo: which demo? give 'race' or 'fixed' (try 'fmx demo --help')\n");
        return -1;
    }
    if (opt->mode == DEMO_RACE && (coarse || hold)) {
        fprintf(stderr, "fmx demo: %s needs a mutex: use it with 'fixed'\n",
                coarse ? "--coarse" : "--hold");
        return -1;
    }
    if (coarse)
        opt->mode = DEMO_COARSE;
    return 0;
}

/* The folders the demo works in, and what it made itself so that it can
 * take exactly that away again. */
struct folders {
    /* "" unless a temporary folder was made; shorter than PATH_MAX so that
     * its "/src" and "/dst" always fit in a path. */
    char temp[PATH_MAX - 8];
    bool src_made, dst_made;
};

/* Opens (making it when missing, but not its parents) the folder `path`
 * for `role` ("SRC" or "DST"), and checks that files can be made in it.
 * Returns the folder's descriptor, or -1 after printing one line. */
static int open_folder(const char *role, const char *path, bool *made)
{
    char probe[64];
    int fd, probe_fd;
    *made = false;
    if (mkdir(path, 0755) == 0)
        *made = true;
    else if (errno != EEXIST) {
        fprintf(stderr, "fmx demo: cannot create %s folder '%s': %s\n", role, path, strerror(errno));
        return -1;
    }
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOTDIR)
            fprintf(stderr, "fmx demo: %s '%s' is not a folder\n", role, path);
        else
            fprintf(stderr, "fmx demo: cannot open %s folder '%s': %s\n", role, path, strerror(errno));
        goto undo_mkdir;
    }
    /* Permission bits do not stop root, and a read-only mount or a folder
     * like /proc can only be told by trying, so try with a file no one else
     * would name. */
    snprintf(probe, sizeof probe, ".fmx-demo-probe-%d", (int)getpid());
    probe_fd = openat(fd, probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (probe_fd < 0) {
        fprintf(stderr, "fmx demo: cannot write in %s folder '%s': %s\n", role, path, strerror(errno));
        goto close_fd;
    }
    close(probe_fd);
    unlinkat(fd, probe, 0);
    return fd;
close_fd:
    close(fd);
undo_mkdir:
    if (*made)
        rmdir(path);
    *made = false;
    return -1;
}

/* Sets up SRC and DST in demo (making a temporary folder for the ones not
 * given) and checks that rename can move files from one to the other.
 * Returns 0, or -1 after printing one line and taking away what it made. */
static int open_folders(struct demo *demo, struct folders *made)
{
    const struct demo_options *opt = &demo->opt;
    struct stat src_st, dst_st;
    *made = (struct folders){0};
    demo->src_fd = demo->dst_fd = -1;

    if (opt->src == NULL || opt->dst == NULL) {
        const char *tmp = getenv("TMPDIR");
        if (tmp == NULL || tmp[0] == '\0')
            tmp = "/tmp";
        if ((size_t)snprintf(made->temp, sizeof made->temp, "%s/fmx-demo-XXXXXX", tmp) >=
            sizeof made->temp) {
            fprintf(stderr, "fmx demo: temporary folder path under '%s' is too long\n", tmp);
            made->temp[0] = '\0';
            return -1;
        }
        if (mkdtemp(made->temp) == NULL) {
            fprintf(stderr, "fmx demo: cannot create a temporary folder in '%s': %s\n", tmp,
                    strerror(errno));
            made->temp[0] = '\0';
            return -1;
        }
    }
    if (opt->src != NULL)
        snprintf(demo->src_path, sizeof demo->src_path, "%s", opt->src);
    else
        snprintf(demo->src_path, sizeof demo->src_path, "%s/src", made->temp);
    if (opt->dst != NULL)
        snprintf(demo->dst_path, sizeof demo->dst_path, "%s", opt->dst);
    else
        snprintf(demo->dst_path, sizeof demo->dst_path, "%s/dst", made->temp);
    if (strlen(demo->src_path) + 1 >= sizeof demo->src_path ||
        strlen(demo->dst_path) + 1 >= sizeof demo->dst_path) {
        fprintf(stderr, "fmx demo: folder path too long\n");
        goto undo;
    }

    demo->src_fd = open_folder("SRC", demo->src_path, &made->src_made);
    if (demo->src_fd < 0)
        goto undo;
    demo->dst_fd = open_folder("DST", demo->dst_path, &made->dst_made);
    if (demo->dst_fd < 0)
        goto undo;
    if (fstat(demo->src_fd, &src_st) != 0 || fstat(demo->dst_fd, &dst_st) != 0) {
        fprintf(stderr, "fmx demo: cannot stat the folders: %s\n", strerror(errno));
        goto undo;
    }
    if (src_st.st_dev == dst_st.st_dev && src_st.st_ino == dst_st.st_ino) {
        fprintf(stderr, "fmx demo: SRC '%s' and DST '%s' are the same folder\n", demo->src_path,
                demo->dst_path);
        goto undo;
    }
    if (src_st.st_dev != dst_st.st_dev) {
        fprintf(stderr,
                "fmx demo: SRC '%s' and DST '%s' are on different file systems, where rename "
                "cannot move files\n",
                demo->src_path, demo->dst_path);
        goto undo;
    }
    return 0;
undo:
    if (demo->dst_fd >= 0)
        close(demo->dst_fd);
    if (demo->src_fd >= 0)
        close(demo->src_fd);
    demo->src_fd = demo->dst_fd = -1;
    if (made->dst_made)
        rmdir(demo->dst_path);
    if (made->src_made)
        rmdir(demo->src_path);
    if (made->temp[0] != '\0')
        rmdir(made->temp);
    return -1;
}

/* Takes away the temporary folder: only the files the demo names, then the
 * folders, so that nothing the demo did not make is ever deleted. */
static void remove_temp(struct demo *demo, const struct folders *made)
{
    char name[32], path[PATH_MAX];
    for (unsigned i = 0; i < demo->opt.files; i++) {
        if (demo->opt.src == NULL) {
            src_name(name, sizeof name, i);
            unlinkat(demo->src_fd, name, 0);
        }
        if (demo->opt.dst == NULL) {
            dst_name(name, sizeof name, i);
            unlinkat(demo->dst_fd, name, 0);
        }
    }
    if (demo->opt.src == NULL) {
        snprintf(path, sizeof path, "%s/src", made->temp);
        rmdir(path);
    }
    if (demo->opt.dst == NULL) {
        snprintf(path, sizeof path, "%s/dst", made->temp);
        rmdir(path);
    }
    if (rmdir(made->temp) != 0)
        fprintf(stderr, "fmx demo: cannot remove temporary folder '%s': %s\n", made->temp,
                strerror(errno));
}

int fmx_demo_main(int argc, char **argv)
{
    struct demo *demo;
    struct folders made;
    struct demo_outcome outcome;
    int status = EXIT_USAGE;

    demo = calloc(1, sizeof *demo);
    if (demo == NULL) {
        fprintf(stderr, "fmx demo: out of memory\n");
        return EXIT_USAGE;
    }
    switch (parse_options(argc, argv, &demo->opt)) {
    case 0: break;
    case 1: status = 0; goto free_demo;
    default: goto free_demo;
    }
    demo->file_size = (size_t)demo->opt.writes * DEMO_LINE_LEN;
    demo->created = calloc(demo->opt.files, sizeof *demo->created);
    if (demo->created == NULL) {
        fprintf(stderr, "fmx demo: out of memory for %u files\n", demo->opt.files);
        goto free_demo;
    }
    if (open_folders(demo, &made) != 0)
        goto free_demo;

    printf("fmx demo %s: FileCreation writes %u files of %u x \"Hello, World!\\r\\n\" (%zu bytes) "
           "into SRC, FileMove renames each into DST\n",
           mode_name(demo->opt.mode), demo->opt.files, demo->opt.writes, demo->file_size);
    printf("SRC:                 %s\n", demo->src_path);
    printf("DST:                 %s\n", demo->dst_path);
    if (demo->opt.mode == DEMO_RACE)
        printf("lock:                none\n");
    else
        printf("lock:                FAST_MUTEX FastMutex at %p, held %s (pid %d)\n",
               (void *)&FastMutex,
               demo->opt.mode == DEMO_FIXED ? "for each file" : "around each thread's whole loop",
               (int)getpid());
    fflush(stdout);

    status = EXIT_PROMISE_BROKEN;
    if (run_threads(demo) != 0)
        goto close_folders;
    check_files(demo, &outcome);
    report(demo, &outcome);
    if (judge(demo, &outcome))
        status = 0;
    fflush(stdout);
    print_errors(demo);
close_folders:
    if (made.temp[0] != '\0') {
        if (demo->opt.keep)
            printf("kept:                %s\n", made.temp);
        else
            remove_temp(demo, &made);
    }
    close(demo->src_fd);
    close(demo->dst_fd);
free_demo:
    free(demo->created);
    free(demo);
    return status;
}
