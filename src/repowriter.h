/* repowriter.h — writing a backfilled record into bucket `record` without undoing the
 * firehose: the put lands only where the key holds nothing, or something the repository's
 * revision supersedes. A value or a delete the live path wrote at the same or a later revision
 * stays, so a backfill never brings back a stale value nor a record deleted live. JetStream
 * decides atomically (expected last sequence per subject), so a live write racing the backfill
 * is never overwritten by it. */
#ifndef ATKV_REPOWRITER_H
#define ATKV_REPOWRITER_H

#include <nats/nats.h>
#include <stddef.h>

#include <atkv/record.h>

enum atkv_repowrite {
	ATKV_REPOWRITE_NEW = 1,      /* the key held nothing: written */
	ATKV_REPOWRITE_OVER,         /* it held an older revision (or one without Atkv-Rev): written */
	ATKV_REPOWRITE_KEPT,         /* it holds this revision or a later one, put or delete: left */
};

/* Puts json[0..n) at key (atkv_key_build) of bucket `record`, with meta (its rev is required:
 * the commit's), unless the key holds a newer write. Returns an ATKV_REPOWRITE_* outcome, or
 * ATKV_E_ARG (no rev), ATKV_E_TOO_LARGE, ATKV_E_NATS with NATS's reason in why. */
int atkv_repo_put(jsCtx *js, const char *key, const char *json, size_t n, const struct atkv_record_meta *meta,
                  char *why, size_t why_n);

#endif
