/* natsserver.c — starting and stopping a test's own nats-server (see natsserver.h). The port
 * comes from nats-server itself (-p -1 with --ports_file_dir), so no two tests race for one. */
#define _DEFAULT_SOURCE
#include "natsserver.h"
#include "spawn.h"

#include <nats/nats.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Reads the port from DIR/nats-server_PID.ports: {"nats":["nats://127.0.0.1:PORT"]}. */
static int read_port(const struct nats_server *s)
{
	char path[512], buf[256];
	snprintf(path, sizeof(path), "%s/nats-server_%d.ports", s->dir, (int)s->pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *colon = strstr(buf, "127.0.0.1:");
	return colon ? atoi(colon + 10) : 0;
}

static bool can_connect_soon(const struct nats_server *s)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/nats-server_%d.ports", s->dir, (int)s->pid);
	return access(path, R_OK) == 0;
}

int nats_server_start(struct nats_server *s, int port)
{
	if (!s->dir[0]) {
		snprintf(s->dir, sizeof(s->dir), "/tmp/atkv-test-nats.XXXXXX");
		if (!mkdtemp(s->dir)) {
			printf("# mkdtemp: %s\n", strerror(errno));
			return -1;
		}
	}
	if (port == 0)
		port = s->port;
	char store[300], log[300], portarg[16];
	snprintf(store, sizeof(store), "%s/store", s->dir);
	snprintf(log, sizeof(log), "%s/server.log", s->dir);
	snprintf(portarg, sizeof(portarg), "%d", port ? port : -1);
	char *argv[] = {"nats-server", "-js", "-sd", store, "-a", "127.0.0.1", "-p", portarg, "--ports_file_dir", s->dir, NULL};
	pid_t pid = spawn(argv, NULL, log);
	if (pid < 0)
		return -1;
	s->pid = pid;
	for (int i = 0; i < 500; i++) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			printf("# nats-server exited at start (see %s)\n", log);
			s->pid = 0;
			return -1;
		}
		if (can_connect_soon(s) && (s->port = read_port(s)) > 0) {
			snprintf(s->url, sizeof(s->url), "nats://127.0.0.1:%d", s->port);
			return 0;
		}
		sleep_ms(10);
	}
	printf("# nats-server did not start in 5 s (see %s)\n", log);
	nats_server_stop(s);
	return -1;
}

void nats_server_signal(struct nats_server *s, int sig)
{
	if (s->pid > 0)
		kill(s->pid, sig);
}

void nats_server_stop(struct nats_server *s)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, SIGCONT);
	kill(s->pid, SIGTERM);
	for (int i = 0; i < 500; i++) {
		if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
			s->pid = 0;
			break;
		}
		sleep_ms(10);
	}
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
	/* The ports file names the old PID; a restart writes a new one. */
	char path[512];
	DIR *d = opendir(s->dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (strstr(e->d_name, ".ports")) {
			snprintf(path, sizeof(path), "%s/%s", s->dir, e->d_name);
			unlink(path);
		}
	}
	if (d)
		closedir(d);
}

void nats_server_destroy(struct nats_server *s)
{
	nats_server_stop(s);
	if (s->dir[0]) {
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", s->dir);
		s->dir[0] = '\0';
	}
}

natsMsg *kv_last_msg(jsCtx *js, const char *bucket, const char *key)
{
	char stream[64], subject[4096];
	natsMsg *m = NULL;
	jsErrCode jerr = 0;
	snprintf(stream, sizeof(stream), "KV_%s", bucket);
	snprintf(subject, sizeof(subject), "$KV.%s.%s", bucket, key);
	if (js_GetLastMsg(&m, js, stream, subject, NULL, &jerr) != NATS_OK)
		return NULL;
	return m;
}

int kv_bucket_create(jsCtx *js, const char *bucket)
{
	kvConfig kc;
	kvStore *kv = NULL;
	kvConfig_Init(&kc);
	kc.Bucket = bucket;
	kc.History = 1;
	natsStatus st = js_CreateKeyValue(&kv, js, &kc);
	kvStore_Destroy(kv);
	return st == NATS_OK ? 0 : -1;
}
