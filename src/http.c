/* http.c — HTTP/1.1 requests and responses without I/O (see http.h). The head is gathered
 * until its blank line and parsed whole; the body is passed through as it comes, the chunked
 * coding undone on the way with a small state machine whose partial lines wait in r->head. */
#define _DEFAULT_SOURCE
#define _XOPEN_SOURCE 700 /* strptime */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A chunk-size line or a trailer line is short; a longer one is not worth waiting for. */
#define MAX_LINE 4096

enum { CHUNK_SIZE, CHUNK_DATA, CHUNK_DATA_END, CHUNK_TRAILER };

long atkv_http_request(char *out, size_t cap, const char *host, const char *path, const char *accept,
                       const char *user_agent)
{
	int n = snprintf(out, cap,
	                 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nAccept: %s\r\nConnection: keep-alive\r\n\r\n",
	                 path, host, user_agent, accept);
	return n < 0 || (size_t)n >= cap ? ATKV_E_BUFFER : n;
}

void atkv_http_response_init(struct atkv_http_response *r, int64_t now_s)
{
	struct atkv_buf keep = r->head;
	memset(r, 0, sizeof(*r));
	r->head = keep;
	atkv_buf_reset(&r->head);
	r->content_length = -1;
	r->retry_after_s = -1;
	r->now_s = now_s;
}

void atkv_http_response_free(struct atkv_http_response *r) { atkv_buf_free(&r->head); }

/* A decimal number of at most 18 digits (no sign, no spaces); -1 when it is not one. */
static int64_t decimal(const char *s, size_t n)
{
	if (!n || n > 18)
		return -1;
	int64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static bool name_is(const char *name, size_t n, const char *want)
{
	return strlen(want) == n && !strncasecmp(name, want, n);
}

/* Retry-After: delta-seconds or an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"). */
static int64_t retry_after(const char *v, size_t n, int64_t now_s)
{
	int64_t s = decimal(v, n);
	if (s >= 0)
		return s;
	char date[64];
	struct tm tm = {0};
	if (n >= sizeof(date))
		return -1;
	memcpy(date, v, n);
	date[n] = '\0';
	const char *end = strptime(date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!end || *end)
		return -1;
	int64_t at = (int64_t)timegm(&tm);
	return at > now_s ? at - now_s : 0;
}

static int header(struct atkv_http_response *r, const char *name, size_t nn, const char *v, size_t vn,
                  struct atkv_err *err, size_t at)
{
	if (name_is(name, nn, "content-length")) {
		int64_t len = decimal(v, vn);
		if (len < 0 || (r->content_length >= 0 && r->content_length != len))
			return atkv_fail(err, ATKV_E_FRAME, at, "http content-length");
		r->content_length = len;
	} else if (name_is(name, nn, "transfer-encoding")) {
		/* Only chunked is ever sent to a client that asked for no other coding. */
		if (!(vn == 7 && !strncasecmp(v, "chunked", 7)))
			return atkv_fail(err, ATKV_E_FRAME, at, "http transfer-encoding");
		r->chunked = true;
	} else if (name_is(name, nn, "connection")) {
		if (vn == 5 && !strncasecmp(v, "close", 5))
			r->keep_alive = false;
		else if (vn == 10 && !strncasecmp(v, "keep-alive", 10))
			r->keep_alive = true;
	} else if (name_is(name, nn, "retry-after")) {
		r->retry_after_s = retry_after(v, vn, r->now_s);
	} else if (name_is(name, nn, "ratelimit-reset")) {
		/* The atproto PDS's reset is a Unix time; Retry-After, when also sent, wins. */
		int64_t reset = decimal(v, vn);
		if (reset >= 0 && r->retry_after_s < 0)
			r->retry_after_s = reset > r->now_s ? reset - r->now_s : 0;
	} else if (name_is(name, nn, "location")) {
		if (vn < sizeof(r->location)) {
			memcpy(r->location, v, vn);
			r->location[vn] = '\0';
		}
	}
	return 0;
}

/* Parses the head in r->head (which ends with its blank line). */
static int parse_head(struct atkv_http_response *r, struct atkv_err *err)
{
	const char *h = r->head.data, *end = h + r->head.len;
	const char *eol = strstr(h, "\r\n");
	if (!eol || eol - h < 12 || strncmp(h, "HTTP/1.", 7) || (h[7] != '0' && h[7] != '1') || h[8] != ' ')
		return atkv_fail(err, ATKV_E_FRAME, 0, "http status line");
	int64_t status = decimal(h + 9, 3);
	if (status < 100 || status > 599 || (eol > h + 12 && h[12] != ' '))
		return atkv_fail(err, ATKV_E_FRAME, 9, "http status line");
	r->status = (int)status;
	r->keep_alive = h[7] == '1';
	for (const char *line = eol + 2; line < end;) {
		const char *le = strstr(line, "\r\n");
		if (!le || le == line)
			break;
		if (*line == ' ' || *line == '\t')
			return atkv_fail(err, ATKV_E_FRAME, (size_t)(line - h), "http header folding");
		const char *colon = memchr(line, ':', (size_t)(le - line));
		if (!colon || colon == line || colon[-1] == ' ' || colon[-1] == '\t')
			return atkv_fail(err, ATKV_E_FRAME, (size_t)(line - h), "http header");
		const char *v = colon + 1, *ve = le;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		int rc = header(r, line, (size_t)(colon - line), v, (size_t)(ve - v), err, (size_t)(line - h));
		if (rc)
			return rc;
		line = le + 2;
	}
	if (r->chunked)
		r->content_length = -1; /* the coding wins over a length (RFC 9112 6.3) */
	return 0;
}

static int append_body(struct atkv_http_response *r, struct atkv_buf *body, const uint8_t *p, size_t n, size_t max_body,
                       struct atkv_err *err)
{
	if (n > max_body - r->body_n)
		return atkv_fail(err, ATKV_E_TOO_LARGE, 0, "http body");
	if (atkv_buf_append(body, p, n))
		return atkv_fail(err, ATKV_E_NOMEM, 0, "http body");
	r->body_n += n;
	return 0;
}

/* Takes bytes up to and including the next CRLF into r->head. Returns 1 with a whole line
 * there, 0 when more bytes are needed (all of p taken), or an error. */
static int take_line(struct atkv_http_response *r, const uint8_t *p, size_t n, size_t *used, struct atkv_err *err)
{
	const uint8_t *nl = memchr(p, '\n', n);
	size_t take = nl ? (size_t)(nl - p) + 1 : n;
	if (r->head.len + take > MAX_LINE)
		return atkv_fail(err, ATKV_E_FRAME, 0, "http chunk line");
	if (atkv_buf_append(&r->head, p, take))
		return atkv_fail(err, ATKV_E_NOMEM, 0, "http chunk line");
	*used = take;
	return nl != NULL;
}

static int chunk_size(struct atkv_http_response *r, struct atkv_err *err)
{
	const char *s = r->head.data;
	size_t n = strcspn(s, ";\r\n");
	uint64_t v = 0;
	if (!n || n > 15)
		return atkv_fail(err, ATKV_E_FRAME, 0, "http chunk size");
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return atkv_fail(err, ATKV_E_FRAME, i, "http chunk size");
		v = v * 16 + (uint64_t)d;
	}
	r->chunk_left = v;
	r->chunk_state = v ? CHUNK_DATA : CHUNK_TRAILER;
	return 0;
}

/* The chunked body: p[0..n), returning in *used what it consumed. */
static int feed_chunked(struct atkv_http_response *r, const uint8_t *p, size_t n, struct atkv_buf *body,
                        size_t max_body, size_t *used, struct atkv_err *err)
{
	size_t off = 0;
	while (off < n && r->state == ATKV_HTTP_BODY) {
		size_t took = 0;
		int rc;
		switch (r->chunk_state) {
		case CHUNK_DATA: {
			size_t take = n - off < r->chunk_left ? n - off : (size_t)r->chunk_left;
			if ((rc = append_body(r, body, p + off, take, max_body, err)))
				return rc;
			r->chunk_left -= take;
			off += take;
			if (!r->chunk_left)
				r->chunk_state = CHUNK_DATA_END;
			continue;
		}
		case CHUNK_SIZE:
		case CHUNK_DATA_END:
		case CHUNK_TRAILER:
			if ((rc = take_line(r, p + off, n - off, &took, err)) < 0)
				return rc;
			off += took;
			if (!rc)
				continue;
			rc = 0;
			if (r->chunk_state == CHUNK_SIZE) {
				rc = chunk_size(r, err);
			} else if (r->chunk_state == CHUNK_DATA_END) {
				if (strcmp(r->head.data, "\r\n"))
					rc = atkv_fail(err, ATKV_E_FRAME, 0, "http chunk end");
				r->chunk_state = CHUNK_SIZE;
			} else if (!strcmp(r->head.data, "\r\n")) {
				r->state = ATKV_HTTP_DONE; /* the trailers' blank line */
			}
			atkv_buf_reset(&r->head);
			if (rc)
				return rc;
		}
	}
	*used = off;
	return 0;
}

int atkv_http_feed(struct atkv_http_response *r, const uint8_t *p, size_t n, struct atkv_buf *body, size_t max_body,
                   size_t *used, struct atkv_err *err)
{
	size_t off = 0;
	*used = 0;
	while (r->state == ATKV_HTTP_HEAD && off < n) {
		/* Gather up to the blank line; look back 3 bytes for one split across calls. */
		size_t before = r->head.len, take = n - off;
		if (before + take > ATKV_HTTP_MAX_HEAD)
			take = ATKV_HTTP_MAX_HEAD - before;
		if (atkv_buf_append(&r->head, p + off, take))
			return atkv_fail(err, ATKV_E_NOMEM, 0, "http head");
		size_t from = before > 3 ? before - 3 : 0;
		const char *blank = NULL;
		for (size_t i = from; i + 4 <= r->head.len && !blank; i++)
			if (!memcmp(r->head.data + i, "\r\n\r\n", 4))
				blank = r->head.data + i;
		if (!blank) {
			if (r->head.len >= ATKV_HTTP_MAX_HEAD)
				return atkv_fail(err, ATKV_E_TOO_LARGE, 0, "http head");
			off += take;
			continue;
		}
		size_t head_len = (size_t)(blank - r->head.data) + 4;
		off += head_len - before;
		r->head.len = head_len;
		r->head.data[head_len] = '\0';
		int rc = parse_head(r, err);
		atkv_buf_reset(&r->head);
		if (rc)
			return rc;
		if (r->status < 200) {
			/* An interim response (100 Continue): the real one follows. */
			int64_t now = r->now_s;
			atkv_http_response_init(r, now);
			continue;
		}
		bool bodiless = r->status == 204 || r->status == 304 || (!r->chunked && r->content_length == 0);
		r->state = bodiless ? ATKV_HTTP_DONE : ATKV_HTTP_BODY;
		r->chunk_state = CHUNK_SIZE;
		if (!bodiless && !r->chunked && r->content_length < 0)
			r->keep_alive = false; /* the body ends when the connection does */
		if (r->content_length > 0 && (uint64_t)r->content_length > max_body)
			return atkv_fail(err, ATKV_E_TOO_LARGE, 0, "http content-length");
	}
	if (r->state == ATKV_HTTP_BODY && off < n) {
		if (r->chunked) {
			size_t took = 0;
			int rc = feed_chunked(r, p + off, n - off, body, max_body, &took, err);
			off += took;
			if (rc)
				return rc;
		} else {
			size_t take = n - off;
			if (r->content_length >= 0 && take > (uint64_t)r->content_length - r->body_n)
				take = (size_t)((uint64_t)r->content_length - r->body_n);
			int rc = append_body(r, body, p + off, take, max_body, err);
			if (rc)
				return rc;
			off += take;
			if (r->content_length >= 0 && r->body_n == (uint64_t)r->content_length)
				r->state = ATKV_HTTP_DONE;
		}
	}
	*used = off;
	return 0;
}

void atkv_http_closed(struct atkv_http_response *r)
{
	if (r->state == ATKV_HTTP_BODY && !r->chunked && r->content_length < 0)
		r->state = ATKV_HTTP_DONE;
}
