/* commitcheck.c — Sync 1.1 checks of a #commit (see commitcheck.h). The ops are undone in
 * reverse order on an editor of the tree after the commit, with only the event's blocks at
 * hand: an update's or delete's prev goes back in, a create's key comes out. */
#include "commitcheck.h"
#include "mstedit.h"
#include "sha256.h"

#include <stdlib.h>
#include <string.h>

struct atkv_commitcheck {
	struct atkv_sha256 *h;
	struct atkv_buf unsigned_commit;
};

struct atkv_commitcheck *atkv_commitcheck_new(void)
{
	struct atkv_commitcheck *cc = calloc(1, sizeof(*cc));
	if (cc && !(cc->h = atkv_sha256_new())) {
		free(cc);
		return NULL;
	}
	return cc;
}

void atkv_commitcheck_free(struct atkv_commitcheck *cc)
{
	if (!cc)
		return;
	atkv_sha256_free(cc->h);
	atkv_buf_free(&cc->unsigned_commit);
	free(cc);
}

static bool same_cid(const struct atkv_cid *a, const uint8_t *b, size_t bn)
{
	return a->bytes && a->len == bn && !memcmp(a->bytes, b, bn);
}

/* Whether the tree after the commit holds op as it says: a create's or update's record, no
 * deleted one; with_prev, also whether the op says what it replaced exactly when it must (Sync
 * 1.1: a create has no prev, an update and a delete have one). */
static int op_held(struct atkv_mstedit *ed, const struct atkv_op *op, bool with_prev, struct atkv_err *err)
{
	uint8_t held[ATKV_CID_MAX_BYTES];
	size_t held_n;
	const uint8_t *key = (const uint8_t *)op->path.p;
	int rc = atkv_mstedit_get_value(ed, key, op->path.n, held, &held_n, err);
	if (rc)
		return rc;
	bool holds = op->action == ATKV_ACTION_DELETE ? held_n == 0 : same_cid(&op->cid, held, held_n);
	bool has_prev = op->prev.bytes != NULL;
	if (!holds || (with_prev && has_prev == (op->action == ATKV_ACTION_CREATE)))
		return atkv_fail(err, ATKV_E_MST, 0, "commit op");
	return 0;
}

/* Op undone on the tree after it, which must hold it. */
static int undo_op(struct atkv_mstedit *ed, const struct atkv_op *op, struct atkv_err *err)
{
	const uint8_t *key = (const uint8_t *)op->path.p;
	int rc = op_held(ed, op, true, err);
	if (rc)
		return rc;
	if (op->action == ATKV_ACTION_CREATE)
		return atkv_mstedit_del(ed, key, op->path.n, err);
	return atkv_mstedit_put(ed, key, op->path.n, op->prev.bytes, op->prev.len, err);
}

/* Whether two ops name one path: undone in turn, they could hide a record the commit never
 * held (a create of a forged value, then an update back to the signed one). */
static bool path_twice(const struct atkv_event *ev)
{
	for (size_t i = 1; i < ev->n_ops; i++)
		for (size_t j = 0; j < i; j++)
			if (ev->ops[i].path.n == ev->ops[j].path.n &&
			    !memcmp(ev->ops[i].path.p, ev->ops[j].path.p, ev->ops[i].path.n))
				return true;
	return false;
}

int atkv_commitcheck_run(struct atkv_commitcheck *cc, struct atkv_firehose *fh, const struct atkv_event *ev,
                         const struct atkv_sigkey *key, const struct atkv_cid *last_data, struct atkv_commit *commit,
                         struct atkv_err *err)
{
	const uint8_t *block;
	size_t block_n;
	int rc = atkv_firehose_block(fh, ev->commit.bytes, ev->commit.len, &block, &block_n);
	if (rc)
		return atkv_fail(err, rc, 0, "commit block");
	if ((rc = atkv_commit_parse(block, block_n, commit, err)))
		return rc;
	if (commit->did_n != ev->did.n || memcmp(commit->did, ev->did.p, ev->did.n))
		return atkv_fail(err, ATKV_E_FRAME, 0, "commit did");
	if (!ev->rev.p || ev->rev.n != strlen(commit->rev) || memcmp(commit->rev, ev->rev.p, ev->rev.n))
		return atkv_fail(err, ATKV_E_FRAME, 0, "commit rev");
	if (key) {
		if ((rc = atkv_commit_unsigned(block, block_n, commit, &cc->unsigned_commit)))
			return atkv_fail(err, rc, 0, "commit");
		if ((rc = atkv_sig_verify(key, (const uint8_t *)cc->unsigned_commit.data, cc->unsigned_commit.len,
		                          commit->sig, commit->sig_n)))
			return atkv_fail(err, rc, 0, "commit sig");
	}
	if (path_twice(ev))
		return atkv_fail(err, ATKV_E_MST, 0, "commit op path");
	if (last_data && !(ev->prev_data.bytes && same_cid(&ev->prev_data, last_data->bytes, last_data->len)))
		return atkv_fail(err, ATKV_E_MST, 0, "commit prevData chain");
	struct atkv_mstedit *ed = atkv_mstedit_new(cc->h, atkv_firehose_block, fh, &commit->data);
	if (!ed)
		return atkv_fail(err, ATKV_E_NOMEM, 0, "commit");
	if (!ev->prev_data.bytes) {
		/* Without prevData (a commit from before Sync 1.1) there is no tree before to lead back
		 * to, but every op must still be what the signed tree holds: else a relay could strip
		 * prevData and change a record. */
		for (size_t i = 0; !rc && i < ev->n_ops; i++)
			rc = op_held(ed, &ev->ops[i], false, err);
		atkv_mstedit_free(ed);
		return rc;
	}
	for (size_t i = ev->n_ops; !rc && i-- > 0;)
		rc = undo_op(ed, &ev->ops[i], err);
	uint8_t root[ATKV_CID_SHA256_BYTES];
	if (!rc && !(rc = atkv_mstedit_root(ed, root, err)) && !same_cid(&ev->prev_data, root, sizeof(root)))
		rc = atkv_fail(err, ATKV_E_MST, 0, "commit prevData");
	atkv_mstedit_free(ed);
	return rc;
}
