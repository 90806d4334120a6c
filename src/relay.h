/* relay.h — the WebSocket client of com.atproto.sync.subscribeRepos (atproto event stream spec)
 * on libwebsockets: one connection at a time to a relay or PDS, messages reassembled from
 * fragments into a reused buffer, reading paused and resumed for backpressure, and a periodic
 * tick and cross-thread wakeups for the owner's loop. Reconnect policy is the owner's. */
#ifndef ATKV_RELAY_H
#define ATKV_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ATKV_SUBSCRIBE_PATH "/xrpc/com.atproto.sync.subscribeRepos"

struct atkv_relay_handler {
	/* A whole message. Return 0 to go on, nonzero to close the connection. */
	int (*frame)(void *arg, const uint8_t *p, size_t n);
	void (*connected)(void *arg);
	/* The connection ended or could not be made; why is one line. */
	void (*closed)(void *arg, const char *why);
	/* On the loop's thread: every tick_ms, and soon after atkv_relay_wake from any thread. */
	void (*tick)(void *arg);
	void *arg;
};

struct atkv_relay_options {
	const char *url;        /* ws:// or wss:// base URL; the subscribeRepos path is appended
	                         * unless the URL already ends with it */
	size_t max_message;     /* a longer message closes the connection */
	int tick_ms;
	const char *ca_file;    /* CA bundle for wss://, NULL for the system's */
	int64_t timeout_ms;     /* silence that ends a connection (a ping goes at half), and the
	                         * limit from connect to an open WebSocket */
};

struct atkv_relay;

/* Returns 0, or -1 with why (bad URL, lws context failure). */
int atkv_relay_new(const struct atkv_relay_options *o, const struct atkv_relay_handler *h,
                   struct atkv_relay **out, char *why, size_t why_n);
void atkv_relay_free(struct atkv_relay *r);

/* Starts connecting with ?cursor=cursor (none when cursor < 0). Returns 0, or -1 when a
 * connection is already open (nothing else happens) or lws refuses at once (closed() is
 * called). */
int atkv_relay_connect(struct atkv_relay *r, int64_t cursor);
/* Closes the open connection (closed() follows). */
void atkv_relay_close(struct atkv_relay *r);
bool atkv_relay_is_open(const struct atkv_relay *r);
/* Stops or resumes reading from the socket. */
void atkv_relay_pause(struct atkv_relay *r, bool pause);
/* From any thread: makes the loop call tick() soon. */
void atkv_relay_wake(struct atkv_relay *r);
/* Runs the loop once (blocks until something happens). Returns <0 when lws fails. */
int atkv_relay_service(struct atkv_relay *r);
/* The URL actually used, with the path, for logs. */
const char *atkv_relay_url(const struct atkv_relay *r);
/* The libwebsockets context, for other endpoints on the same loop (metrics). */
struct lws_context *atkv_relay_context(struct atkv_relay *r);

#endif
