/* repohead.h — the head of each repository's verified chain: the rev and data (MST root) CID of
 * the last commit of it that passed every check, the seq of the event that brought it, and
 * whether the repository is desynchronized (a check failed: its events are not written until it
 * is resynchronized). Kept in bucket `repo` (key: the escaped DID; value
 * {"rev","data","seq","status"[,"reason"][,"collections"]}) by writes that go with each event's
 * own. "collections" lists those the repository has held records in, as far as atkv has seen
 * (absent when that may be incomplete): where its keys are, to delete them. The heads set last
 * are cached, so a check never reads a value whose write is still in flight: a head leaves the
 * cache only after capacity/2 later sets. Lookups are safe from any thread; setting (which
 * renders into buffers of its own) is for one thread, the writer of the heads. */
#ifndef ATKV_REPOHEAD_H
#define ATKV_REPOHEAD_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <atkv/syntax.h>

#include "cid.h"

/* Room for the collection names a head keeps; a repository with more is searched for by its
 * partition when it must be pruned. */
#define ATKV_REPOHEAD_COLLECTIONS 256

struct atkv_repohead {
	bool known;                         /* false: no commit of the repository verified yet */
	bool desync;                        /* a check failed; resynchronize before going on */
	int64_t seq;                        /* of the event that set it (-1: none, or a resync) */
	char rev[ATKV_TID_LEN + 1];         /* "" when not known */
	uint8_t data[ATKV_CID_MAX_BYTES];   /* the binary data CID; data_n 0 when not known */
	size_t data_n;
	char collections[ATKV_REPOHEAD_COLLECTIONS]; /* "nsid\n" each */
	bool partial;                       /* it may have records in collections not listed */
	/* Kept in memory only, by the writer of the heads: */
	bool resyncing;                     /* a resynchronization is asked for */
	char held_rev[ATKV_TID_LEN + 1];    /* the highest rev held back while desynchronized */
	int64_t retry_ms;                   /* a failed resynchronization is asked again after */
};

/* Adds collection[0..n) to head's list; one that does not fit makes it partial. Cannot fail. */
void atkv_repohead_add_collection(struct atkv_repohead *head, const char *collection, size_t n);

struct atkv_repoheads;

/* kv is bucket `repo` (borrowed; NULL never reads one). capacity must be at least twice the
 * events that can be queued or in flight at once. Returns 0 or ATKV_E_NOMEM. */
int atkv_repoheads_new(kvStore *kv, size_t capacity, struct atkv_repoheads **out);
void atkv_repoheads_free(struct atkv_repoheads *h);

/* Whether did's head is cached (a worker that finds it is not reads it ahead: _fetch). */
bool atkv_repoheads_cached(struct atkv_repoheads *h, const char *did, size_t n);

/* did's head as bucket kv stores it; out->known false when it holds none (or not one of ours).
 * Returns 0 or ATKV_E_NATS. */
int atkv_repoheads_fetch(kvStore *kv, const char *did, size_t n, struct atkv_repohead *out);

/* did's head: the cached one, else *ahead when given (read by _fetch while the event waited),
 * else read from the bucket. Returns 0, ATKV_E_NATS or ATKV_E_NOMEM. */
int atkv_repoheads_get(struct atkv_repoheads *h, const char *did, size_t n, const struct atkv_repohead *ahead,
                       struct atkv_repohead *out);

/* Caches head as did's, without writing it (what only the memory keeps changed). Returns 0 or
 * ATKV_E_NOMEM. */
int atkv_repoheads_put(struct atkv_repoheads *h, const char *did, size_t n, const struct atkv_repohead *head);

/* Caches head as did's and renders the value to write at the escaped DID in bucket `repo`
 * into *json (valid until the next call of this function; reason NULL unless desync). Returns
 * 0, ATKV_E_SYNTAX (a DID that does not escape) or ATKV_E_NOMEM. */
int atkv_repoheads_set(struct atkv_repoheads *h, const char *did, size_t n, const struct atkv_repohead *head,
                       const char *reason, const char **key, const char **json, size_t *len);

/* Writes head as did's into bucket kv unless the bucket holds one already: for a snapshot
 * taken beside the live builder, whose own chain, once it has one, must go on undisturbed.
 * Returns 0 when written, 1 when there was one, ATKV_E_SYNTAX, ATKV_E_NOMEM or ATKV_E_NATS. */
int atkv_repoheads_create(kvStore *kv, const char *did, size_t n, const struct atkv_repohead *head);

#endif
