/* fmx: run the Fast Mutex demonstration and see into processes that use
 * fastmutex.  This file only dispatches to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "fmx.h"

struct command {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"demo", fmx_demo_main, "demo race|fixed [options]   the file-creation/file-move race, without and with a Fast Mutex"},
    {"waiters", fmx_waiters_main, "waiters [--json] [PID...]  threads waiting on a fastmutex (like !WrFastMutex)"},
    {"thread", fmx_thread_main, "thread PID TID             one thread: its wait and its stack (like !mex.t)"},
    {"mutex", fmx_mutex_main, "mutex [--wdm] PID ADDR|SYMBOL  one mutex: owner, contention, waiters (like dt _FAST_MUTEX)"},
    {"stat", fmx_stat_main, "stat [--json] PID          contention profile: waits and holds by mutex and site (like lock_stat)"},
    {"driver", fmx_driver_main, "driver DRIVER.so [--root DIR]  load and run a driver built against the WDK subset (like sc start)"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: fmx COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  fmx %s\n", commands[i].summary);
    fprintf(out, "\nwaiters, thread, mutex and stat read a core dump instead with --core CORE [--exe EXE]"
                 " in place of PID.\nSee fmx(1).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].main(argc - 1, argv + 1);
    fprintf(stderr, "fmx: unknown command '%s' (try 'fmx --help')\n", argv[1]);
    return 2;
}
