/* mstedit.c — MST edits on a tree known in part (see mstedit.h). Each key lives on the layer
 * its hash gives (atkv_mst_layer); a node holds the keys of one layer between two keys of the
 * layer above. Adding a key splits the subtree where it falls in two around it; removing one
 * merges the subtrees on either side of it; a root left without keys gives way to its child.
 * Every function below is told the layer of the subtree it is given, so no node is read for
 * its layer alone. Nodes and keys are freed all at once with the editor. */
#include "mstedit.h"
#include "mst.h"
#include "mstnode.h"
#include "sha256.h"

#include <stdlib.h>
#include <string.h>

/* 256 leading zero bits at most, two a layer: no tree is taller, whatever its blocks say. */
#define MAX_LAYER 128

struct enode;

struct eentry {
	uint8_t *key;
	size_t key_n;
	uint8_t value[ATKV_CID_MAX_BYTES];
	size_t value_n;
	struct enode *right;
};

struct enode {
	bool loaded;                     /* its entries are known; else only its CID */
	bool dirty;                      /* changed: its CID is to be computed again */
	uint8_t cid[ATKV_CID_MAX_BYTES];
	size_t cid_n;
	struct enode *left;
	struct eentry *e;
	size_t n, cap;
};

struct atkv_mstedit {
	struct atkv_sha256 *h;
	atkv_mstedit_get get;
	void *arg;
	struct enode *root;              /* NULL: the empty tree */
	int root_layer;                  /* -1 until known */
	struct enode **nodes;            /* every node made, to free */
	size_t n_nodes, cap_nodes;
	uint8_t **keys;                  /* every key copied, to free */
	size_t n_keys, cap_keys;
	struct atkv_buf block;           /* a node being encoded */
};

static int track(void ***list, size_t *n, size_t *cap, void *p)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		void **l = realloc(*list, c * sizeof(*l));
		if (!l)
			return ATKV_E_NOMEM;
		*list = l;
		*cap = c;
	}
	(*list)[(*n)++] = p;
	return 0;
}

static struct enode *new_node(struct atkv_mstedit *ed)
{
	struct enode *nd = calloc(1, sizeof(*nd));
	if (nd && track((void ***)&ed->nodes, &ed->n_nodes, &ed->cap_nodes, nd)) {
		free(nd);
		return NULL;
	}
	return nd;
}

/* A node known by its CID only, read when an edit reaches it. */
static struct enode *stub(struct atkv_mstedit *ed, const struct atkv_cid *cid)
{
	struct enode *nd = new_node(ed);
	if (nd) {
		memcpy(nd->cid, cid->bytes, cid->len);
		nd->cid_n = cid->len;
	}
	return nd;
}

static uint8_t *copy_key(struct atkv_mstedit *ed, const uint8_t *k, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);
	if (c && track((void ***)&ed->keys, &ed->n_keys, &ed->cap_keys, c)) {
		free(c);
		return NULL;
	}
	if (c)
		memcpy(c, k, n);
	return c;
}

static int reserve(struct enode *nd, size_t more)
{
	if (nd->n + more <= nd->cap)
		return 0;
	size_t c = nd->cap ? nd->cap * 2 : 8;
	while (c < nd->n + more)
		c *= 2;
	struct eentry *e = realloc(nd->e, c * sizeof(*e));
	if (!e)
		return ATKV_E_NOMEM;
	nd->e = e;
	nd->cap = c;
	return 0;
}

static int key_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);
	return c ? c : (an > bn) - (an < bn);
}

static int layer_of(struct atkv_mstedit *ed, const uint8_t *k, size_t n, struct atkv_err *err)
{
	int l = atkv_mst_layer(ed->h, k, n);
	return l < 0 ? atkv_fail(err, l, 0, "mst key") : l;
}

/* Reads nd's block, when it has not been: its entries, stubs for its subtrees. Each key must be
 * on `layer` (-1: on the layer of the first). */
static int load(struct atkv_mstedit *ed, struct enode *nd, int layer, struct atkv_err *err)
{
	if (nd->loaded)
		return 0;
	const uint8_t *block;
	size_t block_n;
	int rc = ed->get(ed->arg, nd->cid, nd->cid_n, &block, &block_n);
	if (rc)
		return atkv_fail(err, rc, 0, "mst node");
	struct atkv_mst_node raw;
	uint8_t key[ATKV_MST_KEY_MAX];
	size_t key_n = 0;
	if ((rc = atkv_mst_node_parse(block, block_n, &raw, err)))
		goto out;
	if (reserve(nd, raw.count) || (raw.has_left && !(nd->left = stub(ed, &raw.left)))) {
		rc = atkv_fail(err, ATKV_E_NOMEM, 0, "mst node");
		goto out;
	}
	for (size_t i = 0; i < raw.count; i++) {
		if ((rc = atkv_mst_node_key(&raw, i, key, &key_n, err)))
			goto out;
		int l = layer_of(ed, key, key_n, err);
		if (l < 0 || (layer >= 0 && l != layer)) {
			rc = l < 0 ? l : atkv_fail(err, ATKV_E_MST, 0, "mst key layer");
			goto out;
		}
		layer = l;
		if (i && key_cmp(nd->e[i - 1].key, nd->e[i - 1].key_n, key, key_n) >= 0) {
			rc = atkv_fail(err, ATKV_E_MST, 0, "mst key order");
			goto out;
		}
		struct eentry *e = &nd->e[i];
		memset(e, 0, sizeof(*e));
		if (!(e->key = copy_key(ed, key, key_n)) || (raw.e[i].has_right && !(e->right = stub(ed, &raw.e[i].right)))) {
			rc = atkv_fail(err, ATKV_E_NOMEM, 0, "mst node");
			goto out;
		}
		e->key_n = key_n;
		memcpy(e->value, raw.e[i].value.bytes, raw.e[i].value.len);
		e->value_n = raw.e[i].value.len;
		nd->n = i + 1;
	}
	nd->loaded = true;
out:
	free(raw.e);
	return rc;
}

/* A node an edit reaches as a subtree of layer x: read, and on that layer (there is none below
 * layer 0, whatever a hostile block links to). */
static int reach(struct atkv_mstedit *ed, struct enode *nd, int x, struct atkv_err *err)
{
	if (x < 0)
		return atkv_fail(err, ATKV_E_MST, 0, "mst subtree below layer 0");
	return load(ed, nd, x, err);
}

/* The first entry of nd whose key is k or after it; *found when it is k. */
static size_t find(const struct enode *nd, const uint8_t *k, size_t kn, bool *found)
{
	size_t i = 0;
	int c = 1;
	while (i < nd->n && (c = key_cmp(nd->e[i].key, nd->e[i].key_n, k, kn)) < 0)
		i++;
	*found = i < nd->n && c == 0;
	return i;
}

/* The subtree before entry i (after entry i - 1). */
static struct enode **gap(struct enode *nd, size_t i) { return i ? &nd->e[i - 1].right : &nd->left; }

/* nd as a subtree: nothing when it holds neither keys nor a subtree. */
static struct enode *or_null(struct enode *nd) { return nd && !nd->n && !nd->left ? NULL : nd; }

/* The layer of the root, found by reading down its first subtrees until a node with keys. */
static int root_layer(struct atkv_mstedit *ed, struct atkv_err *err)
{
	if (ed->root_layer >= 0 || !ed->root)
		return 0;
	int depth = 0, rc;
	for (struct enode *nd = ed->root;; nd = nd->left, depth++) {
		if ((rc = load(ed, nd, -1, err)))
			return rc;
		if (nd->n) {
			int l = layer_of(ed, nd->e[0].key, nd->e[0].key_n, err);
			if (l < 0)
				return l;
			ed->root_layer = l + depth;
			return 0;
		}
		if (!nd->left) { /* no key anywhere: the empty tree */
			ed->root = NULL;
			return 0;
		}
		if (depth == MAX_LAYER)
			return atkv_fail(err, ATKV_E_MST, 0, "mst depth");
	}
}

/* Splits the subtree nd of layer x around k (which it does not hold) into the keys before k
 * (*l) and those after (*r), both subtrees of layer x. */
static int split(struct atkv_mstedit *ed, struct enode *nd, int x, const uint8_t *k, size_t kn, struct enode **l,
                 struct enode **r, struct atkv_err *err)
{
	*l = *r = NULL;
	if (!nd)
		return 0;
	int rc = reach(ed, nd, x, err);
	if (rc)
		return rc;
	bool found;
	size_t i = find(nd, k, kn, &found);
	struct enode *gl, *gr, *right = new_node(ed);
	if (!right || reserve(right, nd->n - i))
		return atkv_fail(err, ATKV_E_NOMEM, 0, "mst edit");
	if ((rc = split(ed, *gap(nd, i), x - 1, k, kn, &gl, &gr, err)))
		return rc;
	right->loaded = right->dirty = true;
	right->left = gr;
	if (nd->n > i)
		memcpy(right->e, nd->e + i, (nd->n - i) * sizeof(*nd->e));
	right->n = nd->n - i;
	nd->n = i;
	*gap(nd, i) = gl;
	nd->dirty = true;
	*l = or_null(nd);
	*r = or_null(right);
	return 0;
}

/* One subtree of layer x of the keys of a (all before b's) and of b. */
static int merge(struct atkv_mstedit *ed, struct enode *a, struct enode *b, int x, struct enode **out,
                 struct atkv_err *err)
{
	if (!a || !b) {
		*out = a ? a : b;
		return 0;
	}
	int rc;
	if ((rc = reach(ed, a, x, err)) || (rc = reach(ed, b, x, err)))
		return rc;
	struct enode *joined;
	if ((rc = merge(ed, *gap(a, a->n), b->left, x - 1, &joined, err)))
		return rc;
	if (reserve(a, b->n))
		return atkv_fail(err, ATKV_E_NOMEM, 0, "mst edit");
	*gap(a, a->n) = joined;
	if (b->n)
		memcpy(a->e + a->n, b->e, b->n * sizeof(*b->e));
	a->n += b->n;
	a->dirty = true;
	*out = a;
	return 0;
}

/* Adds k (on layer kl, which is x or below) with its value into the subtree nd of layer x. */
static int insert(struct atkv_mstedit *ed, struct enode *nd, int x, const uint8_t *k, size_t kn, int kl,
                  const uint8_t *v, size_t vn, struct enode **out, struct atkv_err *err)
{
	int rc;
	if (x < 0)
		return atkv_fail(err, ATKV_E_MST, 0, "mst subtree below layer 0");
	if (!nd) {
		if (!(nd = new_node(ed)))
			return atkv_fail(err, ATKV_E_NOMEM, 0, "mst edit");
		nd->loaded = true;
	} else if ((rc = load(ed, nd, x, err))) {
		return rc;
	}
	bool found;
	size_t i = find(nd, k, kn, &found);
	if (kl < x) {
		if ((rc = insert(ed, *gap(nd, i), x - 1, k, kn, kl, v, vn, gap(nd, i), err)))
			return rc;
	} else {
		struct enode *l, *r;
		uint8_t *key = copy_key(ed, k, kn);
		if (!key || reserve(nd, 1))
			return atkv_fail(err, ATKV_E_NOMEM, 0, "mst edit");
		if ((rc = split(ed, *gap(nd, i), x - 1, k, kn, &l, &r, err)))
			return rc;
		*gap(nd, i) = l;
		memmove(nd->e + i + 1, nd->e + i, (nd->n - i) * sizeof(*nd->e));
		nd->e[i] = (struct eentry){.key = key, .key_n = kn, .value_n = vn, .right = r};
		memcpy(nd->e[i].value, v, vn);
		nd->n++;
	}
	nd->dirty = true;
	*out = nd;
	return 0;
}

/* Removes k (on layer kl, x or below) from the subtree nd of layer x. */
static int remove_key(struct atkv_mstedit *ed, struct enode *nd, int x, const uint8_t *k, size_t kn, int kl,
                      struct enode **out, struct atkv_err *err)
{
	if (!nd)
		return atkv_fail(err, ATKV_E_MST, 0, "mst key not found");
	int rc = reach(ed, nd, x, err);
	if (rc)
		return rc;
	bool found;
	size_t i = find(nd, k, kn, &found);
	if (kl < x) {
		if ((rc = remove_key(ed, *gap(nd, i), x - 1, k, kn, kl, gap(nd, i), err)))
			return rc;
	} else {
		if (!found)
			return atkv_fail(err, ATKV_E_MST, 0, "mst key not found");
		struct enode *joined;
		if ((rc = merge(ed, *gap(nd, i), nd->e[i].right, x - 1, &joined, err)))
			return rc;
		memmove(nd->e + i, nd->e + i + 1, (nd->n - i - 1) * sizeof(*nd->e));
		nd->n--;
		*gap(nd, i) = joined;
	}
	nd->dirty = true;
	*out = or_null(nd);
	return 0;
}

/* The entry of k, or *at = NULL. When `dirty` (its value is about to change), every node on
 * the way to it is marked to have its CID computed again. Each node read is checked to be on
 * its layer, one below its parent's. */
static int lookup(struct atkv_mstedit *ed, const uint8_t *k, size_t kn, bool dirty, struct eentry **at,
                  struct atkv_err *err)
{
	struct enode *path[MAX_LAYER + 2]; /* one node a layer */
	size_t depth = 0;
	*at = NULL;
	int rc = root_layer(ed, err);
	if (rc)
		return rc;
	int x = ed->root_layer;
	for (struct enode *nd = ed->root; nd; x--) {
		if ((rc = reach(ed, nd, x, err)))
			return rc;
		if (depth == sizeof(path) / sizeof(path[0]))
			return atkv_fail(err, ATKV_E_MST, 0, "mst depth");
		path[depth++] = nd;
		bool found;
		size_t i = find(nd, k, kn, &found);
		if (found) {
			*at = &nd->e[i];
			for (size_t d = 0; dirty && d < depth; d++)
				path[d]->dirty = true;
			return 0;
		}
		nd = *gap(nd, i);
	}
	return 0;
}

struct atkv_mstedit *atkv_mstedit_new(struct atkv_sha256 *h, atkv_mstedit_get get, void *arg,
                                      const struct atkv_cid *root)
{
	struct atkv_mstedit *ed = calloc(1, sizeof(*ed));
	if (!ed)
		return NULL;
	*ed = (struct atkv_mstedit){.h = h, .get = get, .arg = arg, .root_layer = -1};
	if (root && !(ed->root = stub(ed, root))) {
		atkv_mstedit_free(ed);
		return NULL;
	}
	return ed;
}

void atkv_mstedit_free(struct atkv_mstedit *ed)
{
	if (!ed)
		return;
	for (size_t i = 0; i < ed->n_nodes; i++) {
		free(ed->nodes[i]->e);
		free(ed->nodes[i]);
	}
	for (size_t i = 0; i < ed->n_keys; i++)
		free(ed->keys[i]);
	free(ed->nodes);
	free(ed->keys);
	atkv_buf_free(&ed->block);
	free(ed);
}

int atkv_mstedit_get_value(struct atkv_mstedit *ed, const uint8_t *key, size_t n, uint8_t *value, size_t *value_n,
                           struct atkv_err *err)
{
	struct eentry *e;
	int rc = lookup(ed, key, n, false, &e, err);
	*value_n = 0;
	if (!rc && e) {
		memcpy(value, e->value, e->value_n);
		*value_n = e->value_n;
	}
	return rc;
}

/* A subtree of layer `from` as one of layer `to`, through nodes holding only a subtree. */
static struct enode *lift(struct atkv_mstedit *ed, struct enode *nd, int from, int to)
{
	for (; nd && from < to; from++) {
		struct enode *up = new_node(ed);
		if (!up)
			return NULL;
		up->loaded = up->dirty = true;
		up->left = nd;
		nd = up;
	}
	return nd;
}

int atkv_mstedit_put(struct atkv_mstedit *ed, const uint8_t *key, size_t n, const uint8_t *value, size_t value_n,
                     struct atkv_err *err)
{
	if (!n || n > ATKV_MST_KEY_MAX || value_n > ATKV_CID_MAX_BYTES)
		return atkv_fail(err, ATKV_E_MST, 0, "mst key length");
	struct eentry *e;
	int rc = lookup(ed, key, n, true, &e, err);
	if (rc)
		return rc;
	if (e) {
		memcpy(e->value, value, value_n);
		e->value_n = value_n;
		return 0;
	}
	int kl = layer_of(ed, key, n, err);
	if (kl < 0)
		return kl;
	if ((rc = root_layer(ed, err)))
		return rc;
	if (!ed->root || kl <= ed->root_layer) {
		int x = ed->root ? ed->root_layer : kl;
		if ((rc = insert(ed, ed->root, x, key, n, kl, value, value_n, &ed->root, err)))
			return rc;
		ed->root_layer = x;
		return 0;
	}
	/* Above the root: the whole tree splits around the key, under a new root on its layer. */
	struct enode *l, *r, *top = new_node(ed);
	uint8_t *k = copy_key(ed, key, n);
	if (!top || !k || reserve(top, 1))
		return atkv_fail(err, ATKV_E_NOMEM, 0, "mst edit");
	if ((rc = split(ed, ed->root, ed->root_layer, key, n, &l, &r, err)))
		return rc;
	struct enode *ll = lift(ed, l, ed->root_layer, kl - 1), *rl = lift(ed, r, ed->root_layer, kl - 1);
	if ((l && !ll) || (r && !rl))
		return atkv_fail(err, ATKV_E_NOMEM, 0, "mst edit");
	l = ll;
	r = rl;
	top->loaded = top->dirty = true;
	top->left = l;
	top->e[0] = (struct eentry){.key = k, .key_n = n, .value_n = value_n, .right = r};
	memcpy(top->e[0].value, value, value_n);
	top->n = 1;
	ed->root = top;
	ed->root_layer = kl;
	return 0;
}

int atkv_mstedit_del(struct atkv_mstedit *ed, const uint8_t *key, size_t n, struct atkv_err *err)
{
	int kl = layer_of(ed, key, n, err), rc;
	if (kl < 0)
		return kl;
	if ((rc = root_layer(ed, err)))
		return rc;
	if (!ed->root || kl > ed->root_layer)
		return atkv_fail(err, ATKV_E_MST, 0, "mst key not found");
	if ((rc = remove_key(ed, ed->root, ed->root_layer, key, n, kl, &ed->root, err)))
		return rc;
	/* A root without keys gives way to its subtree, as often as it takes. */
	while (ed->root) {
		if ((rc = load(ed, ed->root, ed->root_layer, err)))
			return rc;
		if (ed->root->n)
			break;
		ed->root = ed->root->left;
		ed->root_layer--;
	}
	return 0;
}

/* Computes the CID of nd and of every changed node below it. */
static int seal(struct atkv_mstedit *ed, struct enode *nd, struct atkv_err *err)
{
	if (!nd->dirty)
		return 0;
	int rc;
	if (nd->left && (rc = seal(ed, nd->left, err)))
		return rc;
	for (size_t i = 0; i < nd->n; i++)
		if (nd->e[i].right && (rc = seal(ed, nd->e[i].right, err)))
			return rc;
	struct atkv_buf *b = &ed->block;
	atkv_buf_reset(b);
	if (atkv_mst_node_begin(b, nd->n))
		return atkv_fail(err, ATKV_E_NOMEM, 0, "mst node");
	for (size_t i = 0; i < nd->n; i++) {
		const struct eentry *e = &nd->e[i], *prev = i ? &nd->e[i - 1] : NULL;
		if (atkv_mst_node_entry(b, e->key, e->key_n, prev ? prev->key : NULL, prev ? prev->key_n : 0, e->value,
		                        e->value_n, e->right ? e->right->cid : NULL, e->right ? e->right->cid_n : 0))
			return atkv_fail(err, ATKV_E_NOMEM, 0, "mst node");
	}
	if (atkv_mst_node_end(b, nd->left ? nd->left->cid : NULL, nd->left ? nd->left->cid_n : 0) ||
	    atkv_cid_compute(ed->h, ATKV_CODEC_DAG_CBOR, (const uint8_t *)b->data, b->len, nd->cid))
		return atkv_fail(err, ATKV_E_NOMEM, 0, "mst node");
	nd->cid_n = ATKV_CID_SHA256_BYTES;
	nd->dirty = false;
	return 0;
}

int atkv_mstedit_root(struct atkv_mstedit *ed, uint8_t cid[ATKV_CID_SHA256_BYTES], struct atkv_err *err)
{
	if (!ed->root) {
		/* The empty tree is one node without keys or subtree. */
		struct enode empty = {.loaded = true, .dirty = true};
		int rc = seal(ed, &empty, err);
		if (!rc)
			memcpy(cid, empty.cid, ATKV_CID_SHA256_BYTES);
		return rc;
	}
	int rc = seal(ed, ed->root, err);
	if (!rc)
		memcpy(cid, ed->root->cid, ATKV_CID_SHA256_BYTES);
	return rc;
}
