/* natsconn.h — connecting to NATS the way every atkv program does: one or more server URLs,
 * optional credentials file and TLS, endless reconnects (a service outlives NATS restarts). */
#ifndef ATKV_NATSCONN_H
#define ATKV_NATSCONN_H

#include "config.h"

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>

/* The options of every program that talks to NATS, for its table of options (config.h). */
#define ATKV_NATS_CONFIG_OPTIONS \
	{"nats", ATKV_OPT_NATS_URLS, "nats://127.0.0.1:4222", "URL[,URL...]", "NATS servers", 0, 0, "NATS_URL", false}, \
	{"creds", ATKV_OPT_PATH, NULL, "FILE", "NATS user credentials file", 0, 0, NULL, false}, \
	{"nkey", ATKV_OPT_PATH, NULL, "FILE", "NATS user NKey seed file (NKey authentication)", 0, 0, NULL, false}, \
	{"tls-ca", ATKV_OPT_PATH, NULL, "FILE", "CA bundle that signed the NATS servers' certificates", 0, 0, NULL, false}, \
	{"tls-cert", ATKV_OPT_PATH, NULL, "FILE", "client certificate for NATS", 0, 0, NULL, false}, \
	{"tls-key", ATKV_OPT_PATH, NULL, "FILE", "key of the client certificate", 0, 0, NULL, false}

struct atkv_nats_options {
	const char *urls;      /* "nats://h1:4222,nats://h2:4222" */
	const char *name;      /* connection name shown by the server */
	const char *creds;     /* user credentials file, or NULL */
	const char *nkey;      /* user NKey seed file, or NULL */
	const char *tls_ca;    /* CA bundle to verify the server, or NULL */
	const char *tls_cert;  /* client certificate, or NULL */
	const char *tls_key;   /* its key, or NULL */
	bool log_events;       /* log losing and regaining the connection (services) */
};

/* Connects, retrying while the servers are unreachable for up to wait_ms. Returns 0 with *nc
 * set, or -1 with a one-line reason in why (which names the option to fix when it can).
 * The caller destroys *nc with natsConnection_Destroy. */
int atkv_nats_connect(const struct atkv_nats_options *o, long wait_ms, natsConnection **nc,
                      char *why, size_t why_n);

/* Why a NATS call that returned s failed, for a message: nats.c's text of the calling thread's
 * last error, or, when it kept none (a plain timeout), the status said in words. */
const char *atkv_nats_why(natsStatus s);

/* The server list as it may be shown (logs, errors, status): each URL's user information
 * (user:password@ or token@) replaced by "***@". */
void atkv_nats_urls_shown(const char *urls, char *out, size_t cap);

/* The values of ATKV_NATS_CONFIG_OPTIONS in c (the strings stay c's), for a connection named
 * name; log_events is false (services set it). */
struct atkv_nats_options atkv_nats_options_from_config(const struct atkv_config *c, const char *name);

#endif
