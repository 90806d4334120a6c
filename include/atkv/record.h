/* atkv/record.h — records in the KV bucket `record`, addressed by AT-URI: the key of a record,
 * and the message that writes or deletes it with the Atkv-* headers consumers may read
 * (DESIGN.md). atkv-builder's asynchronous writes build their messages with atkv_record_msg;
 * atkv_record_put and atkv_record_delete are the synchronous form for tools and tests. */
#ifndef ATKV_RECORD_H
#define ATKV_RECORD_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <atkv/error.h>
#include <atkv/recordkey.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATKV_BUCKET_RECORD "record"

/* What a write carries besides its value. A NULL text or a negative seq leaves its header out. */
struct atkv_record_meta {
	int64_t seq;                 /* Atkv-Seq: the relay's seq of the event */
	const char *cid;             /* Atkv-Cid: the record's CID */
	size_t cid_n;
	const char *rev;             /* Atkv-Rev: the repo revision (a TID) */
	size_t rev_n;
	const char *time;            /* Atkv-Time: the event's time */
	size_t time_n;
};

/* The parts of at://DID/COLLECTION/RKEY, NUL-terminated. */
struct atkv_record_uri {
	char did[ATKV_DID_MAX + 1];
	char collection[ATKV_NSID_MAX + 1];
	char rkey[ATKV_RKEY_MAX + 1];
};

/* Splits a record's AT-URI; the authority must be a DID (a handle names no record in the KV).
 * Returns 0, or ATKV_E_SYNTAX. */
int atkv_record_uri_parse(const char *uri, size_t n, struct atkv_record_uri *out);

/* Writes "at://DID/COLLECTION/RKEY" into out (capacity cap, NUL-terminated). Returns its length,
 * or ATKV_E_BUFFER. */
long atkv_record_uri_build(char *out, size_t cap, const char *did, const char *collection, const char *rkey);

/* The message that puts value[0..n) at key (atkv_key_build) of bucket, or, when del is true,
 * deletes it (no value, header KV-Operation: DEL). *header_bytes (when not NULL) is set to the
 * size of the header block on the wire, for checks against the server's max payload. The
 * message is the caller's to publish or destroy. Returns 0, ATKV_E_NOMEM, or ATKV_E_TOO_LARGE
 * when a header value is over 255 bytes. */
int atkv_record_msg(natsMsg **out, const char *bucket, const char *key, const void *value, size_t n, bool del,
                    const struct atkv_record_meta *meta, size_t *header_bytes);

/* Puts the record JSON json[0..n) at uri in bucket `record` and waits for JetStream's
 * acknowledgement; meta may be NULL. Returns 0, ATKV_E_SYNTAX (the URI), or ATKV_E_NATS with
 * NATS's reason in why. The JSON is stored as given: callers check it is an atproto record. */
int atkv_record_put(jsCtx *js, const char *uri, const char *json, size_t n, const struct atkv_record_meta *meta,
                    char *why, size_t why_n);

/* Deletes the record at uri (a KV delete: consumers see a DEL). Returns as atkv_record_put. */
int atkv_record_delete(jsCtx *js, const char *uri, const struct atkv_record_meta *meta, char *why, size_t why_n);

#ifdef __cplusplus
}
#endif

#endif
