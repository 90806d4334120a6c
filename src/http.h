/* http.h — HTTP/1.1 for the backfill's client (RFC 9112), without I/O: a GET request written,
 * and a response read as its bytes arrive — the status line and headers, then the body by
 * Content-Length, chunked transfer coding or until the server closes — with every length
 * checked against a limit, not trusted. httpconn.c moves the bytes. */
#ifndef ATKV_HTTP_H
#define ATKV_HTTP_H

#include "buf.h"
#include "err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ATKV_HTTP_MAX_HEAD 16384   /* the longest response head accepted */

/* Writes "GET path HTTP/1.1" with Host, User-Agent, Accept and keep-alive. Returns the length,
 * or ATKV_E_BUFFER when cap is too small. */
long atkv_http_request(char *out, size_t cap, const char *host, const char *path, const char *accept,
                       const char *user_agent);

enum atkv_http_state { ATKV_HTTP_HEAD, ATKV_HTTP_BODY, ATKV_HTTP_DONE };

struct atkv_http_response {
	enum atkv_http_state state;
	int status;                 /* 200, 429, ... */
	int64_t content_length;     /* -1 when absent */
	bool chunked;               /* Transfer-Encoding: chunked */
	bool keep_alive;            /* the connection may serve another request afterwards */
	int64_t retry_after_s;      /* Retry-After in seconds (or RateLimit-Reset's wait); -1: none */
	char location[512];         /* Location, for a redirect ("" when none or too long) */
	/* The reader's own state. */
	struct atkv_buf head;
	uint64_t body_n;            /* body bytes of this response so far */
	uint64_t chunk_left;        /* bytes of the current chunk still to come */
	int chunk_state;
	int64_t now_s;              /* the Unix time RateLimit-Reset is counted from */
};

/* Prepares r for a response to a GET (now_s: the current Unix time). */
void atkv_http_response_init(struct atkv_http_response *r, int64_t now_s);
void atkv_http_response_free(struct atkv_http_response *r);

/* Reads p[0..n): the head into r, body bytes appended to body (at most max_body bytes of this
 * response's body).
 * *used is set to the bytes consumed (less than n only once the response is complete: the
 * rest belongs to the next one). Returns 0 (check r->state), ATKV_E_TOO_LARGE (a head over
 * ATKV_HTTP_MAX_HEAD, a body over max_body), ATKV_E_FRAME (not HTTP/1.x, a bad status line,
 * header or chunk size; err->where says which), or ATKV_E_NOMEM. */
int atkv_http_feed(struct atkv_http_response *r, const uint8_t *p, size_t n, struct atkv_buf *body, size_t max_body,
                   size_t *used, struct atkv_err *err);

/* For a body read until the connection closes (no length, not chunked): the close ends it. */
void atkv_http_closed(struct atkv_http_response *r);

#endif
