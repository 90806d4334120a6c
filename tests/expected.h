/* expected.h — the store atkv-builder must produce from the committed capture, as the reference
 * libraries decoded it (tests/data/firehose-expected.jsonl), optionally for N loops of the replay;
 * and the comparison of the buckets in a NATS server with it. */
#ifndef ATKV_EXPECTED_H
#define ATKV_EXPECTED_H

#include <jansson.h>
#include <nats/nats.h>
#include <stdint.h>

struct expected {
	json_t *records;    /* key → {"value": record, "cid": "..."}, or null when deleted */
	json_t *accounts;   /* escaped DID → value object */
	int64_t last_seq;
};

/* Loads the reference decoding at path (JSON lines). Bails out of the test when it cannot. */
void expected_load(struct expected *e, const char *path);
/* The store after `loops` loops of atkv-firehose-replay --loop: each loop's records with their
 * TID record keys shifted as the replay shifts them (other keys written again, alike), and the
 * accounts' seqs and last_seq those of the last loop. */
struct expected expected_looped(const struct expected *e, uint64_t loops);
void expected_free(struct expected *e);

/* The differences between bucket record and e (a missing, wrong or extra key, a wrong Atkv-Cid
 * or a delete that is not a KV delete), noting the first few. Reads the bucket in one pass. */
int expected_compare_records(jsCtx *js, const struct expected *e);
/* The same for bucket account. */
int expected_compare_accounts(jsCtx *js, const struct expected *e);

/* "did rkey" → subject URI of every like e holds (new reference: json_decref it). */
json_t *expected_likes(const struct expected *e);

/* The seq in bucket cursor, key firehose, or -1. */
int64_t expected_stored_cursor(jsCtx *js);

#endif
