/* mst.c — walking a repository's MST out of a CAR (see mst.h). A node is decoded whole first
 * (its entries into an array that points into the block), its keys rebuilt from their prefix
 * compression and their layer checked; then its subtrees and entries are visited in order. */
#include "mst.h"
#include "mstnode.h"
#include "sha256.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* 256 leading zero bits at most, two per layer. */
#define MST_MAX_LAYER 128

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

static int walk_node(struct walker *w, const struct atkv_cid *cid, int layer, bool root);

/* A subtree link of a node at `layer`: one layer down, which layer 0 does not have. */
static int walk_child(struct walker *w, const struct atkv_cid *cid, int layer)
{
	if (layer == 0)
		return atkv_fail(w->err, ATKV_E_MST, 0, "mst subtree below layer 0");
	return walk_node(w, cid, layer - 1, false);
}

static int visit_entries(struct walker *w, const struct atkv_mst_node *nd, int layer, uint8_t *key)
{
	int rc = 0;
	size_t n = 0;
	if (nd->has_left && (rc = walk_child(w, &nd->left, layer)))
		return rc;
	for (size_t i = 0; i < nd->count; i++) {
		if ((rc = atkv_mst_node_key(nd, i, key, &n, w->err)))
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
	struct atkv_mst_node nd;
	uint8_t *key = malloc(ATKV_MST_KEY_MAX);
	if (!key)
		return atkv_fail(w->err, ATKV_E_NOMEM, 0, "mst node");
	if ((rc = atkv_mst_node_parse(block, n, &nd, w->err)))
		goto done;
	/* Every key of a node is on the node's layer. */
	size_t kn = 0;
	for (size_t i = 0; i < nd.count; i++) {
		if ((rc = atkv_mst_node_key(&nd, i, key, &kn, w->err)))
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
