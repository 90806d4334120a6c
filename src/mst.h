/* mst.h — a repository's Merkle Search Tree (atproto repository spec), read from a CAR: every
 * entry (record path → record CID) in key order, each node checked on the way — its fields,
 * the prefix compression of its keys, their order across the whole tree and their layers. */
#ifndef ATKV_MST_H
#define ATKV_MST_H

#include <stddef.h>
#include <stdint.h>

#include "car.h"
#include "cid.h"
#include "err.h"
#include "mstnode.h"

struct atkv_sha256;


/* The layer (height) of a key: its SHA-256's leading zero bits, divided by two. */
int atkv_mst_layer(struct atkv_sha256 *h, const uint8_t *key, size_t n);

/* Called for every entry in key order; a nonzero return stops the walk and is returned. */
typedef int (*atkv_mst_visit)(void *arg, const uint8_t *key, size_t key_n, const struct atkv_cid *value);

/* Walks the tree whose root node is root, with its nodes taken from car. Returns 0; what visit
 * returned; ATKV_E_BLOCK_MISSING or ATKV_E_CID_MISMATCH for a node; ATKV_E_MST for a node that
 * breaks the rules (err->where says which); ATKV_E_NOMEM; or a DAG-CBOR error from a node.
 * err->offset is the offset in the node's block. A tree holds at most 129 layers, so the
 * recursion is bounded by the rules, not by the input. */
int atkv_mst_walk(struct atkv_car *car, struct atkv_sha256 *h, const struct atkv_cid *root, atkv_mst_visit visit,
                  void *arg, struct atkv_err *err);

#endif
