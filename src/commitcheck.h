/* commitcheck.h — a #commit checked as atproto Sync 1.1 asks before its writes are trusted:
 * the commit block its event names is in its blocks and decodes; it is the event's repo at the
 * event's rev; its signature verifies with the repo's signing key; and its ops, each matching
 * what the tree after it holds, undone on the tree in its blocks lead back to its prevData. */
#ifndef ATKV_COMMITCHECK_H
#define ATKV_COMMITCHECK_H

#include <stdint.h>

#include "commit.h"
#include "err.h"
#include "firehose.h"
#include "sigverify.h"

struct atkv_commitcheck;

/* A checker, reused for every event (it keeps a hasher and buffers); one per thread. NULL when
 * memory is short. */
struct atkv_commitcheck *atkv_commitcheck_new(void);
void atkv_commitcheck_free(struct atkv_commitcheck *cc);

/* Checks ev, the #commit fh decoded last, and fills *commit from its commit block. key NULL
 * leaves the signature unchecked (the caller has no key yet, or verifies with another).
 *
 * prevData is not signed: it proves the ops lead from *some* tree to the signed one. Only
 * last_data — the data CID of the repo's last verified commit, which the caller keeps — makes
 * that tree the one before: given, prevData must be there and equal it; NULL (the repo is new
 * to the caller), a prevData present is checked against the ops alone, and an event without
 * one (older than Sync 1.1) has only its ops checked against the signed tree (each create or
 * update there, each delete gone). Returns 0, or with err->where naming
 * the check:
 *   ATKV_E_BLOCK_MISSING  the commit block, or a tree node the ops need, is not in the blocks;
 *   ATKV_E_FRAME          the commit is another repo's, or at another rev than the event says;
 *   ATKV_E_SIGNATURE      the signature does not verify with key;
 *   ATKV_E_MST            two ops on one path ("commit op path"), an op that does not match
 *                         the tree ("commit op"), ops that do not lead back to prevData
 *                         ("commit prevData"), or a prevData that is not last_data
 *                         ("commit prevData chain");
 * or the commit's or a node's decoding error, or ATKV_E_NOMEM. */
int atkv_commitcheck_run(struct atkv_commitcheck *cc, struct atkv_firehose *fh, const struct atkv_event *ev,
                         const struct atkv_sigkey *key, const struct atkv_cid *last_data, struct atkv_commit *commit,
                         struct atkv_err *err);

#endif
