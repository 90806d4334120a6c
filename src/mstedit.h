/* mstedit.h — editing a repository's MST of which only some nodes are at hand: the nodes are
 * read from blocks when an edit reaches them, the others stay known by their CID alone. Keys
 * are added, changed and removed as the atproto repository spec builds trees (canonically:
 * the same keys give the same root whatever the order of the edits), then the root's CID is
 * computed. This is how a commit's operations are inverted on the blocks it carries to check
 * them against its prevData (Sync 1.1): an edit that needs a node it lacks fails with
 * ATKV_E_BLOCK_MISSING. */
#ifndef ATKV_MSTEDIT_H
#define ATKV_MSTEDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cid.h"
#include "err.h"

struct atkv_sha256;
struct atkv_mstedit;

/* Gives the block of the binary CID cid[0..cid_n): 0 with *data, *n set (it must stay valid until
 * atkv_mstedit_free), or ATKV_E_BLOCK_MISSING (or another error, returned as it is). */
typedef int (*atkv_mstedit_get)(void *arg, const uint8_t *cid, size_t cid_n, const uint8_t **data, size_t *n);

/* An editor on the tree whose root node is root (NULL: the empty tree). h hashes keys and
 * nodes. Returns NULL when memory is short. */
struct atkv_mstedit *atkv_mstedit_new(struct atkv_sha256 *h, atkv_mstedit_get get, void *arg,
                                      const struct atkv_cid *root);
void atkv_mstedit_free(struct atkv_mstedit *ed);

/* The value of key[0..n) into value (ATKV_CID_MAX_BYTES) and *value_n; *value_n = 0 when the key
 * is not there. Returns 0 or an error reaching it. */
int atkv_mstedit_get_value(struct atkv_mstedit *ed, const uint8_t *key, size_t n, uint8_t *value, size_t *value_n,
                           struct atkv_err *err);

/* Sets key[0..n) to value[0..value_n) (a binary CID), adding the key when it is not there.
 * Returns 0; ATKV_E_MST for an empty key or one over ATKV_MST_KEY_MAX; ATKV_E_BLOCK_MISSING,
 * ATKV_E_CID_MISMATCH or a node's decoding error for a node needed and not usable; or
 * ATKV_E_NOMEM. */
int atkv_mstedit_put(struct atkv_mstedit *ed, const uint8_t *key, size_t n, const uint8_t *value, size_t value_n,
                     struct atkv_err *err);

/* Removes key[0..n). Returns 0, ATKV_E_MST when it is not there, or as atkv_mstedit_put. */
int atkv_mstedit_del(struct atkv_mstedit *ed, const uint8_t *key, size_t n, struct atkv_err *err);

/* The CID of the root node as the edits left it (the empty tree's too), into
 * cid[ATKV_CID_SHA256_BYTES]. Returns 0 or ATKV_E_NOMEM. */
int atkv_mstedit_root(struct atkv_mstedit *ed, uint8_t cid[ATKV_CID_SHA256_BYTES], struct atkv_err *err);

#endif
