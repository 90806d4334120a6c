/* mstnode.c — MST node blocks decoded and encoded (see mstnode.h). */
#include "mstnode.h"
#include "cborscan.h"

#include <stdlib.h>
#include <string.h>

/* A link to a node or a record: a dag-cbor CID (with a sha2-256 digest, which the CAR checks). */
static int read_link(struct atkv_cbor *r, struct atkv_cid *out, bool *present, bool nullable, struct atkv_err *err)
{
	struct atkv_cbor_item it;
	int rc = atkv_cbor_next(r, &it, err);
	if (rc)
		return rc;
	if (nullable && it.kind == ATKV_CBOR_NULL) {
		*present = false;
		return 0;
	}
	if (it.kind != ATKV_CBOR_LINK || it.cid.codec != ATKV_CODEC_DAG_CBOR)
		return atkv_fail(err, ATKV_E_MST, it.offset, "mst link");
	*out = it.cid;
	*present = true;
	return 0;
}

/* Map keys in DAG-CBOR order: each key read is checked against the one before. */
static int read_key(struct atkv_cbor *r, struct atkv_cbor_item *key, const struct atkv_cbor_item *prev,
                    struct atkv_err *err)
{
	int rc = atkv_cbor_next(r, key, err);
	if (rc)
		return rc;
	if (key->kind != ATKV_CBOR_TEXT)
		return atkv_fail(err, ATKV_E_CBOR_KEY_TYPE, key->offset, "mst node");
	if (prev && atkv_cbor_key_cmp(prev->p, prev->n, key->p, key->n) >= 0)
		return atkv_fail(err, prev->n == key->n && !memcmp(prev->p, key->p, key->n) ? ATKV_E_CBOR_KEY_DUP
		                                                                           : ATKV_E_CBOR_KEY_ORDER,
		                 key->offset, "mst node");
	return 0;
}

static int parse_entry(struct atkv_cbor *r, struct atkv_mst_entry *e, struct atkv_err *err)
{
	struct atkv_cbor_item m, key, prev;
	int rc = atkv_cbor_next(r, &m, err);
	if (rc)
		return rc;
	if (m.kind != ATKV_CBOR_MAP)
		return atkv_fail(err, ATKV_E_MST, m.offset, "mst entry");
	bool has_k = false, has_p = false, has_v = false;
	for (uint64_t i = 0; i < m.count; i++) {
		if ((rc = read_key(r, &key, i ? &prev : NULL, err)))
			return rc;
		prev = key;
		struct atkv_cbor_item v;
		if (atkv_cbor_text_is(&key, "k") || atkv_cbor_text_is(&key, "p")) {
			if ((rc = atkv_cbor_next(r, &v, err)))
				return rc;
			if (key.p[0] == 'k' && v.kind == ATKV_CBOR_BYTES) {
				e->suffix = v.p;
				e->suffix_n = v.n;
				has_k = true;
			} else if (key.p[0] == 'p' && v.kind == ATKV_CBOR_INT && v.i >= 0) {
				e->prefix = (uint64_t)v.i;
				has_p = true;
			} else {
				return atkv_fail(err, ATKV_E_MST, v.offset, key.p[0] == 'k' ? "mst entry k" : "mst entry p");
			}
		} else if (atkv_cbor_text_is(&key, "t")) {
			if ((rc = read_link(r, &e->right, &e->has_right, true, err)))
				return rc;
		} else if (atkv_cbor_text_is(&key, "v")) {
			bool present;
			if ((rc = read_link(r, &e->value, &present, false, err)))
				return rc;
			has_v = true;
		} else {
			return atkv_fail(err, ATKV_E_MST, key.offset, "mst entry field");
		}
	}
	if (!has_k || !has_p || !has_v)
		return atkv_fail(err, ATKV_E_MST, m.offset, "mst entry without k, p or v");
	return 0;
}

int atkv_mst_node_parse(const uint8_t *p, size_t n, struct atkv_mst_node *nd, struct atkv_err *err)
{
	struct atkv_cbor r;
	struct atkv_cbor_item m, key, prev, arr;
	atkv_cbor_init(&r, p, n);
	memset(nd, 0, sizeof(*nd));
	int rc = atkv_cbor_next(&r, &m, err);
	if (rc)
		return rc;
	if (m.kind != ATKV_CBOR_MAP)
		return atkv_fail(err, ATKV_E_MST, m.offset, "mst node");
	bool has_e = false;
	for (uint64_t i = 0; i < m.count; i++) {
		if ((rc = read_key(&r, &key, i ? &prev : NULL, err)))
			return rc;
		prev = key;
		if (atkv_cbor_text_is(&key, "l")) {
			if ((rc = read_link(&r, &nd->left, &nd->has_left, true, err)))
				return rc;
		} else if (atkv_cbor_text_is(&key, "e")) {
			if ((rc = atkv_cbor_next(&r, &arr, err)))
				return rc;
			if (arr.kind != ATKV_CBOR_ARRAY)
				return atkv_fail(err, ATKV_E_MST, arr.offset, "mst node e");
			/* An entry takes 20 bytes at the least: a count the bytes left cannot hold is a
			 * lie, refused before it sizes an allocation. */
			if (arr.count > (n - r.off) / 20)
				return atkv_fail(err, ATKV_E_MST, arr.offset, "mst node e");
			nd->e = arr.count ? calloc(arr.count, sizeof(*nd->e)) : NULL;
			if (arr.count && !nd->e)
				return atkv_fail(err, ATKV_E_NOMEM, arr.offset, "mst node");
			nd->count = arr.count;
			for (size_t k = 0; k < nd->count; k++)
				if ((rc = parse_entry(&r, &nd->e[k], err)))
					return rc;
			has_e = true;
		} else {
			return atkv_fail(err, ATKV_E_MST, key.offset, "mst node field");
		}
	}
	if (!has_e)
		return atkv_fail(err, ATKV_E_MST, m.offset, "mst node without e");
	if (r.off != n)
		return atkv_fail(err, ATKV_E_TRAILING, r.off, "mst node");
	return 0;
}

int atkv_mst_node_key(const struct atkv_mst_node *nd, size_t i, uint8_t *key, size_t *n, struct atkv_err *err)
{
	const struct atkv_mst_entry *e = &nd->e[i];
	if ((i == 0 && e->prefix != 0) || e->prefix > *n)
		return atkv_fail(err, ATKV_E_MST, 0, "mst key prefix");
	if (e->suffix_n > ATKV_MST_KEY_MAX - e->prefix)
		return atkv_fail(err, ATKV_E_MST, 0, "mst key length");
	memcpy(key + e->prefix, e->suffix, e->suffix_n);
	*n = (size_t)e->prefix + e->suffix_n;
	if (*n == 0)
		return atkv_fail(err, ATKV_E_MST, 0, "mst empty key");
	return 0;
}

/* A one-letter text key: the node's and the entries' keys are all one letter. */
static int letter(struct atkv_buf *out, char c)
{
	uint8_t t[2] = {0x61, (uint8_t)c};
	return atkv_buf_append(out, t, 2);
}

/* A CID link (tag 42: a zero byte, then the binary CID), or null. */
static int link(struct atkv_buf *out, const uint8_t *cid, size_t n)
{
	if (!cid)
		return atkv_buf_append(out, "\xf6", 1);
	static const uint8_t zero = 0;
	return atkv_cbor_put_head(out, 6, 42) || atkv_cbor_put_head(out, 2, n + 1) || atkv_buf_append(out, &zero, 1) || atkv_buf_append(out, cid, n)
	           ? ATKV_E_NOMEM
	           : 0;
}

int atkv_mst_node_begin(struct atkv_buf *out, size_t entries)
{
	return atkv_cbor_put_head(out, 5, 2) || letter(out, 'e') || atkv_cbor_put_head(out, 4, entries) ? ATKV_E_NOMEM : 0;
}

int atkv_mst_node_entry(struct atkv_buf *out, const uint8_t *key, size_t key_n, const uint8_t *prev, size_t prev_n,
                        const uint8_t *value, size_t value_n, const uint8_t *right, size_t right_n)
{
	size_t p = 0;
	while (p < key_n && p < prev_n && key[p] == prev[p])
		p++;
	return atkv_cbor_put_head(out, 5, 4) || letter(out, 'k') || atkv_cbor_put_head(out, 2, key_n - p) || atkv_buf_append(out, key + p, key_n - p) ||
	               letter(out, 'p') || atkv_cbor_put_head(out, 0, p) || letter(out, 't') || link(out, right, right_n) ||
	               letter(out, 'v') || link(out, value, value_n)
	           ? ATKV_E_NOMEM
	           : 0;
}

int atkv_mst_node_end(struct atkv_buf *out, const uint8_t *left, size_t left_n)
{
	return letter(out, 'l') || link(out, left, left_n) ? ATKV_E_NOMEM : 0;
}
