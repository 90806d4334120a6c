/* backfill.c — one repository backfilled (see backfill.h). */
#define _DEFAULT_SOURCE
#include "backfill.h"
#include "diddoc.h"
#include "didresolve.h"
#include "firehose.h"
#include "httpconn.h"
#include "log.h"
#include "repo.h"
#include "repowriter.h"
#include "sigverify.h"

#include <atkv/record.h>
#include <atkv/recordkey.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Puts of one worker unacknowledged at once: enough to keep JetStream busy across a round trip
 * (they hold copies of at most one repository's records, so --max-repo-bytes bounds them). */
#define MAX_PENDING 4096

struct atkv_backfill {
	struct atkv_repowriter *writer;
	struct atkv_backfill_options o;
	struct atkv_httpc *http;
	struct atkv_repo *repo;
	struct atkv_buf body;
	struct atkv_http_response resp;
	struct atkv_firehose *fh;   /* for held commits; made when first needed */
};

/* One record's write, with what the walk of its repository needs. */
struct job {
	struct atkv_backfill *b;
	const char *did;
	const struct atkv_commit *commit;
	struct atkv_backfill_result *res;
	struct atkv_prune *prune;   /* NULL unless resynchronizing */
	char time[32];
	int error;
	char *why;
	size_t why_n;
};

int atkv_backfill_new(natsConnection *nc, const struct atkv_backfill_options *o, struct atkv_backfill **out, char *why,
                      size_t why_n)
{
	struct atkv_backfill *b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(why, why_n, "out of memory");
		return -1;
	}
	b->o = *o;
	if (atkv_repowriter_new(nc, MAX_PENDING, o->timeout_ms, &b->writer, why, why_n) ||
	    atkv_httpc_new(o->ca_file, o->timeout_ms, "atkv-backfill/" PACKAGE_VERSION, &b->http, why, why_n) ||
	    !(b->repo = atkv_repo_new())) {
		if (b->http && !b->repo)
			snprintf(why, why_n, "out of memory");
		atkv_backfill_free(b);
		return -1;
	}
	atkv_repo_set_json_max(b->repo, o->max_value);
	*out = b;
	return 0;
}

void atkv_backfill_free(struct atkv_backfill *b)
{
	if (!b)
		return;
	atkv_repowriter_free(b->writer);
	atkv_httpc_free(b->http);
	atkv_repo_free(b->repo);
	atkv_buf_free(&b->body);
	atkv_http_response_free(&b->resp);
	atkv_firehose_free(b->fh);
	free(b);
}

/* A GET whose answer must be 200: other statuses say why (and whether to come back). */
static int get_ok(struct atkv_backfill *b, const char *url, const char *accept, size_t max, struct atkv_backfill_result *res,
                  char *why, size_t why_n)
{
	if (atkv_httpc_get(b->http, url, accept, max, &b->body, &b->resp, why, why_n))
		return ATKV_E_TIMEOUT;
	res->http_status = b->resp.status;
	res->retry_after_s = b->resp.retry_after_s;
	if (b->resp.status == 200)
		return 0;
	/* An XRPC error body says which ({"error":"RepoNotFound",...}); keep it short. */
	snprintf(why, why_n, "%s: HTTP %d %.*s", url, b->resp.status, (int)(b->body.len < 160 ? b->body.len : 160),
	         b->body.data ? b->body.data : "");
	return b->resp.status == 429 || b->resp.status >= 500 ? ATKV_E_TIMEOUT : ATKV_E_ARG;
}

/* did's PDS (unless one is given), and its signing key into *key when verifying (the caller
 * frees it), both from its DID document. */
static int resolve(struct atkv_backfill *b, const char *did, char *pds, size_t pds_n, struct atkv_sigkey **key,
                   struct atkv_backfill_result *res, char *why, size_t why_n)
{
	*key = NULL;
	if (b->o.pds)
		snprintf(pds, pds_n, "%s", b->o.pds);
	if (b->o.pds && !b->o.verify)
		return 0;
	/* Not an earlier request's, when no answer comes. */
	b->resp.status = 0;
	b->resp.retry_after_s = -1;
	int rc = atkv_didresolve_fetch(b->http, b->o.plc, did, &b->body, &b->resp, why, why_n);
	res->http_status = b->resp.status;
	res->retry_after_s = b->resp.retry_after_s;
	if (rc)
		return rc;
	if (!b->o.pds && (rc = atkv_diddoc_pds(b->body.data, b->body.len, did, pds, pds_n, why, why_n)))
		return rc;
	return b->o.verify ? atkv_didresolve_key(b->body.data, b->body.len, did, key, why, why_n) : 0;
}

static int on_record(void *arg, const struct atkv_repo_record *r)
{
	struct job *j = arg;
	char key[ATKV_KEY_MAX + 1], cid[ATKV_CID_STR_MAX];
	j->res->records++;
	bool keyed = r->rkey &&
	             atkv_key_build(key, sizeof(key), j->did, strlen(j->did), r->path, r->collection_n, r->rkey, r->rkey_n) >= 0;
	/* The repository holds it, written or not: a resynchronization must not delete its key. */
	if (keyed && j->prune &&
	    (atkv_prune_keep(j->prune, key, strlen(key)) || atkv_prune_collection(j->prune, r->path, r->collection_n)))
		return j->error = ATKV_E_NOMEM;
	if (!r->json || !keyed) {
		char e[160];
		j->res->skipped++;
		atkv_log(ATKV_LOG_WARNING, "%s: record %.*s skipped: %s", j->did, (int)r->path_n, r->path,
		         r->json ? "its key does not build" : atkv_err_format(&r->err, e, sizeof(e)));
		return 0;
	}
	struct atkv_record_meta meta = {.seq = -1, .cid = cid, .cid_n = atkv_cid_format(r->cid, cid),
	                                .rev = j->commit->rev, .rev_n = strlen(j->commit->rev),
	                                .time = j->time, .time_n = strlen(j->time)};
	int rc = atkv_repowriter_put(j->b->writer, key, r->json, r->json_n, &meta, j->why, j->why_n);
	if (rc == ATKV_E_TOO_LARGE)
		j->res->skipped++;
	else if (rc)
		return j->error = rc; /* NATS failed: stop, the repository is done again later */
	return 0;
}

/* A buffer kept between repositories past this size is let go: one huge repository must not
 * hold its memory for the rest of the run. */
#define KEEP_BUFFER_MAX (32u << 20)

static int backfill_repo(struct atkv_backfill *b, const char *did, struct atkv_prune *prune, bool all_known,
                         struct atkv_backfill_result *res, char *why, size_t why_n)
{
	memset(res, 0, sizeof(*res));
	res->retry_after_s = -1;
	char pds[ATKV_DIDDOC_URL_MAX], url[ATKV_DIDDOC_URL_MAX + ATKV_DID_MAX + 64];
	struct atkv_sigkey *key = NULL;
	int rc = resolve(b, did, pds, sizeof(pds), &key, res, why, why_n);
	if (!rc) {
		snprintf(url, sizeof(url), "%s/xrpc/com.atproto.sync.getRepo?did=%s", pds, did);
		rc = get_ok(b, url, "application/vnd.ipld.car", b->o.max_car, res, why, why_n);
	}
	if (rc) {
		atkv_sigkey_free(key);
		return rc;
	}
	struct atkv_commit commit;
	struct job j = {.b = b, .did = did, .commit = &commit, .res = res, .prune = prune, .why = why, .why_n = why_n};
	time_t now = time(NULL);
	struct tm tm;
	strftime(j.time, sizeof(j.time), "%Y-%m-%dT%H:%M:%S.000Z", gmtime_r(&now, &tm));
	struct atkv_err err = {0};
	atkv_repo_set_key(b->repo, key);
	rc = atkv_repo_read(b->repo, (const uint8_t *)b->body.data, b->body.len, did, strlen(did), &commit, on_record, &j,
	                    &err);
	atkv_repo_set_key(b->repo, NULL);
	atkv_sigkey_free(key);
	/* Wait for the puts sent even when the walk stopped: they would land in the next repository. */
	struct atkv_repowrite_counts counts = {0};
	char fwhy[256];
	int frc = atkv_repowriter_finish(b->writer, &counts, fwhy, sizeof(fwhy));
	res->written = counts.written;
	res->kept = counts.kept;
	if (j.error)
		return j.error;
	if (frc) {
		snprintf(why, why_n, "%s: %s", did, fwhy);
		return frc == ATKV_E_TIMEOUT ? ATKV_E_TIMEOUT : ATKV_E_NATS;
	}
	if (rc) {
		char e[160];
		snprintf(why, why_n, "%s: the repository from %s is broken: %s", did, pds, atkv_err_format(&err, e, sizeof(e)));
		return rc;
	}
	snprintf(res->rev, sizeof(res->rev), "%s", commit.rev);
	if (commit.data.len <= sizeof(res->data)) {
		memcpy(res->data, commit.data.bytes, commit.data.len);
		res->data_n = commit.data.len;
	}
	if (prune) {
		struct atkv_record_meta meta = {.seq = -1, .rev = commit.rev, .rev_n = strlen(commit.rev),
		                                .time = j.time, .time_n = strlen(j.time)};
		char pwhy[256];
		if ((rc = atkv_prune_run(prune, did, all_known, &meta, &res->deleted, pwhy, sizeof(pwhy)))) {
			snprintf(why, why_n, "%s: %s", did, pwhy);
			return rc;
		}
	}
	return 0;
}

int atkv_backfill_repo(struct atkv_backfill *b, const char *did, struct atkv_backfill_result *res, char *why,
                       size_t why_n)
{
	int rc = backfill_repo(b, did, NULL, true, res, why, why_n);
	if (b->body.cap > KEEP_BUFFER_MAX)
		atkv_buf_free(&b->body);
	return rc;
}

int atkv_backfill_resync(struct atkv_backfill *b, const char *did, struct atkv_prune *prune, bool all_known,
                         struct atkv_backfill_result *res, char *why, size_t why_n)
{
	int rc = backfill_repo(b, did, prune, all_known, res, why, why_n);
	if (b->body.cap > KEEP_BUFFER_MAX)
		atkv_buf_free(&b->body);
	return rc;
}

/* The writes of held commit ev (decoded by b->fh): puts as a backfill makes them, deletes. */
static int apply_ops(struct atkv_backfill *b, const char *did, const struct atkv_event *ev, const char *stamp,
                     char *why, size_t why_n)
{
	char key[ATKV_KEY_MAX + 1], cid[ATKV_CID_STR_MAX], rev[ATKV_TID_LEN + 1], when[64];
	snprintf(rev, sizeof(rev), "%.*s", (int)ev->rev.n, ev->rev.p);
	/* As the live path would have written it: the event's seq and time. */
	snprintf(when, sizeof(when), "%.*s", ev->time.p ? (int)ev->time.n : 0, ev->time.p ? ev->time.p : "");
	if (!when[0])
		snprintf(when, sizeof(when), "%s", stamp);
	for (size_t i = 0; i < ev->n_ops; i++) {
		const struct atkv_op *op = &ev->ops[i];
		struct atkv_err err = {0};
		const char *json;
		size_t n;
		if (atkv_key_build(key, sizeof(key), did, strlen(did), op->collection.p, op->collection.n, op->rkey.p,
		                   op->rkey.n) < 0)
			continue;
		struct atkv_record_meta meta = {.seq = ev->seq, .rev = rev, .rev_n = strlen(rev), .time = when,
		                                .time_n = strlen(when)};
		int rc;
		if (op->action == ATKV_ACTION_DELETE) {
			rc = atkv_repowriter_del(b->writer, key, &meta, why, why_n);
		} else if (atkv_firehose_record(b->fh, i, &json, &n, &err)) {
			char e[160];
			atkv_log(ATKV_LOG_WARNING, "%s: record %.*s skipped: %s", did, (int)op->path.n, op->path.p,
			         atkv_err_format(&err, e, sizeof(e)));
			continue;
		} else {
			meta.cid = cid;
			meta.cid_n = atkv_cid_format(&op->cid, cid);
			rc = atkv_repowriter_put(b->writer, key, json, n, &meta, why, why_n);
			if (rc == ATKV_E_TOO_LARGE)
				continue;
		}
		if (rc)
			return rc;
	}
	return 0;
}

static bool same_bytes(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	return a && an == bn && !memcmp(a, b, an);
}

int atkv_backfill_apply(struct atkv_backfill *b, const char *did, const struct atkv_held_commit *held, size_t n,
                        struct atkv_backfill_result *res, bool *gap, char *why, size_t why_n)
{
	*gap = false;
	if (!n)
		return 0;
	if (!b->fh && !(b->fh = atkv_firehose_new())) {
		snprintf(why, why_n, "out of memory");
		return ATKV_E_NOMEM;
	}
	atkv_firehose_set_json_max(b->fh, b->o.max_value);
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S.000Z", gmtime_r(&now, &tm));
	int rc = 0;
	for (size_t i = 0; i < n && !rc && !*gap; i++) {
		const struct atkv_event *ev;
		struct atkv_err err = {0};
		if (atkv_firehose_decode(b->fh, (const uint8_t *)held[i].frame.data, held[i].frame.len, &ev, &err) ||
		    ev->type != ATKV_EVENT_COMMIT || !ev->rev.p || ev->rev.n != ATKV_TID_LEN) {
			*gap = true; /* it was verified once: not decoding now means something is wrong */
			break;
		}
		/* At or before the head: the snapshot has it already. */
		if (memcmp(ev->rev.p, res->rev, ATKV_TID_LEN) <= 0)
			continue;
		if (!same_bytes(ev->prev_data.bytes, ev->prev_data.len, res->data, res->data_n)) {
			*gap = true;
			break;
		}
		if ((rc = apply_ops(b, did, ev, stamp, why, why_n)))
			break;
		memcpy(res->rev, ev->rev.p, ATKV_TID_LEN);
		res->rev[ATKV_TID_LEN] = '\0';
		memcpy(res->data, held[i].data, held[i].data_n);
		res->data_n = held[i].data_n;
		res->applied++;
	}
	struct atkv_repowrite_counts counts = {0};
	char fwhy[256];
	int frc = atkv_repowriter_finish(b->writer, &counts, fwhy, sizeof(fwhy));
	if (!rc && frc) {
		snprintf(why, why_n, "%s: %s", did, fwhy);
		rc = frc == ATKV_E_TIMEOUT ? ATKV_E_TIMEOUT : ATKV_E_NATS;
	}
	return rc;
}
