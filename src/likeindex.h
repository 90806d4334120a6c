/* likeindex.h — the like index in SQLite: for each like (liker DID, rkey) its subject's AT-URI
 * and CID and its createdAt; the likers of each subject; a like count per subject, kept exact.
 * A put that changes a like's subject moves it; applying a change twice changes nothing.
 * atkv-like-indexer writes it (WAL mode, a transaction per batch); atkv-get-likes-by reads it,
 * opened read-only. */
#ifndef ATKV_LIKEINDEX_H
#define ATKV_LIKEINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct atkv_likeindex;

/* Opens (for writing: creates, and sets WAL mode) the index at path. Returns 0, or
 * ATKV_E_DB with why naming the file and SQLite's reason. */
int atkv_likeindex_open(const char *path, bool readonly, struct atkv_likeindex **out, char *why, size_t why_n);
void atkv_likeindex_close(struct atkv_likeindex *ix);

/* A transaction around a batch of changes. Return 0 or ATKV_E_DB. */
int atkv_likeindex_begin(struct atkv_likeindex *ix);
int atkv_likeindex_commit(struct atkv_likeindex *ix);
void atkv_likeindex_rollback(struct atkv_likeindex *ix);

/* Applies a put of like record json[0..n) at (did, rkey), the change at stream position seq.
 * Returns 0; ATKV_E_SYNTAX with why when the value is not a JSON object with subject.uri
 * (nothing changes then); or ATKV_E_DB. */
int atkv_likeindex_put(struct atkv_likeindex *ix, uint64_t seq, const char *did, const char *rkey, const char *json,
                       size_t n, char *why, size_t why_n);
/* Applies a delete of (did, rkey) at stream position seq. Returns 0 (also when there was no
 * such like) or ATKV_E_DB. */
int atkv_likeindex_delete(struct atkv_likeindex *ix, uint64_t seq, const char *did, const char *rkey);

/* The bulk load: the first fill of an empty index from a store of millions of likes. After
 * load_start, puts and deletes are only appended (in transactions as usual), and the index
 * answers nothing; load_finish then builds it from them in one transaction, by sorting —
 * several times faster than a B-tree insert per like. The last change of each like (highest
 * seq) wins, so changes may come twice. The changes wait in a file of their own beside the
 * index (PATH-load), removed when the load is done. A load survives restarts: loading tells
 * whether one runs (to a reader: whether the index is still empty beside such a file). load_start returns 0, ATKV_E_ARG when the index is not empty, or ATKV_E_DB.
 * load_finish calls tick (when not NULL) every so often; a tick that returns non-zero stops
 * it: ATKV_E_STOPPED, and the load goes on as before. Otherwise 0 or ATKV_E_DB. */
bool atkv_likeindex_loading(struct atkv_likeindex *ix);
int atkv_likeindex_load_start(struct atkv_likeindex *ix);
int atkv_likeindex_load_finish(struct atkv_likeindex *ix, int (*tick)(void *arg), void *arg);

struct atkv_like_row {
	const char *did;          /* the liker */
	const char *rkey;         /* the like record's key */
	const char *subject_uri;
	const char *subject_cid;  /* NULL when the record had none */
	const char *created_at;   /* NULL when the record had none */
};

/* Calls fn for each like by did (newest first), or of subject_uri (newest first), at most
 * limit (0: all). fn returns 0 to go on. Return 0 or ATKV_E_DB. */
int atkv_likeindex_by_liker(struct atkv_likeindex *ix, const char *did, int64_t limit,
                            int (*fn)(void *arg, const struct atkv_like_row *row), void *arg);
int atkv_likeindex_by_subject(struct atkv_likeindex *ix, const char *subject_uri, int64_t limit,
                              int (*fn)(void *arg, const struct atkv_like_row *row), void *arg);

/* The like count of subject_uri (0 when unknown). Returns 0 or ATKV_E_DB. */
int atkv_likeindex_count(struct atkv_likeindex *ix, const char *subject_uri, int64_t *count);
/* Likes and liked subjects in the index. Returns 0 or ATKV_E_DB. */
int atkv_likeindex_totals(struct atkv_likeindex *ix, int64_t *likes, int64_t *subjects);

/* SQLite's message for the last failure. */
const char *atkv_likeindex_error(struct atkv_likeindex *ix);

#endif
