/* repobuild.c — test repositories (see repobuild.h). */
#include "repobuild.h"
#include "cbuild.h"
#include "mst.h"

#include <stdlib.h>
#include <string.h>

size_t rb_put(struct rb_blocks *b, struct atkv_sha256 *h, const void *block, size_t n, struct atkv_buf *node)
{
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->data = realloc(b->data, b->cap * sizeof(*b->data));
		b->cid = realloc(b->cid, b->cap * sizeof(*b->cid));
		if (!b->data || !b->cid)
			abort(); /* a test helper: out of memory ends the test */
	}
	size_t i = b->n++;
	b->data[i] = (struct atkv_buf)ATKV_BUF_INIT;
	if (block) {
		atkv_buf_append(&b->data[i], block, n);
	} else {
		b->data[i] = *node;
		*node = (struct atkv_buf)ATKV_BUF_INIT;
	}
	atkv_cid_compute(h, ATKV_CODEC_DAG_CBOR, (const uint8_t *)b->data[i].data, b->data[i].len, b->cid[i]);
	return i;
}

void rb_blocks_free(struct rb_blocks *b)
{
	for (size_t i = 0; i < b->n; i++)
		atkv_buf_free(&b->data[i]);
	free(b->data);
	free(b->cid);
	*b = (struct rb_blocks){0};
}

static int layer_of(const struct rb_tree *t, size_t i)
{
	return atkv_mst_layer(t->h, (const uint8_t *)t->keys[i], strlen(t->keys[i]));
}

static size_t build(struct rb_tree *t, const int *layers, size_t lo, size_t hi, int layer);

/* The subtree of keys[lo..hi) one layer below, or -1 when there are none. */
static long child(struct rb_tree *t, const int *layers, size_t lo, size_t hi, int layer)
{
	return lo < hi ? (long)build(t, layers, lo, hi, layer - 1) : -1;
}

static void link_or_null(struct atkv_buf *b, const struct rb_blocks *bl, long i)
{
	if (i < 0)
		cb_null(b);
	else
		cb_link(b, bl->cid[i], ATKV_CID_SHA256_BYTES);
}

/* The node for keys[lo..hi), all at `layer` or below. */
static size_t build(struct rb_tree *t, const int *layers, size_t lo, size_t hi, int layer)
{
	size_t n = 0;
	for (size_t i = lo; i < hi; i++)
		n += layers[i] == layer;
	size_t *at = malloc((n ? n : 1) * sizeof(*at));
	long *right = malloc((n ? n : 1) * sizeof(*right));
	if (!at || !right)
		abort();
	n = 0;
	for (size_t i = lo; i < hi; i++)
		if (layers[i] == layer)
			at[n++] = i;
	long left = child(t, layers, lo, n ? at[0] : hi, layer);
	for (size_t j = 0; j < n; j++)
		right[j] = child(t, layers, at[j] + 1, j + 1 < n ? at[j + 1] : hi, layer);
	struct atkv_buf b = ATKV_BUF_INIT;
	cb_head(&b, 5, t->drop_l_field ? 1 : 2 + t->unknown_field);
	cb_text(&b, "e");
	cb_head(&b, 4, n);
	const char *prev = "";
	for (size_t jj = 0; jj < n; jj++) {
		size_t j = t->swap_entries && n > 1 && jj < 2 ? 1 - jj : jj;
		const char *k = t->keys[at[j]];
		size_t p = 0;
		while (prev[p] && prev[p] == k[p])
			p++;
		if (t->bad_prefix && jj == 1)
			p++;
		cb_head(&b, 5, 4);
		cb_text(&b, "k");
		cb_bytes(&b, k + p, strlen(k) - p);
		cb_text(&b, "p");
		cb_uint(&b, p);
		cb_text(&b, "t");
		link_or_null(&b, t->b, right[j]);
		cb_text(&b, "v");
		if (t->values)
			cb_link(&b, t->values[at[j]], ATKV_CID_SHA256_BYTES);
		else
			cb_link(&b, t->value, t->value_n);
		prev = k;
	}
	if (!t->drop_l_field) {
		cb_text(&b, "l");
		link_or_null(&b, t->b, left);
	}
	if (t->unknown_field) {
		cb_text(&b, "zz");
		cb_null(&b);
	}
	free(at);
	free(right);
	return rb_put(t->b, t->h, NULL, 0, &b);
}

size_t rb_tree_build(struct rb_tree *t)
{
	int *layers = malloc((t->n ? t->n : 1) * sizeof(*layers)), top = 0;
	if (!layers)
		abort();
	for (size_t i = 0; i < t->n; i++) {
		layers[i] = layer_of(t, i);
		if (layers[i] > top)
			top = layers[i];
	}
	size_t root = build(t, layers, 0, t->n, top);
	free(layers);
	return root;
}

void rb_car(const struct rb_blocks *b, size_t root, long skip, struct atkv_buf *out)
{
	cb_car_header(out, b->cid[root], ATKV_CID_SHA256_BYTES);
	for (size_t i = 0; i < b->n; i++)
		if ((long)i != skip)
			cb_car_section(out, b->cid[i], ATKV_CID_SHA256_BYTES, b->data[i].data, b->data[i].len);
}

size_t rb_commit(struct rb_blocks *b, struct atkv_sha256 *h, const char *did, const char *rev, size_t data,
                 const struct testkey *key)
{
	/* The commit's keys in DAG-CBOR order: shorter first, then bytewise; unsigned, without sig. */
	uint8_t sig[64] = {0};
	struct atkv_buf c = ATKV_BUF_INIT;
	for (int signed_form = key ? 0 : 1; signed_form < 2; signed_form++) {
		atkv_buf_reset(&c);
		cb_head(&c, 5, signed_form ? 6 : 5);
		cb_text(&c, "did");
		cb_text(&c, did);
		cb_text(&c, "rev");
		cb_text(&c, rev);
		if (signed_form) {
			cb_text(&c, "sig");
			cb_bytes(&c, sig, sizeof(sig));
		}
		cb_text(&c, "data");
		cb_link(&c, b->cid[data], ATKV_CID_SHA256_BYTES);
		cb_text(&c, "prev");
		cb_null(&c);
		cb_text(&c, "version");
		cb_uint(&c, 3);
		if (!signed_form)
			testkey_sign(key, c.data, c.len, sig);
	}
	return rb_put(b, h, NULL, 0, &c);
}

void rb_repo_car_signed(struct atkv_sha256 *h, const char *did, const char *rev, const char **paths,
                        const struct atkv_buf *records, size_t n, const struct testkey *key, struct atkv_buf *out)
{
	struct rb_blocks b = {0};
	uint8_t (*values)[ATKV_CID_SHA256_BYTES] = malloc((n ? n : 1) * sizeof(*values));
	if (!values)
		abort();
	for (size_t i = 0; i < n; i++) {
		size_t at = rb_put(&b, h, records[i].data, records[i].len, NULL);
		memcpy(values[i], b.cid[at], sizeof(values[i]));
	}
	struct rb_tree t = {.keys = paths, .n = n, .values = (const uint8_t (*)[ATKV_CID_SHA256_BYTES])values, .h = h,
	                    .b = &b};
	size_t data = rb_tree_build(&t);
	size_t commit = rb_commit(&b, h, did, rev, data, key);
	rb_car(&b, commit, -1, out);
	free(values);
	rb_blocks_free(&b);
}

void rb_repo_car(struct atkv_sha256 *h, const char *did, const char *rev, const char **paths,
                 const struct atkv_buf *records, size_t n, struct atkv_buf *out)
{
	rb_repo_car_signed(h, did, rev, paths, records, n, NULL, out);
}
