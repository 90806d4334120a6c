/* test-http.c — the HTTP/1.1 reader (src/http.c): bodies by Content-Length, chunked (with
 * extensions and trailers) and until close, each fed whole and one byte at a time; keep-alive
 * and the bytes of a next response left alone; interim 100 responses; Retry-After (seconds and
 * a date) and RateLimit-Reset; and refusals: not HTTP, conflicting lengths, bad chunk sizes,
 * other codings, folded headers, a head or body over its limit. */
#include "http.h"
#include "tap.h"

#include <string.h>

#define NOW 1764201600 /* 2025-11-27 00:00:00 UTC */

struct result {
	int rc;
	struct atkv_http_response r;
	struct atkv_buf body;
	size_t used;
};

/* Feeds text in pieces of `step` bytes (0: all at once) until done; res->used is what the
 * response took of it. */
static void feed(const char *text, size_t step, size_t max_body, struct result *res)
{
	size_t n = strlen(text), off = 0;
	memset(res, 0, sizeof(*res));
	atkv_http_response_init(&res->r, NOW);
	struct atkv_err err = {0};
	while (off < n && res->r.state != ATKV_HTTP_DONE) {
		size_t piece = step && n - off > step ? step : n - off, used = 0;
		res->rc = atkv_http_feed(&res->r, (const uint8_t *)text + off, piece, &res->body, max_body, &used, &err);
		off += used;
		if (res->rc)
			break;
		if (used < piece)
			break;
	}
	res->used = off;
}

static void done(struct result *res)
{
	atkv_http_response_free(&res->r);
	atkv_buf_free(&res->body);
}

static void body_is(const char *what, const char *text, const char *want_body, int want_status, bool keep_alive)
{
	for (size_t step = 0; step <= 1; step++) {
		struct result res;
		feed(text, step, 1 << 20, &res);
		bool ok = res.rc == 0 && res.r.state == ATKV_HTTP_DONE && res.r.status == want_status &&
		          res.body.len == strlen(want_body) && (!res.body.len || !memcmp(res.body.data, want_body, res.body.len)) &&
		          res.r.keep_alive == keep_alive;
		tap_ok(ok, "%s%s (rc %d, state %d, status %d, %zu body bytes)", what, step ? ", a byte at a time" : "", res.rc,
		       res.r.state, res.r.status, res.body.len);
		done(&res);
	}
}

static void refused(const char *what, const char *text, size_t max_body, int want)
{
	struct result res;
	feed(text, 0, max_body, &res);
	tap_eq(res.rc, want, "%s: refused", what);
	done(&res);
}

int main(void)
{
	char req[512];
	long rn = atkv_http_request(req, sizeof(req), "pds.example:443", "/xrpc/com.atproto.sync.getRepo?did=did:plc:a",
	                            "application/vnd.ipld.car", "atkv-backfill/1");
	tap_ok(rn > 0 && !strncmp(req, "GET /xrpc/com.atproto.sync.getRepo?did=did:plc:a HTTP/1.1\r\nHost: pds.example:443\r\n", 82) &&
	           strstr(req, "Accept: application/vnd.ipld.car\r\n") && !strcmp(req + rn - 4, "\r\n\r\n"),
	       "a GET request with Host, Accept and keep-alive");
	tap_eq(atkv_http_request(req, 20, "h", "/", "*/*", "ua"), ATKV_E_BUFFER, "a request too long for the buffer");

	body_is("Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-type: x\r\n\r\nhello", "hello", 200, true);
	body_is("chunked with an extension and a trailer",
	        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n, chunked!\r\n0\r\nX-T: 1\r\n\r\n",
	        "hello, chunked!", 200, true);
	body_is("Connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", "", 200, false);
	body_is("a 204 has no body", "HTTP/1.1 204 No Content\r\n\r\n", "", 204, true);
	body_is("HTTP/1.0 closes unless told", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", 200, false);
	body_is("an interim 100 first", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", "x", 200,
	        true);

	/* A body read until the server closes. */
	struct result res;
	feed("HTTP/1.1 200 OK\r\n\r\npartial", 0, 1 << 20, &res);
	atkv_http_closed(&res.r);
	tap_ok(res.rc == 0 && res.r.state == ATKV_HTTP_DONE && res.body.len == 7 && !res.r.keep_alive,
	       "no length, not chunked: the body ends when the connection does");
	done(&res);

	/* Pipelined bytes of the next response are not taken. */
	const char *two = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 404 Not Found\r\n";
	feed(two, 0, 1 << 20, &res);
	tap_ok(res.rc == 0 && res.r.state == ATKV_HTTP_DONE && res.used == strlen(two) - strlen("HTTP/1.1 404 Not Found\r\n"),
	       "the next response's bytes are left (%zu of %zu used)", res.used, strlen(two));
	done(&res);

	feed("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 120\r\nContent-Length: 0\r\n\r\n", 0, 1 << 20, &res);
	tap_ok(res.r.status == 429 && res.r.retry_after_s == 120, "Retry-After in seconds: %lld", (long long)res.r.retry_after_s);
	done(&res);
	feed("HTTP/1.1 503 Busy\r\nRetry-After: Thu, 27 Nov 2025 00:01:00 GMT\r\nContent-Length: 0\r\n\r\n", 0, 1 << 20, &res);
	tap_ok(res.r.retry_after_s == 60, "Retry-After as a date: %lld s", (long long)res.r.retry_after_s);
	done(&res);
	feed("HTTP/1.1 429 Too Many Requests\r\nRateLimit-Reset: 1764201630\r\nContent-Length: 0\r\n\r\n", 0, 1 << 20, &res);
	tap_ok(res.r.retry_after_s == 30, "RateLimit-Reset (a Unix time): %lld s", (long long)res.r.retry_after_s);
	done(&res);
	feed("HTTP/1.1 302 Found\r\nLocation: https://other.example/x\r\nContent-Length: 0\r\n\r\n", 0, 1 << 20, &res);
	tap_ok(res.r.status == 302 && !strcmp(res.r.location, "https://other.example/x"), "Location kept for a redirect");
	done(&res);

	refused("not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", 1 << 20, ATKV_E_FRAME);
	refused("a bad status", "HTTP/1.1 2x0 OK\r\n\r\n", 1 << 20, ATKV_E_FRAME);
	refused("two Content-Lengths that differ", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 1 << 20,
	        ATKV_E_FRAME);
	refused("a Content-Length that is not a number", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 1 << 20, ATKV_E_FRAME);
	refused("a coding other than chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 1 << 20, ATKV_E_FRAME);
	refused("a folded header", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", 1 << 20, ATKV_E_FRAME);
	refused("a chunk size that is not hex", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 1 << 20,
	        ATKV_E_FRAME);
	refused("a chunk size of 2^64", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", 1 << 20,
	        ATKV_E_FRAME);
	refused("a chunk without its CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n", 1 << 20,
	        ATKV_E_FRAME);
	refused("a Content-Length over the limit", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 100, ATKV_E_TOO_LARGE);
	{
		static char over[512];
		strcpy(over, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n");
		memset(over + strlen(over), 'x', 101);
		refused("a chunked body over the limit", over, 100, ATKV_E_TOO_LARGE);
	}
	static char big[ATKV_HTTP_MAX_HEAD + 64];
	strcpy(big, "HTTP/1.1 200 OK\r\nX: ");
	memset(big + strlen(big), 'a', ATKV_HTTP_MAX_HEAD);
	refused("a head over 16 KiB", big, 1 << 20, ATKV_E_TOO_LARGE);
	return tap_done();
}
