/* cborscan.h — a pull tokenizer for DAG-CBOR (IPLD DAG-CBOR spec, atproto data model): one item
 * header at a time, on top of libcbor's streaming decoder, with the rules atproto adds: shortest
 * encodings only, no indefinite lengths, no floats, no simple values besides true/false/null,
 * no tag but 42 (a CID link), signed 64-bit integers, valid UTF-8 text.
 * Map key order is checked by the callers that walk maps (atkv_cbor_key_cmp). */
#ifndef ATKV_CBOR_H
#define ATKV_CBOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"

#include "cid.h"
#include "err.h"

/* Deepest nesting of arrays and maps accepted. Records in the wild nest a handful of levels;
 * the limit bounds the decoder's stack, not the input. */
#define ATKV_CBOR_MAX_DEPTH 64

enum atkv_cbor_kind {
	ATKV_CBOR_INT,
	ATKV_CBOR_TEXT,
	ATKV_CBOR_BYTES,
	ATKV_CBOR_LINK,
	ATKV_CBOR_ARRAY,
	ATKV_CBOR_MAP,
	ATKV_CBOR_BOOL,
	ATKV_CBOR_NULL,
};

struct atkv_cbor_item {
	enum atkv_cbor_kind kind;
	int64_t i;           /* INT: the value; BOOL: 0 or 1 */
	uint64_t count;      /* ARRAY: elements; MAP: pairs (never more than the bytes left) */
	const uint8_t *p;    /* TEXT, BYTES: the content; LINK: the binary CID (no 0x00 prefix) */
	size_t n;
	struct atkv_cid cid; /* LINK: the CID, parsed (always version 1) */
	size_t offset;       /* where the item starts in the input */
};

/* A cursor over p[0..n). Initialise with atkv_cbor_init; no resources to free. */
struct atkv_cbor {
	const uint8_t *p;
	size_t n;
	size_t off;
};

static inline void atkv_cbor_init(struct atkv_cbor *r, const uint8_t *p, size_t n)
{
	r->p = p;
	r->n = n;
	r->off = 0;
}

/* Reads the next item header into *it and advances past it (past the content for TEXT, BYTES
 * and LINK; only past the header for ARRAY and MAP, whose members follow). Returns 0 or a
 * negative ATKV_E_* code with err->offset set to the start of the offending item. */
int atkv_cbor_next(struct atkv_cbor *r, struct atkv_cbor_item *it, struct atkv_err *err);

/* Skips one whole value (with everything nested in it). Same errors as atkv_cbor_next, plus
 * ATKV_E_CBOR_DEPTH. */
int atkv_cbor_skip(struct atkv_cbor *r, struct atkv_err *err);

/* Compares two map keys in DAG-CBOR canonical order (shorter first, then bytewise):
 * negative when a sorts before b, 0 when equal, positive after. */
static inline int atkv_cbor_key_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	if (an != bn)
		return an < bn ? -1 : 1;
	return memcmp(a, b, an);
}

/* True when the item is TEXT equal to s[0..n). */
static inline bool atkv_cbor_text_eq(const struct atkv_cbor_item *it, const char *s, size_t n)
{
	return it->kind == ATKV_CBOR_TEXT && it->n == n && memcmp(it->p, s, n) == 0;
}

/* True when the item is TEXT equal to the string literal lit. */
#define atkv_cbor_text_is(it, lit) atkv_cbor_text_eq((it), "" lit, sizeof(lit) - 1)

/* Appends the head of a CBOR item (major type 0-7, argument v) in its shortest form to out, as
 * DAG-CBOR wants it: the writers of commits and MST nodes share it. Returns 0 or ATKV_E_NOMEM. */
int atkv_cbor_put_head(struct atkv_buf *out, unsigned major, uint64_t v);

#endif
