/* ingest.c — firehose frames to KV writes (see ingest.h). */
#include "ingest.h"
#include "clock.h"
#include "buckets.h"
#include "err.h"
#include "log.h"
#include "resyncnote.h"
#include "tid.h"
#include <atkv/recordkey.h>
#include <atkv/syntax.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const char *const atkv_ingest_error_names[ATKV_INGEST_KINDS] = {
	[ATKV_INGEST_MALFORMED] = "malformed_frame",
	[ATKV_INGEST_CID_MISMATCH] = "cid_mismatch",
	[ATKV_INGEST_BLOCK_MISSING] = "block_missing",
	[ATKV_INGEST_BAD_RECORD] = "bad_record",
	[ATKV_INGEST_TOO_LARGE] = "too_large",
	[ATKV_INGEST_REPLAYED] = "replayed",
	[ATKV_INGEST_RELAY_ERROR] = "relay_error",
	[ATKV_INGEST_UNVERIFIED] = "unverified",
	[ATKV_INGEST_BROKEN_CHAIN] = "broken_chain",
	[ATKV_INGEST_STALE] = "stale_rev",
	[ATKV_INGEST_HELD] = "desynchronized",
};


int atkv_ingest_init(struct atkv_ingest *in, struct atkv_kvwriter *w, struct atkv_accounts *acc,
                     struct atkv_repoheads *heads)
{
	memset(in, 0, sizeof(*in));
	in->w = w;
	in->acc = acc;
	in->heads = heads;
	in->st.last_seq = -1;
	if (!(in->fh = atkv_firehose_new()))
		return ATKV_E_NOMEM;
	/* A record NATS cannot carry is skipped anyway: its JSON is not built past that size. */
	atkv_firehose_set_json_max(in->fh, atkv_kvwriter_max_value(w));
	return 0;
}

void atkv_ingest_destroy(struct atkv_ingest *in) { atkv_firehose_free(in->fh); }

static void skip(struct atkv_ingest *in, enum atkv_ingest_error kind, const struct atkv_event *ev,
                 const struct atkv_op *op, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void skip(struct atkv_ingest *in, enum atkv_ingest_error kind, const struct atkv_event *ev,
                 const struct atkv_op *op, const char *fmt, ...)
{
	/* Events the relay sends again after a reconnect are expected; the rest is news. */
	enum atkv_log_level level = kind == ATKV_INGEST_REPLAYED ? ATKV_LOG_DEBUG : ATKV_LOG_WARNING;
	/* One line for the failed check says what happened; the events held after it are many. */
	if (kind == ATKV_INGEST_HELD)
		level = ATKV_LOG_DEBUG;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	struct atkv_log_at at = {.seq = ev ? ev->seq : -1, .kind = atkv_ingest_error_names[kind]};
	if (ev && ev->did.p) {
		at.did = ev->did.p;
		at.did_n = (int)ev->did.n;
	}
	if (op) {
		at.path = op->path.p;
		at.path_n = (int)op->path.n;
	}
	in->st.errors[kind]++;
	atkv_log_event(level, &at, "%s", msg);
}

static enum atkv_ingest_error record_error_kind(int rc)
{
	switch (rc) {
	case ATKV_E_CID_MISMATCH: return ATKV_INGEST_CID_MISMATCH;
	case ATKV_E_BLOCK_MISSING: return ATKV_INGEST_BLOCK_MISSING;
	case ATKV_E_TOO_LARGE: return ATKV_INGEST_TOO_LARGE;
	default: return ATKV_INGEST_BAD_RECORD;
	}
}

static int write_op(struct atkv_ingest *in, const struct atkv_event *ev, size_t i)
{
	const struct atkv_op *op = &ev->ops[i];
	char key[ATKV_KEY_MAX + 1], cid[ATKV_CID_STR_MAX], e[160];
	struct atkv_write_meta meta = {.seq = ev->seq, .rev = ev->rev, .time = ev->time};
	struct atkv_err err = {0};
	int rc;

	/* The decoder checked the DID, collection and rkey, so the key always builds. */
	if (atkv_key_build(key, sizeof(key), ev->did.p, ev->did.n, op->collection.p, op->collection.n,
	                   op->rkey.p, op->rkey.n) < 0) {
		skip(in, ATKV_INGEST_BAD_RECORD, ev, op, "record key does not build");
		return 0;
	}
	if (op->action == ATKV_ACTION_DELETE) {
		rc = atkv_kvwriter_del(in->w, ATKV_BUCKET_RECORD, key, &meta);
		if (rc == ATKV_E_TOO_LARGE) {
			skip(in, ATKV_INGEST_TOO_LARGE, ev, op, "delete skipped: its headers exceed the NATS max payload");
			return 0;
		}
		if (rc == 0)
			in->st.deletes++;
		return rc;
	}
	const char *json;
	size_t len;
	rc = atkv_firehose_record(in->fh, i, &json, &len, &err);
	/* The JSON limit, not a CBOR length claiming more than the block holds (also TOO_LARGE). */
	if (rc == ATKV_E_TOO_LARGE && err.where && !strcmp(err.where, "json output")) {
		skip(in, ATKV_INGEST_TOO_LARGE, ev, op, "record skipped: its JSON exceeds the NATS max payload (%zu bytes)",
		     atkv_kvwriter_max_value(in->w));
		return 0;
	}
	if (rc) {
		skip(in, record_error_kind(rc), ev, op, "record skipped: %s", atkv_err_format(&err, e, sizeof(e)));
		return 0;
	}
	meta.cid = (struct atkv_str){cid, atkv_cid_format(&op->cid, cid)};
	rc = atkv_kvwriter_put(in->w, ATKV_BUCKET_RECORD, key, json, len, &meta);
	if (rc == ATKV_E_TOO_LARGE) {
		skip(in, ATKV_INGEST_TOO_LARGE, ev, op, "record skipped: larger than the NATS max payload (%zu bytes)", len);
		return 0;
	}
	if (rc == 0)
		op->action == ATKV_ACTION_CREATE ? in->st.creates++ : in->st.updates++;
	return rc;
}

static int write_account(struct atkv_ingest *in, const struct atkv_event *ev)
{
	char key[3 * ATKV_DID_MAX + 1];
	const char *json;
	size_t len;
	int rc = atkv_accounts_update(in->acc, ev, &json, &len);
	if (rc == ATKV_E_NATS) {
		atkv_log(ATKV_LOG_WARNING, "cannot read bucket account to merge seq %lld", (long long)ev->seq);
		return rc;
	}
	if (rc || atkv_key_escape(ev->did.p, ev->did.n, key, sizeof(key)) < 0)
		return rc ? rc : ATKV_E_SYNTAX;
	struct atkv_write_meta meta = {.seq = ev->seq, .time = ev->time};
	rc = atkv_kvwriter_put(in->w, ATKV_BUCKET_ACCOUNT, key, json, len, &meta);
	if (rc == ATKV_E_TOO_LARGE) {
		skip(in, ATKV_INGEST_TOO_LARGE, ev, NULL, "account update skipped: larger than the NATS max payload");
		return 0;
	}
	return rc;
}

static int write_ops(struct atkv_ingest *in, const struct atkv_event *ev)
{
	int rc = 0;
	for (size_t i = 0; i < ev->n_ops && rc == 0; i++)
		rc = write_op(in, ev, i);
	return rc;
}

static int write_head(struct atkv_ingest *in, const struct atkv_event *ev, const struct atkv_repohead *head,
                      const char *reason)
{
	const char *key, *json;
	size_t len;
	int rc = atkv_repoheads_set(in->heads, ev->did.p, ev->did.n, head, reason, &key, &json, &len);
	if (rc)
		return rc;
	struct atkv_write_meta meta = {.seq = ev->seq, .rev = ev->rev, .time = ev->time};
	return atkv_kvwriter_put(in->w, ATKV_BUCKET_REPO, key, json, len, &meta);
}

static int rev_cmp(struct atkv_str rev, const char *head)
{
	int c = memcmp(rev.p, head, rev.n < ATKV_TID_LEN ? rev.n : ATKV_TID_LEN);
	return c ? c : (int)rev.n - ATKV_TID_LEN;
}

/* Asks for ev's repository to be resynchronized (purge: its records removed), noted in bucket
 * cursor with ev's writes (resyncnote.h) whether or not the builder can take it now. *asked:
 * whether it did. Returns 0 or the write's error. */
static int ask_resync(struct atkv_ingest *in, const struct atkv_event *ev, const struct atkv_repohead *head,
                      bool purge, bool *asked)
{
	*asked = in->resync && in->resync(in->resync_arg, ev->did.p, ev->did.n, head, purge, ev->seq);
	char key[ATKV_RESYNCNOTE_KEY_MAX + 1];
	if (!in->resync || ev->seq < 0 || atkv_resyncnote_key(ev->did.p, ev->did.n, purge, key, sizeof(key)) < 0)
		return 0;
	struct atkv_write_meta meta = {.seq = ev->seq, .time = ev->time};
	return atkv_kvwriter_put(in->w, ATKV_BUCKET_CURSOR, key, purge ? "purge" : "fetch", 5, &meta);
}

/* Marks ev's repository desynchronized (with why) in its head, written with ev, and asks for it
 * to be resynchronized. keep: ev is a verified commit that did not follow the head (a commit
 * missed before it): held, to be applied after the snapshot if the snapshot is older. */
static int mark_desync(struct atkv_ingest *in, const struct atkv_event *ev, const struct atkv_repohead *cur,
                       const char *why, const struct atkv_verdict *keep)
{
	struct atkv_repohead next = *cur;
	next.desync = true;
	next.held_rev[0] = '\0';
	bool plausible = keep && atkv_tid_plausible(ev->rev.p, ev->rev.n);
	if (plausible) {
		memcpy(next.held_rev, ev->rev.p, ATKV_TID_LEN);
		next.held_rev[ATKV_TID_LEN] = '\0';
	}
	in->st.desyncs++;
	int rc = ask_resync(in, ev, &next, false, &next.resyncing);
	if (rc)
		return rc;
	if (plausible && next.resyncing && in->held)
		in->held(in->resync_arg, ev->did.p, ev->did.n, in->frame, in->frame_n, keep->data, keep->data_n);
	return write_head(in, ev, &next, why);
}

/* Writes nothing of ev but the repository's head, marked desynchronized. */
static int desync(struct atkv_ingest *in, const struct atkv_event *ev, const struct atkv_repohead *cur,
                  enum atkv_ingest_error kind, const char *why, const struct atkv_verdict *keep)
{
	skip(in, kind, ev, NULL, "commit not written: %s; the repository is desynchronized", why);
	return mark_desync(in, ev, cur, why, keep);
}

/* ev of a desynchronized repository is not written; its rev is remembered, so that a
 * resynchronization from before it is done again, and a resynchronization is asked for unless
 * one is under way or failed a moment ago. */
static int hold(struct atkv_ingest *in, const struct atkv_event *ev, const struct atkv_verdict *vd,
                struct atkv_repohead *cur)
{
	skip(in, ATKV_INGEST_HELD, ev, NULL, "commit not written: the repository is desynchronized");
	bool plausible = atkv_tid_plausible(ev->rev.p, ev->rev.n);
	if (plausible && (!cur->held_rev[0] || rev_cmp(ev->rev, cur->held_rev) > 0)) {
		memcpy(cur->held_rev, ev->rev.p, ATKV_TID_LEN);
		cur->held_rev[ATKV_TID_LEN] = '\0';
	}
	if (!cur->resyncing && atkv_now_ms() >= cur->retry_ms) {
		int rc = ask_resync(in, ev, cur, false, &cur->resyncing);
		if (rc)
			return rc;
	}
	/* A rev too far ahead is not applied later either: the repository's own snapshot decides. */
	if (cur->resyncing && in->held && plausible)
		in->held(in->resync_arg, ev->did.p, ev->did.n, in->frame, in->frame_n, vd->data, vd->data_n);
	/* Its records may be written after the resynchronization: where to find them later. */
	for (size_t i = 0; i < ev->n_ops; i++)
		if (ev->ops[i].action == ATKV_ACTION_CREATE)
			atkv_repohead_add_collection(cur, ev->ops[i].collection.p, ev->ops[i].collection.n);
	return atkv_repoheads_put(in->heads, ev->did.p, ev->did.n, cur);
}



/* A verified commit written after the checks that need the events in order (Sync 1.1): its
 * repository is not desynchronized, its rev is above the head's and not in the future, and its
 * prevData is the head's data. An event the relay sends again (its seq not above the head's)
 * is written again as it was, so a replay from the cursor restores what failed to land. */
static int write_verified(struct atkv_ingest *in, const struct atkv_event *ev, const struct atkv_verdict *vd)
{
	struct atkv_repohead cur, next;
	char why[320];
	int rc = atkv_repoheads_get(in->heads, ev->did.p, ev->did.n, vd->ahead_read && !vd->ahead_rc ? &vd->ahead : NULL, &cur);
	if (rc)
		return rc;
	if (cur.desync && vd->rc) {
		/* Not even held: what it says (its rev) must not steer the resynchronization. */
		skip(in, ATKV_INGEST_UNVERIFIED, ev, NULL, "commit not written: %s", vd->why);
		return 0;
	}
	if (cur.desync)
		return hold(in, ev, vd, &cur);
	if (vd->rc)
		return desync(in, ev, &cur, ATKV_INGEST_UNVERIFIED, vd->why, NULL);
	bool newer = !cur.known || rev_cmp(ev->rev, cur.rev) > 0;
	if (!newer && ev->seq <= cur.seq) {
		if ((rc = write_ops(in, ev)))
			return rc;
		return write_head(in, ev, &cur, NULL);
	}
	/* Behind a snapshot (a resynchronization's or a backfill's): the relay lags the PDS, and
	 * the snapshot has the commit already. Nothing is wrong. */
	if (!newer && cur.seq < 0) {
		atkv_log_event(ATKV_LOG_DEBUG,
		               &(struct atkv_log_at){.seq = ev->seq, .did = ev->did.p, .did_n = (int)ev->did.n},
		               "commit skipped: the repository's snapshot at rev %s has it", cur.rev);
		return 0;
	}
	if (!newer) {
		skip(in, ATKV_INGEST_STALE, ev, NULL, "commit skipped: rev %.*s is not above the repository's %s",
		     (int)ev->rev.n, ev->rev.p, cur.rev);
		return 0;
	}
	if (!atkv_tid_plausible(ev->rev.p, ev->rev.n)) {
		snprintf(why, sizeof(why), "rev %.*s is in the future", (int)ev->rev.n, ev->rev.p);
		return desync(in, ev, &cur, ATKV_INGEST_UNVERIFIED, why, NULL);
	}
	if (cur.known && !(ev->prev_data.bytes && ev->prev_data.len == cur.data_n &&
	                   !memcmp(ev->prev_data.bytes, cur.data, cur.data_n))) {
		snprintf(why, sizeof(why), "its prevData is not the data of the repository's last commit (rev %s)", cur.rev);
		return desync(in, ev, &cur, ATKV_INGEST_BROKEN_CHAIN, why, vd);
	}
	next = cur;
	/* A repository's first commit (no since): it had no records before, so its head knows all
	 * its collections from here on. */
	if (!cur.known && !ev->since.p)
		next.partial = false;
	next.known = true;
	next.seq = ev->seq;
	memcpy(next.rev, ev->rev.p, ATKV_TID_LEN);
	next.rev[ATKV_TID_LEN] = 0;
	memcpy(next.data, vd->data, vd->data_n);
	next.data_n = vd->data_n;
	for (size_t i = 0; i < ev->n_ops; i++)
		if (ev->ops[i].action == ATKV_ACTION_CREATE)
			atkv_repohead_add_collection(&next, ev->ops[i].collection.p, ev->ops[i].collection.n);
	if ((rc = write_ops(in, ev)))
		return rc;
	return write_head(in, ev, &next, NULL);
}

static bool account_deleted(const struct atkv_event *ev)
{
	return !ev->active && ev->status.p && ev->status.n == 7 && !memcmp(ev->status.p, "deleted", 7);
}

/* An account deleted: every record of it is to be deleted (Sync 1.1). Its commits are held
 * until then. */
static int purge(struct atkv_ingest *in, const struct atkv_event *ev)
{
	struct atkv_repohead cur;
	int rc = atkv_repoheads_get(in->heads, ev->did.p, ev->did.n, NULL, &cur);
	if (rc)
		return rc;
	cur.desync = true;
	if ((rc = ask_resync(in, ev, &cur, true, &cur.resyncing)))
		return rc;
	atkv_log_event(ATKV_LOG_INFO, &(struct atkv_log_at){.seq = ev->seq, .did = ev->did.p, .did_n = (int)ev->did.n},
	               "account deleted: its records are being removed");
	return write_head(in, ev, &cur, "account deleted");
}

/* A #sync states the repository's current commit (after a reset or a migration): unless the
 * head is there already, the repository is resynchronized from its PDS, which is verified; the
 * event itself is not needed to be trusted. */
static int sync_asserted(struct atkv_ingest *in, const struct atkv_event *ev)
{
	struct atkv_repohead cur;
	char why[96];
	int rc = atkv_repoheads_get(in->heads, ev->did.p, ev->did.n, NULL, &cur);
	if (rc)
		return rc;
	if (!ev->rev.p || !atkv_syntax_tid(ev->rev.p, ev->rev.n)) {
		skip(in, ATKV_INGEST_MALFORMED, ev, NULL, "#sync skipped: its rev is not a TID");
		return 0;
	}
	if (cur.desync || (cur.known && rev_cmp(ev->rev, cur.rev) <= 0))
		return 0;
	snprintf(why, sizeof(why), "#sync at rev %.*s", (int)ev->rev.n, ev->rev.p);
	return mark_desync(in, ev, &cur, why, NULL);
}

static int write_event(struct atkv_ingest *in, const struct atkv_event *ev, const struct atkv_verdict *vd)
{
	int rc = 0;
	switch (ev->type) {
	case ATKV_EVENT_COMMIT:
		in->st.commits++;
		if (!in->heads)
			rc = write_ops(in, ev);
		else if (vd)
			rc = write_verified(in, ev, vd);
		else
			skip(in, ATKV_INGEST_UNVERIFIED, ev, NULL, "commit not written: it was not verified");
		break;
	case ATKV_EVENT_IDENTITY:
	case ATKV_EVENT_ACCOUNT:
		ev->type == ATKV_EVENT_IDENTITY ? in->st.identities++ : in->st.accounts++;
		rc = write_account(in, ev);
		if (!rc && in->heads && ev->type == ATKV_EVENT_ACCOUNT && account_deleted(ev))
			rc = purge(in, ev);
		break;
	case ATKV_EVENT_SYNC:
		in->st.syncs++;
		if (in->heads)
			rc = sync_asserted(in, ev);
		break;
	default:
		in->st.unknown++;
		atkv_log(ATKV_LOG_INFO, "event of unknown type %.*s at seq %lld skipped", (int)ev->t.n, ev->t.p,
		         (long long)ev->seq);
		break;
	}
	return rc;
}

int atkv_ingest_frame(struct atkv_ingest *in, const uint8_t *frame, size_t n, const struct atkv_verdict *vd)
{
	in->frame = frame;
	in->frame_n = n;
	const struct atkv_event *ev;
	struct atkv_err err = {0};
	char e[160];
	in->st.frames++;
	in->st.bytes += n;
	if (atkv_firehose_decode(in->fh, frame, n, &ev, &err)) {
		skip(in, ATKV_INGEST_MALFORMED, NULL, NULL, "frame skipped: %s", atkv_err_format(&err, e, sizeof(e)));
		return 0;
	}
	if (ev->type == ATKV_EVENT_ERROR) {
		in->st.errors[ATKV_INGEST_RELAY_ERROR]++;
		snprintf(in->relay_error, sizeof(in->relay_error), "%.*s: %.*s", (int)ev->name.n, ev->name.p,
		         ev->message.p ? (int)ev->message.n : 0, ev->message.p ? ev->message.p : "");
		/* The one a relay sends when our cursor is ahead of it needs an operator's decision. */
		bool future = ev->name.n == 12 && !memcmp(ev->name.p, "FutureCursor", 12);
		atkv_log(ATKV_LOG_ERROR, "relay error %s%s", in->relay_error,
		         future ? " (the stored cursor is ahead of this relay: if the relay was reset or "
		                  "replaced, run once with --cursor 0, or with the seq to resume after)"
		                : "");
		return ATKV_INGEST_RELAY_ERRORED;
	}
	if (ev->type == ATKV_EVENT_INFO) {
		in->st.infos++;
		atkv_log(ATKV_LOG_WARNING, "relay info %.*s: %.*s", (int)ev->name.n, ev->name.p,
		         ev->message.p ? (int)ev->message.n : 0, ev->message.p ? ev->message.p : "");
		return 0;
	}
	if (ev->seq < 0) {
		write_event(in, ev, vd);
		return 0;
	}
	int rc = atkv_kvwriter_begin(in->w, ev->seq);
	if (rc == ATKV_E_FRAME) {
		skip(in, ATKV_INGEST_REPLAYED, ev, NULL, "event skipped: seq not above the last one (%lld)",
		     (long long)in->st.last_seq);
		return 0;
	}
	if (rc)
		return rc;
	rc = write_event(in, ev, vd);
	/* Whatever stopped the event's writes, the watermark must not pass it: it is replayed. */
	if (rc < 0)
		atkv_kvwriter_fail(in->w, atkv_strerror(rc));
	atkv_kvwriter_end(in->w);
	in->st.last_seq = ev->seq;
	if (ev->time.p)
		snprintf(in->st.last_time, sizeof(in->st.last_time), "%.*s", (int)ev->time.n, ev->time.p);
	return rc;
}
