/* mstnode.h — one node of a repository's Merkle Search Tree as its block holds it (atproto
 * repository spec): {"e": [{"k": key suffix, "p": bytes shared with the previous key, "t":
 * subtree link or null, "v": value link}], "l": subtree link or null}. Decoded with the
 * entries pointing into the block, and encoded as canonical DAG-CBOR. */
#ifndef ATKV_MSTNODE_H
#define ATKV_MSTNODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "cid.h"
#include "err.h"

/* Longest key (a record path, "collection/rkey") accepted. */
#define ATKV_MST_KEY_MAX 1024

struct atkv_mst_entry {
	const uint8_t *suffix;   /* "k": the key's bytes after the shared prefix */
	size_t suffix_n;
	uint64_t prefix;         /* "p": bytes shared with the previous key of the node */
	struct atkv_cid value;   /* "v": the record */
	struct atkv_cid right;   /* "t": the subtree after this entry, when has_right */
	bool has_right;
};

struct atkv_mst_node {
	struct atkv_cid left;    /* "l": the subtree before the first entry, when has_left */
	bool has_left;
	struct atkv_mst_entry *e; /* malloc'd: free(nd->e), also after a failed parse */
	size_t count;
};

/* Decodes the node block p[0..n) into nd. Returns 0; ATKV_E_MST (err->where names the field)
 * for a node that breaks the schema; ATKV_E_NOMEM; or a DAG-CBOR error. */
int atkv_mst_node_parse(const uint8_t *p, size_t n, struct atkv_mst_node *nd, struct atkv_err *err);

/* Rebuilds the key of entry i in key[0..*n) from that of entry i - 1, which key[0..*n) must
 * hold (nothing for i = 0). Returns 0 or ATKV_E_MST (a prefix longer than the previous key, a
 * key empty or over ATKV_MST_KEY_MAX). */
int atkv_mst_node_key(const struct atkv_mst_node *nd, size_t i, uint8_t *key, size_t *n, struct atkv_err *err);

/* Encoding, one piece at a time into out: the head (entries to come), each entry (its whole
 * key, the key before it in the node for the prefix, its value and right subtree links, NULL
 * for none), then the tail (the left subtree link). */
int atkv_mst_node_begin(struct atkv_buf *out, size_t entries);
int atkv_mst_node_entry(struct atkv_buf *out, const uint8_t *key, size_t key_n, const uint8_t *prev, size_t prev_n,
                        const uint8_t *value, size_t value_n, const uint8_t *right, size_t right_n);
int atkv_mst_node_end(struct atkv_buf *out, const uint8_t *left, size_t left_n);

#endif
