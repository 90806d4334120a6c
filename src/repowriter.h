/* repowriter.h — writing a backfilled record into bucket `record` without undoing the
 * firehose: the put lands only where the key holds nothing, or something the repository's
 * revision supersedes. The same record (CID), or a value or a delete the live path wrote at a
 * later revision, stays, so a backfill never brings back a stale value nor a record deleted
 * live; another value at the same revision is replaced by the repository's. JetStream
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
	ATKV_REPOWRITE_KEPT,         /* it holds this record (same CID), or a later revision, put or
	                              * delete: left */
};

/* Puts json[0..n) at key (atkv_key_build) of bucket `record`, with meta (its rev is required:
 * the commit's), unless the key holds a newer write. Returns an ATKV_REPOWRITE_* outcome, or
 * ATKV_E_ARG (no rev), ATKV_E_TOO_LARGE, ATKV_E_NATS with NATS's reason in why. */
int atkv_repo_put(jsCtx *js, const char *key, const char *json, size_t n, const struct atkv_record_meta *meta,
                  char *why, size_t why_n);

/* The same puts, many in flight: each is first sent expecting the key to hold nothing, and the
 * few that find it taken (a live write, an earlier backfill) are settled one by one by
 * atkv_repo_put at finish. One writer per thread, one repository (or any batch) at a time. */
struct atkv_repowriter;

struct atkv_repowrite_counts {
	uint64_t written; /* NEW or OVER */
	uint64_t kept;    /* KEPT */
};

/* A writer publishing on nc through a JetStream context of its own, with at most max_pending
 * puts unacknowledged; finish waits at most timeout_ms for them. Returns 0 or ATKV_E_NATS /
 * ATKV_E_NOMEM with why. Free with atkv_repowriter_free (NULL is fine). */
int atkv_repowriter_new(natsConnection *nc, int max_pending, int64_t timeout_ms, struct atkv_repowriter **out,
                        char *why, size_t why_n);
void atkv_repowriter_free(struct atkv_repowriter *w);

/* Sends the put (as atkv_repo_put's arguments); waits only while max_pending are in flight.
 * Returns 0, ATKV_E_ARG (no rev), ATKV_E_TOO_LARGE (nothing sent) or ATKV_E_NATS. */
int atkv_repowriter_put(struct atkv_repowriter *w, const char *key, const char *json, size_t n,
                        const struct atkv_record_meta *meta, char *why, size_t why_n);

/* Sends a delete of key (as the live path writes it: a KV delete with meta's headers) without
 * condition: for a repository nothing else writes meanwhile (one being resynchronized). Returns
 * 0 or ATKV_E_NATS. */
int atkv_repowriter_del(struct atkv_repowriter *w, const char *key, const struct atkv_record_meta *meta, char *why,
                        size_t why_n);

/* Waits for every put sent, settles those that found their key taken, and adds the outcomes
 * to *counts. Returns 0, or ATKV_E_NATS / ATKV_E_TIMEOUT when some put may not have landed
 * (sending the batch again is harmless: what landed is then KEPT). */
int atkv_repowriter_finish(struct atkv_repowriter *w, struct atkv_repowrite_counts *counts, char *why, size_t why_n);

#endif
