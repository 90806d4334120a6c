/* buf.h — a growable byte buffer, reused across calls so the hot path does not allocate.
 * The owner embeds a struct atkv_buf, resets it per use, and frees it once. */
#ifndef ATKV_BUF_H
#define ATKV_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct atkv_buf {
	char *data;   /* NUL-terminated after every append when cap > 0 */
	size_t len;
	size_t cap;
};

#define ATKV_BUF_INIT {NULL, 0, 0}

/* Makes room for `more` bytes past len (plus a NUL). Returns 0 or ATKV_E_NOMEM / ATKV_E_TOO_LARGE;
 * on failure the buffer is unchanged. */
int atkv_buf_reserve(struct atkv_buf *b, size_t more);

/* Empties the buffer, keeping its memory. */
static inline void atkv_buf_reset(struct atkv_buf *b)
{
	b->len = 0;
	if (b->cap)
		b->data[0] = '\0';
}

/* Frees the memory; the buffer can be used again afterwards. Accepts a zeroed buffer. */
void atkv_buf_free(struct atkv_buf *b);

static inline int atkv_buf_append(struct atkv_buf *b, const void *p, size_t n)
{
	if (b->cap - b->len <= n) {
		int rc = atkv_buf_reserve(b, n);
		if (rc)
			return rc;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

static inline int atkv_buf_putc(struct atkv_buf *b, char c)
{
	if (b->cap - b->len <= 1) {
		int rc = atkv_buf_reserve(b, 1);
		if (rc)
			return rc;
	}
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
	return 0;
}

#define atkv_buf_puts(b, s) atkv_buf_append((b), (s), sizeof(s) - 1)

#endif
