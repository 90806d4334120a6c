/* websocket.h — the client side of RFC 6455 without any I/O: the opening handshake (the
 * request, and the check of the server's answer) and the frame format (server frames read in
 * place and reassembled into messages, masked client frames written). relay.c moves the bytes;
 * keeping the protocol here makes it testable and fuzzable on its own, and lets a whole frame
 * be handled at once rather than byte by byte. */
#ifndef ATKV_WEBSOCKET_H
#define ATKV_WEBSOCKET_H

#include "buf.h"
#include "err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ATKV_WS_KEY_SIZE 25          /* Sec-WebSocket-Key: base64 of 16 bytes, and a NUL */
#define ATKV_WS_MAX_HEADER 14        /* the longest frame header a client writes */
#define ATKV_WS_MAX_CONTROL 125      /* the longest control frame payload */
#define ATKV_WS_MAX_RESPONSE 16384   /* the longest handshake response head we wait for */

enum atkv_ws_opcode {
	ATKV_WS_OP_CONTINUATION = 0x0,
	ATKV_WS_OP_TEXT = 0x1,
	ATKV_WS_OP_BINARY = 0x2,
	ATKV_WS_OP_CLOSE = 0x8,
	ATKV_WS_OP_PING = 0x9,
	ATKV_WS_OP_PONG = 0xa,
};

/* Sec-WebSocket-Key for 16 random bytes. */
void atkv_ws_key(const uint8_t nonce[16], char key[ATKV_WS_KEY_SIZE]);

/* Writes the GET request that asks host (the Host header: "name" or "name:port") to upgrade
 * path to a WebSocket. Returns its length, or ATKV_E_BUFFER when cap is too small. */
long atkv_ws_request(char *out, size_t cap, const char *host, const char *path, const char *key,
                     const char *user_agent);

/* The length of the response head at p[0..n) through its blank line; 0 while it is incomplete,
 * ATKV_E_TOO_LARGE when ATKV_WS_MAX_RESPONSE bytes hold no blank line. */
long atkv_ws_response_end(const uint8_t *p, size_t n);

/* Checks a complete response head against the request's key: status 101, Upgrade: websocket,
 * Connection: upgrade, the right Sec-WebSocket-Accept, no extension or protocol we did not ask
 * for. Returns 0, or ATKV_E_WEBSOCKET with one line on what is wrong in why. */
int atkv_ws_check_response(const char *head, size_t n, const char *key, char *why, size_t why_n);

/* Writes a final, masked client frame of opcode with payload p[0..n) into out, which must have
 * room for ATKV_WS_MAX_HEADER + n bytes. Returns the frame's length. */
size_t atkv_ws_frame(uint8_t *out, enum atkv_ws_opcode opcode, const uint8_t *p, size_t n, const uint8_t mask[4]);

/* Reassembles server frames into messages. Embed one per connection; reset it when a
 * connection starts, free it once. */
struct atkv_ws_reader {
	struct atkv_buf message;    /* the fragments so far of an unfinished message */
	size_t max_message;         /* a longer message is an error, seen from its frame header */
	bool fragmented;            /* a message's first fragment came, its last not yet */
};

enum atkv_ws_kind {
	ATKV_WS_NONE,       /* a fragment that does not end its message */
	ATKV_WS_MESSAGE,    /* a whole text or binary message */
	ATKV_WS_PING,
	ATKV_WS_PONG,
	ATKV_WS_CLOSE,      /* data: the close payload (a 2-byte code, then a UTF-8 reason) */
};

struct atkv_ws_event {
	enum atkv_ws_kind kind;
	const uint8_t *data;    /* into the input or the reader's buffer, until the next call */
	size_t len;
};

void atkv_ws_reader_reset(struct atkv_ws_reader *r, size_t max_message);
void atkv_ws_reader_free(struct atkv_ws_reader *r);

/* Takes the next frame from p[0..n). Returns the bytes used, 0 when p does not yet hold a whole
 * frame, or a negative ATKV_E_* (ATKV_E_WEBSOCKET, ATKV_E_TOO_LARGE, ATKV_E_NOMEM) with err set;
 * a too-long message is refused from its header, before its payload arrives. */
long atkv_ws_read(struct atkv_ws_reader *r, const uint8_t *p, size_t n, struct atkv_ws_event *ev,
                  struct atkv_err *err);

/* "code N: reason" from a close payload, for logs. */
void atkv_ws_close_reason(const uint8_t *p, size_t n, char *out, size_t out_n);

#endif
