/* backfill.h — backfilling one repository: its PDS found from its DID document (or given), its
 * CAR fetched with com.atproto.sync.getRepo, every record written into bucket `record` with the
 * key, value and headers the firehose path gives it — unless the key holds that record, or the
 * live path wrote it at a later revision (repowriter.h). One context per worker thread. */
#ifndef ATKV_BACKFILL_H
#define ATKV_BACKFILL_H

#include <nats/nats.h>
#include <stdint.h>
#include <stddef.h>

#include <atkv/syntax.h>

#include "buf.h"
#include "cid.h"
#include "prune.h"

struct atkv_backfill;

struct atkv_backfill_options {
	const char *plc;          /* PLC directory for did:plc, e.g. https://plc.directory */
	const char *pds;          /* fetch every repository from this service instead (NULL: resolve) */
	const char *ca_file;      /* CA bundle for https (NULL: the system's) */
	int timeout_ms;           /* each network wait */
	size_t max_car;           /* the largest repository fetched */
	size_t max_value;         /* the largest record value written (the NATS max payload) */
	bool verify;              /* the commit must be signed with the key of the DID document */
};

struct atkv_backfill_result {
	char rev[ATKV_TID_LEN + 1];  /* the repository's revision */
	uint64_t records;            /* records in it */
	uint64_t written, kept;      /* written; left because the live path had them at that rev or later */
	uint64_t skipped;            /* broken or too large (logged) */
	uint64_t deleted;            /* keys the repository no longer holds, deleted (resync) */
	uint8_t data[ATKV_CID_MAX_BYTES]; /* the commit's data (MST root) CID */
	size_t data_n;
	uint64_t applied;            /* held commits applied after the snapshot */
	int http_status;             /* of the getRepo answer (0 when none came) */
	int64_t retry_after_s;       /* what the server asked to wait, or -1 */
};

/* Returns 0, or -1 with why. */
int atkv_backfill_new(natsConnection *nc, const struct atkv_backfill_options *o, struct atkv_backfill **out, char *why,
                      size_t why_n);
void atkv_backfill_free(struct atkv_backfill *b);

/* Backfills the repository of did. Returns 0 with res filled; or a negative ATKV_E_* code with
 * why and res as far as it got: ATKV_E_TIMEOUT for what is worth trying again later (no
 * connection, a 429 or 5xx answer: res->retry_after_s), ATKV_E_NATS (NATS failed: also worth
 * again), anything else for a repository that cannot be backfilled as it is (not found, taken
 * down, a DID document without a PDS, a broken commit or tree). */
int atkv_backfill_repo(struct atkv_backfill *b, const char *did, struct atkv_backfill_result *res, char *why,
                       size_t why_n);

/* A resynchronization: as atkv_backfill_repo, then every key of did in bucket `record` that the
 * repository does not hold is deleted (prune.h: the snapshot's collections are searched, and
 * those named to prune beforehand; all_known false searches the whole partition). prune's
 * collections are then the snapshot's and those named. Returns as atkv_backfill_repo. */
int atkv_backfill_resync(struct atkv_backfill *b, const char *did, struct atkv_prune *prune, bool all_known,
                         struct atkv_backfill_result *res, char *why, size_t why_n);

/* A verified #commit held while its repository was desynchronized: a copy of its frame, and
 * the data CID its commit signed. */
struct atkv_held_commit {
	struct atkv_buf frame;
	uint8_t data[ATKV_CID_MAX_BYTES];
	size_t data_n;
};

/* Applies, in order, the held commits of did that come after its head res->rev/res->data (a
 * snapshot just written): each must follow the one before (its prevData that one's data);
 * its records are written as a backfill writes them, its deletes deleted; res->rev and
 * res->data move to the last applied, res->applied counts them. A commit after the head that
 * does not follow it stops there with *gap set (the repository must be fetched again). Returns
 * 0 or a negative code with why (NATS failed). */
int atkv_backfill_apply(struct atkv_backfill *b, const char *did, const struct atkv_held_commit *held, size_t n,
                        struct atkv_backfill_result *res, bool *gap, char *why, size_t why_n);

#endif
