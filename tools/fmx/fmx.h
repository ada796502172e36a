/* The fmx command's subcommands; each lives in its own file. */
#ifndef FMX_H
#define FMX_H

/* Each takes the arguments after its own name (argv[0] is the subcommand)
 * and returns the process exit status. */
int fmx_demo_main(int argc, char **argv);
int fmx_waiters_main(int argc, char **argv);
int fmx_thread_main(int argc, char **argv);
int fmx_mutex_main(int argc, char **argv);
int fmx_driver_main(int argc, char **argv);
int fmx_stat_main(int argc, char **argv);

#endif
