/* natsconn.h — connecting to NATS the way every atkv program does: one or more server URLs,
 * optional credentials file and TLS, endless reconnects (a service outlives NATS restarts). */
#ifndef ATKV_NATSCONN_H
#define ATKV_NATSCONN_H

#include <nats/nats.h>
#include <stddef.h>

struct atkv_nats_options {
	const char *urls;      /* "nats://h1:4222,nats://h2:4222" */
	const char *name;      /* connection name shown by the server */
	const char *creds;     /* user credentials file, or NULL */
	const char *tls_ca;    /* CA bundle to verify the server, or NULL */
	const char *tls_cert;  /* client certificate, or NULL */
	const char *tls_key;   /* its key, or NULL */
};

/* Connects, retrying while the servers are unreachable for up to wait_ms. Returns 0 with *nc
 * set, or -1 with a one-line reason in why (which names the option to fix when it can).
 * The caller destroys *nc with natsConnection_Destroy. */
int atkv_nats_connect(const struct atkv_nats_options *o, long wait_ms, natsConnection **nc,
                      char *why, size_t why_n);

#endif
