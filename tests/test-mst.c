/* test-mst.c — the MST walker (src/mst.c) against the atproto interop fixtures: key layers
 * (mst/key_heights.json); trees built here the plain recursive way from the fixtures' key sets
 * must hash to the fixtures' roots (firehose/commit-proof-fixtures.json), which proves the
 * builder canonical, and walking them must give back every key and value in order. Then trees
 * broken one rule at a time must be refused with ATKV_E_MST (or the CAR's own error). */
#include "cbuild.h"
#include "mst.h"
#include "repobuild.h"
#include "sha256.h"
#include "tap.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURES "tests/fixtures/atproto-interop/"

static struct atkv_sha256 *h;

static int layer_of(const char *k) { return atkv_mst_layer(h, (const uint8_t *)k, strlen(k)); }

/* ---- walking it ---- */

struct seen {
	char keys[4096][ATKV_MST_KEY_MAX + 1];
	size_t n;
	int wrong_value;
	const uint8_t *value;
	size_t value_n;
};

static int collect(void *arg, const uint8_t *key, size_t n, const struct atkv_cid *value)
{
	struct seen *s = arg;
	if (s->n < 4096) {
		memcpy(s->keys[s->n], key, n);
		s->keys[s->n][n] = '\0';
		s->n++;
	}
	if (value->len != s->value_n || memcmp(value->bytes, s->value, s->value_n))
		s->wrong_value++;
	return 0;
}

/* Walks the tree in car_bytes; returns the walk's result, the keys in s. */
static int walk(struct atkv_buf *car_bytes, struct seen *s, struct atkv_err *err)
{
	struct atkv_car *car = atkv_car_new();
	int rc = atkv_car_load(car, (const uint8_t *)car_bytes->data, car_bytes->len, err);
	if (!rc)
		rc = atkv_mst_walk(car, h, atkv_car_root(car, 0), collect, s, err);
	atkv_car_free(car);
	return rc;
}

static int cmp_key(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Builds keys (sorted here) into a tree; checks its root CID against want_root when given, and
 * that a walk gives the keys back. Returns the number of failed checks. */
static void check_tree(const char *what, const char **keys, size_t n, const char *value, const char *want_root)
{
	static struct rb_blocks b;
	static struct seen s;
	uint8_t v[ATKV_CID_MAX_BYTES];
	struct rb_tree t = {.keys = keys, .n = n, .value = v, .h = h, .b = &b};
	qsort(keys, n, sizeof(*keys), cmp_key);
	t.value_n = (size_t)atkv_cid_from_string(value, strlen(value), v);
	size_t root = rb_tree_build(&t);
	if (want_root) {
		uint8_t want[ATKV_CID_MAX_BYTES];
		long wn = atkv_cid_from_string(want_root, strlen(want_root), want);
		tap_ok(wn == ATKV_CID_SHA256_BYTES && !memcmp(want, b.cid[root], (size_t)wn), "%s: root %s", what, want_root);
	}
	struct atkv_buf car = ATKV_BUF_INIT;
	rb_car(&b, root, -1, &car);
	memset(&s, 0, sizeof(s));
	s.value = t.value;
	s.value_n = t.value_n;
	struct atkv_err err = {0};
	int rc = walk(&car, &s, &err);
	bool same = rc == 0 && s.n == n && !s.wrong_value;
	for (size_t i = 0; same && i < n; i++)
		same = !strcmp(s.keys[i], keys[i]);
	tap_ok(same, "%s: the walk gives back its %zu keys in order, with their values (%zu nodes)", what, n, b.n);
	atkv_buf_free(&car);
	rb_blocks_free(&b);
}

/* ---- the fixtures ---- */

static void key_heights(void)
{
	json_error_t jerr;
	json_t *all = json_load_file(tap_path(FIXTURES "mst/key_heights.json"), 0, &jerr);
	size_t i, bad = 0;
	json_t *c;
	json_array_foreach(all, i, c) {
		const char *k = json_string_value(json_object_get(c, "key"));
		if (layer_of(k) != json_integer_value(json_object_get(c, "height")) && bad++ < 3)
			tap_note("layer of \"%s\": %d", k, layer_of(k));
	}
	tap_ok(all && json_array_size(all) > 0 && !bad, "the layer of each of the %zu keys of key_heights.json", json_array_size(all));
	json_decref(all);
}

static const char **strings(json_t *arr, size_t *n)
{
	const char **out = calloc(json_array_size(arr) + 1, sizeof(*out));
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) out[i] = json_string_value(v);
	*n = json_array_size(arr);
	return out;
}

static void proof_roots(void)
{
	json_error_t jerr;
	json_t *all = json_load_file(tap_path(FIXTURES "firehose/commit-proof-fixtures.json"), 0, &jerr);
	size_t i;
	json_t *c;
	tap_ok(all && json_array_size(all) > 0, "commit-proof-fixtures.json: %zu cases", json_array_size(all));
	json_array_foreach(all, i, c) {
		const char *comment = json_string_value(json_object_get(c, "comment"));
		const char *value = json_string_value(json_object_get(c, "leafValue"));
		size_t n, na, nd;
		const char **keys = strings(json_object_get(c, "keys"), &n);
		const char **adds = strings(json_object_get(c, "adds"), &na);
		const char **dels = strings(json_object_get(c, "dels"), &nd);
		char what[160];
		snprintf(what, sizeof(what), "\"%s\" before", comment);
		check_tree(what, keys, n, value, json_string_value(json_object_get(c, "rootBeforeCommit")));
		/* After: the keys with the adds, without the dels. */
		const char **after = calloc(n + na + 1, sizeof(*after));
		size_t m = 0;
		for (size_t k = 0; k < n; k++) {
			bool gone = false;
			for (size_t d = 0; d < nd; d++)
				gone = gone || !strcmp(keys[k], dels[d]);
			if (!gone)
				after[m++] = keys[k];
		}
		for (size_t a = 0; a < na; a++)
			after[m++] = adds[a];
		snprintf(what, sizeof(what), "\"%s\" after", comment);
		check_tree(what, after, m, value, json_string_value(json_object_get(c, "rootAfterCommit")));
		free(after);
		free(keys);
		free(adds);
		free(dels);
	}
	json_decref(all);
}

/* The keys of mst/example_keys.txt into keys (1024 at most), pointing into the returned text. */
static char *read_example_keys(const char *keys[1024], size_t *n)
{
	size_t len;
	char *text = (char *)tap_read_file(tap_path(FIXTURES "mst/example_keys.txt"), &len);
	*n = 0;
	for (char *line = strtok(text, "\n"); line && *n < 1024; line = strtok(NULL, "\n"))
		if (*line)
			keys[(*n)++] = line;
	return text;
}

static void example_keys(void)
{
	const char *keys[1024];
	size_t n;
	char *text = read_example_keys(keys, &n);
	check_tree("example_keys.txt", keys, n, "bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454", NULL);
	const char *none[1];
	check_tree("an empty tree", none, 0, "bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454", NULL);
	free(text);
}

/* ---- broken trees ---- */

/* Builds t broken as it says (and without the block `skip` places before the root, when not
 * -1) and checks the walk returns want. */
static void refused(const char *what, struct rb_tree *t, long skip, int want)
{
	static struct seen s;
	size_t root = rb_tree_build(t);
	struct atkv_buf car = ATKV_BUF_INIT;
	rb_car(t->b, root, skip < 0 ? -1 : (long)root - 1 - skip, &car);
	memset(&s, 0, sizeof(s));
	struct atkv_err err = {0};
	int rc = walk(&car, &s, &err);
	char e[160];
	tap_eq(rc, want, "%s: %s", what, rc ? atkv_err_format(&err, e, sizeof(e)) : "walked");
	atkv_buf_free(&car);
	rb_blocks_free(t->b);
}

static void broken(void)
{
	static struct rb_blocks b;
	const char *keys[1024];
	size_t n;
	char *text = read_example_keys(keys, &n);
	qsort(keys, n, sizeof(*keys), cmp_key);
	uint8_t value[ATKV_CID_MAX_BYTES];
	struct rb_tree base = {.keys = keys, .n = n, .value = value, .h = h, .b = &b};
	const char *v = "bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454";
	base.value_n = (size_t)atkv_cid_from_string(v, strlen(v), value);

	struct rb_tree t = base;
	t.swap_entries = true;
	refused("two entries of a node swapped", &t, -1, ATKV_E_MST);
	t = base;
	t.bad_prefix = true;
	refused("a key's shared prefix one byte too long", &t, -1, ATKV_E_MST);
	t = base;
	t.unknown_field = true;
	refused("a node with a field besides e and l", &t, -1, ATKV_E_MST);
	t = base;
	t.drop_l_field = true;
	refused("nodes without their l field (allowed, as null)", &t, -1, 0);
	t = base;
	refused("a subtree's node missing from the CAR", &t, 3, ATKV_E_BLOCK_MISSING);
	/* A key whose layer is not its node's: a tree of keys where one is placed a layer off. */
	const char *mixed[] = {"A0/374913", "B1/986427", "C0/451630"};
	t = base;
	t.keys = mixed;
	t.n = 3;
	size_t root = rb_tree_build(&t);
	struct atkv_buf car = ATKV_BUF_INIT;
	rb_car(&b, root, -1, &car);
	static struct seen s;
	struct atkv_err err = {0};
	tap_eq(walk(&car, &s, &err), 0, "the three-key tree as built walks");
	atkv_buf_free(&car);
	rb_blocks_free(&b);
	/* The same keys forced into one node: B1 is on layer 1, the others on layer 0. */
	struct atkv_buf node = ATKV_BUF_INIT;
	cb_head(&node, 5, 2);
	cb_text(&node, "e");
	cb_head(&node, 4, 3);
	const char *prev = "";
	for (int i = 0; i < 3; i++) {
		size_t p = 0;
		while (prev[p] && prev[p] == mixed[i][p])
			p++;
		cb_head(&node, 5, 4);
		cb_text(&node, "k");
		cb_bytes(&node, mixed[i] + p, strlen(mixed[i]) - p);
		cb_text(&node, "p");
		cb_uint(&node, p);
		cb_text(&node, "t");
		cb_null(&node);
		cb_text(&node, "v");
		cb_link(&node, base.value, base.value_n);
		prev = mixed[i];
	}
	cb_text(&node, "l");
	cb_null(&node);
	root = rb_put(&b, h, NULL, 0, &node);
	rb_car(&b, root, -1, &car);
	memset(&s, 0, sizeof(s));
	tap_eq(walk(&car, &s, &err), ATKV_E_MST, "keys of two layers in one node: refused");
	tap_ok(err.where && !strcmp(err.where, "mst key layer"), "and the error says where (%s)", err.where ? err.where : "");
	atkv_buf_free(&car);
	rb_blocks_free(&b);
	free(text);
}

int main(void)
{
	h = atkv_sha256_new();
	key_heights();
	proof_roots();
	example_keys();
	broken();
	atkv_sha256_free(h);
	return tap_done();
}
