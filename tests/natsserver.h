/* natsserver.h — a real nats-server for integration tests: started by the test with JetStream,
 * on a random loopback port and a store in its own temporary directory, stopped by its PID. */
#ifndef ATKV_NATSSERVER_H
#define ATKV_NATSSERVER_H

#include <nats/nats.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

struct nats_server {
	pid_t pid;
	int port;
	char dir[256];   /* temporary directory: store/, the ports file, the log */
	char url[64];    /* nats://127.0.0.1:PORT */
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

/* Creates KV bucket `bucket` with history 1, as atkv-builder does. Returns 0 or -1. */
int kv_bucket_create(jsCtx *js, const char *bucket);

/* The message stored last at $KV.<bucket>.<key> (a value or a delete marker), or NULL.
 * Free with natsMsg_Destroy. */
natsMsg *kv_last_msg(jsCtx *js, const char *bucket, const char *key);

#endif
