/* repobuild.h — repositories made by the tests and benchmarks: an MST over sorted keys, built
 * the plain recursive way (test-mst proves it canonical against the interop fixtures' roots),
 * record blocks, a version 3 commit and the CAR getRepo would serve. */
#ifndef ATKV_REPOBUILD_H
#define ATKV_REPOBUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "cid.h"
#include "sha256.h"
#include "testkey.h"

/* Blocks with their CIDs (sha-256, DAG-CBOR), in the order made. */
struct rb_blocks {
	struct atkv_buf *data;
	uint8_t (*cid)[ATKV_CID_SHA256_BYTES];
	size_t n, cap;
};

struct rb_tree {
	const char **keys;         /* sorted, unique, NUL-terminated */
	size_t n;
	const uint8_t (*values)[ATKV_CID_SHA256_BYTES]; /* each key's value, or NULL: */
	const uint8_t *value;      /* the one value of every key */
	size_t value_n;
	struct atkv_sha256 *h;
	struct rb_blocks *b;       /* where the nodes go */
	/* What to break, for the refusal tests. */
	bool swap_entries, bad_prefix, unknown_field, drop_l_field;
};

/* Stores a copy of block[0..n) (or takes *node, emptying it, when block is NULL) and returns its
 * index. */
size_t rb_put(struct rb_blocks *b, struct atkv_sha256 *h, const void *block, size_t n, struct atkv_buf *node);
void rb_blocks_free(struct rb_blocks *b);

/* The tree's nodes into t->b; returns the root's index. */
size_t rb_tree_build(struct rb_tree *t);

/* A CAR of b's blocks (all but `skip`, when not -1) with block root as its root. */
void rb_car(const struct rb_blocks *b, size_t root, long skip, struct atkv_buf *out);

/* A version 3 commit of did at rev over the tree whose root is block data, signed with key
 * (NULL: "sig" is 64 zero bytes), into b; returns its index. */
size_t rb_commit(struct rb_blocks *b, struct atkv_sha256 *h, const char *did, const char *rev, size_t data,
                 const struct testkey *key);

/* The CAR of did's repository at rev holding records[i] (DAG-CBOR) at paths[i]
 * ("collection/rkey", sorted, unique): record blocks, MST, and a commit signed with key (NULL:
 * a "sig" of 64 zero bytes). Appends to out. */
void rb_repo_car_signed(struct atkv_sha256 *h, const char *did, const char *rev, const char **paths,
                        const struct atkv_buf *records, size_t n, const struct testkey *key, struct atkv_buf *out);
/* The same, unsigned. */
void rb_repo_car(struct atkv_sha256 *h, const char *did, const char *rev, const char **paths,
                 const struct atkv_buf *records, size_t n, struct atkv_buf *out);

#endif
