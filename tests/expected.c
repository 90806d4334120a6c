/* expected.c — the reference store of the committed capture, looped like the replay server loops
 * it, and its comparison with the buckets a builder wrote. */
#define _DEFAULT_SOURCE
#include "expected.h"
#include "natsserver.h"
#include "replayloop.h"
#include "tap.h"
#include <atkv/recordkey.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void expect_account(struct expected *e, json_t *header, json_t *body)
{
	const char *t = json_string_value(json_object_get(header, "t"));
	if (!t || (strcmp(t, "#identity") && strcmp(t, "#account")))
		return;
	const char *did = json_string_value(json_object_get(body, "did"));
	char key[3 * ATKV_DID_MAX + 1];
	atkv_key_escape(did, strlen(did), key, sizeof(key));
	json_t *v = json_object_get(e->accounts, key);
	if (!v) {
		v = json_pack("{s:s}", "did", did);
		json_object_set_new(e->accounts, key, v);
	}
	const char *field = !strcmp(t, "#identity") ? "handle" : "status";
	json_t *x = json_object_get(body, field);
	if (x)
		json_object_set(v, field, x);
	else
		json_object_del(v, field);
	if (!strcmp(t, "#account"))
		json_object_set(v, "active", json_object_get(body, "active"));
	json_object_set(v, "seq", json_object_get(body, "seq"));
	json_object_set(v, "time", json_object_get(body, "time"));
}

static void expect_records(struct expected *e, json_t *body, json_t *records)
{
	const char *repo = json_string_value(json_object_get(body, "repo"));
	size_t i;
	json_t *r;
	json_array_foreach(records, i, r) {
		const char *path = json_string_value(json_object_get(r, "path"));
		const char *slash = strchr(path, '/');
		char key[ATKV_KEY_MAX + 1];
		atkv_key_build(key, sizeof(key), repo, strlen(repo), path, (size_t)(slash - path), slash + 1,
		               strlen(slash + 1));
		if (!strcmp(json_string_value(json_object_get(r, "action")), "delete"))
			json_object_set_new(e->records, key, json_null());
		else
			json_object_set_new(e->records, key,
			                    json_pack("{s:O,s:O}", "value", json_object_get(r, "record"), "cid",
			                              json_object_get(r, "cid")));
	}
}

void expected_load(struct expected *e, const char *path)
{
	size_t n;
	char *text = (char *)tap_read_file(path, &n);
	e->records = json_object();
	e->accounts = json_object();
	e->last_seq = -1;
	for (char *line = text, *nl; line < text + n && (nl = strchr(line, '\n')); line = nl + 1) {
		json_error_t jerr;
		json_t *f = json_loadb(line, (size_t)(nl - line), 0, &jerr);
		if (!f) {
			printf("Bail out! %s: %s\n", path, jerr.text);
			exit(1);
		}
		json_t *body = json_object_get(f, "body"), *seq = json_object_get(body, "seq");
		if (json_is_integer(seq))
			e->last_seq = json_integer_value(seq);
		expect_account(e, json_object_get(f, "header"), body);
		expect_records(e, body, json_object_get(f, "records"));
		json_decref(f);
	}
	free(text);
}

struct expected expected_looped(const struct expected *e, uint64_t loops)
{
	struct expected l = {json_object(), json_deep_copy(e->accounts), (int64_t)loops * e->last_seq};
	const char *key;
	json_t *want;
	/* An account's last event comes from the last loop, its seq raised as the replay raises it. */
	json_object_foreach(l.accounts, key, want) {
		json_t *seq = json_object_get(want, "seq");
		if (loops && json_is_integer(seq))
			json_object_set_new(want, "seq", json_integer(json_integer_value(seq) +
			                                              (json_int_t)(loops - 1) * e->last_seq));
	}
	for (uint64_t k = 0; k < loops; k++)
		json_object_foreach(e->records, key, want) {
			struct atkv_key parts;
			char shifted[ATKV_KEY_MAX + 1];
			atkv_key_parse(key, strlen(key), &parts);
			if (parts.rkey_n == ATKV_TID_LEN)
				atkv_loop_tid_shift(parts.rkey, k);
			atkv_key_build(shifted, sizeof(shifted), parts.did, parts.did_n, parts.collection,
			               parts.collection_n, parts.rkey, parts.rkey_n);
			json_object_set(l.records, shifted, want);
		}
	return l;
}

void expected_free(struct expected *e)
{
	json_decref(e->records);
	json_decref(e->accounts);
	e->records = e->accounts = NULL;
}

/* Every key's last message in bucket: key → the message (owned by the returned map's caller
 * through the pointer values; freed by free_last). An ordered consumer delivering the last
 * message per subject reads the bucket in one pass, where a lookup per key would take minutes
 * for a large store. */
struct last {
	char *key;
	natsMsg *msg;
};

static int last_cmp(const void *a, const void *b)
{
	return strcmp(((const struct last *)a)->key, ((const struct last *)b)->key);
}

static struct last *read_last(jsCtx *js, const char *bucket, size_t *count)
{
	char stream[64], subject[80];
	snprintf(stream, sizeof(stream), "KV_%s", bucket);
	snprintf(subject, sizeof(subject), "$KV.%s.>", bucket);
	size_t prefix = strlen(subject) - 1;
	*count = 0;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	if (js_GetStreamInfo(&si, js, stream, NULL, &jerr) != NATS_OK)
		return NULL;
	uint64_t msgs = si->State.Msgs;
	jsStreamInfo_Destroy(si);
	struct last *all = calloc(msgs + 1, sizeof(*all));
	if (!msgs)
		return all;
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Ordered = true;
	so.Config.DeliverPolicy = js_DeliverLastPerSubject;
	natsSubscription *sub = NULL;
	if (js_SubscribeSync(&sub, js, subject, NULL, &so, &jerr) != NATS_OK) {
		tap_note("cannot read bucket %s: error %d", bucket, (int)jerr);
		return all;
	}
	for (;;) {
		natsMsg *m = NULL;
		jsMsgMetaData *meta = NULL;
		if (natsSubscription_NextMsg(&m, sub, 10000) != NATS_OK)
			break;
		uint64_t pending = natsMsg_GetMetaData(&meta, m) == NATS_OK ? meta->NumPending : 0;
		jsMsgMetaData_Destroy(meta);
		if (*count == msgs) { /* cannot happen: at most one per message */
			natsMsg_Destroy(m);
			break;
		}
		all[*count].key = strdup(natsMsg_GetSubject(m) + prefix);
		all[*count].msg = m;
		(*count)++;
		if (!pending)
			break;
	}
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	qsort(all, *count, sizeof(*all), last_cmp);
	return all;
}

static void free_last(struct last *all, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(all[i].key);
		natsMsg_Destroy(all[i].msg);
	}
	free(all);
}

static natsMsg *find_last(struct last *all, size_t count, const char *key)
{
	struct last k = {(char *)key, NULL};
	struct last *hit = all ? bsearch(&k, all, count, sizeof(*all), last_cmp) : NULL;
	return hit ? hit->msg : NULL;
}

static json_t *msg_json(natsMsg *m)
{
	json_error_t jerr;
	return m ? json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, &jerr) : NULL;
}

static bool record_matches(natsMsg *m, json_t *want)
{
	const char *op = NULL, *cid = NULL;
	if (m) {
		natsMsgHeader_Get(m, "KV-Operation", &op);
		natsMsgHeader_Get(m, "Atkv-Cid", &cid);
	}
	if (json_is_null(want))
		return m && op && !strcmp(op, "DEL") && natsMsg_GetDataLength(m) == 0;
	json_t *got = msg_json(m);
	bool ok = got && !op && json_equal(got, json_object_get(want, "value")) && cid &&
	          !strcmp(cid, json_string_value(json_object_get(want, "cid")));
	json_decref(got);
	return ok;
}

/* What the bucket holds at a key, for a note: nothing, a delete, or a value (its CID). */
static const char *what_is(natsMsg *m)
{
	static char said[160];
	const char *op = NULL, *cid = NULL;
	if (!m)
		return "no such key";
	natsMsgHeader_Get(m, "KV-Operation", &op);
	natsMsgHeader_Get(m, "Atkv-Cid", &cid);
	snprintf(said, sizeof(said), "%s, Atkv-Cid %s, Atkv-Seq ", op ? op : "a value", cid ? cid : "none");
	const char *seq = NULL;
	natsMsgHeader_Get(m, "Atkv-Seq", &seq);
	snprintf(said + strlen(said), sizeof(said) - strlen(said), "%s", seq ? seq : "none");
	return said;
}

int expected_compare_records(jsCtx *js, const struct expected *e)
{
	size_t count;
	struct last *all = read_last(js, "record", &count);
	int bad = 0;
	const char *key;
	json_t *want;
	json_object_foreach(e->records, key, want) {
		natsMsg *m = find_last(all, count, key);
		if (!record_matches(m, want) && bad++ < 5)
			tap_note("record %s differs from the reference: %s", key, what_is(m));
	}
	/* Nothing live beyond what is expected. */
	for (size_t i = 0; i < count; i++) {
		const char *op = NULL;
		natsMsgHeader_Get(all[i].msg, "KV-Operation", &op);
		json_t *w = json_object_get(e->records, all[i].key);
		if (!op && (!w || json_is_null(w)) && bad++ < 5)
			tap_note("unexpected live key %s", all[i].key);
	}
	free_last(all, count);
	return bad;
}

int expected_compare_accounts(jsCtx *js, const struct expected *e)
{
	size_t count;
	struct last *all = read_last(js, "account", &count);
	int bad = 0;
	const char *key;
	json_t *want;
	json_object_foreach(e->accounts, key, want) {
		json_t *got = msg_json(find_last(all, count, key));
		if ((!got || !json_equal(got, want)) && bad++ < 3) {
			char *g = got ? json_dumps(got, JSON_COMPACT) : NULL, *w = json_dumps(want, JSON_COMPACT);
			tap_note("account %s: got %s, want %s", key, g ? g : "nothing", w);
			free(g);
			free(w);
		}
		json_decref(got);
	}
	free_last(all, count);
	return bad;
}

json_t *expected_likes(const struct expected *e)
{
	json_t *likes = json_object();
	const char *key;
	json_t *want;
	json_object_foreach(e->records, key, want) {
		struct atkv_key k;
		if (json_is_null(want) || atkv_key_parse(key, strlen(key), &k) || strcmp(k.collection, "app.bsky.feed.like"))
			continue;
		json_t *uri = json_object_get(json_object_get(json_object_get(want, "value"), "subject"), "uri");
		char id[ATKV_DID_MAX + ATKV_RKEY_MAX + 2];
		snprintf(id, sizeof(id), "%s %s", k.did, k.rkey);
		json_object_set(likes, id, uri);
	}
	return likes;
}

int64_t expected_stored_cursor(jsCtx *js)
{
	natsMsg *m = kv_last_msg(js, "cursor", "firehose");
	int64_t c = -1;
	if (m) {
		char v[32];
		snprintf(v, sizeof(v), "%.*s", natsMsg_GetDataLength(m), natsMsg_GetData(m));
		c = strtoll(v, NULL, 10);
		natsMsg_Destroy(m);
	}
	return c;
}
