/* firehose.h — frames of com.atproto.sync.subscribeRepos (atproto event stream spec): a DAG-CBOR
 * header {op, t} followed by a DAG-CBOR body. Decodes #commit, #sync, #identity, #account, #info
 * and error frames into views of the frame bytes; reports other message types as
 * ATKV_EVENT_UNKNOWN so the caller can log and go on. */
#ifndef ATKV_FIREHOSE_H
#define ATKV_FIREHOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cid.h"
#include "err.h"

enum atkv_event_type {
	ATKV_EVENT_COMMIT,
	ATKV_EVENT_SYNC,
	ATKV_EVENT_IDENTITY,
	ATKV_EVENT_ACCOUNT,
	ATKV_EVENT_INFO,
	ATKV_EVENT_ERROR,     /* op -1: the relay reports an error (error, message) */
	ATKV_EVENT_UNKNOWN,   /* a message type this decoder does not know; `t` names it */
};

enum atkv_action { ATKV_ACTION_CREATE, ATKV_ACTION_UPDATE, ATKV_ACTION_DELETE };

/* A view of text in the frame (not NUL-terminated); p is NULL when the field is absent or null. */
struct atkv_str {
	const char *p;
	size_t n;
};

/* One repo operation of a #commit. */
struct atkv_op {
	enum atkv_action action;
	struct atkv_str path;         /* collection/rkey */
	struct atkv_str collection;   /* a valid NSID */
	struct atkv_str rkey;         /* a valid record key */
	struct atkv_cid cid;          /* the new record; bytes NULL for deletes */
	struct atkv_cid prev;         /* the record replaced (sync 1.1); bytes NULL when absent */
};

/* A decoded frame: views into the frame bytes, valid until they change or the next decode. */
struct atkv_event {
	enum atkv_event_type type;
	struct atkv_str t;            /* the header's message type, e.g. "#commit" */
	int64_t seq;                  /* -1 when the event carries none (#info, errors) */
	struct atkv_str did;          /* #commit's repo, or the did of #sync/#identity/#account */
	struct atkv_str rev, since, time;
	struct atkv_str handle;       /* #identity */
	bool active;                  /* #account */
	struct atkv_str status;       /* #account */
	struct atkv_str name, message;/* #info; also error frames (name = error) */
	bool too_big, rebase;         /* #commit, deprecated flags */
	struct atkv_cid commit;       /* #commit */
	struct atkv_cid prev_data;    /* #commit, sync 1.1; bytes NULL when absent */
	const uint8_t *blocks;        /* #commit, #sync: the CAR slice */
	size_t blocks_len;
	const struct atkv_op *ops;    /* #commit */
	size_t n_ops;
};

struct atkv_firehose;

/* A decoder, reused for every frame of a stream: it keeps its op array, CAR index and JSON
 * buffer between frames. NULL when memory is short. Free with atkv_firehose_free (NULL is fine). */
struct atkv_firehose *atkv_firehose_new(void);
void atkv_firehose_free(struct atkv_firehose *fh);

/* Decodes frame[0..n). On success *ev points into the decoder and the frame. For #commit and
 * #sync the blocks are parsed as a CAR and every block checked against its CID (a block that
 * fails does not fail the frame; fetching its record does). Returns 0 or a negative ATKV_E_*
 * code with err->offset relative to the frame: ATKV_E_FRAME for a schema violation (missing or
 * mistyped field, bad action, op without its CID), ATKV_E_SYNTAX for an invalid DID, NSID or
 * record key, and the CBOR, CID and CAR errors of the layers below. */
int atkv_firehose_decode(struct atkv_firehose *fh, const uint8_t *frame, size_t n,
                         const struct atkv_event **ev, struct atkv_err *err);

/* Records whose JSON would be longer than max bytes are refused by atkv_firehose_record, before
 * the JSON is built past max (default: no limit). Cannot fail. */
void atkv_firehose_set_json_max(struct atkv_firehose *fh, size_t max);

/* The record of op i of the last decoded #commit, as atproto JSON in a buffer of the decoder
 * (valid until the next call). Returns 0 with *json and *len set, or ATKV_E_BLOCK_MISSING
 * (deleted record, or block not in the CAR: a tooBig commit), ATKV_E_CID_MISMATCH,
 * ATKV_E_FRAME when the block is not a map (every record is one), ATKV_E_TOO_LARGE when its
 * JSON would exceed the limit of atkv_firehose_set_json_max, or a DAG-CBOR error
 * (err->offset relative to the record's block). */
int atkv_firehose_record(struct atkv_firehose *fh, size_t i, const char **json, size_t *len,
                         struct atkv_err *err);

/* A block of the last decoded #commit or #sync's CAR slice by its binary CID (checked against
 * it): 0 with *data and *n (valid as the frame is), ATKV_E_BLOCK_MISSING or ATKV_E_CID_MISMATCH.
 * Its signature fits atkv_mstedit_get, with fh as arg. */
int atkv_firehose_block(void *fh, const uint8_t *cid, size_t cid_n, const uint8_t **data, size_t *n);

/* The name of an action: "create", "update", "delete". */
const char *atkv_action_name(enum atkv_action a);

#endif
