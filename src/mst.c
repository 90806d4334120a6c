/* mst.c — walking a repository's MST out of a CAR (see mst.h). A node is decoded whole first
 * (its entries into an array that points into the block), its keys rebuilt from their prefix
 * compression and their layer checked; then its subtrees and entries are visited in order. */
#include "mst.h"
#include "cborscan.h"
#include "sha256.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* 256 leading zero bits at most, two per layer. */
#define MST_MAX_LAYER 128

struct entry {
	const uint8_t *suffix;   /* "k": the key's bytes after the shared prefix */
	size_t suffix_n;
	uint64_t prefix;         /* "p": bytes shared with the previous key of the node */
	struct atkv_cid value;   /* "v": the record */
	struct atkv_cid right;   /* "t": the subtree after this entry, when has_right */
	bool has_right;
};

struct node {
	struct atkv_cid left;    /* "l": the subtree before the first entry, when has_left */
	bool has_left;
	struct entry *e;
	size_t count;
};

struct walker {
	struct atkv_car *car;
	struct atkv_sha256 *h;
	atkv_mst_visit visit;
	void *arg;
	struct atkv_err *err;
	uint8_t last[ATKV_MST_KEY_MAX];  /* the key visited last: keys must strictly increase */
	size_t last_n;
	bool any;
};

int atkv_mst_layer(struct atkv_sha256 *h, const uint8_t *key, size_t n)
{
	uint8_t d[32];
	if (atkv_sha256(h, key, n, d))
		return ATKV_E_NOMEM;
	int zeros = 0;
	for (size_t i = 0; i < sizeof(d); i++) {
		if (d[i]) {
			zeros += __builtin_clz(d[i]) - 24;
			break;
		}
		zeros += 8;
	}
	return zeros / 2;
}

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

static int parse_entry(struct atkv_cbor *r, struct entry *e, struct atkv_err *err)
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

/* Decodes a node; nd->e is the caller's to free (also after a failure). */
static int parse_node(const uint8_t *p, size_t n, struct node *nd, struct atkv_err *err)
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
			/* The count is bounded by the bytes left (cborscan), so is this allocation. */
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

/* Rebuilds the key of entry i of nd in key[0..*n) from the previous one (already there). */
static int next_key(const struct node *nd, size_t i, uint8_t *key, size_t *n, struct atkv_err *err, size_t at)
{
	const struct entry *e = &nd->e[i];
	if ((i == 0 && e->prefix != 0) || e->prefix > *n)
		return atkv_fail(err, ATKV_E_MST, at, "mst key prefix");
	if (e->suffix_n > ATKV_MST_KEY_MAX - e->prefix)
		return atkv_fail(err, ATKV_E_MST, at, "mst key length");
	memcpy(key + e->prefix, e->suffix, e->suffix_n);
	*n = (size_t)e->prefix + e->suffix_n;
	if (*n == 0)
		return atkv_fail(err, ATKV_E_MST, at, "mst empty key");
	return 0;
}

static int walk_node(struct walker *w, const struct atkv_cid *cid, int layer, bool root);

/* A subtree link of a node at `layer`: one layer down, which layer 0 does not have. */
static int walk_child(struct walker *w, const struct atkv_cid *cid, int layer)
{
	if (layer == 0)
		return atkv_fail(w->err, ATKV_E_MST, 0, "mst subtree below layer 0");
	return walk_node(w, cid, layer - 1, false);
}

static int visit_entries(struct walker *w, const struct node *nd, int layer, uint8_t *key)
{
	int rc = 0;
	size_t n = 0;
	if (nd->has_left && (rc = walk_child(w, &nd->left, layer)))
		return rc;
	for (size_t i = 0; i < nd->count; i++) {
		if ((rc = next_key(nd, i, key, &n, w->err, 0)))
			return rc;
		int cmp = w->any ? memcmp(w->last, key, w->last_n < n ? w->last_n : n) : -1;
		if (w->any && (cmp > 0 || (cmp == 0 && w->last_n >= n)))
			return atkv_fail(w->err, ATKV_E_MST, 0, "mst key order");
		memcpy(w->last, key, n);
		w->last_n = n;
		w->any = true;
		if ((rc = w->visit(w->arg, key, n, &nd->e[i].value)))
			return rc;
		if (nd->e[i].has_right && (rc = walk_child(w, &nd->e[i].right, layer)))
			return rc;
	}
	return 0;
}

/* Walks the node at cid, which must be at `layer` (-1 for the root: whatever its keys say). */
static int walk_node(struct walker *w, const struct atkv_cid *cid, int layer, bool root)
{
	const uint8_t *block;
	size_t n;
	int rc = atkv_car_get(w->car, cid->bytes, cid->len, &block, &n);
	if (rc)
		return atkv_fail(w->err, rc, 0, "mst node");
	struct node nd;
	uint8_t *key = malloc(ATKV_MST_KEY_MAX);
	if (!key)
		return atkv_fail(w->err, ATKV_E_NOMEM, 0, "mst node");
	if ((rc = parse_node(block, n, &nd, w->err)))
		goto done;
	/* Every key of a node is on the node's layer. */
	size_t kn = 0;
	for (size_t i = 0; i < nd.count; i++) {
		if ((rc = next_key(&nd, i, key, &kn, w->err, 0)))
			goto done;
		int l = atkv_mst_layer(w->h, key, kn);
		if (l < 0) {
			rc = atkv_fail(w->err, l, 0, "mst node");
			goto done;
		}
		if (layer < 0)
			layer = l;
		if (l != layer) {
			rc = atkv_fail(w->err, ATKV_E_MST, 0, "mst key layer");
			goto done;
		}
	}
	/* An empty node is the whole of an empty tree, or a layer with only a subtree below. */
	if (!nd.count && (root ? nd.has_left : !nd.has_left)) {
		rc = atkv_fail(w->err, ATKV_E_MST, 0, "mst empty node");
		goto done;
	}
	if (layer < 0)
		layer = 0;
	if (layer > MST_MAX_LAYER) {
		rc = atkv_fail(w->err, ATKV_E_MST, 0, "mst layer");
		goto done;
	}
	rc = visit_entries(w, &nd, layer, key);
done:
	free(nd.e);
	free(key);
	return rc;
}

int atkv_mst_walk(struct atkv_car *car, struct atkv_sha256 *h, const struct atkv_cid *root, atkv_mst_visit visit,
                  void *arg, struct atkv_err *err)
{
	struct walker *w = malloc(sizeof(*w));
	if (!w)
		return atkv_fail(err, ATKV_E_NOMEM, 0, "mst");
	*w = (struct walker){.car = car, .h = h, .visit = visit, .arg = arg, .err = err};
	int rc = root->codec == ATKV_CODEC_DAG_CBOR ? walk_node(w, root, -1, true)
	                                            : atkv_fail(err, ATKV_E_MST, 0, "mst link");
	free(w);
	return rc;
}
