/* resync.h — repositories resynchronized from their PDS beside the live stream, on threads of
 * their own: the repository fetched (com.atproto.sync.getRepo), its commit's signature checked
 * with the key of its DID document, every record written as a backfill writes it, and every key
 * of it that the snapshot lacks deleted (backfill.h, prune.h); then the commits held meanwhile
 * that come after the snapshot are applied. An account deleted has all its keys deleted. The
 * results come back to the caller, which decides what the repository's head becomes (commits
 * may have been held meanwhile, to apply next). Push and next come from one thread; wakeup(arg)
 * comes from a worker when a result is ready. */
#ifndef ATKV_RESYNC_H
#define ATKV_RESYNC_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backfill.h"
#include "repohead.h"

struct atkv_resync_options {
	unsigned threads;
	size_t queue;                      /* jobs waiting, at most */
	struct atkv_backfill_options fetch;
};

enum atkv_resync_kind {
	ATKV_RESYNC_FETCH,   /* fetch the repository, write it, delete what it lacks */
	ATKV_RESYNC_PURGE,   /* the account is deleted: delete every key of it */
	ATKV_RESYNC_APPLY,   /* apply held commits after the head given (a FETCH done before) */
};

struct atkv_resync_job {
	char did[ATKV_DID_MAX + 1];
	enum atkv_resync_kind kind;
	char collections[ATKV_REPOHEAD_COLLECTIONS]; /* where its keys may be, "nsid\n" each */
	bool partial;                      /* ... and maybe elsewhere: search its partition */
	struct atkv_held_commit *held;     /* commits held, oldest first: the job's, freed by the */
	size_t n_held;                     /* thread that runs it (or by atkv_resync_free) */
	char rev[ATKV_TID_LEN + 1];        /* APPLY: the head the commits follow */
	uint8_t data[ATKV_CID_MAX_BYTES];
	size_t data_n;
};

struct atkv_resync_result {
	struct atkv_resync_job job;
	int rc;                            /* 0, or an ATKV_E_* code (ATKV_E_TIMEOUT: worth again) */
	char why[320];
	struct atkv_backfill_result res;   /* FETCH, APPLY: the head now (rev, data), counts;
	                                    * PURGE: deleted */
	bool gap;                          /* a held commit did not follow: fetch again */
	char collections[ATKV_REPOHEAD_COLLECTIONS]; /* FETCH: the snapshot's and the job's */
	bool partial;                      /* they did not all fit */
	double seconds;
};

struct atkv_resync;

/* Starts the threads on nc. Returns 0, or -1 with why. */
int atkv_resync_new(natsConnection *nc, const struct atkv_resync_options *o, void (*wakeup)(void *), void *arg,
                    struct atkv_resync **out, char *why, size_t why_n);
/* Stops the threads once each ends its job (a repository being fetched is finished first). */
void atkv_resync_free(struct atkv_resync *rs);

/* Frees the held commits of job (held, n_held). Cannot fail. */
void atkv_resync_job_clear(struct atkv_resync_job *job);

/* Queues job (copied; its held commits are the queue's from then on). Returns 0, or
 * ATKV_E_BUFFER when the queue is full (job keeps them). */
int atkv_resync_push(struct atkv_resync *rs, const struct atkv_resync_job *job);

/* A finished job's result, oldest first: true with *out filled, false when none is ready. */
bool atkv_resync_next(struct atkv_resync *rs, struct atkv_resync_result *out);

#endif
