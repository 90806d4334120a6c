/* commit.c — decoding a repository commit (see commit.h). */
#include "commit.h"
#include "cborscan.h"

#include <string.h>

/* The value of one field, checked against what version 3 says it holds. */
static int commit_field(struct atkv_cbor *r, const struct atkv_cbor_item *key, struct atkv_commit *c,
                        unsigned *seen, struct atkv_err *err)
{
	struct atkv_cbor_item v;
	int rc = atkv_cbor_next(r, &v, err);
	if (rc)
		return rc;
	if (atkv_cbor_text_is(key, "did")) {
		if (v.kind != ATKV_CBOR_TEXT)
			return atkv_fail(err, ATKV_E_FRAME, v.offset, "commit did");
		if (!atkv_syntax_did((const char *)v.p, v.n))
			return atkv_fail(err, ATKV_E_SYNTAX, v.offset, "commit did");
		c->did = (const char *)v.p;
		c->did_n = v.n;
		*seen |= 1;
	} else if (atkv_cbor_text_is(key, "version")) {
		if (v.kind != ATKV_CBOR_INT || v.i != 3)
			return atkv_fail(err, ATKV_E_FRAME, v.offset, "commit version (3 expected)");
		*seen |= 2;
	} else if (atkv_cbor_text_is(key, "data")) {
		if (v.kind != ATKV_CBOR_LINK || v.cid.codec != ATKV_CODEC_DAG_CBOR)
			return atkv_fail(err, ATKV_E_FRAME, v.offset, "commit data");
		c->data = v.cid;
		*seen |= 4;
	} else if (atkv_cbor_text_is(key, "rev")) {
		if (v.kind != ATKV_CBOR_TEXT)
			return atkv_fail(err, ATKV_E_FRAME, v.offset, "commit rev");
		if (!atkv_syntax_tid((const char *)v.p, v.n))
			return atkv_fail(err, ATKV_E_SYNTAX, v.offset, "commit rev");
		memcpy(c->rev, v.p, v.n);
		c->rev[v.n] = '\0';
		*seen |= 8;
	} else if (atkv_cbor_text_is(key, "prev")) {
		if (v.kind == ATKV_CBOR_LINK)
			c->prev = v.cid;
		else if (v.kind != ATKV_CBOR_NULL)
			return atkv_fail(err, ATKV_E_FRAME, v.offset, "commit prev");
		c->has_prev = v.kind == ATKV_CBOR_LINK;
		*seen |= 16;
	} else if (atkv_cbor_text_is(key, "sig")) {
		if (v.kind != ATKV_CBOR_BYTES)
			return atkv_fail(err, ATKV_E_FRAME, v.offset, "commit sig");
		c->sig = v.p;
		c->sig_n = v.n;
		*seen |= 32;
	} else {
		/* Not ours to read: step over it (v was only its header). */
		r->off = v.offset;
		return atkv_cbor_skip(r, err);
	}
	return 0;
}

int atkv_commit_parse(const uint8_t *p, size_t n, struct atkv_commit *c, struct atkv_err *err)
{
	struct atkv_cbor r;
	struct atkv_cbor_item m, key, prev = {0};
	memset(c, 0, sizeof(*c));
	atkv_cbor_init(&r, p, n);
	int rc = atkv_cbor_next(&r, &m, err);
	if (rc)
		return rc;
	if (m.kind != ATKV_CBOR_MAP)
		return atkv_fail(err, ATKV_E_FRAME, m.offset, "commit");
	unsigned seen = 0;
	c->entries_at = r.off;
	c->fields = m.count;
	for (uint64_t i = 0; i < m.count; i++) {
		size_t entry_at = r.off;
		if ((rc = atkv_cbor_next(&r, &key, err)))
			return rc;
		if (key.kind != ATKV_CBOR_TEXT)
			return atkv_fail(err, ATKV_E_CBOR_KEY_TYPE, key.offset, "commit");
		if (i && atkv_cbor_key_cmp(prev.p, prev.n, key.p, key.n) >= 0)
			return atkv_fail(err, ATKV_E_CBOR_KEY_ORDER, key.offset, "commit");
		prev = key;
		if ((rc = commit_field(&r, &key, c, &seen, err)))
			return rc;
		if (atkv_cbor_text_is(&key, "sig")) {
			c->sig_from = entry_at;
			c->sig_to = r.off;
		}
	}
	if (r.off != n)
		return atkv_fail(err, ATKV_E_TRAILING, r.off, "commit");
	static const char *const names[] = {"commit without did", "commit without version", "commit without data",
	                                    "commit without rev", "commit without prev", "commit without sig"};
	for (unsigned b = 0; b < 6; b++)
		if (!(seen & (1u << b)))
			return atkv_fail(err, ATKV_E_FRAME, m.offset, names[b]);
	return 0;
}

int atkv_commit_unsigned(const uint8_t *p, size_t n, const struct atkv_commit *c, struct atkv_buf *out)
{
	atkv_buf_reset(out);
	if (atkv_cbor_put_head(out, 5, c->fields - 1) || atkv_buf_append(out, p + c->entries_at, c->sig_from - c->entries_at) ||
	    atkv_buf_append(out, p + c->sig_to, n - c->sig_to))
		return ATKV_E_NOMEM;
	return 0;
}
