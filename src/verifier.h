/* verifier.h — the checks of atproto Sync 1.1 that can run out of order, on worker threads,
 * between the relay and the in-order writing of events: each #commit's signature with its
 * repository's key (identity.h: the DID document is fetched when not cached, on the worker, so
 * the relay thread never waits on a PLC directory) and its ops undone on its tree back to its
 * prevData (commitcheck.h). What needs the events in order — prevData equal to the repo's last
 * verified data, revs that increase — is left to the writer of the heads (repohead.h), which
 * takes the frames back in the order they were pushed, each with its verdict. An #identity
 * event makes its DID's key be fetched again when next needed.
 *
 * Frames are copied into a bounded ring; full() says when the reader must pause. Push, next,
 * pop and clear come from one thread; wakeup(arg) comes from a worker when the oldest frame is
 * done. */
#ifndef ATKV_VERIFIER_H
#define ATKV_VERIFIER_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repohead.h"

struct atkv_verifier_options {
	unsigned threads;           /* workers (0: one per CPU) */
	size_t slots;               /* frames queued at most */
	size_t max_bytes;           /* bytes of frames queued before full() */
	const char *plc;            /* PLC directory for did:plc */
	const char *ca_file;        /* CA bundle for https (NULL: the system's) */
	int timeout_ms;             /* each network wait of a DID document fetch */
	size_t keys;                /* signing keys cached */
	int64_t key_ttl_s;          /* a key is used this long before its document is fetched again */
	struct atkv_repoheads *heads; /* borrowed: workers read the heads not cached ahead */
	kvStore *repo_kv;           /* borrowed: bucket `repo` */
};

/* What the workers found of one frame. */
struct atkv_verdict {
	int rc;                             /* 0: verified, or nothing to verify; else the check failed */
	char why[256];                      /* when rc: which check and why */
	uint8_t data[ATKV_CID_MAX_BYTES];   /* a verified #commit's data CID */
	size_t data_n;
	bool ahead_read;                    /* the repository's head was read while the frame waited: */
	int ahead_rc;                       /* 0 or ATKV_E_NATS */
	struct atkv_repohead ahead;
};

struct atkv_verifier_stats {
	uint64_t verified, failed;          /* commits whose checks passed, and failed */
	uint64_t key_fetches;
	size_t queued, queued_bytes;
};

struct atkv_verifier;

/* Starts the workers. Returns 0, or -1 with why. */
int atkv_verifier_new(const struct atkv_verifier_options *o, void (*wakeup)(void *), void *arg,
                      struct atkv_verifier **out, char *why, size_t why_n);
/* Stops and joins the workers (each ends its frame first: at most one network wait). */
void atkv_verifier_free(struct atkv_verifier *v);

/* Queues a copy of frame[0..n). Returns 0, ATKV_E_BUFFER when full (the reader should have
 * paused), or ATKV_E_NOMEM. */
int atkv_verifier_push(struct atkv_verifier *v, const uint8_t *frame, size_t n);
bool atkv_verifier_full(struct atkv_verifier *v);

/* The oldest frame when its checks are done: true with *frame, *n and *verdict (valid until
 * pop), false when none is ready yet. */
bool atkv_verifier_next(struct atkv_verifier *v, const uint8_t **frame, size_t *n, const struct atkv_verdict **verdict);
void atkv_verifier_pop(struct atkv_verifier *v);

/* Drops every frame queued (for a replay from the cursor); those being checked are dropped when
 * done. idle() tells when none is left. */
void atkv_verifier_clear(struct atkv_verifier *v);
bool atkv_verifier_idle(struct atkv_verifier *v);

void atkv_verifier_stats(struct atkv_verifier *v, struct atkv_verifier_stats *st);

#endif
