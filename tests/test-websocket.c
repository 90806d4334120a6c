/* test-websocket.c — the RFC 6455 client side without I/O: the handshake key, request and
 * response check, the masked client frame writer, and the server frame reader. */
#include "err.h"
#include "tap.h"
#include "websocket.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The key of RFC 6455 sections 1.3 and 4.1; the responses below carry the Sec-WebSocket-Accept
 * it calls for, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=". */
static const char rfc_key[] = "dGhlIHNhbXBsZSBub25jZQ==";

#define FIN 0x80

enum length_form { FORM_AUTO, FORM_7, FORM_16, FORM_64 };

/* Writes an unmasked server frame: first is the whole first byte (FIN, reserved bits, opcode),
 * the length in the chosen form (FORM_AUTO: the shortest). Returns the frame's length. */
static size_t sframe(uint8_t *out, uint8_t first, enum length_form form, const void *p, size_t n)
{
	size_t h = 2;
	if (form == FORM_AUTO)
		form = n < 126 ? FORM_7 : n <= 0xffff ? FORM_16 : FORM_64;
	out[0] = first;
	if (form == FORM_7) {
		out[1] = (uint8_t)n;
	} else if (form == FORM_16) {
		out[1] = 126;
		out[2] = (uint8_t)(n >> 8);
		out[3] = (uint8_t)n;
		h = 4;
	} else {
		out[1] = 127;
		for (int i = 0; i < 8; i++)
			out[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
		h = 10;
	}
	if (n)
		memcpy(out + h, p, n);
	return h + n;
}

static void reader_init(struct atkv_ws_reader *r, size_t max_message)
{
	memset(r, 0, sizeof(*r));
	atkv_ws_reader_reset(r, max_message);
}

static bool same(const uint8_t *p, size_t n, const char *want)
{
	return n == strlen(want) && (n == 0 || memcmp(p, want, n) == 0);
}

/* ---- handshake ---- */

static void test_key(void)
{
	char key[ATKV_WS_KEY_SIZE];
	memset(key, 'x', sizeof(key));
	atkv_ws_key((const uint8_t *)"the sample nonce", key);
	tap_ok(strcmp(key, rfc_key) == 0, "ws key of \"the sample nonce\" is %s (got \"%.*s\")", rfc_key,
	       ATKV_WS_KEY_SIZE, key);

	uint8_t zero[16] = {0}, ones[16];
	memset(ones, 0xff, sizeof(ones));
	atkv_ws_key(zero, key);
	tap_ok(strcmp(key, "AAAAAAAAAAAAAAAAAAAAAA==") == 0, "ws key of 16 zero bytes (got \"%s\")", key);
	atkv_ws_key(ones, key);
	tap_ok(strcmp(key, "/////////////////////w==") == 0, "ws key of 16 0xff bytes (got \"%s\")", key);
}

static const char good_response[] =
	"HTTP/1.1 101 Switching Protocols\r\n"
	"uPgRaDe: WebSocket\r\n"
	"CONNECTION: keep-alive, Upgrade\r\n"
	"sec-websocket-ACCEPT: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
	"\r\n";

static int check(const char *head, const char *key, char *why, size_t why_n)
{
	why[0] = '\0';
	return atkv_ws_check_response(head, strlen(head), key, why, why_n);
}

static void test_check_response(void)
{
	char why[256];
	tap_eq(check(good_response, rfc_key, why, sizeof(why)), 0, "ws response: RFC 6455 example accepted (%s)", why);

	static const char plain[] =
		"HTTP/1.1 101 Switching Protocols\r\n"
		"Upgrade: websocket\r\n"
		"Connection: Upgrade\r\n"
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
		"Server: test\r\n"
		"Sec-WebSocket-Protocol:\r\n"
		"\r\n";
	tap_eq(check(plain, rfc_key, why, sizeof(why)), 0,
	       "ws response: canonical header case, an extra header and an empty protocol header accepted (%s)", why);

	static const char tabs[] =
		"HTTP/1.1 101 Switching Protocols\r\n"
		"Upgrade:\twebsocket \r\n"
		"Connection:upgrade\r\n"
		"Sec-WebSocket-Accept:   s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\t\r\n"
		"\r\n";
	tap_eq(check(tabs, rfc_key, why, sizeof(why)), 0, "ws response: spaces and tabs around values accepted (%s)", why);

	static const struct {
		const char *what;
		const char *head;
		const char *why_has;
	} bad[] = {
		{"404 status",
		 "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
		 "\"HTTP/1.1 404 Not Found\""},
		{"200 status with the upgrade headers",
		 "HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
		 "\"HTTP/1.1 200 OK\""},
		{"missing Upgrade",
		 "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
		 "Upgrade: websocket"},
		{"Upgrade naming another protocol",
		 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
		 "Upgrade: websocket"},
		{"missing Connection",
		 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
		 "Connection: Upgrade"},
		{"Connection without the upgrade token",
		 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: keep-alive, upgraded\r\n"
		 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
		 "Connection: Upgrade"},
		{"wrong accept",
		 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo\r\n\r\n",
		 "Sec-WebSocket-Accept"},
		{"missing accept",
		 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		 "Sec-WebSocket-Accept"},
		{"unrequested extension",
		 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
		 "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
		 "extension"},
		{"unrequested subprotocol",
		 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "sec-websocket-protocol: chat\r\n"
		 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
		 "subprotocol"},
		{"non-HTTP text", "SSH-2.0-OpenSSH_9.6\r\n\r\n", "not HTTP"},
		{"HTTP/2 status line", "HTTP/2 101\r\n\r\n", "not HTTP"},
		{"empty input", "", "not HTTP"},
		{"four-digit status",
		 "HTTP/1.1 1010 Weird\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
		 "not HTTP"},
		{"status line cut short",
		 "HTTP/1.\n 101\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
		 "not HTTP"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = check(bad[i].head, rfc_key, why, sizeof(why));
		tap_ok(rc == ATKV_E_WEBSOCKET && why[0] && strstr(why, bad[i].why_has),
		       "ws response rejected: %s (rc %d, why \"%s\")", bad[i].what, rc, why);
	}

	/* A key of another length is refused, not hashed past its buffer. */
	char long_key[41];
	memset(long_key, 'A', 40);
	long_key[40] = '\0';
	tap_eq(check(good_response, long_key, why, sizeof(why)), ATKV_E_WEBSOCKET,
	       "ws response: a 40-character key is refused (%s)", why);

	/* The right answer for another key is the wrong one for this key. */
	tap_eq(check(good_response, "AAAAAAAAAAAAAAAAAAAAAA==", why, sizeof(why)), ATKV_E_WEBSOCKET,
	       "ws response: accept computed for a different key rejected (%s)", why);

	/* A small why is truncated, never overrun. */
	char small[8];
	memset(small, 'z', sizeof(small));
	int rc = atkv_ws_check_response(bad[0].head, strlen(bad[0].head), rfc_key, small, 5);
	tap_ok(rc == ATKV_E_WEBSOCKET && strlen(small) == 4 && small[5] == 'z',
	       "ws response: why is cut to its size (\"%s\")", small);
}

static void test_request(void)
{
	static const char want[] =
		"GET /xrpc/com.atproto.sync.subscribeRepos?cursor=42 HTTP/1.1\r\n"
		"Host: bsky.network:443\r\n"
		"Upgrade: websocket\r\n"
		"Connection: Upgrade\r\n"
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		"Sec-WebSocket-Version: 13\r\n"
		"User-Agent: atkv/0.1\r\n"
		"\r\n";
	const char *path = "/xrpc/com.atproto.sync.subscribeRepos?cursor=42";
	char out[512];
	long n = atkv_ws_request(out, sizeof(out), "bsky.network:443", path, rfc_key, "atkv/0.1");
	tap_eq(n, (long)strlen(want), "ws request length");
	tap_ok(n > 0 && strcmp(out, want) == 0, "ws request text");

	size_t len = strlen(want);
	tap_eq(atkv_ws_request(out, len + 1, "bsky.network:443", path, rfc_key, "atkv/0.1"), (long)len,
	       "ws request fits a buffer of its length plus the NUL");
	tap_eq(atkv_ws_request(out, len, "bsky.network:443", path, rfc_key, "atkv/0.1"), ATKV_E_BUFFER,
	       "ws request: ATKV_E_BUFFER without room for the NUL");
	tap_eq(atkv_ws_request(out, 16, "bsky.network:443", path, rfc_key, "atkv/0.1"), ATKV_E_BUFFER,
	       "ws request: ATKV_E_BUFFER for a 16-byte buffer");
}

static void test_response_end(void)
{
	static const char head[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
	size_t hn = strlen(head);
	uint8_t buf[128];
	memcpy(buf, head, hn);
	/* A server frame right behind the head, as a relay may send it in the same packet. */
	static const uint8_t frame[] = {0x82, 0x03, 'a', 'b', 'c'};
	memcpy(buf + hn, frame, sizeof(frame));

	bool all_zero = true;
	size_t at = 0;
	for (size_t k = 0; k < hn && all_zero; k++)
		if (atkv_ws_response_end(buf, k) != 0)
			all_zero = false, at = k;
	tap_ok(all_zero, "ws response end: every prefix of the head is incomplete (first failure at %zu)", at);
	tap_eq(atkv_ws_response_end(buf, hn), (long)hn, "ws response end: the whole head");
	tap_eq(atkv_ws_response_end(buf, hn + sizeof(frame)), (long)hn,
	       "ws response end: stops at the blank line, frame bytes after it");
	tap_eq(atkv_ws_response_end((const uint8_t *)"\r\n\r\n", 4), 4, "ws response end: a bare blank line");
	tap_eq(atkv_ws_response_end((const uint8_t *)"a\n\nb\r\n\r", 7), 0,
	       "ws response end: only CRLF CRLF ends the head");

	uint8_t *big = malloc(ATKV_WS_MAX_RESPONSE + 8);
	if (!big) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
	for (size_t i = 0; i < ATKV_WS_MAX_RESPONSE + 8; i++)
		big[i] = i % 64 == 62 ? '\r' : i % 64 == 63 ? '\n' : 'a';
	tap_eq(atkv_ws_response_end(big, ATKV_WS_MAX_RESPONSE - 1), 0,
	       "ws response end: one byte under the limit with no blank line is incomplete");
	tap_eq(atkv_ws_response_end(big, ATKV_WS_MAX_RESPONSE), ATKV_E_TOO_LARGE,
	       "ws response end: ATKV_WS_MAX_RESPONSE bytes with no blank line");
	tap_eq(atkv_ws_response_end(big, ATKV_WS_MAX_RESPONSE + 8), ATKV_E_TOO_LARGE,
	       "ws response end: more than ATKV_WS_MAX_RESPONSE bytes with no blank line");
	/* A blank line that ends exactly at the limit still counts. */
	memcpy(big + ATKV_WS_MAX_RESPONSE - 4, "\r\n\r\n", 4);
	tap_eq(atkv_ws_response_end(big, ATKV_WS_MAX_RESPONSE + 8), ATKV_WS_MAX_RESPONSE,
	       "ws response end: a blank line ending at the limit");
	/* One that ends past it does not. */
	memcpy(big + ATKV_WS_MAX_RESPONSE - 4, "aa\r\n", 4);
	memcpy(big + ATKV_WS_MAX_RESPONSE - 2, "\r\n\r\n", 4);
	tap_eq(atkv_ws_response_end(big, ATKV_WS_MAX_RESPONSE + 8), ATKV_E_TOO_LARGE,
	       "ws response end: a blank line ending past the limit");
	free(big);
}

/* ---- client frames ---- */

static void test_frame(void)
{
	/* RFC 6455 section 5.7: a masked "Hello". */
	static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
	static const uint8_t hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
	uint8_t out[64];
	size_t n = atkv_ws_frame(out, ATKV_WS_OP_TEXT, (const uint8_t *)"Hello", 5, mask);
	tap_ok(n == sizeof(hello) && memcmp(out, hello, n) == 0, "ws frame: RFC 6455 masked \"Hello\"");

	static const uint8_t close_want[] = {0x88, 0x82, 0x37, 0xfa, 0x21, 0x3d, 0x34, 0x12};
	n = atkv_ws_frame(out, ATKV_WS_OP_CLOSE, (const uint8_t *)"\x03\xe8", 2, mask);
	tap_ok(n == sizeof(close_want) && memcmp(out, close_want, n) == 0, "ws frame: close 1000");
	static const uint8_t pong_want[] = {0x8a, 0x80, 0x37, 0xfa, 0x21, 0x3d};
	n = atkv_ws_frame(out, ATKV_WS_OP_PONG, NULL, 0, mask);
	tap_ok(n == sizeof(pong_want) && memcmp(out, pong_want, n) == 0, "ws frame: empty pong");

	static const struct {
		size_t n;
		size_t header;
		uint8_t len_bytes[9];
	} cases[] = {
		{0, 2, {0x80}},
		{125, 2, {0x80 | 125}},
		{126, 4, {0x80 | 126, 0x00, 0x7e}},
		{65535, 4, {0x80 | 126, 0xff, 0xff}},
		{65536, 10, {0x80 | 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}},
	};
	static const uint8_t m2[4] = {0xa5, 0x01, 0x5a, 0xfe};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		size_t len = cases[c].n, h = cases[c].header;
		uint8_t *p = malloc(len + 1), *f = malloc(ATKV_WS_MAX_HEADER + len);
		if (!p || !f) {
			printf("Bail out! out of memory\n");
			exit(1);
		}
		for (size_t i = 0; i < len; i++)
			p[i] = (uint8_t)(i * 7 + 3);
		size_t got = atkv_ws_frame(f, ATKV_WS_OP_BINARY, p, len, m2);
		tap_eq((long long)got, (long long)(h + 4 + len), "ws frame of %zu bytes: length %zu", len, h + 4 + len);
		tap_ok(f[0] == 0x82 && memcmp(f + 1, cases[c].len_bytes, h - 1) == 0 && memcmp(f + h, m2, 4) == 0,
		       "ws frame of %zu bytes: FIN, binary, mask bit, %zu-byte length form, mask key", len, h);
		bool xored = true;
		for (size_t i = 0; i < len && xored; i++)
			xored = f[h + 4 + i] == (uint8_t)(p[i] ^ m2[i & 3]);
		tap_ok(xored, "ws frame of %zu bytes: payload XOR mask", len);
		for (size_t i = 0; i < len; i++)
			f[h + 4 + i] ^= f[h + (i & 3)];
		tap_ok(len == 0 || memcmp(f + h + 4, p, len) == 0, "ws frame of %zu bytes: unmasks to the payload", len);
		free(p);
		free(f);
	}
}

/* ---- server frames ---- */

static void test_read_single(void)
{
	struct atkv_ws_reader r;
	struct atkv_ws_event ev;
	struct atkv_err err = {0, 0, NULL};
	uint8_t in[256];
	reader_init(&r, 1 << 20);

	size_t n = sframe(in, FIN | ATKV_WS_OP_BINARY, FORM_AUTO, "hello", 5);
	memset(&ev, 0, sizeof(ev));
	long rc = atkv_ws_read(&r, in, n, &ev, &err);
	tap_eq(rc, 7, "ws read binary: whole frame used");
	tap_ok(ev.kind == ATKV_WS_MESSAGE && ev.data == in + 2 && ev.len == 5,
	       "ws read binary: a message pointing into the input (zero copy)");

	n = sframe(in, FIN | ATKV_WS_OP_TEXT, FORM_AUTO, "{\"t\":1}", 7);
	memset(&ev, 0, sizeof(ev));
	rc = atkv_ws_read(&r, in, n, &ev, &err);
	tap_ok(rc == 9 && ev.kind == ATKV_WS_MESSAGE && ev.data == in + 2 && same(ev.data, ev.len, "{\"t\":1}"),
	       "ws read text: a message pointing into the input");

	n = sframe(in, FIN | ATKV_WS_OP_BINARY, FORM_AUTO, NULL, 0);
	memset(&ev, 0, sizeof(ev));
	rc = atkv_ws_read(&r, in, n, &ev, &err);
	tap_ok(rc == 2 && ev.kind == ATKV_WS_MESSAGE && ev.len == 0, "ws read: an empty message");

	/* Non-minimal length encodings: RFC 6455 5.2 says the minimal form MUST be used, but the
	 * reader accepts the longer forms and reads the length they carry. */
	n = sframe(in, FIN | ATKV_WS_OP_BINARY, FORM_16, "hello", 5);
	memset(&ev, 0, sizeof(ev));
	rc = atkv_ws_read(&r, in, n, &ev, &err);
	tap_ok(rc == 9 && ev.kind == ATKV_WS_MESSAGE && ev.data == in + 4 && same(ev.data, ev.len, "hello"),
	       "ws read: a 5-byte payload in the 16-bit length form is accepted (rc %ld)", rc);
	n = sframe(in, FIN | ATKV_WS_OP_BINARY, FORM_64, "hello", 5);
	memset(&ev, 0, sizeof(ev));
	rc = atkv_ws_read(&r, in, n, &ev, &err);
	tap_ok(rc == 15 && ev.kind == ATKV_WS_MESSAGE && ev.data == in + 10 && same(ev.data, ev.len, "hello"),
	       "ws read: a 5-byte payload in the 64-bit length form is accepted (rc %ld)", rc);
	n = sframe(in, FIN | ATKV_WS_OP_PING, FORM_16, "hi", 2);
	memset(&ev, 0, sizeof(ev));
	rc = atkv_ws_read(&r, in, n, &ev, &err);
	tap_ok(rc == 6 && ev.kind == ATKV_WS_PING && same(ev.data, ev.len, "hi"),
	       "ws read: a 2-byte ping in the 16-bit length form is accepted (rc %ld)", rc);

	/* Bytes after the frame are left for the next call. */
	n = sframe(in, FIN | ATKV_WS_OP_BINARY, FORM_AUTO, "abc", 3);
	in[n] = 0x82;
	memset(&ev, 0, sizeof(ev));
	rc = atkv_ws_read(&r, in, n + 1, &ev, &err);
	tap_ok(rc == 5 && ev.kind == ATKV_WS_MESSAGE && same(ev.data, ev.len, "abc"),
	       "ws read: stops at the end of the frame");
	tap_eq(atkv_ws_read(&r, in, 0, &ev, &err), 0, "ws read: no input is incomplete");
	atkv_ws_reader_free(&r);
}

/* Whether every proper prefix of frame f[0..n) reads as incomplete, and the whole as one event. */
static void check_prefixes(struct atkv_ws_reader *r, const uint8_t *f, size_t n, enum atkv_ws_kind kind,
                           const char *what)
{
	struct atkv_ws_event ev;
	struct atkv_err err = {0, 0, NULL};
	size_t k = 0;
	long rc = 0;
	for (; k < n; k++)
		if ((rc = atkv_ws_read(r, f, k, &ev, &err)) != 0)
			break;
	tap_ok(k == n, "ws read %s: each of the %zu prefixes is incomplete (prefix %zu gave %ld)", what, n, k, rc);
	memset(&ev, 0, sizeof(ev));
	rc = atkv_ws_read(r, f, n, &ev, &err);
	tap_ok(rc == (long)n && ev.kind == kind, "ws read %s: the whole frame is one event", what);
}

static void test_read_prefixes(void)
{
	struct atkv_ws_reader r;
	reader_init(&r, 1 << 20);
	size_t big = 70000;
	uint8_t *p = calloc(1, big), *f = malloc(big + 16);
	if (!p || !f) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
	size_t n = sframe(f, FIN | ATKV_WS_OP_BINARY, FORM_AUTO, "hello", 5);
	check_prefixes(&r, f, n, ATKV_WS_MESSAGE, "7-bit length");
	n = sframe(f, FIN | ATKV_WS_OP_BINARY, FORM_AUTO, p, 300);
	check_prefixes(&r, f, n, ATKV_WS_MESSAGE, "16-bit length");
	n = sframe(f, FIN | ATKV_WS_OP_BINARY, FORM_AUTO, p, big);
	check_prefixes(&r, f, n, ATKV_WS_MESSAGE, "64-bit length");
	n = sframe(f, FIN | ATKV_WS_OP_PING, FORM_AUTO, p, 125);
	check_prefixes(&r, f, n, ATKV_WS_PING, "ping");
	n = sframe(f, FIN | ATKV_WS_OP_CLOSE, FORM_AUTO, "\x03\xe8", 2);
	check_prefixes(&r, f, n, ATKV_WS_CLOSE, "close");
	/* A first fragment: the incomplete reads must not start the message. */
	n = sframe(f, ATKV_WS_OP_BINARY, FORM_AUTO, "abc", 3);
	check_prefixes(&r, f, n, ATKV_WS_NONE, "first fragment");
	tap_ok(r.fragmented && r.message.len == 3, "ws read: the first fragment was taken once");
	free(p);
	free(f);
	atkv_ws_reader_free(&r);
}

static void test_read_sequence(void)
{
	struct atkv_ws_reader r;
	struct atkv_ws_event ev;
	struct atkv_err err = {0, 0, NULL};
	uint8_t in[256];
	reader_init(&r, 1 << 20);

	/* Two frames in one read, taken one at a time. */
	size_t a = sframe(in, FIN | ATKV_WS_OP_BINARY, FORM_AUTO, "first", 5);
	size_t b = sframe(in + a, FIN | ATKV_WS_OP_TEXT, FORM_AUTO, "second!", 7);
	memset(&ev, 0, sizeof(ev));
	long rc = atkv_ws_read(&r, in, a + b, &ev, &err);
	tap_ok(rc == (long)a && ev.kind == ATKV_WS_MESSAGE && ev.data == in + 2 && same(ev.data, ev.len, "first"),
	       "ws read back to back: the first frame only");
	memset(&ev, 0, sizeof(ev));
	rc = atkv_ws_read(&r, in + a, a + b - (size_t)rc, &ev, &err);
	tap_ok(rc == (long)b && ev.kind == ATKV_WS_MESSAGE && ev.data == in + a + 2 && same(ev.data, ev.len, "second!"),
	       "ws read back to back: then the second");

	/* A message in three fragments with a ping between the first two. */
	size_t off = 0, f1, f2, f3, f4;
	f1 = sframe(in + off, ATKV_WS_OP_TEXT, FORM_AUTO, "Hel", 3);
	off += f1;
	f2 = sframe(in + off, FIN | ATKV_WS_OP_PING, FORM_AUTO, "p!", 2);
	off += f2;
	f3 = sframe(in + off, ATKV_WS_OP_CONTINUATION, FORM_AUTO, "lo, ", 4);
	off += f3;
	f4 = sframe(in + off, FIN | ATKV_WS_OP_CONTINUATION, FORM_AUTO, "world", 5);
	off += f4;
	size_t total = off;
	off = 0;

	memset(&ev, 0, sizeof(ev));
	rc = atkv_ws_read(&r, in, total, &ev, &err);
	tap_ok(rc == (long)f1 && ev.kind == ATKV_WS_NONE && r.fragmented && same(ev.data, ev.len, "Hel"),
	       "ws read fragments: the first is no message yet");
	off += (size_t)rc;
	memset(&ev, 0, sizeof(ev));
	rc = atkv_ws_read(&r, in + off, total - off, &ev, &err);
	tap_ok(rc == (long)f2 && ev.kind == ATKV_WS_PING && ev.data == in + off + 2 && same(ev.data, ev.len, "p!"),
	       "ws read fragments: the ping between them is delivered");
	tap_ok(r.fragmented && r.message.len == 3, "ws read fragments: the ping leaves the message alone");
	off += (size_t)rc;
	memset(&ev, 0, sizeof(ev));
	rc = atkv_ws_read(&r, in + off, total - off, &ev, &err);
	tap_ok(rc == (long)f3 && ev.kind == ATKV_WS_NONE && same(ev.data, ev.len, "Hello, "),
	       "ws read fragments: the second is no message yet");
	off += (size_t)rc;
	memset(&ev, 0, sizeof(ev));
	rc = atkv_ws_read(&r, in + off, total - off, &ev, &err);
	tap_ok(rc == (long)f4 && ev.kind == ATKV_WS_MESSAGE && ev.data == (const uint8_t *)r.message.data &&
	       same(ev.data, ev.len, "Hello, world"),
	       "ws read fragments: the last gives the whole message from the reader's buffer");
	tap_ok(!r.fragmented && r.message.len == 0, "ws read fragments: the reader is ready for the next message");
	off += (size_t)rc;
	tap_eq((long long)off, (long long)total, "ws read fragments: all bytes used");

	/* The next fragmented message does not see the last one's bytes. */
	a = sframe(in, ATKV_WS_OP_BINARY, FORM_AUTO, "ab", 2);
	b = sframe(in + a, FIN | ATKV_WS_OP_CONTINUATION, FORM_AUTO, "cd", 2);
	rc = atkv_ws_read(&r, in, a + b, &ev, &err);
	long rc2 = rc > 0 ? atkv_ws_read(&r, in + a, b, &ev, &err) : rc;
	tap_ok(rc == (long)a && rc2 == (long)b && ev.kind == ATKV_WS_MESSAGE && same(ev.data, ev.len, "abcd"),
	       "ws read fragments: a second fragmented message starts empty");

	/* Close with a code and a reason, and without either. */
	a = sframe(in, FIN | ATKV_WS_OP_CLOSE, FORM_AUTO, "\x03\xe8" "bye", 5);
	memset(&ev, 0, sizeof(ev));
	rc = atkv_ws_read(&r, in, a, &ev, &err);
	tap_ok(rc == 7 && ev.kind == ATKV_WS_CLOSE && ev.data == in + 2 && ev.len == 5,
	       "ws read close: code and reason in place");
	char reason[64];
	atkv_ws_close_reason(ev.data, ev.len, reason, sizeof(reason));
	tap_ok(strcmp(reason, "code 1000: bye") == 0, "ws close reason \"%s\"", reason);
	atkv_ws_close_reason((const uint8_t *)"\x03\xe9", 2, reason, sizeof(reason));
	tap_ok(strcmp(reason, "code 1001") == 0, "ws close reason without text \"%s\"", reason);
	atkv_ws_close_reason(NULL, 0, reason, sizeof(reason));
	tap_ok(strcmp(reason, "no close code") == 0, "ws close reason of an empty payload \"%s\"", reason);
	atkv_ws_close_reason((const uint8_t *)"\x0f\xa0o\nk\x80", 6, reason, sizeof(reason));
	tap_ok(strcmp(reason, "code 4000: o?k?") == 0, "ws close reason, unprintable bytes replaced \"%s\"", reason);
	atkv_ws_close_reason((const uint8_t *)"\x03\xe8" "goodbye", 9, reason, 8);
	tap_ok(strcmp(reason, "code 10") == 0, "ws close reason cut to its buffer \"%s\"", reason);
	a = sframe(in, FIN | ATKV_WS_OP_CLOSE, FORM_AUTO, NULL, 0);
	memset(&ev, 0, sizeof(ev));
	rc = atkv_ws_read(&r, in, a, &ev, &err);
	tap_ok(rc == 2 && ev.kind == ATKV_WS_CLOSE && ev.len == 0, "ws read close: empty payload");

	a = sframe(in, FIN | ATKV_WS_OP_PONG, FORM_AUTO, "ok", 2);
	memset(&ev, 0, sizeof(ev));
	rc = atkv_ws_read(&r, in, a, &ev, &err);
	tap_ok(rc == 4 && ev.kind == ATKV_WS_PONG && ev.data == in + 2 && same(ev.data, ev.len, "ok"), "ws read pong");
	atkv_ws_reader_free(&r);
}

/* Reads frame f[0..n) into a reader in the given state and checks it fails with code. */
static void expect_error(struct atkv_ws_reader *r, const uint8_t *f, size_t n, int code, const char *what)
{
	struct atkv_ws_event ev;
	struct atkv_err err = {0, 0, NULL};
	long rc = atkv_ws_read(r, f, n, &ev, &err);
	tap_ok(rc == code && err.code == code && err.where != NULL, "ws read rejects %s (rc %ld, err %d %s)", what,
	       rc, err.code, err.where ? err.where : "-");
}

static void test_read_errors(void)
{
	struct atkv_ws_reader r;
	struct atkv_ws_event ev;
	struct atkv_err err = {0, 0, NULL};
	uint8_t in[512];
	size_t n;
	reader_init(&r, 1 << 20);

	static const struct {
		const char *what;
		const char *hex;
	} bad[] = {
		{"RSV1", "c2 01 61"},
		{"RSV2", "a2 01 61"},
		{"RSV3", "92 01 61"},
		{"RSV1 from a 2-byte header, payload not there", "c2 05"},
		{"a masked server frame", "82 81 01 02 03 04 60"},
		{"a masked server frame from its 2-byte header", "82 85"},
		{"opcode 3", "83 00"},
		{"opcode 7", "87 00"},
		{"opcode 0xB", "8b 00"},
		{"opcode 0xF", "8f 00"},
		{"a ping of 126 bytes in the 16-bit form", "89 7e 00 7e"},
		{"a control frame with the 64-bit form and 126 bytes", "8a 7f 00 00 00 00 00 00 00 7e"},
		{"a ping without FIN", "09 00"},
		{"a close without FIN", "08 02 03 e8"},
		{"a close with a 1-byte payload", "88 01 03"},
		{"a continuation with no message", "80 01 61"},
		{"an unfinished continuation with no message", "00 01 61"},
		{"a 64-bit length with the top bit set", "82 7f 80 00 00 00 00 00 00 05"},
		{"a 64-bit length of all ones", "82 7f ff ff ff ff ff ff ff ff"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t *f = tap_hex(bad[i].hex, &n);
		atkv_ws_reader_reset(&r, 1 << 20);
		expect_error(&r, f, n, ATKV_E_WEBSOCKET, bad[i].what);
		free(f);
	}

	/* A 126-length control frame is refused once its extended length is there, not before. */
	atkv_ws_reader_reset(&r, 1 << 20);
	tap_eq(atkv_ws_read(&r, (const uint8_t *)"\x89\x7e\x00", 3, &ev, &err), 0,
	       "ws read: a ping's 16-bit length not yet complete is incomplete");

	/* A new message before the fragmented one ended. */
	atkv_ws_reader_reset(&r, 1 << 20);
	n = sframe(in, ATKV_WS_OP_TEXT, FORM_AUTO, "a", 1);
	tap_eq(atkv_ws_read(&r, in, n, &ev, &err), (long)n, "ws read: a first fragment");
	n = sframe(in, FIN | ATKV_WS_OP_BINARY, FORM_AUTO, "b", 1);
	expect_error(&r, in, n, ATKV_E_WEBSOCKET, "a new binary frame inside a fragmented message");
	n = sframe(in, ATKV_WS_OP_TEXT, FORM_AUTO, "b", 1);
	expect_error(&r, in, n, ATKV_E_WEBSOCKET, "a new first fragment inside a fragmented message");

	/* Too long for max_message, known from the header alone. */
	atkv_ws_reader_reset(&r, 1000);
	expect_error(&r, (const uint8_t *)"\x82\x7e\x03\xe9", 4, ATKV_E_TOO_LARGE,
	             "a 1001-byte message over a 1000-byte limit from its header alone");
	atkv_ws_reader_reset(&r, 1000);
	tap_eq(atkv_ws_read(&r, (const uint8_t *)"\x82\x7e\x03\xe8", 4, &ev, &err), 0,
	       "ws read: a 1000-byte message under a 1000-byte limit waits for its payload");
	expect_error(&r, (const uint8_t *)"\x82\x7f\x00\x00\x01\x00\x00\x00\x00\x00", 10, ATKV_E_TOO_LARGE,
	             "a 1 TiB message from its header alone");
	atkv_ws_reader_reset(&r, 5);
	expect_error(&r, (const uint8_t *)"\x81\x06", 2, ATKV_E_TOO_LARGE,
	             "a 6-byte text over a 5-byte limit from its 2-byte header");
	/* Control frames are bounded by their own 125 bytes, not by max_message. */
	n = sframe(in, FIN | ATKV_WS_OP_PING, FORM_AUTO, "1234567890", 10);
	memset(&ev, 0, sizeof(ev));
	tap_ok(atkv_ws_read(&r, in, n, &ev, &err) == (long)n && ev.kind == ATKV_WS_PING && ev.len == 10,
	       "ws read: a 10-byte ping under a 5-byte message limit");

	/* A fragmented message whose sum goes over max_message. */
	atkv_ws_reader_reset(&r, 10);
	n = sframe(in, ATKV_WS_OP_BINARY, FORM_AUTO, "abcdef", 6);
	tap_eq(atkv_ws_read(&r, in, n, &ev, &err), (long)n, "ws read: a 6-byte first fragment under a 10-byte limit");
	expect_error(&r, (const uint8_t *)"\x80\x05", 2, ATKV_E_TOO_LARGE,
	             "a 5-byte last fragment over the 10-byte limit, from its header");
	n = sframe(in, ATKV_WS_OP_CONTINUATION, FORM_AUTO, "ghijk", 5);
	expect_error(&r, in, n, ATKV_E_TOO_LARGE, "a 5-byte middle fragment over the 10-byte limit");
	n = sframe(in, FIN | ATKV_WS_OP_CONTINUATION, FORM_AUTO, "ghij", 4);
	memset(&ev, 0, sizeof(ev));
	tap_ok(atkv_ws_read(&r, in, n, &ev, &err) == (long)n && ev.kind == ATKV_WS_MESSAGE &&
	       same(ev.data, ev.len, "abcdefghij"),
	       "ws read: fragments summing to exactly the limit make a message");

	/* After an error mid-message, a reset gives a usable reader. */
	atkv_ws_reader_reset(&r, 1 << 20);
	n = sframe(in, ATKV_WS_OP_BINARY, FORM_AUTO, "stale", 5);
	atkv_ws_read(&r, in, n, &ev, &err);
	expect_error(&r, (const uint8_t *)"\xc0\x00", 2, ATKV_E_WEBSOCKET, "RSV1 inside a fragmented message");
	atkv_ws_reader_reset(&r, 1 << 20);
	tap_ok(!r.fragmented && r.message.len == 0 && r.max_message == 1 << 20, "ws reader reset: state cleared");
	n = sframe(in, FIN | ATKV_WS_OP_CONTINUATION, FORM_AUTO, "x", 1);
	expect_error(&r, in, n, ATKV_E_WEBSOCKET, "a continuation after a reset");
	n = sframe(in, FIN | ATKV_WS_OP_BINARY, FORM_AUTO, "fresh", 5);
	memset(&ev, 0, sizeof(ev));
	tap_ok(atkv_ws_read(&r, in, n, &ev, &err) == (long)n && ev.kind == ATKV_WS_MESSAGE && ev.data == in + 2 &&
	       same(ev.data, ev.len, "fresh"),
	       "ws reader reset: a whole message reads after the error");
	n = sframe(in, ATKV_WS_OP_BINARY, FORM_AUTO, "ne", 2);
	size_t m = sframe(in + n, FIN | ATKV_WS_OP_CONTINUATION, FORM_AUTO, "w", 1);
	long rc = atkv_ws_read(&r, in, n + m, &ev, &err);
	long rc2 = rc == (long)n ? atkv_ws_read(&r, in + n, m, &ev, &err) : rc;
	tap_ok(rc2 == (long)m && ev.kind == ATKV_WS_MESSAGE && same(ev.data, ev.len, "new"),
	       "ws reader reset: a fragmented message after the error holds none of the old bytes");

	/* After a message, a reset to another limit takes effect. */
	atkv_ws_reader_reset(&r, 3);
	expect_error(&r, (const uint8_t *)"\x82\x04", 2, ATKV_E_TOO_LARGE, "a 4-byte message after a reset to 3");
	atkv_ws_reader_free(&r);
	/* A freed reader can be reset and used again. */
	atkv_ws_reader_reset(&r, 16);
	n = sframe(in, ATKV_WS_OP_BINARY, FORM_AUTO, "re", 2);
	m = sframe(in + n, FIN | ATKV_WS_OP_CONTINUATION, FORM_AUTO, "use", 3);
	rc = atkv_ws_read(&r, in, n + m, &ev, &err);
	rc2 = rc == (long)n ? atkv_ws_read(&r, in + n, m, &ev, &err) : rc;
	tap_ok(rc2 == (long)m && ev.kind == ATKV_WS_MESSAGE && same(ev.data, ev.len, "reuse"),
	       "ws reader: usable again after free and reset");
	atkv_ws_reader_free(&r);
}

int main(void)
{
	test_key();
	test_check_response();
	test_request();
	test_response_end();
	test_frame();
	test_read_single();
	test_read_prefixes();
	test_read_sequence();
	test_read_errors();
	return tap_done();
}
