/* natsserver.c — starting and stopping a test's own nats-server, alone or in a cluster (see
 * natsserver.h). The client port comes from nats-server itself (-p -1 with --ports_file_dir),
 * so no two tests race for one; a cluster's route ports are picked by the test beforehand. */
#define _DEFAULT_SOURCE
#include "natsserver.h"
#include "spawn.h"

#include <nats/nats.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

/* The server's directory: the one the caller named (created if need be), or a new one. */
static int make_dir(struct nats_server *s)
{
	if (s->dir[0]) {
		if (mkdir(s->dir, 0700) == 0 || errno == EEXIST)
			return 0;
		printf("# mkdir %s: %s\n", s->dir, strerror(errno));
		return -1;
	}
	snprintf(s->dir, sizeof(s->dir), "/tmp/atkv-test-nats.XXXXXX");
	if (mkdtemp(s->dir))
		return 0;
	printf("# mkdtemp: %s\n", strerror(errno));
	s->dir[0] = '\0';
	return -1;
}

int nats_server_start(struct nats_server *s, int port)
{
	if (make_dir(s))
		return -1;
	if (port == 0)
		port = s->port;
	char store[300], log[300], portarg[16];
	snprintf(store, sizeof(store), "%s/store", s->dir);
	snprintf(log, sizeof(log), "%s/server.log", s->dir);
	snprintf(portarg, sizeof(portarg), "%d", port ? port : -1);
	char *argv[] = {"nats-server", "-js", "-sd", store, "-a", "127.0.0.1", "-p", portarg, "--ports_file_dir", s->dir, NULL};
	/* A cluster's node, or a server with limits: its configuration file says so. */
	char *node_argv[] = {"nats-server", "-c", s->conf, "-a", "127.0.0.1", "-p", portarg, "--ports_file_dir", s->dir, NULL};
	char **run = s->conf[0] ? node_argv : argv;
	/* nsenter enters a mount namespace and execs, so the PID stays the server's. */
	char ns_pid[16], *in_ns[16] = {"nsenter", "-t", ns_pid, "-m", "--"};
	snprintf(ns_pid, sizeof(ns_pid), "%d", (int)s->mount_ns);
	for (int i = 0; s->mount_ns && run[i] && i < 10; i++)
		in_ns[5 + i] = run[i];
	pid_t pid = spawn(s->mount_ns ? in_ns : run, NULL, log);
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

/* n distinct free loopback ports: all bound at once, then released for the servers to take
 * (a route port has no ports file to learn it from afterwards). */
static int free_ports(int *ports, int n)
{
	int fds[8], rc = 0;
	for (int i = 0; i < n; i++) {
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t len = sizeof(a);
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof(a)) || getsockname(fds[i], (struct sockaddr *)&a, &len))
			rc = -1;
		ports[i] = ntohs(a.sin_port);
	}
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return rc;
}

static int write_node_conf(struct nats_server *s, int i, const int *route_ports, int n)
{
	snprintf(s->name, sizeof(s->name), "n%d", i);
	snprintf(s->conf, sizeof(s->conf), "%s/node.conf", s->dir);
	FILE *f = fopen(s->conf, "w");
	if (!f) {
		printf("# %s: %s\n", s->conf, strerror(errno));
		s->conf[0] = '\0';
		return -1;
	}
	fprintf(f, "server_name: %s\njetstream {\n  store_dir: \"%s/store\"\n}\n", s->name, s->dir);
	fprintf(f, "cluster {\n  name: atkv-test\n  listen: 127.0.0.1:%d\n  routes: [\n", route_ports[i]);
	for (int k = 0; k < n; k++)
		if (k != i)
			fprintf(f, "    nats-route://127.0.0.1:%d\n", route_ports[k]);
	fprintf(f, "  ]\n}\n");
	return fclose(f) ? -1 : 0;
}

natsConnection *nats_cluster_connect(const char *urls)
{
	natsOptions *o = NULL;
	natsConnection *nc = NULL;
	char list[512];
	const char *servers[8];
	int n = 0;
	snprintf(list, sizeof(list), "%s", urls);
	for (char *save = NULL, *u = strtok_r(list, ",", &save); u && n < 8; u = strtok_r(NULL, ",", &save))
		servers[n++] = u;
	if (natsOptions_Create(&o) == NATS_OK && natsOptions_SetServers(o, servers, n) == NATS_OK &&
	    natsOptions_SetMaxReconnect(o, -1) == NATS_OK && natsOptions_SetReconnectWait(o, 100) == NATS_OK &&
	    natsConnection_Connect(&nc, o) != NATS_OK)
		nc = NULL;
	natsOptions_Destroy(o);
	return nc;
}

/* A meta leader answers JetStream's account info; before one is elected the request fails. */
static bool meta_leader(const char *urls, int timeout_ms)
{
	natsConnection *nc = nats_cluster_connect(urls);
	jsCtx *js = NULL;
	bool ok = false;
	if (nc && natsConnection_JetStream(&js, nc, NULL) == NATS_OK)
		for (int t = 0; t < timeout_ms && !ok; t += 100) {
			jsAccountInfo *ai = NULL;
			ok = js_GetAccountInfo(&ai, js, NULL, NULL) == NATS_OK;
			jsAccountInfo_Destroy(ai);
			if (!ok)
				sleep_ms(100);
		}
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return ok;
}

int nats_cluster_start(struct nats_server *nodes, int n, int timeout_ms, char *urls, size_t urls_n)
{
	int route_ports[8];
	size_t len = 0;
	if (n < 1 || n > 5 || free_ports(route_ports, n)) {
		printf("# no free loopback ports for the routes\n");
		return -1;
	}
	urls[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (make_dir(&nodes[i]) || write_node_conf(&nodes[i], i, route_ports, n) || nats_server_start(&nodes[i], 0))
			goto fail;
		len += (size_t)snprintf(urls + len, len < urls_n ? urls_n - len : 0, "%s%s", i ? "," : "", nodes[i].url);
	}
	if (len < urls_n && meta_leader(urls, timeout_ms))
		return 0;
	printf("# the cluster elected no JetStream meta leader in %d ms (see %s/server.log)\n", timeout_ms, nodes[0].dir);
fail:
	for (int i = 0; i < n; i++)
		nats_server_stop(&nodes[i]);
	return -1;
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
