/* cbuild.c — the test-only CBOR writer (see cbuild.h). */
#include "cbuild.h"

#include <string.h>

void cb_raw(struct atkv_buf *b, const void *p, size_t n) { atkv_buf_append(b, p, n); }

void cb_head(struct atkv_buf *b, unsigned major, uint64_t v)
{
	uint8_t h[9];
	size_t n;
	h[0] = (uint8_t)(major << 5);
	if (v < 24) {
		h[0] |= (uint8_t)v;
		n = 1;
	} else if (v <= 0xff) {
		h[0] |= 24;
		h[1] = (uint8_t)v;
		n = 2;
	} else if (v <= 0xffff) {
		h[0] |= 25;
		h[1] = (uint8_t)(v >> 8);
		h[2] = (uint8_t)v;
		n = 3;
	} else if (v <= 0xffffffffu) {
		h[0] |= 26;
		for (int i = 0; i < 4; i++)
			h[1 + i] = (uint8_t)(v >> (24 - 8 * i));
		n = 5;
	} else {
		h[0] |= 27;
		for (int i = 0; i < 8; i++)
			h[1 + i] = (uint8_t)(v >> (56 - 8 * i));
		n = 9;
	}
	cb_raw(b, h, n);
}

void cb_uint(struct atkv_buf *b, uint64_t v) { cb_head(b, 0, v); }

void cb_int(struct atkv_buf *b, int64_t v)
{
	if (v >= 0)
		cb_head(b, 0, (uint64_t)v);
	else
		cb_head(b, 1, (uint64_t)(-1 - v));
}

void cb_text(struct atkv_buf *b, const char *s)
{
	cb_head(b, 3, strlen(s));
	cb_raw(b, s, strlen(s));
}

void cb_bytes(struct atkv_buf *b, const void *p, size_t n)
{
	cb_head(b, 2, n);
	cb_raw(b, p, n);
}

void cb_link(struct atkv_buf *b, const uint8_t *cid, size_t n)
{
	static const uint8_t zero = 0;
	cb_head(b, 6, 42);
	cb_head(b, 2, n + 1);
	cb_raw(b, &zero, 1);
	cb_raw(b, cid, n);
}

void cb_bool(struct atkv_buf *b, bool v) { cb_raw(b, v ? "\xf5" : "\xf4", 1); }
void cb_null(struct atkv_buf *b) { cb_raw(b, "\xf6", 1); }

void cb_varint(struct atkv_buf *b, uint64_t v)
{
	uint8_t out[10];
	size_t n = 0;
	do {
		out[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			out[n] |= 0x80;
		n++;
	} while (v);
	cb_raw(b, out, n);
}

void cb_nest(struct atkv_buf *b, size_t depth)
{
	for (size_t i = 0; i < depth; i++)
		cb_head(b, 4, 1);
	cb_uint(b, 0);
}

void cb_car_header(struct atkv_buf *b, const uint8_t *root, size_t root_n)
{
	struct atkv_buf h = ATKV_BUF_INIT;
	cb_head(&h, 5, 2);
	cb_text(&h, "roots");
	cb_head(&h, 4, 1);
	cb_link(&h, root, root_n);
	cb_text(&h, "version");
	cb_uint(&h, 1);
	cb_varint(b, h.len);
	cb_raw(b, h.data, h.len);
	atkv_buf_free(&h);
}

size_t cb_car_section(struct atkv_buf *b, const uint8_t *cid, size_t cid_n, const void *data, size_t n)
{
	cb_varint(b, cid_n + n);
	cb_raw(b, cid, cid_n);
	size_t at = b->len;
	cb_raw(b, data, n);
	return at;
}
