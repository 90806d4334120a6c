/* httpconn.h — HTTP GETs for the backfill's workers: one blocking client per thread, over TCP
 * or TLS (tls.c: the system's CAs or a bundle, the host name verified), every step under a
 * deadline, and the connection to the last origin kept alive for the next request there. */
#ifndef ATKV_HTTPCONN_H
#define ATKV_HTTPCONN_H

#include "buf.h"
#include "http.h"

#include <stddef.h>

struct atkv_httpc;

/* A client (for one thread). ca_file NULL: the system's CAs. timeout_ms bounds connecting and
 * each wait for bytes. Returns 0, or -1 with why. */
int atkv_httpc_new(const char *ca_file, int timeout_ms, const char *user_agent, struct atkv_httpc **out, char *why,
                   size_t why_n);
void atkv_httpc_free(struct atkv_httpc *c);

/* Bounds each GET as a whole to total_ms (0: only each wait is bounded), so a server that
 * trickles bytes cannot hold a caller for long. Cannot fail. */
void atkv_httpc_set_total(struct atkv_httpc *c, int total_ms);

/* GETs url (http:// or https://HOST[:PORT]/PATH?QUERY), the body into body (replaced; at most
 * max_body bytes), the status and headers into resp (initialised here). A kept-alive
 * connection that fails before answering is retried once on a new one. Returns 0 (any HTTP
 * status: check resp->status), or -1 with why (no connection, TLS, timeout, a malformed or too
 * large response). */
int atkv_httpc_get(struct atkv_httpc *c, const char *url, const char *accept, size_t max_body, struct atkv_buf *body,
                   struct atkv_http_response *resp, char *why, size_t why_n);

/* Connections opened so far (to see keep-alive work). */
unsigned long atkv_httpc_connections(const struct atkv_httpc *c);

#endif
