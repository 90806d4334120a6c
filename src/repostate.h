/* repostate.h — what the backfill knows of each repository it has done, kept in NATS (bucket
 * `backfill`, key `repo.<escaped DID>`: {"rev", "records", "status", "time"}), so that a
 * backfill run again, or restarted after a crash, skips what is already in place at the
 * revision the source lists instead of fetching it again; and where the listing of a source
 * stopped, so a restart does not list the repositories done before it again. */
#ifndef ATKV_REPOSTATE_H
#define ATKV_REPOSTATE_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stdint.h>

#include <atkv/syntax.h>

#include "buckets.h"

/* Opens bucket `backfill`, creating it (history 1, replicas) when missing. Returns 0, or -1
 * with why. */
int atkv_repostate_open(jsCtx *js, int replicas, kvStore **kv, char *why, size_t why_n);

/* The revision the repository of did was backfilled at into rev ("" when never). Returns 0, or
 * -1 when NATS failed (rev is then ""). */
int atkv_repostate_rev(kvStore *kv, const char *did, char rev[ATKV_TID_LEN + 1]);

/* Records that did was backfilled at rev with that many records. Returns 0, or -1. */
int atkv_repostate_done(kvStore *kv, const char *did, const char *rev, uint64_t records);

/* Where a backfill's listing of source (a listRepos URL origin) may resume: the cursor after
 * which not every repository is done yet (key `list.<escaped source>`: {"cursor", "time"}).
 * cursor gets "" when none is kept. Returns 0, or -1 when NATS failed. */
int atkv_repostate_cursor(kvStore *kv, const char *source, char *cursor, size_t cursor_n);
/* Keeps cursor for source; NULL forgets it (the listing went to its end). Returns 0 or -1. */
int atkv_repostate_set_cursor(kvStore *kv, const char *source, const char *cursor);

/* Whether a repository listed at listed_rev ("" when the source gave none) needs fetching, given
 * the revision it was done at (""). */
bool atkv_repostate_needed(const char *done_rev, const char *listed_rev);

#endif
