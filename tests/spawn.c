/* spawn.c — fork/exec/stop helpers for the integration tests (see spawn.h). */
#define _GNU_SOURCE
#include "spawn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

pid_t spawn(char *const argv[], char *const env_extra[], const char *log)
{
	fflush(stdout);
	pid_t parent = getpid();
	/* Closed by the exec: returning only then keeps the figures read from /proc (peak RSS)
	 * the program's, not those of the copy of the test that fork made. */
	int execed[2];
	if (pipe2(execed, O_CLOEXEC))
		return -1;
	pid_t pid = fork();
	if (pid != 0) {
		close(execed[1]);
		char c;
		while (pid > 0 && read(execed[0], &c, 1) < 0 && errno == EINTR)
			;
		close(execed[0]);
		return pid;
	}
	close(execed[0]);
	/* Should the test die (a crash, a bail out), what it started goes with it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
	for (int i = 0; env_extra && env_extra[i]; i++)
		putenv(env_extra[i]);
	execvp(argv[0], argv);
	fprintf(stderr, "exec %s failed\n", argv[0]);
	_exit(127);
}

bool spawn_running(pid_t pid, int *status)
{
	int st;
	pid_t r = waitpid(pid, &st, WNOHANG);
	if (r == pid) {
		if (status)
			*status = st;
		return false;
	}
	return r == 0;
}

int spawn_stop(pid_t pid, int sig, int timeout_ms)
{
	int st;
	if (pid <= 0)
		return -1;
	kill(pid, sig);
	for (int waited = 0; waited < timeout_ms; waited += 10) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return st;
		sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

long spawn_peak_rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmHWM:", 6))
			kb = atol(line + 6);
	if (f)
		fclose(f);
	return kb;
}

double spawn_cpu_seconds(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	/* Fields 14 and 15 (utime, stime) follow the ")" that ends the command name. */
	char *p = strrchr(buf, ')');
	unsigned long long ut = 0, st = 0;
	if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
		return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	return -1;
}

pid_t spawn_replay(const char *dir, const char *capture, const char *const extra[], int *port)
{
	char portfile[300], log[300];
	snprintf(portfile, sizeof(portfile), "%s/replay.port", dir);
	snprintf(log, sizeof(log), "%s/replay.log", dir);
	unlink(portfile); /* a previous server's */
	char *argv[16] = {"src/atkv-firehose-replay", (char *)capture, "--listen", "127.0.0.1:0", "--port-file", portfile};
	for (int i = 0; extra && extra[i] && i < 8; i++)
		argv[6 + i] = (char *)extra[i];
	pid_t pid = spawn(argv, NULL, log);
	for (int t = 0; pid > 0 && t < 10000; t += 20) {
		FILE *f = fopen(portfile, "r");
		if (f) {
			int ok = fscanf(f, "%d", port);
			fclose(f);
			if (ok == 1)
				return pid;
		}
		if (!spawn_running(pid, NULL))
			return -1;
		sleep_ms(20);
	}
	if (pid > 0)
		spawn_stop(pid, SIGKILL, 5000);
	return -1;
}

int spawn_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t n = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
	if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) && !getsockname(fd, (struct sockaddr *)&a, &n))
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}
