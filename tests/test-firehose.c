/* test-firehose.c — the subscribeRepos frame decoder: every frame of a capture from the
 * reference PDS against the output of the reference TypeScript libraries
 * (tests/data/firehose-expected.jsonl, see tests/reference/), then hand-built frames that break
 * the schema in each way the decoder must catch. */
#include "buf.h"
#include "capture.h"
#include "cbuild.h"
#include "cid.h"
#include "err.h"
#include "firehose.h"
#include "sha256.h"
#include "tap.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the capture against the reference output ---- */

static bool str_matches(struct atkv_str s, json_t *want)
{
	if (json_is_null(want))
		return s.p == NULL;
	return json_is_string(want) && s.p && s.n == json_string_length(want) &&
	       memcmp(s.p, json_string_value(want), s.n) == 0;
}

static bool link_matches(const struct atkv_cid *cid, json_t *want)
{
	if (!want || json_is_null(want))
		return cid->bytes == NULL;
	char s[ATKV_CID_STR_MAX];
	if (!cid->bytes)
		return false;
	atkv_cid_format(cid, s);
	const char *w = json_string_value(json_object_get(want, "$link"));
	return w && strcmp(s, w) == 0;
}

static bool op_matches(const struct atkv_op *op, json_t *want)
{
	json_t *prev = json_object_get(want, "prev");
	return str_matches(op->path, json_object_get(want, "path")) &&
	       strcmp(atkv_action_name(op->action), json_string_value(json_object_get(want, "action"))) == 0 &&
	       link_matches(&op->cid, json_object_get(want, "cid")) &&
	       (prev ? link_matches(&op->prev, prev) : op->prev.bytes == NULL) &&
	       op->collection.n + 1 + op->rkey.n == op->path.n;
}

/* Compares one body field; returns the name of the first that differs, or NULL. */
static const char *field_mismatch(const struct atkv_event *ev, const char *key, json_t *v)
{
	bool ok;
	if (!strcmp(key, "seq"))
		ok = json_integer_value(v) == ev->seq;
	else if (!strcmp(key, "repo") || !strcmp(key, "did"))
		ok = str_matches(ev->did, v);
	else if (!strcmp(key, "rev"))
		ok = str_matches(ev->rev, v);
	else if (!strcmp(key, "since"))
		ok = str_matches(ev->since, v);
	else if (!strcmp(key, "time"))
		ok = str_matches(ev->time, v);
	else if (!strcmp(key, "handle"))
		ok = str_matches(ev->handle, v);
	else if (!strcmp(key, "status"))
		ok = str_matches(ev->status, v);
	else if (!strcmp(key, "active"))
		ok = json_is_boolean(v) && json_boolean_value(v) == ev->active;
	else if (!strcmp(key, "tooBig"))
		ok = json_is_boolean(v) && json_boolean_value(v) == ev->too_big;
	else if (!strcmp(key, "rebase"))
		ok = json_is_boolean(v) && json_boolean_value(v) == ev->rebase;
	else if (!strcmp(key, "commit"))
		ok = link_matches(&ev->commit, v);
	else if (!strcmp(key, "prevData"))
		ok = link_matches(&ev->prev_data, v);
	else if (!strcmp(key, "name") || !strcmp(key, "error"))
		ok = str_matches(ev->name, v);
	else if (!strcmp(key, "message"))
		ok = str_matches(ev->message, v);
	else if (!strcmp(key, "blobs"))
		ok = json_is_array(v); /* deprecated; not decoded */
	else if (!strcmp(key, "ops")) {
		ok = json_array_size(v) == ev->n_ops;
		for (size_t i = 0; ok && i < ev->n_ops; i++)
			ok = op_matches(&ev->ops[i], json_array_get(v, i));
	} else
		ok = false; /* a field this test does not know: the decoder must learn it first */
	return ok ? NULL : key;
}

static bool record_matches(struct atkv_firehose *fh, size_t i, json_t *want, char *why, size_t why_n)
{
	const char *json;
	size_t len;
	struct atkv_err err = {0};
	int rc = atkv_firehose_record(fh, i, &json, &len, &err);
	if (json_is_null(want)) {
		if (rc != ATKV_E_BLOCK_MISSING)
			snprintf(why, why_n, "op %zu: expected no record, got rc %d", i, rc);
		return rc == ATKV_E_BLOCK_MISSING;
	}
	if (rc) {
		snprintf(why, why_n, "op %zu: %s", i, atkv_strerror(rc));
		return false;
	}
	json_error_t jerr;
	json_t *got = json_loadb(json, len, 0, &jerr);
	bool ok = got && json_equal(got, want);
	if (!ok)
		snprintf(why, why_n, "op %zu: record differs: %.200s", i, json);
	json_decref(got);
	return ok;
}

static void test_capture(struct atkv_firehose *fh)
{
	size_t cap_n, exp_n;
	uint8_t *cap = tap_read_file(tap_path("tests/data/firehose-capture.bin"), &cap_n);
	char *expected = (char *)tap_read_file(tap_path("tests/data/firehose-expected.jsonl"), &exp_n);
	long start = atkv_capture_start(cap, cap_n);
	tap_ok(start > 0, "capture has the atkvcap1 magic");
	size_t off = start > 0 ? (size_t)start : cap_n, frame_n, index = 0, records = 0, types[7] = {0};
	const uint8_t *frame;
	char *line = expected;
	int rc;

	while ((rc = atkv_capture_next(cap, cap_n, &off, &frame, &frame_n)) == 1) {
		char *nl = strchr(line, '\n');
		json_error_t jerr;
		json_t *want = nl ? json_loadb(line, (size_t)(nl - line), 0, &jerr) : NULL;
		line = nl ? nl + 1 : line;
		if (!want) {
			tap_ok(false, "frame %zu has an expected line", index);
			break;
		}
		const struct atkv_event *ev;
		struct atkv_err err = {0};
		char why[512] = "";
		json_t *header = json_object_get(want, "header"), *body = json_object_get(want, "body");
		bool ok = (rc = atkv_firehose_decode(fh, frame, frame_n, &ev, &err)) == 0;
		if (!ok) {
			char e[128];
			snprintf(why, sizeof(why), "decode: %s", atkv_err_format(&err, e, sizeof(e)));
		}
		if (ok && json_integer_value(json_object_get(header, "op")) == -1)
			ok = ev->type == ATKV_EVENT_ERROR;
		else if (ok)
			ok = str_matches(ev->t, json_object_get(header, "t")) && ev->type != ATKV_EVENT_UNKNOWN;
		if (ok)
			types[ev->type]++;
		const char *key;
		json_t *v;
		json_object_foreach(body, key, v) {
			const char *bad = ok ? field_mismatch(ev, key, v) : NULL;
			if (bad) {
				snprintf(why, sizeof(why), "field %s differs", bad);
				ok = false;
			}
		}
		json_t *recs = json_object_get(want, "records");
		for (size_t i = 0; ok && i < json_array_size(recs); i++) {
			ok = record_matches(fh, i, json_object_get(json_array_get(recs, i), "record"), why, sizeof(why));
			records += ok && !json_is_null(json_object_get(json_array_get(recs, i), "record"));
		}
		tap_ok(ok, "frame %zu (%s, %zu bytes) matches the reference %s", index,
		       json_string_value(json_object_get(header, "t")), frame_n, why);
		json_decref(want);
		index++;
	}
	tap_eq(rc, 0, "capture ends cleanly");
	tap_ok(*line == '\0', "every expected line was used");
	tap_note("%zu frames: %zu commits, %zu sync, %zu identity, %zu account; %zu records compared", index,
	         types[ATKV_EVENT_COMMIT], types[ATKV_EVENT_SYNC], types[ATKV_EVENT_IDENTITY],
	         types[ATKV_EVENT_ACCOUNT], records);
	tap_ok(index >= 100 && records >= 100 && types[ATKV_EVENT_COMMIT] > 0 && types[ATKV_EVENT_IDENTITY] > 0 &&
	       types[ATKV_EVENT_ACCOUNT] > 0 && types[ATKV_EVENT_SYNC] > 0,
	       "the capture covers every event type with 100+ records");
	free(cap);
	free(expected);
}

/* ---- hand-built frames ---- */

static const char *DID = "did:plc:l3rouwludahu3ui3bt66mfvj";

struct op_spec {
	const char *action, *path;
	int block;       /* index into the blocks, -1 for a null cid */
};

struct commit_spec {
	const char *t;
	int64_t op;
	const char *repo;
	bool omit_rev, dup_seq, trailing, record_not_map, drop_block, tamper_block;
	struct op_spec ops[3];
	size_t n_ops;
};

static struct atkv_sha256 *sha;

/* Builds a #commit frame whose CAR carries one block per op (a small record). */
static void build_commit(struct atkv_buf *f, const struct commit_spec *s)
{
	struct atkv_buf car = ATKV_BUF_INIT, hdr = ATKV_BUF_INIT, blk[3] = {ATKV_BUF_INIT, ATKV_BUF_INIT, ATKV_BUF_INIT};
	uint8_t cids[3][ATKV_CID_SHA256_BYTES];
	for (int i = 0; i < 3; i++) {
		if (s->record_not_map) {
			cb_head(&blk[i], 4, 1);
			cb_uint(&blk[i], (uint64_t)i);
		} else {
			cb_head(&blk[i], 5, 2);
			cb_text(&blk[i], "$type");
			cb_text(&blk[i], "app.bsky.feed.like");
			cb_text(&blk[i], "createdAt");
			cb_text(&blk[i], i == 0 ? "2024-01-01T00:00:00Z" : "2024-01-02T00:00:00Z");
		}
		atkv_cid_compute(sha, ATKV_CODEC_DAG_CBOR, (uint8_t *)blk[i].data, blk[i].len, cids[i]);
	}
	cb_head(&hdr, 5, 2);
	cb_text(&hdr, "roots");
	cb_head(&hdr, 4, 1);
	cb_link(&hdr, cids[0], ATKV_CID_SHA256_BYTES);
	cb_text(&hdr, "version");
	cb_uint(&hdr, 1);
	cb_varint(&car, hdr.len);
	cb_raw(&car, hdr.data, hdr.len);
	for (int i = 0; i < 3; i++) {
		if (s->drop_block && i == 0)
			continue;
		cb_varint(&car, ATKV_CID_SHA256_BYTES + blk[i].len);
		cb_raw(&car, cids[i], ATKV_CID_SHA256_BYTES);
		size_t at = car.len;
		cb_raw(&car, blk[i].data, blk[i].len);
		if (s->tamper_block && i == 0)
			car.data[at + 5] ^= 1;
	}

	cb_head(f, 5, 2);
	cb_text(f, "t");
	cb_text(f, s->t ? s->t : "#commit");
	cb_text(f, "op");
	cb_int(f, s->op ? s->op : 1);

	cb_head(f, 5, 8 - s->omit_rev + s->dup_seq);
	cb_text(f, "ops");
	cb_head(f, 4, s->n_ops);
	for (size_t i = 0; i < s->n_ops; i++) {
		cb_head(f, 5, 3);
		cb_text(f, "cid");
		if (s->ops[i].block < 0)
			cb_null(f);
		else
			cb_link(f, cids[s->ops[i].block], ATKV_CID_SHA256_BYTES);
		cb_text(f, "path");
		cb_text(f, s->ops[i].path);
		cb_text(f, "action");
		cb_text(f, s->ops[i].action);
	}
	if (!s->omit_rev) {
		cb_text(f, "rev");
		cb_text(f, "3k2a4ecm2ds2x");
	}
	cb_text(f, "seq");
	cb_uint(f, 42);
	if (s->dup_seq) {
		cb_text(f, "seq");
		cb_uint(f, 43);
	}
	cb_text(f, "repo");
	cb_text(f, s->repo ? s->repo : DID);
	cb_text(f, "time");
	cb_text(f, "2024-01-01T00:00:00.000Z");
	cb_text(f, "since");
	cb_null(f);
	cb_text(f, "blocks");
	cb_bytes(f, car.data, car.len);
	cb_text(f, "commit");
	cb_link(f, cids[0], ATKV_CID_SHA256_BYTES);
	if (s->trailing)
		cb_uint(f, 0);
	atkv_buf_free(&car);
	atkv_buf_free(&hdr);
	for (int i = 0; i < 3; i++)
		atkv_buf_free(&blk[i]);
}

static int decode(struct atkv_firehose *fh, const struct atkv_buf *f, const struct atkv_event **ev)
{
	struct atkv_err err = {0};
	int rc = atkv_firehose_decode(fh, (const uint8_t *)f->data, f->len, ev, &err);
	if (rc && err.code != rc)
		return -1000; /* the error must be recorded as returned */
	return rc;
}

static void test_commit(struct atkv_firehose *fh)
{
	struct atkv_buf f = ATKV_BUF_INIT;
	const struct atkv_event *ev;
	struct commit_spec s = {
		.ops = {{"create", "app.bsky.feed.like/3k2a4ecm2ds2x", 0},
		        {"update", "app.bsky.feed.like/3k2a4ecm2ds2y", 1},
		        {"delete", "app.bsky.feed.like/3k2a4ecm2ds2z", -1}},
		.n_ops = 3,
	};
	build_commit(&f, &s);
	int rc = decode(fh, &f, &ev);
	tap_eq(rc, 0, "hand-built commit decodes");
	if (rc)
		return;
	tap_ok(ev->type == ATKV_EVENT_COMMIT && ev->seq == 42 && ev->n_ops == 3 && ev->since.p == NULL &&
	       ev->did.n == strlen(DID) && memcmp(ev->did.p, DID, ev->did.n) == 0,
	       "commit fields");
	tap_ok(ev->ops[0].action == ATKV_ACTION_CREATE && ev->ops[1].action == ATKV_ACTION_UPDATE &&
	       ev->ops[2].action == ATKV_ACTION_DELETE && ev->ops[2].cid.bytes == NULL &&
	       ev->ops[0].collection.n == 18 && memcmp(ev->ops[0].collection.p, "app.bsky.feed.like", 18) == 0 &&
	       ev->ops[0].rkey.n == 13 && memcmp(ev->ops[0].rkey.p, "3k2a4ecm2ds2x", 13) == 0,
	       "ops: actions, collection and rkey");
	const char *json;
	size_t len;
	rc = atkv_firehose_record(fh, 0, &json, &len, NULL);
	tap_ok(rc == 0 && strcmp(json, "{\"$type\":\"app.bsky.feed.like\",\"createdAt\":\"2024-01-01T00:00:00Z\"}") == 0,
	       "record JSON of op 0");
	tap_eq(atkv_firehose_record(fh, 2, &json, &len, NULL), ATKV_E_BLOCK_MISSING, "a delete has no record");
	tap_eq(atkv_firehose_record(fh, 3, &json, &len, NULL), ATKV_E_BLOCK_MISSING, "no op 3");
	/* The record's JSON is 65 bytes: a limit of 64 refuses it, 65 lets it through. */
	atkv_firehose_set_json_max(fh, 64);
	tap_eq(atkv_firehose_record(fh, 0, &json, &len, NULL), ATKV_E_TOO_LARGE, "a record over the JSON limit is refused");
	atkv_firehose_set_json_max(fh, 65);
	tap_eq(atkv_firehose_record(fh, 0, &json, &len, NULL), 0, "a record at the JSON limit passes");
	atkv_firehose_set_json_max(fh, SIZE_MAX);

	/* Every prefix of the frame fails with an error, and never reads outside it. */
	int bad = 0;
	for (size_t k = 0; k < f.len; k++) {
		uint8_t *cut = malloc(k ? k : 1);
		memcpy(cut, f.data, k);
		struct atkv_err err = {0};
		if (atkv_firehose_decode(fh, cut, k, &ev, &err) >= 0 || err.offset > k)
			bad++;
		free(cut);
	}
	tap_eq(bad, 0, "every prefix of a commit frame is rejected");
	atkv_buf_free(&f);
}

static void expect_commit_error(struct atkv_firehose *fh, struct commit_spec s, int want, const char *what)
{
	struct atkv_buf f = ATKV_BUF_INIT;
	const struct atkv_event *ev;
	if (!s.n_ops) {
		s.ops[0] = (struct op_spec){"create", "app.bsky.feed.like/3k2a4ecm2ds2x", 0};
		s.n_ops = 1;
	}
	build_commit(&f, &s);
	int rc = decode(fh, &f, &ev);
	tap_ok(rc == want, "%s: %s (got %s)", what, atkv_strerror(want), atkv_strerror(rc));
	atkv_buf_free(&f);
}

static void test_commit_errors(struct atkv_firehose *fh)
{
	expect_commit_error(fh, (struct commit_spec){.omit_rev = true}, ATKV_E_FRAME, "commit without rev");
	expect_commit_error(fh, (struct commit_spec){.dup_seq = true}, ATKV_E_CBOR_KEY_DUP, "seq twice");
	expect_commit_error(fh, (struct commit_spec){.trailing = true}, ATKV_E_TRAILING, "bytes after the body");
	expect_commit_error(fh, (struct commit_spec){.op = 2}, ATKV_E_FRAME, "header op 2");
	expect_commit_error(fh, (struct commit_spec){.repo = "did:plc:"}, ATKV_E_SYNTAX, "invalid repo DID");
	expect_commit_error(fh, (struct commit_spec){.ops = {{"upsert", "app.bsky.feed.like/a", 0}}, .n_ops = 1},
	                    ATKV_E_FRAME, "unknown action");
	expect_commit_error(fh, (struct commit_spec){.ops = {{"create", "app.bsky.feed.like", 0}}, .n_ops = 1},
	                    ATKV_E_SYNTAX, "path without rkey");
	expect_commit_error(fh, (struct commit_spec){.ops = {{"create", "app.bsky/x", 0}}, .n_ops = 1},
	                    ATKV_E_SYNTAX, "path with an invalid NSID");
	expect_commit_error(fh, (struct commit_spec){.ops = {{"create", "app.bsky.feed.like/a b", 0}}, .n_ops = 1},
	                    ATKV_E_SYNTAX, "path with an invalid rkey");
	expect_commit_error(fh, (struct commit_spec){.ops = {{"create", "app.bsky.feed.like/a", -1}}, .n_ops = 1},
	                    ATKV_E_FRAME, "create with a null cid");
	expect_commit_error(fh, (struct commit_spec){.ops = {{"delete", "app.bsky.feed.like/a", 0}}, .n_ops = 1},
	                    ATKV_E_FRAME, "delete with a cid");

	/* Errors of one record leave the frame and the other records usable. */
	struct atkv_buf f = ATKV_BUF_INIT;
	const struct atkv_event *ev;
	const char *json;
	size_t len;
	struct commit_spec two = {.ops = {{"create", "app.bsky.feed.like/a", 0}, {"create", "app.bsky.feed.like/b", 1}},
	                          .n_ops = 2};
	two.tamper_block = true;
	build_commit(&f, &two);
	tap_ok(decode(fh, &f, &ev) == 0 && atkv_firehose_record(fh, 0, &json, &len, NULL) == ATKV_E_CID_MISMATCH &&
	       atkv_firehose_record(fh, 1, &json, &len, NULL) == 0,
	       "a record failing its CID fails alone");
	atkv_buf_reset(&f);
	two.tamper_block = false;
	two.drop_block = true;
	build_commit(&f, &two);
	tap_ok(decode(fh, &f, &ev) == 0 && atkv_firehose_record(fh, 0, &json, &len, NULL) == ATKV_E_BLOCK_MISSING &&
	       atkv_firehose_record(fh, 1, &json, &len, NULL) == 0,
	       "a record missing from the CAR fails alone");
	atkv_buf_reset(&f);
	two.drop_block = false;
	two.record_not_map = true;
	build_commit(&f, &two);
	tap_ok(decode(fh, &f, &ev) == 0 && atkv_firehose_record(fh, 0, &json, &len, NULL) == ATKV_E_FRAME,
	       "a record that is not a map is refused");
	atkv_buf_free(&f);
}

/* A two-map frame: header {op, t} and a body of alternating keys and values given by kind. */
static void simple_frame(struct atkv_buf *f, int64_t op, const char *t, const char *const *kv, size_t n)
{
	cb_head(f, 5, t ? 2 : 1);
	if (t) {
		cb_text(f, "t");
		cb_text(f, t);
	}
	cb_text(f, "op");
	cb_int(f, op);
	cb_head(f, 5, n / 2);
	for (size_t i = 0; i < n; i += 2) {
		cb_text(f, kv[i]);
		const char *v = kv[i + 1];
		if (v[0] == '#')
			cb_uint(f, strtoull(v + 1, NULL, 10));
		else if (!strcmp(v, "true") || !strcmp(v, "false"))
			cb_bool(f, v[0] == 't');
		else if (!strcmp(v, "null"))
			cb_null(f);
		else
			cb_text(f, v);
	}
}

static void test_other_events(struct atkv_firehose *fh)
{
	struct atkv_buf f = ATKV_BUF_INIT;
	const struct atkv_event *ev;

	const char *identity[] = {"did", DID, "seq", "#7", "time", "2024-01-01T00:00:00Z", "handle", "alice.test"};
	simple_frame(&f, 1, "#identity", identity, 8);
	tap_ok(decode(fh, &f, &ev) == 0 && ev->type == ATKV_EVENT_IDENTITY && ev->seq == 7 &&
	       ev->handle.n == 10 && memcmp(ev->handle.p, "alice.test", 10) == 0, "#identity");

	const char *account[] = {"did", DID, "seq", "#8", "time", "t", "active", "false", "status", "takendown"};
	atkv_buf_reset(&f);
	simple_frame(&f, 1, "#account", account, 10);
	tap_ok(decode(fh, &f, &ev) == 0 && ev->type == ATKV_EVENT_ACCOUNT && !ev->active &&
	       ev->status.n == 9, "#account");

	const char *account_bad[] = {"did", DID, "seq", "#8", "time", "t", "active", "yes"};
	atkv_buf_reset(&f);
	simple_frame(&f, 1, "#account", account_bad, 8);
	tap_eq(decode(fh, &f, &ev), ATKV_E_FRAME, "#account with a text 'active'");

	const char *info[] = {"name", "OutdatedCursor", "message", "cursor too old"};
	atkv_buf_reset(&f);
	simple_frame(&f, 1, "#info", info, 4);
	tap_ok(decode(fh, &f, &ev) == 0 && ev->type == ATKV_EVENT_INFO && ev->seq == -1 &&
	       ev->name.n == 14, "#info");

	const char *error[] = {"error", "FutureCursor", "message", "Cursor in the future."};
	atkv_buf_reset(&f);
	simple_frame(&f, -1, NULL, error, 4);
	tap_ok(decode(fh, &f, &ev) == 0 && ev->type == ATKV_EVENT_ERROR && ev->name.n == 12 &&
	       memcmp(ev->name.p, "FutureCursor", 12) == 0 && ev->message.n == 21, "error frame");

	const char *future[] = {"seq", "#99", "whatever", "x"};
	atkv_buf_reset(&f);
	simple_frame(&f, 1, "#labels", future, 4);
	tap_ok(decode(fh, &f, &ev) == 0 && ev->type == ATKV_EVENT_UNKNOWN && ev->seq == 99 &&
	       ev->t.n == 7 && memcmp(ev->t.p, "#labels", 7) == 0, "an unknown type is reported with its seq");

	const char *no_did[] = {"seq", "#7", "time", "t"};
	atkv_buf_reset(&f);
	simple_frame(&f, 1, "#identity", no_did, 4);
	tap_eq(decode(fh, &f, &ev), ATKV_E_FRAME, "#identity without did");

	const char *text_seq[] = {"did", DID, "seq", "x", "time", "t"};
	atkv_buf_reset(&f);
	simple_frame(&f, 1, "#identity", text_seq, 6);
	tap_eq(decode(fh, &f, &ev), ATKV_E_FRAME, "#identity with a text seq");

	const char *neg_seq[] = {"did", DID, "seq", "#0", "time", "t"};
	atkv_buf_reset(&f);
	simple_frame(&f, 1, "#identity", neg_seq, 6);
	/* seq 0 → -1: the byte before the 7 bytes of "time": "t" that end the body. */
	f.data[f.len - 8] = 0x20;
	tap_eq(decode(fh, &f, &ev), ATKV_E_FRAME, "#identity with seq -1");

	/* An ops array claiming far more ops than the frame could hold is refused up front. */
	atkv_buf_reset(&f);
	cb_head(&f, 5, 2);
	cb_text(&f, "t");
	cb_text(&f, "#commit");
	cb_text(&f, "op");
	cb_uint(&f, 1);
	cb_head(&f, 5, 1);
	cb_text(&f, "ops");
	cb_head(&f, 4, 1000);
	for (int i = 0; i < 1000; i++)
		cb_head(&f, 5, 0);
	struct atkv_err err = {0};
	tap_ok(atkv_firehose_decode(fh, (uint8_t *)f.data, f.len, &ev, &err) == ATKV_E_TRUNCATED &&
	       !strcmp(err.where, "commit ops"), "1000 ops in 1000 bytes is refused before decoding them");

	atkv_buf_reset(&f);
	simple_frame(&f, 1, NULL, info, 4);
	tap_eq(decode(fh, &f, &ev), ATKV_E_FRAME, "a message without t");

	atkv_buf_reset(&f);
	cb_head(&f, 4, 0);
	tap_eq(decode(fh, &f, &ev), ATKV_E_FRAME, "a header that is not a map");

	atkv_buf_reset(&f);
	simple_frame(&f, 1, "#info", info, 4);
	f.data[f.len - 3] = (char)0xff; /* invalid UTF-8 inside the message text */
	tap_eq(decode(fh, &f, &ev), ATKV_E_UTF8, "invalid UTF-8 in a body string");
	atkv_buf_free(&f);
}

int main(void)
{
	struct atkv_firehose *fh = atkv_firehose_new();
	sha = atkv_sha256_new();
	if (!fh || !sha) {
		printf("Bail out! out of memory\n");
		return 1;
	}
	test_capture(fh);
	test_commit(fh);
	test_commit_errors(fh);
	test_other_events(fh);
	atkv_firehose_free(fh);
	atkv_firehose_free(NULL);
	atkv_sha256_free(sha);
	return tap_done();
}
