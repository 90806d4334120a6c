/* prune.h — the keys of one repository in bucket `record` that it no longer holds, deleted:
 * after a resynchronization (every key its snapshot lacks) or an account's deletion (every key).
 * A repository's keys are found by collection — `{partition}.{collection}.{DID}.*` is one
 * subject filter — so the caller names the collections to look in: those of the snapshot and
 * those the repository's head knows. When they may be incomplete, the whole partition is
 * searched instead (a sixteenth of the bucket: slow, and rare). One per thread. */
#ifndef ATKV_PRUNE_H
#define ATKV_PRUNE_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <atkv/record.h>

struct atkv_prune;

/* Returns 0, or -1 with why. */
int atkv_prune_new(natsConnection *nc, struct atkv_prune **out, char *why, size_t why_n);
void atkv_prune_free(struct atkv_prune *p);

/* Starts over for another repository: no key kept, no collection named. */
void atkv_prune_reset(struct atkv_prune *p);

/* key (atkv_key_build) is one the repository holds: it stays. Returns 0 or ATKV_E_NOMEM. */
int atkv_prune_keep(struct atkv_prune *p, const char *key, size_t n);

/* The repository may have keys in collection[0..n). Returns 0, ATKV_E_SYNTAX or ATKV_E_NOMEM. */
int atkv_prune_collection(struct atkv_prune *p, const char *collection, size_t n);

/* The collections named so far, one per line (valid until the next reset). */
const char *atkv_prune_collections(const struct atkv_prune *p);

/* Deletes every key of did in the collections named (all_known false: in its whole partition)
 * that was not kept; each delete carries meta. *deleted gets their number. Returns 0, or
 * ATKV_E_NATS with why. */
int atkv_prune_run(struct atkv_prune *p, const char *did, bool all_known, const struct atkv_record_meta *meta,
                   uint64_t *deleted, char *why, size_t why_n);

#endif
