/* test-mstedit.c — MST edits on partly known trees (src/mstedit.c). The interop fixtures'
 * commit proofs (firehose/commit-proof-fixtures.json): from the tree before a commit, its adds
 * and deletes give the root after; from the tree after, holding only the proof's blocks, the
 * inverted operations give the root before (and without a block they need, they cannot).
 * Then random edits on random key sets, each tree compared with one built whole from its keys
 * (tests/repobuild.c), down to the empty tree. */
#include "cbuild.h"
#include "mst.h"
#include "mstedit.h"
#include "repobuild.h"
#include "sha256.h"
#include "tap.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURES "tests/fixtures/atproto-interop/"

static struct atkv_sha256 *h;

/* Blocks an editor may read: those of b, less those not in `only` (when set) and `withheld`. */
struct store {
	const struct rb_blocks *b;
	uint8_t (*only)[ATKV_CID_SHA256_BYTES];
	size_t n_only;
	const uint8_t *withheld;
};

static int get(void *arg, const uint8_t *cid, size_t cid_n, const uint8_t **data, size_t *n)
{
	const struct store *s = arg;
	if (cid_n != ATKV_CID_SHA256_BYTES || (s->withheld && !memcmp(s->withheld, cid, cid_n)))
		return ATKV_E_BLOCK_MISSING;
	bool allowed = !s->only;
	for (size_t i = 0; !allowed && i < s->n_only; i++)
		allowed = !memcmp(s->only[i], cid, cid_n);
	for (size_t i = 0; allowed && i < s->b->n; i++)
		if (!memcmp(s->b->cid[i], cid, cid_n)) {
			*data = (const uint8_t *)s->b->data[i].data;
			*n = s->b->data[i].len;
			return 0;
		}
	return ATKV_E_BLOCK_MISSING;
}

static int cmp_key(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void cid_of(const char *s, uint8_t out[ATKV_CID_MAX_BYTES]) { atkv_cid_from_string(s, strlen(s), out); }

static struct atkv_cid link_of(const uint8_t *bytes)
{
	struct atkv_cid c = {0};
	size_t used;
	struct atkv_err err = {0};
	atkv_cid_parse(bytes, ATKV_CID_SHA256_BYTES, &c, &used, &err);
	return c;
}

/* Builds the tree of keys (sorted here) with every value v into b; returns its root index. */
static size_t build(const char **keys, size_t n, const uint8_t *v, size_t vn, struct rb_blocks *b)
{
	qsort(keys, n, sizeof(*keys), cmp_key);
	struct rb_tree t = {.keys = keys, .n = n, .value = v, .value_n = vn, .h = h, .b = b};
	return rb_tree_build(&t);
}

/* Runs the edits on the tree rooted at root (deletes first when invert, as a commit is undone)
 * and returns the editor's result: 0 with out set, or the error. */
static int edit(const struct store *s, const uint8_t *root, const char **put, size_t n_put, const char **del,
                size_t n_del, const uint8_t *v, size_t vn, uint8_t out[ATKV_CID_SHA256_BYTES], struct atkv_err *err)
{
	struct atkv_cid r = link_of(root);
	struct atkv_mstedit *ed = atkv_mstedit_new(h, get, (void *)s, &r);
	int rc = 0;
	for (size_t i = 0; !rc && i < n_del; i++)
		rc = atkv_mstedit_del(ed, (const uint8_t *)del[i], strlen(del[i]), err);
	for (size_t i = 0; !rc && i < n_put; i++)
		rc = atkv_mstedit_put(ed, (const uint8_t *)put[i], strlen(put[i]), v, vn, err);
	if (!rc)
		rc = atkv_mstedit_root(ed, out, err);
	atkv_mstedit_free(ed);
	return rc;
}

static size_t strings(json_t *arr, const char **out)
{
	size_t i;
	json_t *s;
	json_array_foreach(arr, i, s) out[i] = json_string_value(s);
	return json_array_size(arr);
}

static void proofs(void)
{
	json_error_t jerr;
	json_t *cases = json_load_file(tap_path(FIXTURES "firehose/commit-proof-fixtures.json"), 0, &jerr);
	size_t ci;
	json_t *c;
	json_array_foreach(cases, ci, c) {
		const char *what = json_string_value(json_object_get(c, "comment"));
		const char *keys[256], *adds[64], *dels[64], *after_keys[320];
		size_t nk = strings(json_object_get(c, "keys"), keys);
		size_t na = strings(json_object_get(c, "adds"), adds);
		size_t nd = strings(json_object_get(c, "dels"), dels);
		uint8_t leaf[ATKV_CID_MAX_BYTES], before[ATKV_CID_MAX_BYTES], after[ATKV_CID_MAX_BYTES];
		cid_of(json_string_value(json_object_get(c, "leafValue")), leaf);
		cid_of(json_string_value(json_object_get(c, "rootBeforeCommit")), before);
		cid_of(json_string_value(json_object_get(c, "rootAfterCommit")), after);
		/* The tree after: the keys less the deleted, plus the added. */
		size_t n_after = 0;
		for (size_t i = 0; i < nk; i++) {
			bool gone = false;
			for (size_t j = 0; j < nd; j++)
				gone = gone || !strcmp(keys[i], dels[j]);
			if (!gone)
				after_keys[n_after++] = keys[i];
		}
		for (size_t i = 0; i < na; i++)
			after_keys[n_after++] = adds[i];
		struct rb_blocks bb = {0}, ba = {0};
		size_t rb = build(keys, nk, leaf, ATKV_CID_SHA256_BYTES, &bb);
		size_t ra = build(after_keys, n_after, leaf, ATKV_CID_SHA256_BYTES, &ba);
		uint8_t got[ATKV_CID_SHA256_BYTES];
		struct atkv_err err = {0};
		struct store all_before = {.b = &bb};
		int rc = edit(&all_before, bb.cid[rb], adds, na, dels, nd, leaf, ATKV_CID_SHA256_BYTES, got, &err);
		tap_ok(rc == 0 && !memcmp(got, after, ATKV_CID_SHA256_BYTES), "%s: the commit applied gives the root after (%d)",
		       what, rc);
		/* Undone on the proof alone. */
		uint8_t proof[64][ATKV_CID_SHA256_BYTES];
		size_t np = 0;
		size_t pi;
		json_t *pc;
		json_array_foreach(json_object_get(c, "blocksInProof"), pi, pc) {
			uint8_t one[ATKV_CID_MAX_BYTES];
			cid_of(json_string_value(pc), one);
			memcpy(proof[np++], one, ATKV_CID_SHA256_BYTES);
		}
		struct store only = {.b = &ba, .only = proof, .n_only = np};
		rc = edit(&only, ba.cid[ra], dels, nd, adds, na, leaf, ATKV_CID_SHA256_BYTES, got, &err);
		tap_ok(memcmp(ba.cid[ra], after, ATKV_CID_SHA256_BYTES) == 0 && rc == 0 &&
		           !memcmp(got, before, ATKV_CID_SHA256_BYTES),
		       "%s: undone on the %zu blocks of the proof, it gives the root before (%d%s%s)", what, np, rc,
		       rc ? ": " : "", rc && err.where ? err.where : "");
		/* The blocks it needed (the proof may hold more: what applying the commit needs too); one
		 * of them withheld, it cannot be undone. */
		size_t needed = 0;
		for (size_t i = 0; i < np; i++) {
			struct store less = only;
			less.withheld = proof[i];
			needed += edit(&less, ba.cid[ra], dels, nd, adds, na, leaf, ATKV_CID_SHA256_BYTES, got, &err) ==
			          ATKV_E_BLOCK_MISSING;
		}
		tap_ok(needed >= 1, "%s: %zu of the proof's %zu blocks needed; without one of them, it cannot be undone", what,
		       needed, np);
		rb_blocks_free(&bb);
		rb_blocks_free(&ba);
	}
	json_decref(cases);
}

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* The set of keys held, as the edits leave it. */
struct keyset {
	char (*k)[40];
	bool *in;
	size_t n;
};

/* The root of the keys in the set, built whole. */
static void whole_root(const struct keyset *ks, const uint8_t *v, uint8_t out[ATKV_CID_SHA256_BYTES])
{
	const char **keys = malloc((ks->n + 1) * sizeof(*keys));
	size_t n = 0;
	for (size_t i = 0; i < ks->n; i++)
		if (ks->in[i])
			keys[n++] = ks->k[i];
	struct rb_blocks b = {0};
	size_t root = build(keys, n, v, ATKV_CID_SHA256_BYTES, &b);
	memcpy(out, b.cid[root], ATKV_CID_SHA256_BYTES);
	rb_blocks_free(&b);
	free(keys);
}

/* Random puts and deletes on random trees (every block at hand), each tree's root compared
 * with that of its keys built whole; at the end every key is deleted. */
static void random_edits(void)
{
	uint8_t v[ATKV_CID_MAX_BYTES];
	cid_of("bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454", v);
	int rounds = 40, checks = 0, same = 0, emptied = 0;
	for (int round = 0; round < rounds; round++) {
		struct keyset ks = {.n = 50 + next() % 400};
		ks.k = calloc(ks.n, sizeof(*ks.k));
		ks.in = calloc(ks.n, sizeof(*ks.in));
		for (size_t i = 0; i < ks.n; i++) {
			snprintf(ks.k[i], sizeof(ks.k[i]), "%s/%013llx", i % 3 ? "app.bsky.feed.like" : "app.bsky.feed.post",
			         (unsigned long long)(next() & 0xfffffffffffffull));
			ks.in[i] = next() % 2;
		}
		/* Start from the tree of the keys in, built whole. */
		const char **keys = malloc(ks.n * sizeof(*keys));
		size_t n = 0;
		for (size_t i = 0; i < ks.n; i++)
			if (ks.in[i])
				keys[n++] = ks.k[i];
		struct rb_blocks b = {0};
		size_t root = build(keys, n, v, ATKV_CID_SHA256_BYTES, &b);
		struct store all = {.b = &b};
		struct atkv_cid r = link_of(b.cid[root]);
		struct atkv_mstedit *ed = atkv_mstedit_new(h, get, &all, &r);
		struct atkv_err err = {0};
		int rc = 0;
		for (int op = 0; !rc && op < 120; op++) {
			size_t i = next() % ks.n;
			if (ks.in[i])
				rc = atkv_mstedit_del(ed, (const uint8_t *)ks.k[i], strlen(ks.k[i]), &err);
			else
				rc = atkv_mstedit_put(ed, (const uint8_t *)ks.k[i], strlen(ks.k[i]), v, ATKV_CID_SHA256_BYTES, &err);
			ks.in[i] = !ks.in[i];
			if (op % 20 == 19) {
				uint8_t got[ATKV_CID_SHA256_BYTES], want[ATKV_CID_SHA256_BYTES];
				rc = rc ? rc : atkv_mstedit_root(ed, got, &err);
				whole_root(&ks, v, want);
				checks++;
				same += !rc && !memcmp(got, want, sizeof(got));
			}
		}
		/* Everything deleted: the empty tree. */
		for (size_t i = 0; !rc && i < ks.n; i++)
			if (ks.in[i]) {
				rc = atkv_mstedit_del(ed, (const uint8_t *)ks.k[i], strlen(ks.k[i]), &err);
				ks.in[i] = false;
			}
		uint8_t got[ATKV_CID_SHA256_BYTES], want[ATKV_CID_SHA256_BYTES];
		rc = rc ? rc : atkv_mstedit_root(ed, got, &err);
		whole_root(&ks, v, want);
		emptied += !rc && !memcmp(got, want, sizeof(got));
		if (rc)
			tap_note("round %d: %d at %s", round, rc, err.where ? err.where : "");
		atkv_mstedit_free(ed);
		rb_blocks_free(&b);
		free(keys);
		free(ks.k);
		free(ks.in);
	}
	tap_eq(same, checks, "%d random trees edited 120 times each: every root equals that of its keys built whole "
	       "(%d compared)", rounds, checks);
	tap_eq(emptied, rounds, "and with every key deleted, the empty tree's root");
	/* A key deleted that is not there, and one too long. */
	struct atkv_mstedit *ed = atkv_mstedit_new(h, get, NULL, NULL);
	struct atkv_err err = {0};
	tap_eq(atkv_mstedit_del(ed, (const uint8_t *)"a/b", 3, &err), ATKV_E_MST, "deleting a key not there: refused");
	static uint8_t long_key[ATKV_MST_KEY_MAX + 1];
	memset(long_key, 'a', sizeof(long_key));
	tap_eq(atkv_mstedit_put(ed, long_key, sizeof(long_key), v, ATKV_CID_SHA256_BYTES, &err), ATKV_E_MST,
	       "a key longer than %d bytes: refused", ATKV_MST_KEY_MAX);
	atkv_mstedit_free(ed);
}

int main(void)
{
	h = atkv_sha256_new();
	proofs();
	random_edits();
	atkv_sha256_free(h);
	return tap_done();
}
