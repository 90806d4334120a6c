/* websocket.c — RFC 6455 client side without I/O (see websocket.h). */
#include "websocket.h"
#include "base64.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The GUID RFC 6455 section 1.3 appends to the key before hashing. */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void atkv_ws_key(const uint8_t nonce[16], char key[ATKV_WS_KEY_SIZE])
{
	/* The handshake wants padded base64; the atproto encoder writes none. */
	size_t n = atkv_base64_encode(nonce, 16, key);
	memcpy(key + n, "==", 3);
}

static void accept_value(const char *key, char out[32])
{
	char text[64];
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned md_n = 0;
	int n = snprintf(text, sizeof(text), "%s%s", key, ws_guid);
	EVP_Digest(text, (size_t)n, md, &md_n, EVP_sha1(), NULL);
	size_t m = atkv_base64_encode(md, md_n, out);
	/* 20 bytes encode to 27 characters and one '=' of padding. */
	memcpy(out + m, "=", 2);
}

long atkv_ws_request(char *out, size_t cap, const char *host, const char *path, const char *key,
                     const char *user_agent)
{
	int n = snprintf(out, cap,
	                 "GET %s HTTP/1.1\r\n"
	                 "Host: %s\r\n"
	                 "Upgrade: websocket\r\n"
	                 "Connection: Upgrade\r\n"
	                 "Sec-WebSocket-Key: %s\r\n"
	                 "Sec-WebSocket-Version: 13\r\n"
	                 "User-Agent: %s\r\n"
	                 "\r\n",
	                 path, host, key, user_agent);
	if (n < 0 || (size_t)n >= cap)
		return ATKV_E_BUFFER;
	return n;
}

long atkv_ws_response_end(const uint8_t *p, size_t n)
{
	size_t limit = n < ATKV_WS_MAX_RESPONSE ? n : ATKV_WS_MAX_RESPONSE;
	for (size_t i = 3; i < limit; i++)
		if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r')
			return (long)(i + 1);
	return n >= ATKV_WS_MAX_RESPONSE ? ATKV_E_TOO_LARGE : 0;
}

/* Copies s[0..n) into out for a log line, with anything unprintable as '?'. */
static void printable(const char *s, size_t n, char *out, size_t out_n)
{
	size_t i = 0;
	for (; i < n && i + 1 < out_n; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	out[i] = '\0';
}

/* Whether the comma-separated list v[0..n) holds token, ignoring case. */
static bool has_token(const char *v, size_t n, const char *token)
{
	size_t t = strlen(token), i = 0;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t start = i;
		while (i < n && v[i] != ',')
			i++;
		size_t end = i;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (end - start == t && !strncasecmp(v + start, token, t))
			return true;
	}
	return false;
}

static int fail(char *why, size_t why_n, const char *msg)
{
	snprintf(why, why_n, "%s", msg);
	return ATKV_E_WEBSOCKET;
}

int atkv_ws_check_response(const char *head, size_t n, const char *key, char *why, size_t why_n)
{
	const char *end = head + n, *line = head;
	const char *eol = memchr(line, '\n', n);
	if (strlen(key) != ATKV_WS_KEY_SIZE - 1)
		return fail(why, why_n, "the Sec-WebSocket-Key sent is not 24 characters");
	size_t status_n = eol ? (size_t)(eol - line) : 0;
	if (status_n > 0 && line[status_n - 1] == '\r')
		status_n--;
	/* "HTTP/1.x NNN", then a reason or nothing. */
	if (status_n < 12 || memcmp(head, "HTTP/1.", 7) || head[7] < '0' || head[7] > '9' || head[8] != ' ' ||
	    (status_n > 12 && head[12] != ' '))
		return fail(why, why_n, "the relay's answer is not HTTP");
	if (memcmp(head + 9, "101", 3)) {
		char status[128];
		printable(line, status_n, status, sizeof(status));
		snprintf(why, why_n, "the relay answered \"%s\" instead of switching to WebSocket", status);
		return ATKV_E_WEBSOCKET;
	}
	bool upgrade = false, connection = false, accepted = false;
	char expect[32];
	accept_value(key, expect);
	for (line = eol + 1; line < end; line = eol + 1) {
		eol = memchr(line, '\n', (size_t)(end - line));
		if (!eol)
			break;
		const char *colon = memchr(line, ':', (size_t)(eol - line));
		if (!colon)
			continue;
		size_t name_n = (size_t)(colon - line);
		const char *v = colon + 1, *v_end = eol;
		while (v < v_end && (*v == ' ' || *v == '\t'))
			v++;
		while (v_end > v && (v_end[-1] == '\r' || v_end[-1] == ' ' || v_end[-1] == '\t'))
			v_end--;
		size_t v_n = (size_t)(v_end - v);
#define NAME_IS(s) (name_n == sizeof(s) - 1 && !strncasecmp(line, s, name_n))
		if (NAME_IS("upgrade"))
			upgrade |= has_token(v, v_n, "websocket");
		else if (NAME_IS("connection"))
			connection |= has_token(v, v_n, "upgrade");
		else if (NAME_IS("sec-websocket-accept"))
			accepted = v_n == strlen(expect) && !memcmp(v, expect, v_n);
		else if (NAME_IS("sec-websocket-extensions") && v_n)
			return fail(why, why_n, "the relay enabled a WebSocket extension atkv did not offer");
		else if (NAME_IS("sec-websocket-protocol") && v_n)
			return fail(why, why_n, "the relay chose a WebSocket subprotocol atkv did not offer");
#undef NAME_IS
	}
	if (!upgrade)
		return fail(why, why_n, "the relay's 101 answer lacks \"Upgrade: websocket\"");
	if (!connection)
		return fail(why, why_n, "the relay's 101 answer lacks \"Connection: Upgrade\"");
	if (!accepted)
		return fail(why, why_n, "the relay's Sec-WebSocket-Accept does not match the key sent");
	return 0;
}

size_t atkv_ws_frame(uint8_t *out, enum atkv_ws_opcode opcode, const uint8_t *p, size_t n, const uint8_t mask[4])
{
	size_t h = 2;
	out[0] = (uint8_t)(0x80 | opcode);
	if (n < 126) {
		out[1] = (uint8_t)(0x80 | n);
	} else if (n <= 0xffff) {
		out[1] = 0x80 | 126;
		out[2] = (uint8_t)(n >> 8);
		out[3] = (uint8_t)n;
		h = 4;
	} else {
		out[1] = 0x80 | 127;
		for (int i = 0; i < 8; i++)
			out[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
		h = 10;
	}
	memcpy(out + h, mask, 4);
	h += 4;
	for (size_t i = 0; i < n; i++)
		out[h + i] = p[i] ^ mask[i & 3];
	return h + n;
}

void atkv_ws_reader_reset(struct atkv_ws_reader *r, size_t max_message)
{
	atkv_buf_reset(&r->message);
	r->max_message = max_message;
	r->fragmented = false;
}

void atkv_ws_reader_free(struct atkv_ws_reader *r) { atkv_buf_free(&r->message); }

struct frame {
	bool fin;
	uint8_t opcode;
	size_t header;
	uint64_t length;
};

/* 1 with f filled, 0 when p holds less than the whole header, or a negative code. */
static int frame_header(const uint8_t *p, size_t n, struct frame *f, struct atkv_err *err)
{
	if (n < 2)
		return 0;
	f->fin = p[0] & 0x80;
	f->opcode = p[0] & 0x0f;
	/* No extension was negotiated, so no reserved bit may be set. */
	if (p[0] & 0x70)
		return atkv_fail(err, ATKV_E_WEBSOCKET, 0, "websocket frame reserved bits");
	if (p[1] & 0x80)
		return atkv_fail(err, ATKV_E_WEBSOCKET, 1, "websocket frame mask (a server must not mask)");
	switch (f->opcode) {
	case ATKV_WS_OP_CONTINUATION:
	case ATKV_WS_OP_TEXT:
	case ATKV_WS_OP_BINARY:
	case ATKV_WS_OP_CLOSE:
	case ATKV_WS_OP_PING:
	case ATKV_WS_OP_PONG:
		break;
	default:
		return atkv_fail(err, ATKV_E_WEBSOCKET, 0, "websocket frame opcode");
	}
	uint8_t len7 = p[1] & 0x7f;
	f->header = len7 == 127 ? 10 : len7 == 126 ? 4 : 2;
	if (n < f->header)
		return 0;
	if (len7 == 127) {
		f->length = 0;
		for (int i = 0; i < 8; i++)
			f->length = f->length << 8 | p[2 + i];
		if (f->length >> 63)
			return atkv_fail(err, ATKV_E_WEBSOCKET, 2, "websocket frame length");
	} else if (len7 == 126) {
		f->length = (uint64_t)p[2] << 8 | p[3];
	} else {
		f->length = len7;
	}
	if (f->opcode & 0x8) {
		if (!f->fin || f->length > ATKV_WS_MAX_CONTROL)
			return atkv_fail(err, ATKV_E_WEBSOCKET, 0, "websocket control frame (fragmented or over 125 bytes)");
		if (f->opcode == ATKV_WS_OP_CLOSE && f->length == 1)
			return atkv_fail(err, ATKV_E_WEBSOCKET, 2, "websocket close frame");
	}
	return 1;
}

long atkv_ws_read(struct atkv_ws_reader *r, const uint8_t *p, size_t n, struct atkv_ws_event *ev,
                  struct atkv_err *err)
{
	struct frame f = {false, 0, 0, 0};
	int rc = frame_header(p, n, &f, err);
	if (rc <= 0)
		return rc;
	bool control = f.opcode & 0x8;
	if (!control) {
		if ((f.opcode == ATKV_WS_OP_CONTINUATION) != r->fragmented)
			return atkv_fail(err, ATKV_E_WEBSOCKET, 0,
			                 r->fragmented ? "websocket frame (a new message before the last one ended)"
			                               : "websocket frame (a continuation with no message to continue)");
		/* Refused from the header: a relay cannot make us buffer what we will not accept. */
		if (f.length > r->max_message - r->message.len)
			return atkv_fail(err, ATKV_E_TOO_LARGE, 0, "websocket message");
	}
	if (n - f.header < f.length)
		return 0;
	const uint8_t *payload = p + f.header;
	size_t used = f.header + (size_t)f.length;
	ev->data = payload;
	ev->len = (size_t)f.length;
	switch (f.opcode) {
	case ATKV_WS_OP_CLOSE:
		ev->kind = ATKV_WS_CLOSE;
		return (long)used;
	case ATKV_WS_OP_PING:
		ev->kind = ATKV_WS_PING;
		return (long)used;
	case ATKV_WS_OP_PONG:
		ev->kind = ATKV_WS_PONG;
		return (long)used;
	default:
		break;
	}
	if (f.fin && !r->fragmented) {
		/* The common case: a message in one frame, handed over in place. */
		ev->kind = ATKV_WS_MESSAGE;
		return (long)used;
	}
	if (atkv_buf_append(&r->message, payload, ev->len))
		return atkv_fail(err, ATKV_E_NOMEM, 0, "websocket message");
	r->fragmented = !f.fin;
	ev->kind = f.fin ? ATKV_WS_MESSAGE : ATKV_WS_NONE;
	ev->data = (const uint8_t *)r->message.data;
	ev->len = r->message.len;
	if (f.fin)
		r->message.len = 0; /* the data stays valid until the next append */
	return (long)used;
}

void atkv_ws_close_reason(const uint8_t *p, size_t n, char *out, size_t out_n)
{
	char reason[ATKV_WS_MAX_CONTROL + 1];
	if (n < 2) {
		snprintf(out, out_n, "no close code");
		return;
	}
	printable((const char *)p + 2, n - 2, reason, sizeof(reason));
	snprintf(out, out_n, "code %u%s%s", (unsigned)(p[0] << 8 | p[1]), reason[0] ? ": " : "", reason);
}
