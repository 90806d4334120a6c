/* cborscan.c — the DAG-CBOR tokenizer (see cborscan.h). libcbor's streaming decoder reads each item
 * header; the initial byte is classified here first so that everything DAG-CBOR forbids gets
 * its own error code instead of libcbor's generic one. */
#include "cborscan.h"
#include "cid.h"
#include "utf8.h"

#include <cbor.h>

/* What one cbor_stream_decode call reported, filled by the callbacks below. */
struct token {
	enum atkv_cbor_kind kind;
	bool negative;
	uint64_t u;          /* integer magnitude, collection size or tag number */
	const uint8_t *p;
	size_t n;
	bool tag;
};

static void on_uint8(void *c, uint8_t v) { ((struct token *)c)->u = v; }
static void on_uint16(void *c, uint16_t v) { ((struct token *)c)->u = v; }
static void on_uint32(void *c, uint32_t v) { ((struct token *)c)->u = v; }
static void on_uint64(void *c, uint64_t v) { ((struct token *)c)->u = v; }

static void on_neg8(void *c, uint8_t v) { ((struct token *)c)->u = v; ((struct token *)c)->negative = true; }
static void on_neg16(void *c, uint16_t v) { ((struct token *)c)->u = v; ((struct token *)c)->negative = true; }
static void on_neg32(void *c, uint32_t v) { ((struct token *)c)->u = v; ((struct token *)c)->negative = true; }
static void on_neg64(void *c, uint64_t v) { ((struct token *)c)->u = v; ((struct token *)c)->negative = true; }

static void on_bytes(void *c, cbor_data p, size_t n)
{
	struct token *t = c;
	t->kind = ATKV_CBOR_BYTES;
	t->p = p;
	t->n = (size_t)n;
}

static void on_text(void *c, cbor_data p, size_t n)
{
	struct token *t = c;
	t->kind = ATKV_CBOR_TEXT;
	t->p = p;
	t->n = (size_t)n;
}

static void on_array(void *c, size_t n)
{
	struct token *t = c;
	t->kind = ATKV_CBOR_ARRAY;
	t->u = n;
}

static void on_map(void *c, size_t n)
{
	struct token *t = c;
	t->kind = ATKV_CBOR_MAP;
	t->u = n;
}

static void on_tag(void *c, uint64_t v)
{
	struct token *t = c;
	t->tag = true;
	t->u = v;
}

static void on_null(void *c) { ((struct token *)c)->kind = ATKV_CBOR_NULL; }

static void on_bool(void *c, bool v)
{
	struct token *t = c;
	t->kind = ATKV_CBOR_BOOL;
	t->u = v;
}

/* Everything the classification in next_token lets through reaches one of the callbacks above;
 * the rest stay libcbor's no-ops. */
static const struct cbor_callbacks callbacks = {
	.uint8 = on_uint8, .uint16 = on_uint16, .uint32 = on_uint32, .uint64 = on_uint64,
	.negint8 = on_neg8, .negint16 = on_neg16, .negint32 = on_neg32, .negint64 = on_neg64,
	.byte_string = on_bytes, .string = on_text,
	.array_start = on_array, .map_start = on_map,
	.tag = on_tag, .null = on_null, .boolean = on_bool,
	.byte_string_start = cbor_null_byte_string_start_callback,
	.string_start = cbor_null_string_start_callback,
	.indef_array_start = cbor_null_indef_array_start_callback,
	.indef_map_start = cbor_null_indef_map_start_callback,
	.float2 = cbor_null_float2_callback, .float4 = cbor_null_float4_callback,
	.float8 = cbor_null_float8_callback, .undefined = cbor_null_undefined_callback,
	.indef_break = cbor_null_indef_break_callback,
};

/* Bytes the shortest encoding of an item header with argument v takes. */
static size_t minimal_header(uint64_t v)
{
	if (v < 24)
		return 1;
	if (v <= 0xff)
		return 2;
	if (v <= 0xffff)
		return 3;
	if (v <= 0xffffffffu)
		return 5;
	return 9;
}

/* Rejects, by its initial byte, what DAG-CBOR forbids; returns 0 for what it allows. */
static int classify(uint8_t ib)
{
	unsigned major = ib >> 5, info = ib & 31;
	if (major == 7) {
		if (ib == 0xf4 || ib == 0xf5 || ib == 0xf6)
			return 0;
		if (ib == 0xf9 || ib == 0xfa || ib == 0xfb)
			return ATKV_E_CBOR_FLOAT;
		if (ib == 0xff)
			return ATKV_E_CBOR_INDEFINITE;
		if (ib >= 0xfc)
			return ATKV_E_CBOR_MALFORMED;
		return ATKV_E_CBOR_SIMPLE;
	}
	if (info >= 28 && info <= 30)
		return ATKV_E_CBOR_MALFORMED;
	/* Tags 0-23 sit in the initial byte and none is 42 (libcbor rejects some of them itself). */
	if (major == 6 && info < 24)
		return ATKV_E_CBOR_TAG;
	if (info == 31)
		return major >= 2 && major <= 5 ? ATKV_E_CBOR_INDEFINITE : ATKV_E_CBOR_MALFORMED;
	return 0;
}

/* One item header (and its content, for strings) at r->off into *t; *len gets its size. */
static int next_token(struct atkv_cbor *r, struct token *t, size_t *len, struct atkv_err *err)
{
	size_t off = r->off;
	if (off >= r->n)
		return atkv_fail(err, ATKV_E_TRUNCATED, off, "cbor item");
	int rc = classify(r->p[off]);
	if (rc)
		return atkv_fail(err, rc, off, "cbor item");
	*t = (struct token){.kind = ATKV_CBOR_INT};
	struct cbor_decoder_result res = cbor_stream_decode(r->p + off, r->n - off, &callbacks, t);
	if (res.status == CBOR_DECODER_NEDATA)
		return atkv_fail(err, ATKV_E_TRUNCATED, off, "cbor item");
	if (res.status != CBOR_DECODER_FINISHED || res.read > r->n - off)
		return atkv_fail(err, ATKV_E_CBOR_MALFORMED, off, "cbor item");
	size_t header = res.read;
	uint64_t arg = t->u;
	if (t->kind == ATKV_CBOR_TEXT || t->kind == ATKV_CBOR_BYTES) {
		header -= t->n;
		arg = t->n;
	}
	if (header != minimal_header(arg))
		return atkv_fail(err, ATKV_E_CBOR_NONMINIMAL, off, "cbor item");
	*len = res.read;
	return 0;
}

int atkv_cbor_next(struct atkv_cbor *r, struct atkv_cbor_item *it, struct atkv_err *err)
{
	struct token t;
	size_t len, start = r->off;
	int rc = next_token(r, &t, &len, err);
	if (rc)
		return rc;
	size_t left = r->n - start - len;

	it->offset = start;
	it->kind = t.kind;
	if (t.tag) {
		if (t.u != 42)
			return atkv_fail(err, ATKV_E_CBOR_TAG, start, "cbor tag");
		/* A link: tag 42 over a byte string holding 0x00 (multibase identity) and a CID. */
		r->off += len;
		rc = next_token(r, &t, &len, err);
		if (rc) {
			r->off = start;
			return rc;
		}
		r->off = start;
		if (t.tag || t.kind != ATKV_CBOR_BYTES || t.n < 1 || t.p[0] != 0)
			return atkv_fail(err, ATKV_E_CID, start, "cbor link");
		size_t used;
		/* atproto links are CIDv1 (data model spec); CIDv0 is only for parsing elsewhere. */
		if (atkv_cid_parse(t.p + 1, t.n - 1, &it->cid, &used, NULL) || used != t.n - 1 ||
		    it->cid.version != 1)
			return atkv_fail(err, ATKV_E_CID, start, "cbor link");
		it->kind = ATKV_CBOR_LINK;
		it->p = t.p + 1;
		it->n = t.n - 1;
		r->off = (size_t)(t.p + t.n - r->p);
		return 0;
	}
	switch (t.kind) {
	case ATKV_CBOR_INT:
		if (t.u > INT64_MAX)
			return atkv_fail(err, ATKV_E_CBOR_INT_RANGE, start, "cbor integer");
		it->i = t.negative ? -1 - (int64_t)t.u : (int64_t)t.u;
		break;
	case ATKV_CBOR_TEXT:
		if (!atkv_utf8_valid(t.p, t.n))
			return atkv_fail(err, ATKV_E_UTF8, start, "cbor text");
		/* fall through */
	case ATKV_CBOR_BYTES:
		it->p = t.p;
		it->n = t.n;
		break;
	case ATKV_CBOR_ARRAY:
	case ATKV_CBOR_MAP:
		/* Every member takes at least one byte: the input ends before a count beyond the
		 * bytes left could be met, however large the claim. */
		if (t.u > left || (t.kind == ATKV_CBOR_MAP && t.u > left / 2))
			return atkv_fail(err, ATKV_E_TRUNCATED, start, "cbor collection");
		it->count = t.u;
		break;
	case ATKV_CBOR_BOOL:
		it->i = (int64_t)t.u;
		break;
	case ATKV_CBOR_NULL:
	case ATKV_CBOR_LINK:
		break;
	}
	r->off += len;
	return 0;
}

int atkv_cbor_skip(struct atkv_cbor *r, struct atkv_err *err)
{
	/* Values still to read at each open level; a flat count would do for skipping alone, but
	 * the depth limit needs the levels. */
	uint64_t left[ATKV_CBOR_MAX_DEPTH + 1];
	int depth = 0;
	left[0] = 1;
	for (;;) {
		while (left[depth] == 0) {
			if (depth == 0)
				return 0;
			depth--;
		}
		struct atkv_cbor_item it;
		int rc = atkv_cbor_next(r, &it, err);
		if (rc)
			return rc;
		left[depth]--;
		if (it.kind == ATKV_CBOR_ARRAY || it.kind == ATKV_CBOR_MAP) {
			if (depth == ATKV_CBOR_MAX_DEPTH)
				return atkv_fail(err, ATKV_E_CBOR_DEPTH, it.offset, "cbor collection");
			left[++depth] = it.kind == ATKV_CBOR_MAP ? it.count * 2 : it.count;
		}
	}
}

int atkv_cbor_put_head(struct atkv_buf *out, unsigned major, uint64_t v)
{
	uint8_t h[9];
	size_t n = 1;
	if (v < 24) {
		h[0] = (uint8_t)(major << 5 | v);
	} else {
		int bytes = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffu ? 4 : 8;
		h[0] = (uint8_t)(major << 5 | (bytes == 1 ? 24 : bytes == 2 ? 25 : bytes == 4 ? 26 : 27));
		for (int i = bytes; i > 0; i--)
			h[n++] = (uint8_t)(v >> (8 * (i - 1)));
	}
	return atkv_buf_append(out, h, n) ? ATKV_E_NOMEM : 0;
}
