/* fuzz-websocket.c — libFuzzer target: the WebSocket client side (websocket.c) on hostile bytes.
 * The input is read as what a relay sends: a handshake response head (checked against the RFC
 * 6455 example key) and the server frames after it, and, separately, as frames from its first
 * byte. Every event must lie inside the input or the reader's buffer. Last, the input is sent
 * through the client frame writer and, unmasked, read back: it must come out unchanged. */
#include "websocket.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MESSAGE (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool cond)
{
	if (!cond)
		abort();
}

/* Reads frames from p[0..n) until one is incomplete or wrong. */
static void read_frames(struct atkv_ws_reader *r, const uint8_t *p, size_t n)
{
	atkv_ws_reader_reset(r, MAX_MESSAGE);
	size_t off = 0;
	volatile uint8_t sink = 0;
	for (;;) {
		struct atkv_ws_event ev;
		struct atkv_err err = {0, 0, NULL};
		long used = atkv_ws_read(r, p + off, n - off, &ev, &err);
		if (used < 0) {
			check(err.code == used && err.where);
			check(used == ATKV_E_WEBSOCKET || used == ATKV_E_TOO_LARGE || used == ATKV_E_NOMEM);
			break;
		}
		if (used == 0)
			break;
		check((size_t)used <= n - off);
		bool in_input = ev.len == 0 || (ev.data >= p + off && ev.data + ev.len <= p + off + (size_t)used);
		switch (ev.kind) {
		case ATKV_WS_PING:
		case ATKV_WS_PONG:
		case ATKV_WS_CLOSE:
			check(ev.len <= ATKV_WS_MAX_CONTROL && in_input);
			break;
		case ATKV_WS_MESSAGE:
		case ATKV_WS_NONE:
			check(ev.len <= MAX_MESSAGE);
			check(in_input || (ev.data == (const uint8_t *)r->message.data && ev.len <= r->message.cap));
			break;
		default:
			check(false);
		}
		/* Touch every byte of the event, so that a wrong pointer shows under ASan. */
		for (size_t i = 0; i < ev.len; i++)
			sink ^= ev.data[i];
		if (ev.kind == ATKV_WS_CLOSE) {
			char reason[64];
			atkv_ws_close_reason(ev.data, ev.len, reason, sizeof(reason));
			check(strlen(reason) < sizeof(reason));
		}
		off += (size_t)used;
	}
	(void)sink;
}

/* The writer's frame of p[0..n), unmasked into a server frame, must read back as p. */
static void round_trip(struct atkv_ws_reader *r, const uint8_t *p, size_t n)
{
	uint8_t mask[4] = {0x5a, 0xa5, 0x0f, 0xf0};
	if (n >= 4)
		memcpy(mask, p, 4);
	uint8_t *f = malloc(ATKV_WS_MAX_HEADER + n);
	check(f != NULL);
	size_t len = atkv_ws_frame(f, ATKV_WS_OP_BINARY, p, n, mask);
	check(len >= 6 + n && len <= ATKV_WS_MAX_HEADER + n);
	size_t h = len - n - 4;
	check(f[0] == 0x82 && (f[1] & 0x80) && !memcmp(f + h, mask, 4));
	f[1] &= 0x7f;
	for (size_t i = 0; i < n; i++)
		f[h + i] = f[h + 4 + i] ^ mask[i & 3];
	atkv_ws_reader_reset(r, n);
	struct atkv_ws_event ev;
	check(atkv_ws_read(r, f, h + n, &ev, NULL) == (long)(h + n));
	check(ev.kind == ATKV_WS_MESSAGE && ev.len == n && ev.data == f + h && (n == 0 || !memcmp(ev.data, p, n)));
	free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct atkv_ws_reader r;

	long end = atkv_ws_response_end(data, size);
	check(end == 0 || end == ATKV_E_TOO_LARGE || (end >= 4 && (size_t)end <= size && end <= ATKV_WS_MAX_RESPONSE &&
	                                               !memcmp(data + end - 4, "\r\n\r\n", 4)));
	if (end > 0) {
		char why[128];
		why[0] = '\0';
		int rc = atkv_ws_check_response((const char *)data, (size_t)end, "dGhlIHNhbXBsZSBub25jZQ==", why,
		                                sizeof(why));
		check(rc == 0 || (rc == ATKV_E_WEBSOCKET && why[0] && strlen(why) < sizeof(why)));
		read_frames(&r, data + end, size - (size_t)end);
	}
	read_frames(&r, data, size);
	if (size <= MAX_MESSAGE)
		round_trip(&r, data, size);
	atkv_ws_reader_free(&r);
	return 0;
}
