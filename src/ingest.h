/* ingest.h — one firehose frame into KV writes: records of #commit ops into bucket `record`
 * (put or delete, with the Atkv-* headers), #identity and #account into bucket `account`.
 * Bad input is counted by kind, logged once with seq, DID and path, and skipped; it never
 * stops the stream or writes a partial value. */
#ifndef ATKV_INGEST_H
#define ATKV_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "accounts.h"
#include "firehose.h"
#include "kvwriter.h"
#include "repohead.h"
#include "verifier.h"

enum atkv_ingest_error {
	ATKV_INGEST_MALFORMED,      /* the frame does not decode */
	ATKV_INGEST_CID_MISMATCH,   /* a record block whose hash is not its CID */
	ATKV_INGEST_BLOCK_MISSING,  /* a record not in the commit's CAR */
	ATKV_INGEST_BAD_RECORD,     /* a record that is not valid atproto data */
	ATKV_INGEST_TOO_LARGE,      /* a value over the NATS max payload */
	ATKV_INGEST_REPLAYED,       /* a seq not above the last one written */
	ATKV_INGEST_RELAY_ERROR,    /* an error frame from the relay */
	ATKV_INGEST_UNVERIFIED,     /* a commit whose signature, key or tree does not check */
	ATKV_INGEST_BROKEN_CHAIN,   /* a commit whose prevData is not its repo's last data */
	ATKV_INGEST_STALE,          /* a commit whose rev is not above its repo's last */
	ATKV_INGEST_HELD,           /* a commit of a desynchronized repo */
	ATKV_INGEST_KINDS
};

/* The metric label of each kind, e.g. "cid_mismatch". */
extern const char *const atkv_ingest_error_names[ATKV_INGEST_KINDS];

struct atkv_ingest_stats {
	uint64_t frames, bytes;
	uint64_t commits, syncs, identities, accounts, infos, unknown;
	uint64_t creates, updates, deletes;
	uint64_t desyncs;            /* repositories found desynchronized */
	uint64_t errors[ATKV_INGEST_KINDS];
	int64_t last_seq;
	char last_time[40];          /* the last event's time, as the relay wrote it */
};

struct atkv_ingest {
	struct atkv_firehose *fh;
	struct atkv_kvwriter *w;     /* borrowed */
	struct atkv_accounts *acc;   /* borrowed */
	struct atkv_repoheads *heads;/* borrowed; NULL: commits are not verified */
	/* Asks for did's repository to be resynchronized (purge: its account is deleted, every key
	 * of it is to go) once event seq and those before are stored; head is what the heads say
	 * of it. Returns whether it was taken (if not, it is asked again at the repository's next
	 * event). NULL: never asked. */
	bool (*resync)(void *arg, const char *did, size_t n, const struct atkv_repohead *head, bool purge, int64_t seq);
	/* A verified commit of a desynchronized repository, held: frame[0..n) (to copy) and its
	 * data CID, kept to be applied after the resynchronization if it comes after the snapshot.
	 * NULL: not kept (the repository is then fetched again until the snapshot covers it). */
	void (*held)(void *arg, const char *did, size_t n, const uint8_t *frame, size_t frame_n, const uint8_t *data,
	             size_t data_n);
	void *resync_arg;
	const uint8_t *frame;        /* the frame being ingested, and its length */
	size_t frame_n;
	struct atkv_ingest_stats st;
	char relay_error[160];       /* the last error frame, "Name: message" */
};

/* Result of atkv_ingest_frame beside 0 (processed or skipped) and negative writer errors. */
#define ATKV_INGEST_RELAY_ERRORED 1  /* the relay sent an error frame: reconnect with backoff */

/* Initialises in with its decoder. heads NULL writes commits unverified; otherwise every
 * frame must come with its verdict (verifier.h), and each commit is written only when it is
 * verified and follows its repository's head, which is written with it into bucket `repo`.
 * Returns 0 or ATKV_E_NOMEM. */
int atkv_ingest_init(struct atkv_ingest *in, struct atkv_kvwriter *w, struct atkv_accounts *acc,
                     struct atkv_repoheads *heads);
void atkv_ingest_destroy(struct atkv_ingest *in);

/* Processes one frame, with its verdict when verifying (else NULL). Returns 0, ATKV_INGEST_RELAY_ERRORED, or a negative code when the writer
 * refused a publish (ATKV_E_NATS, ATKV_E_NOMEM): the caller must stop and rewind. The caller
 * checks atkv_kvwriter_full() before each frame. */
int atkv_ingest_frame(struct atkv_ingest *in, const uint8_t *frame, size_t n, const struct atkv_verdict *vd);

#endif
