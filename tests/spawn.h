/* spawn.h — child processes for integration tests: started with extra environment and their
 * output in a log file, stopped by PID with a deadline. */
#ifndef ATKV_SPAWN_H
#define ATKV_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

/* Starts argv[0] (searched in PATH when it has no '/') with env_extra ("NAME=value" strings,
 * NULL-terminated, may be NULL) added, stdout and stderr appended to log. Returns the PID or -1. */
pid_t spawn(char *const argv[], char *const env_extra[], const char *log);

/* Sends sig and waits up to timeout_ms for the child to exit. Returns its wait status, or -1
 * when it did not exit in time (it is then killed with SIGKILL and reaped). */
int spawn_stop(pid_t pid, int sig, int timeout_ms);

/* True while the child runs (reaps it when it has exited; *status gets its wait status). */
bool spawn_running(pid_t pid, int *status);

/* Starts atkv-firehose-replay (src/) serving capture on a free loopback port with up to 8 more
 * arguments (extra ends with NULL; may be NULL), its port file and log (replay.log) in dir, and
 * waits for it to listen. Returns its PID with *port set, or -1. */
pid_t spawn_replay(const char *dir, const char *capture, const char *const extra[], int *port);

/* A free loopback port, bound and released for a child (or a server of the test) to take at
 * once; 0 when none could be had. */
int spawn_free_port(void);

void sleep_ms(int ms);
/* The child's peak resident memory so far (VmHWM), in KiB, or -1. */
long spawn_peak_rss_kb(pid_t pid);
/* CPU seconds (user + system) the process (the caller too: getpid()) has used so far, or -1. */
double spawn_cpu_seconds(pid_t pid);

#endif
