/* natsserver.h — a real nats-server for integration tests: started by the test with JetStream,
 * on a random loopback port and a store in its own temporary directory, stopped by its PID;
 * or several of them forming a JetStream cluster on loopback. */
#ifndef ATKV_NATSSERVER_H
#define ATKV_NATSSERVER_H

#include <nats/nats.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

struct nats_server {
	pid_t pid;
	int port;
	char dir[256];   /* temporary directory: store/, the ports file, the log (when set before
	                  * the first start, that directory, created if need be) */
	char url[64];    /* nats://127.0.0.1:PORT */
	char name[16];   /* server_name, in a cluster ("" otherwise) */
	char conf[300];  /* its configuration file: a cluster's node, or limits ("" otherwise) */
	pid_t mount_ns;  /* a process whose mount namespace it runs in (a store on a filesystem
	                  * of the test's own), or 0 */
};

/* Starts a server; with port 0 it picks a free one (and keeps it across restarts). Returns 0,
 * or -1 after printing why. */
int nats_server_start(struct nats_server *s, int port);
/* Stops the server (SIGTERM, then SIGKILL after 5 s) and waits for it. The directory stays, so
 * a restart finds its store. */
void nats_server_stop(struct nats_server *s);
/* Sends sig to the server (SIGSTOP, SIGCONT, SIGKILL). */
void nats_server_signal(struct nats_server *s, int sig);
/* Stops the server if running and removes its directory. */
void nats_server_destroy(struct nats_server *s);

/* Starts n servers (up to 5) named n0, n1, ... forming the JetStream cluster atkv-test on
 * loopback, each with a directory of its own, and waits up to timeout_ms for the cluster to
 * elect its meta leader (JetStream answers). urls gets the client URLs, comma-separated.
 * Restart a node with nats_server_start(&nodes[i], 0): same ports, same store. Returns 0, or
 * -1 after printing why (every node started is then stopped, its directory kept). */
int nats_cluster_start(struct nats_server *nodes, int n, int timeout_ms, char *urls, size_t urls_n);

/* Connects to the comma-separated urls, reconnecting to any of them for as long as the
 * connection lives (a cluster's node may be killed under it). Returns NULL when none answers. */
natsConnection *nats_cluster_connect(const char *urls);

/* Creates KV bucket `bucket` with history 1, as atkv-builder does. Returns 0 or -1. */
int kv_bucket_create(jsCtx *js, const char *bucket);

/* The message stored last at $KV.<bucket>.<key> (a value or a delete marker), or NULL.
 * Free with natsMsg_Destroy. */
natsMsg *kv_last_msg(jsCtx *js, const char *bucket, const char *key);

#endif
