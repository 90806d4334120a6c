/* repo.c — a repository's records out of its CAR (see repo.h). */
#include "repo.h"
#include "buf.h"
#include "car.h"
#include "mst.h"
#include "recordjson.h"
#include "sha256.h"
#include "sigverify.h"

#include <atkv/syntax.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct atkv_repo {
	struct atkv_car *car;
	struct atkv_sha256 *h;
	struct atkv_buf json;
	size_t json_max;
	const struct atkv_sigkey *key;   /* borrowed; NULL: the commit's signature is not checked */
	struct atkv_buf unsigned_commit;
};

struct walk {
	struct atkv_repo *rp;
	atkv_repo_visit visit;
	void *arg;
};

struct atkv_repo *atkv_repo_new(void)
{
	struct atkv_repo *rp = calloc(1, sizeof(*rp));
	if (!rp)
		return NULL;
	rp->car = atkv_car_new();
	rp->h = atkv_sha256_new();
	rp->json_max = SIZE_MAX;
	if (!rp->car || !rp->h) {
		atkv_repo_free(rp);
		return NULL;
	}
	return rp;
}

void atkv_repo_free(struct atkv_repo *rp)
{
	if (!rp)
		return;
	atkv_car_free(rp->car);
	atkv_sha256_free(rp->h);
	atkv_buf_free(&rp->json);
	atkv_buf_free(&rp->unsigned_commit);
	free(rp);
}

void atkv_repo_set_json_max(struct atkv_repo *rp, size_t max) { rp->json_max = max; }

void atkv_repo_set_key(struct atkv_repo *rp, const struct atkv_sigkey *key) { rp->key = key; }

/* One tree entry: its path checked and split, its record made JSON; either way, visited. */
static int on_entry(void *arg, const uint8_t *key, size_t key_n, const struct atkv_cid *value)
{
	struct walk *w = arg;
	struct atkv_repo_record r = {.path = (const char *)key, .path_n = key_n, .cid = value};
	const char *slash = memchr(key, '/', key_n);
	if (slash) {
		r.collection_n = (size_t)(slash - r.path);
		r.rkey = slash + 1;
		r.rkey_n = key_n - r.collection_n - 1;
	}
	if (!slash || !atkv_syntax_nsid(r.path, r.collection_n) || !atkv_syntax_rkey(r.rkey, r.rkey_n)) {
		r.error = atkv_fail(&r.err, ATKV_E_SYNTAX, 0, "repo record path");
	} else if ((r.error = atkv_record_json(w->rp->car, value, w->rp->json_max, &w->rp->json, &r.err)) == 0) {
		r.json = w->rp->json.data;
		r.json_n = w->rp->json.len;
	}
	return w->visit(w->arg, &r);
}

int atkv_repo_read(struct atkv_repo *rp, const uint8_t *car, size_t n, const char *did, size_t did_n,
                   struct atkv_commit *commit, atkv_repo_visit visit, void *arg, struct atkv_err *err)
{
	int rc = atkv_car_load(rp->car, car, n, err);
	if (rc)
		return rc;
	if (atkv_car_root_count(rp->car) != 1)
		return atkv_fail(err, ATKV_E_CAR_HEADER, 0, "repo car roots");
	const struct atkv_cid *root = atkv_car_root(rp->car, 0);
	const uint8_t *block;
	size_t block_n;
	if ((rc = atkv_car_get(rp->car, root->bytes, root->len, &block, &block_n)))
		return atkv_fail(err, rc, 0, "repo commit");
	if ((rc = atkv_commit_parse(block, block_n, commit, err)))
		return rc;
	if (commit->did_n != did_n || memcmp(commit->did, did, did_n))
		return atkv_fail(err, ATKV_E_FRAME, 0, "repo did");
	if (rp->key) {
		if ((rc = atkv_commit_unsigned(block, block_n, commit, &rp->unsigned_commit)))
			return atkv_fail(err, rc, 0, "repo commit");
		if ((rc = atkv_sig_verify(rp->key, (const uint8_t *)rp->unsigned_commit.data, rp->unsigned_commit.len,
		                          commit->sig, commit->sig_n)))
			return atkv_fail(err, rc, 0, "repo commit sig");
	}
	struct walk w = {rp, visit, arg};
	return atkv_mst_walk(rp->car, rp->h, &commit->data, on_entry, &w, err);
}
