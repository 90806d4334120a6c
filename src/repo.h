/* repo.h — the records of a repository, out of the CAR com.atproto.sync.getRepo returns: the
 * commit at its root (which must be the DID asked for), its MST walked in key order, each
 * record's path split into collection and record key and its block made the JSON the firehose
 * path stores (recordjson.h). */
#ifndef ATKV_REPO_H
#define ATKV_REPO_H

#include <stddef.h>
#include <stdint.h>

#include "cid.h"
#include "commit.h"
#include "err.h"
#include "sigverify.h"

struct atkv_repo;

/* A reader reused for many repositories (its CAR index and buffers are kept); NULL when memory
 * is short. Free with atkv_repo_free (which accepts NULL). */
struct atkv_repo *atkv_repo_new(void);
void atkv_repo_free(struct atkv_repo *rp);
/* Records whose JSON would be longer than max bytes are skipped as ATKV_E_TOO_LARGE (default:
 * no limit). */
void atkv_repo_set_json_max(struct atkv_repo *rp, size_t max);

/* Every repository read from now on must have its commit signed with key (borrowed until it
 * is replaced; NULL: signatures are not checked, the default). */
void atkv_repo_set_key(struct atkv_repo *rp, const struct atkv_sigkey *key);

struct atkv_repo_record {
	const char *path;          /* "collection/rkey" as the tree holds it (not NUL-terminated) */
	size_t path_n;
	size_t collection_n;       /* the collection is path[0..collection_n) */
	const char *rkey;          /* the record key: path after the '/' */
	size_t rkey_n;
	const struct atkv_cid *cid;
	const char *json;          /* the record as JSON, or NULL when it is skipped: */
	size_t json_n;
	int error;                 /* why: ATKV_E_SYNTAX (the path), a block or DAG-CBOR error, */
	struct atkv_err err;       /* ATKV_E_TOO_LARGE; with where it was found */
};

/* Called for every record in path order; a nonzero return stops the read and is returned. All
 * of r points into the reader or the CAR: copy what must outlive the call. */
typedef int (*atkv_repo_visit)(void *arg, const struct atkv_repo_record *r);

/* Reads car[0..n) as the repository of did[0..did_n), calling visit for every record (skipped
 * ones included, with their error). Returns 0 with *commit set (pointing into car); ATKV_E_FRAME
 * ("repo did") when the commit is another account's; ATKV_E_SIGNATURE ("repo commit sig") when a
 * key is set and the commit's signature does not verify with it; the CAR's, the commit's or the MST's
 * error (a broken tree fails the whole repository, a broken record only itself); or what visit
 * returned. */
int atkv_repo_read(struct atkv_repo *rp, const uint8_t *car, size_t n, const char *did, size_t did_n,
                   struct atkv_commit *commit, atkv_repo_visit visit, void *arg, struct atkv_err *err);

#endif
