/* test-verify.c — atkv-builder verifying the firehose (atproto Sync 1.1) on real parts: a
 * nats-server, atkv-firehose-replay serving the reference PDS capture recorded with its
 * accounts' DID documents (tests/data/signed-capture*), and a PLC directory of the test serving
 * those documents.
 *   - Every commit verifies, and the store equals the one an unverifying builder makes of the
 *     same capture; each repository's head (bucket repo) is its last commit's rev and data.
 *   - Replayed from seq 0 by a restarted builder, every event is written again and nothing is
 *     refused.
 *   - A capture altered as a hostile relay might — a record changed with its CID recomputed, a
 *     signature from another account's commit, a prevData that is not the tree before, and a
 *     commit left out — has each altered commit refused and nothing of it written; its
 *     repository is marked desynchronized and nothing of it written after; the one account
 *     left alone is stored as without the changes; each is resynchronized from its PDS, which
 *     no longer has it: given up, and logged.
 *   - A feed of signed commits made here (tests/signedfeed.c) with one commit left out: the
 *     repository is resynchronized from a PDS of the test, its records written, a key the
 *     repository does not hold deleted, the commits held meanwhile applied after the PDS's
 *     (older) snapshot; another account's last commits never sent, then a #sync: resynchronized
 *     too. The store equals the one of the whole feed.
 *   - atkv-backfill halfway through another feed leaves each repository's head (none when
 *     not verifying, none for a rev in the future); the builder reading the rest, from a
 *     relay that lags the snapshot, skips what the snapshot has and checks the first commits
 *     after it against the heads (one left out breaks the chain); a backfill run again leaves
 *     the builder's heads.
 *   - A resynchronization owed when the builder stops (its PDS down) is done after the restart
 *     with nothing more to read, and a deleted account's records are removed at the start
 *     after a crash left its note. */
#define _GNU_SOURCE
#include "capture.h"
#include "commit.h"
#include "firehose.h"
#include "httpserver.h"
#include "natsserver.h"
#include "scrape.h"
#include "sha256.h"
#include "signedfeed.h"
#include "spawn.h"
#include "tap.h"
#include <atkv/recordkey.h>

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BUILDER "src/atkv-builder"
#define MAX_DIDS 16

static char tmp[64];
static int plc_port, get_repos;
static volatile long pds_down = -1;  /* the account of the feed whose getRepo answers 503 */
static json_t *docs;   /* DID → its document, its PDS this server */
static struct signedfeed *feed;
#define FEED_VICTIM_AT 3  /* FEED_VICTIM, for the PDS of the test */
static struct atkv_buf *feed_cars; /* each account's repository at the end of the feed */

/* The PLC directory, and the accounts' PDS, which has no repository (the capture's PDS is
 * gone): a resynchronization asks for it and gives up. */
static bool serve_plc(int fd, const char *path, void *arg)
{
	(void)arg;
	if (!strncmp(path, "/xrpc/com.atproto.sync.getRepo?did=", 35)) {
		__atomic_add_fetch(&get_repos, 1, __ATOMIC_RELAXED);
		long i = feed ? sf_find(feed, path + 35) : -1;
		/* Slow, so that the victim's later commits arrive while it is resynchronized: held. */
		if (i == FEED_VICTIM_AT)
			sleep_ms(2000);
		if (i >= 0 && i == pds_down)
			return httpserver_reply(fd, 503, "", "down for the test", 17);
		if (i >= 0)
			return httpserver_reply(fd, 200, "Content-Type: application/vnd.ipld.car\r\n", feed_cars[i].data,
			                        feed_cars[i].len);
		static const char body[] = "{\"error\":\"RepoNotFound\",\"message\":\"gone with the test network\"}";
		return httpserver_reply(fd, 400, "Content-Type: application/json\r\n", body, sizeof(body) - 1);
	}
	json_t *doc = json_object_get(docs, path + 1);
	if (!doc)
		return httpserver_reply(fd, 404, "", "Not Found", 9);
	char *text = json_dumps(doc, JSON_COMPACT);
	bool ok = httpserver_reply(fd, 200, "Content-Type: application/did+ld+json\r\n", text, strlen(text));
	free(text);
	return ok;
}

static void load_docs(void)
{
	size_t n;
	char *text = (char *)tap_read_file(tap_path("tests/data/signed-capture-docs.jsonl"), &n);
	docs = json_object();
	for (char *line = text, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		json_t *doc = json_loads(line, 0, NULL);
		char pds[64];
		snprintf(pds, sizeof(pds), "http://127.0.0.1:%d", plc_port);
		json_t *service = json_array_get(json_object_get(doc, "service"), 0);
		json_object_set_new(service, "serviceEndpoint", json_string(pds));
		if (json_string_value(json_object_get(doc, "id")))
			json_object_set(docs, json_string_value(json_object_get(doc, "id")), doc);
		json_decref(doc);
	}
	free(text);
}

/* ---- the capture, its commits, and the altered copy ---- */

struct account {
	char did[128];
	int commits;
	char last_rev[16], last_data[ATKV_CID_STR_MAX];
	char refused_rev[16];       /* the altered commit's rev ("" for the account left alone) */
	const char *where;          /* what refuses it */
};

static struct account accounts[MAX_DIDS];
static int n_accounts, n_commits;
static uint8_t *capture;
static size_t capture_n;
static int64_t last_seq;

static struct account *account_of(const struct atkv_str *did)
{
	for (int i = 0; i < n_accounts; i++)
		if (strlen(accounts[i].did) == did->n && !memcmp(accounts[i].did, did->p, did->n))
			return &accounts[i];
	if (n_accounts == MAX_DIDS || did->n >= sizeof(accounts[0].did))
		return NULL;
	struct account *a = &accounts[n_accounts++];
	memcpy(a->did, did->p, did->n);
	return a;
}

/* Calls fn for each frame of buf (a capture) decoded, with its offset and length. */
static void each_frame(uint8_t *buf, size_t n, void (*fn)(uint8_t *frame, size_t len, const struct atkv_event *ev,
                                                          struct atkv_firehose *fh, void *arg),
                       void *arg)
{
	struct atkv_firehose *fh = atkv_firehose_new();
	long at = atkv_capture_start(buf, n);
	size_t off = at < 0 ? n : (size_t)at;
	const uint8_t *frame;
	size_t len;
	while (atkv_capture_next(buf, n, &off, &frame, &len) == 1) {
		const struct atkv_event *ev;
		struct atkv_err err = {0};
		if (!atkv_firehose_decode(fh, frame, len, &ev, &err))
			fn((uint8_t *)frame, len, ev, fh, arg);
	}
	atkv_firehose_free(fh);
}

static void count_commit(uint8_t *frame, size_t len, const struct atkv_event *ev, struct atkv_firehose *fh, void *arg)
{
	(void)frame, (void)len, (void)arg;
	if (ev->seq > last_seq)
		last_seq = ev->seq;
	if (ev->type != ATKV_EVENT_COMMIT)
		return;
	struct account *a = account_of(&ev->did);
	const uint8_t *block;
	size_t block_n;
	struct atkv_commit c;
	struct atkv_err err = {0};
	if (!a || atkv_firehose_block(fh, ev->commit.bytes, ev->commit.len, &block, &block_n) ||
	    atkv_commit_parse(block, block_n, &c, &err))
		return;
	n_commits++;
	a->commits++;
	snprintf(a->last_rev, sizeof(a->last_rev), "%s", c.rev);
	atkv_cid_format(&c.data, a->last_data);
}

/* What the altering pass does to one account's commit at the middle of its commits. */
enum change { RECORD, SIGNATURE, PREV_DATA, LEFT_OUT, UNCHANGED };

struct alter {
	enum change of[MAX_DIDS];     /* by account index */
	int seen[MAX_DIDS];
	uint8_t other_sig[64];        /* a signature of the unchanged account */
	bool have_sig;
	int64_t left_out_seq;
};

static void set_cid_digest(uint8_t *cid, size_t cid_n, const uint8_t *block, size_t block_n)
{
	struct atkv_sha256 *h = atkv_sha256_new();
	uint8_t d[32];
	atkv_sha256(h, block, block_n, d);
	atkv_sha256_free(h);
	memcpy(cid + cid_n - 32, d, 32);
}

/* A create's record with a year of its createdAt changed, its CID recomputed in the op and in
 * the CAR; the tree (signed) still holds the old one. */
static bool change_record(const struct atkv_event *ev, struct atkv_firehose *fh)
{
	for (size_t i = 0; i < ev->n_ops; i++) {
		const struct atkv_op *op = &ev->ops[i];
		const uint8_t *block;
		size_t n;
		if (op->action != ATKV_ACTION_CREATE || atkv_firehose_block(fh, op->cid.bytes, op->cid.len, &block, &n))
			continue;
		uint8_t *at = memmem(block, n, "createdAt", 9);
		if (!at || at + 9 + 4 > block + n || at[9] < 0x74 || at[9] > 0x77 + 1)
			continue;
		uint8_t *value = at + 10 + (at[9] == 0x78);
		uint8_t *car_cid = (uint8_t *)block - op->cid.len;
		if (memcmp(car_cid, op->cid.bytes, op->cid.len))
			continue;
		value[2] = value[2] == '3' ? '4' : '3';
		set_cid_digest(car_cid, op->cid.len, block, n);
		memcpy((uint8_t *)op->cid.bytes, car_cid, op->cid.len);
		return true;
	}
	return false;
}

/* Replaces every copy of old (n bytes) in frame by new. */
static void replace_all(uint8_t *frame, size_t len, const uint8_t *old, const uint8_t *new, size_t n)
{
	for (uint8_t *p = frame; (p = memmem(p, len - (size_t)(p - frame), old, n)); p += n)
		memcpy(p, new, n);
}

/* The commit block signed by another key (another account's signature), its CID recomputed
 * wherever the frame names it. */
static bool change_signature(uint8_t *frame, size_t len, const struct atkv_event *ev, struct atkv_firehose *fh,
                             const uint8_t sig[64])
{
	const uint8_t *block;
	size_t n;
	struct atkv_commit c;
	struct atkv_err err = {0};
	if (atkv_firehose_block(fh, ev->commit.bytes, ev->commit.len, &block, &n) || atkv_commit_parse(block, n, &c, &err) ||
	    c.sig_n != 64)
		return false;
	uint8_t old[64], new[64];
	size_t cid_n = ev->commit.len;
	memcpy(old, ev->commit.bytes, cid_n);
	memcpy((uint8_t *)c.sig, sig, 64);
	memcpy(new, old, cid_n);
	set_cid_digest(new, cid_n, block, n);
	replace_all(frame, len, old, new, cid_n);
	return true;
}

static void alter_frame(uint8_t *frame, size_t len, const struct atkv_event *ev, struct atkv_firehose *fh, void *arg)
{
	struct alter *al = arg;
	(void)len;
	if (ev->type != ATKV_EVENT_COMMIT)
		return;
	struct account *a = account_of(&ev->did);
	int i = (int)(a - accounts);
	int k = al->seen[i]++;
	if (al->of[i] == UNCHANGED + 1) {
		/* The commit after the one left out: refused, its prevData is that one's data. */
		snprintf(a->refused_rev, sizeof(a->refused_rev), "%.*s", (int)ev->rev.n, ev->rev.p);
		al->of[i] = UNCHANGED + 2;
		return;
	}
	if (al->of[i] == UNCHANGED && !al->have_sig) {
		const uint8_t *block;
		size_t n;
		struct atkv_commit c;
		struct atkv_err err = {0};
		if (!atkv_firehose_block(fh, ev->commit.bytes, ev->commit.len, &block, &n) &&
		    !atkv_commit_parse(block, n, &c, &err) && c.sig_n == 64) {
			memcpy(al->other_sig, c.sig, 64);
			al->have_sig = true;
		}
	}
	if (a->refused_rev[0] || k < a->commits / 2 || al->of[i] >= UNCHANGED)
		return;
	bool done = false;
	switch (al->of[i]) {
	case RECORD: done = change_record(ev, fh); a->where = "commit op"; break;
	case SIGNATURE: done = al->have_sig && change_signature(frame, len, ev, fh, al->other_sig); a->where = "commit sig"; break;
	case PREV_DATA:
		done = ev->prev_data.bytes != NULL;
		if (done)
			((uint8_t *)ev->prev_data.bytes)[ev->prev_data.len - 1] ^= 1;
		a->where = "commit prevData";
		break;
	case LEFT_OUT:
		al->left_out_seq = ev->seq;
		al->of[i] = UNCHANGED + 1;
		a->where = "prevData is not the data";
		return;
	default:
		return;
	}
	if (done)
		snprintf(a->refused_rev, sizeof(a->refused_rev), "%.*s", (int)ev->rev.n, ev->rev.p);
}

/* Writes to path the capture with changes[k] made to the account with the k-th most commits
 * (UNCHANGED past n_changes). Returns false when it cannot. */
static bool write_altered(const char *path, const enum change *changes, int n_changes, struct alter *al)
{
	uint8_t *copy = malloc(capture_n);
	memcpy(copy, capture, capture_n);
	int order[MAX_DIDS];
	for (int i = 0; i < n_accounts; i++)
		order[i] = i;
	for (int i = 0; i < n_accounts; i++)
		for (int j = i + 1; j < n_accounts; j++)
			if (accounts[order[j]].commits > accounts[order[i]].commits) {
				int t = order[i];
				order[i] = order[j];
				order[j] = t;
			}
	memset(al, 0, sizeof(*al));
	al->left_out_seq = -1;
	for (int i = 0; i < n_accounts; i++) {
		al->of[order[i]] = i < n_changes ? changes[i] : UNCHANGED;
		accounts[i].refused_rev[0] = '\0';
		accounts[i].where = NULL;
	}
	each_frame(copy, capture_n, alter_frame, al);
	/* Every frame but the one left out, as the capture holds them. */
	FILE *f = fopen(path, "wb");
	long at = atkv_capture_start(copy, capture_n);
	if (!f || at < 0) {
		free(copy);
		return false;
	}
	fwrite(copy, 1, (size_t)at, f);
	size_t off = (size_t)at;
	const uint8_t *frame;
	size_t len;
	struct atkv_firehose *fh = atkv_firehose_new();
	while (atkv_capture_next(copy, capture_n, &off, &frame, &len) == 1) {
		const struct atkv_event *ev;
		struct atkv_err err = {0};
		if (!atkv_firehose_decode(fh, frame, len, &ev, &err) && ev->seq == al->left_out_seq)
			continue;
		uint8_t be[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
		fwrite(be, 1, 4, f);
		fwrite(frame, 1, len, f);
	}
	atkv_firehose_free(fh);
	free(copy);
	return fclose(f) == 0;
}

/* ---- the store ---- */

/* Bucket record as {key: [value, Atkv-Rev]} (with_rev false: [value]). */
static json_t *snapshot_of(jsCtx *js, kvStore *kv, bool with_rev)
{
	json_t *o = json_object();
	kvKeysList keys = {0};
	if (kvStore_Keys(&keys, kv, NULL) != NATS_OK)
		return o;
	for (int i = 0; i < keys.Count; i++) {
		natsMsg *m = kv_last_msg(js, "record", keys.Keys[i]);
		const char *rev = NULL;
		if (!m)
			continue;
		natsMsgHeader_Get(m, "Atkv-Rev", &rev);
		json_t *v = json_pack("[s#]", natsMsg_GetData(m), (int)natsMsg_GetDataLength(m));
		if (with_rev)
			json_array_append_new(v, json_string(rev ? rev : ""));
		json_object_set_new(o, keys.Keys[i], v);
		natsMsg_Destroy(m);
	}
	kvKeysList_Destroy(&keys);
	return o;
}

static json_t *snapshot(jsCtx *js, kvStore *kv) { return snapshot_of(js, kv, true); }

/* The escaped form of a DID inside a record key: ".did/3Aplc/3A....". */
static void escaped_did(const char *did, char *out, size_t n)
{
	size_t o = 0;
	out[o++] = '.';
	for (const char *p = did; *p && o + 4 < n; p++)
		o += (size_t)(*p == ':' ? snprintf(out + o, n - o, "/3A") : snprintf(out + o, n - o, "%c", *p));
	out[o++] = '.';
	out[o] = '\0';
}

struct store {
	struct nats_server server;
	natsConnection *nc;
	jsCtx *js;
	kvStore *record, *repo;
	pid_t builder;
	int metrics_port;
};

static bool store_open(struct store *s, const char *name)
{
	snprintf(s->server.dir, sizeof(s->server.dir), "%s/%s", tmp, name);
	if (nats_server_start(&s->server, 0) || natsConnection_ConnectTo(&s->nc, s->server.url) != NATS_OK ||
	    natsConnection_JetStream(&s->js, s->nc, NULL) != NATS_OK)
		return false;
	return true;
}

static pid_t start_builder(struct store *s, int replay_port, const char *extra, const char *log_name)
{
	char relay[64], plc[64], log[128], metrics[64];
	snprintf(relay, sizeof(relay), "ws://127.0.0.1:%d", replay_port);
	snprintf(plc, sizeof(plc), "http://127.0.0.1:%d", plc_port);
	snprintf(log, sizeof(log), "%s/%s.log", tmp, log_name);
	s->metrics_port = spawn_free_port();
	snprintf(metrics, sizeof(metrics), "--metrics=127.0.0.1:%d", s->metrics_port);
	char *argv[] = {BUILDER, "--nats", s->server.url, "--relay", relay, "--plc", plc, "--config", "/dev/null",
	                "--verify-threads", "2", "--log-level", "debug", metrics, (char *)extra, NULL};
	return s->builder = spawn(argv, NULL, log);
}

static int64_t stored_cursor(struct store *s)
{
	kvStore *kv = NULL;
	kvEntry *e = NULL;
	int64_t c = -1;
	if (js_KeyValue(&kv, s->js, "cursor") == NATS_OK && kvStore_Get(&e, kv, "firehose") == NATS_OK)
		c = strtoll(kvEntry_ValueString(e), NULL, 10);
	kvEntry_Destroy(e);
	kvStore_Destroy(kv);
	return c;
}

static bool wait_cursor(struct store *s, int64_t seq, int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 100) {
		if (stored_cursor(s) >= seq)
			return true;
		sleep_ms(100);
	}
	return false;
}

static bool open_buckets_record(struct store *s)
{
	return s->record || js_KeyValue(&s->record, s->js, "record") == NATS_OK;
}

static bool open_buckets(struct store *s)
{
	return open_buckets_record(s) && (s->repo || js_KeyValue(&s->repo, s->js, "repo") == NATS_OK);
}

static void store_close(struct store *s)
{
	if (s->builder > 0)
		spawn_stop(s->builder, SIGTERM, 10000);
	kvStore_Destroy(s->record);
	kvStore_Destroy(s->repo);
	jsCtx_Destroy(s->js);
	natsConnection_Destroy(s->nc);
	nats_server_destroy(&s->server);
}

static double metric(struct store *s, const char *sample)
{
	static char page[65536];
	scrape_get(s->metrics_port, "/metrics", page, sizeof(page));
	return scrape_value(page, sample);
}

/* The head of did in bucket repo. */
static json_t *head_of(struct store *s, const char *did)
{
	char key[256];
	escaped_did(did, key, sizeof(key));
	key[strlen(key) - 1] = '\0';
	kvEntry *e = NULL;
	json_t *v = NULL;
	if (kvStore_Get(&e, s->repo, key + 1) == NATS_OK)
		v = json_loadb(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), 0, NULL);
	kvEntry_Destroy(e);
	return v;
}

/* The subject of did's note in bucket cursor (a fetch or a purge owed). */
static void note_subject(const char *did, bool purge, char *out, size_t n)
{
	char esc[256];
	escaped_did(did, esc, sizeof(esc));
	esc[strlen(esc) - 1] = '\0';
	snprintf(out, n, "$KV.cursor.resync.%s.%s", purge ? "purge" : "fetch", esc + 1);
}

/* did's note as the stream holds it: its value, "(deleted)" for a delete marker, "" when the
 * stream holds nothing of it. */
static void note_of(struct store *s, const char *did, bool purge, char *out, size_t n)
{
	char subject[320];
	note_subject(did, purge, subject, sizeof(subject));
	natsMsg *m = NULL;
	jsErrCode jerr = 0;
	out[0] = '\0';
	if (js_GetLastMsg(&m, s->js, "KV_cursor", subject, NULL, &jerr) == NATS_OK) {
		const char *op = NULL;
		natsMsgHeader_Get(m, "KV-Operation", &op);
		snprintf(out, n, "%.*s", op ? 9 : natsMsg_GetDataLength(m), op ? "(deleted)" : natsMsg_GetData(m));
	}
	natsMsg_Destroy(m);
}

static void note_head(const char *did, const json_t *h)
{
	char *text = h ? json_dumps(h, JSON_COMPACT) : NULL;
	tap_note("head of %s: %s", did, text ? text : "none");
	free(text);
}

/* Whether a and b hold the same keys and values, among the keys that match (filter NULL: all). */
static bool same_records(json_t *a, json_t *b, bool (*keep)(const char *key, void *arg), void *arg, char *diff,
                         size_t diff_n)
{
	const char *key;
	json_t *v;
	int n_a = 0, n_b = 0;
	diff[0] = '\0';
	json_object_foreach(a, key, v) {
		if (keep && !keep(key, arg))
			continue;
		n_a++;
		if (!json_equal(v, json_object_get(b, key))) {
			snprintf(diff, diff_n, "%s differs", key);
			return false;
		}
	}
	json_object_foreach(b, key, v)
		if (!keep || keep(key, arg))
			n_b++;
	if (n_a != n_b)
		snprintf(diff, diff_n, "%d keys against %d", n_a, n_b);
	return n_a == n_b;
}

static bool of_account(const char *key, void *arg) { return strstr(key, arg) != NULL; }

/* ---- the tests ---- */

static void verified_run(struct store *s, int replay_port, json_t *want)
{
	tap_ok(start_builder(s, replay_port, NULL, "builder") > 0 && wait_cursor(s, last_seq, 60000),
	       "a verifying builder stores the capture to its last seq (%lld)", (long long)last_seq);
	tap_eq((long long)metric(s, "atkv_builder_commits_verified_total"), n_commits, "every commit verifies (%d)",
	       n_commits);
	tap_eq((long long)metric(s, "atkv_builder_commits_unverified_total"), 0, "none fails its checks");
	tap_eq((long long)metric(s, "atkv_builder_desynchronized_total"), 0, "no repository is desynchronized");
	tap_eq((long long)metric(s, "atkv_builder_errors_total{kind=\"broken_chain\"}"), 0,
	       "every prevData is the data of its repository's commit before");
	double fetches = metric(s, "atkv_builder_key_fetches_total");
	tap_ok(fetches >= n_accounts && fetches <= 2 * n_accounts,
	       "each account's DID document is fetched once (twice at most, by two threads at once): %.0f for %d", fetches,
	       n_accounts);
	char diff[512];
	json_t *got = NULL;
	if (open_buckets(s))
		got = snapshot(s->js, s->record);
	tap_ok(got && json_object_size(want) > 0 && same_records(want, got, NULL, NULL, diff, sizeof(diff)),
	       "the store equals the one an unverifying builder makes (%zu records, values and revs) %s",
	       json_object_size(want), diff);
	int heads_ok = 0;
	for (int i = 0; i < n_accounts; i++) {
		json_t *h = head_of(s, accounts[i].did);
		const char *rev = json_string_value(json_object_get(h, "rev"));
		const char *data = json_string_value(json_object_get(h, "data"));
		const char *status = json_string_value(json_object_get(h, "status"));
		if (rev && data && status && !strcmp(rev, accounts[i].last_rev) && !strcmp(data, accounts[i].last_data) &&
		    !strcmp(status, "synced"))
			heads_ok++;
		else
			tap_note("head of %s: %s", accounts[i].did, h ? json_dumps(h, JSON_COMPACT) : "none");
		json_decref(h);
	}
	tap_eq(heads_ok, n_accounts, "bucket repo holds each repository's last rev and data, synced");
	json_decref(got);

	/* From seq 0 again: every event is one the heads have seen. */
	spawn_stop(s->builder, SIGTERM, 10000);
	tap_ok(start_builder(s, replay_port, "--cursor=0", "builder-again") > 0, "restarted with --cursor 0");
	bool all = false;
	for (int t = 0; t < 30000 && !all; t += 100, sleep_ms(100))
		all = metric(s, "atkv_builder_seq") >= (double)last_seq;
	sleep_ms(1500);
	tap_ok(all, "it reads the capture again to its last seq");
	tap_eq((long long)metric(s, "atkv_builder_ops_total{action=\"create\"}") > 0, 1,
	       "replayed commits are written again");
	tap_eq((long long)(metric(s, "atkv_builder_errors_total{kind=\"stale_rev\"}") +
	                   metric(s, "atkv_builder_errors_total{kind=\"broken_chain\"}") +
	                   metric(s, "atkv_builder_desynchronized_total")),
	       0, "and none is refused as stale, off the chain, or desynchronizing");
	got = snapshot(s->js, s->record);
	tap_ok(same_records(want, got, NULL, NULL, diff, sizeof(diff)), "the store is unchanged %s", diff);
	json_decref(got);
}

static void altered_run(struct store *s, int replay_port, json_t *want, const char *name, int unverified, int broken)
{
	tap_ok(start_builder(s, replay_port, NULL, name) > 0 && wait_cursor(s, last_seq - (broken ? 1 : 0), 60000),
	       "%s: a verifying builder reads the altered capture to its end", name);
	tap_eq((long long)metric(s, "atkv_builder_desynchronized_total"), unverified + broken,
	       "%s: %d repositories are desynchronized", name, unverified + broken);
	tap_eq((long long)metric(s, "atkv_builder_errors_total{kind=\"unverified\"}"), unverified,
	       "%s: %d commits fail their checks", name, unverified);
	tap_eq((long long)metric(s, "atkv_builder_errors_total{kind=\"broken_chain\"}"), broken,
	       "%s: %d commits break their repository's chain", name, broken);
	if (!open_buckets(s))
		return;
	json_t *got = snapshot(s->js, s->record);
	char diff[512];
	for (int i = 0; i < n_accounts; i++) {
		struct account *a = &accounts[i];
		char esc[200];
		escaped_did(a->did, esc, sizeof(esc));
		if (!a->refused_rev[0]) {
			tap_ok(same_records(want, got, of_account, esc, diff, sizeof(diff)),
			       "%s: %s (unchanged): its records as without the changes %s", name, a->did, diff);
			continue;
		}
		/* Nothing at or after the refused commit's rev. */
		const char *key;
		json_t *v;
		int later = 0, kept = 0;
		json_object_foreach(got, key, v) {
			if (!strstr(key, esc))
				continue;
			kept++;
			if (strcmp(json_string_value(json_array_get(v, 1)), a->refused_rev) >= 0)
				later++;
		}
		tap_ok(kept > 0 && later == 0, "%s: %s: nothing of the refused commit (rev %s) or after it written (%d kept)",
		       name, a->did, a->refused_rev, kept);
		json_t *h = head_of(s, a->did);
		const char *status = json_string_value(json_object_get(h, "status"));
		const char *reason = json_string_value(json_object_get(h, "reason"));
		tap_ok(status && !strcmp(status, "desynchronized") && reason && strstr(reason, a->where),
		       "%s: %s: desynchronized in bucket repo, for \"%s\" (%s)", name, a->did, a->where,
		       reason ? reason : "no reason");
		json_decref(h);
	}
	tap_ok(metric(s, "atkv_builder_errors_total{kind=\"desynchronized\"}") > 0,
	       "%s: later commits of desynchronized repositories are held (%.0f)", name,
	       metric(s, "atkv_builder_errors_total{kind=\"desynchronized\"}"));
	/* Each is resynchronized from its PDS, which has no repository any more: given up. */
	double failures = 0;
	for (int t = 0; t < 10000 && failures < unverified + broken; t += 100, sleep_ms(100))
		failures = metric(s, "atkv_builder_resync_failures_total");
	tap_eq((long long)failures, unverified + broken, "%s: each is resynchronized from its PDS, which answers RepoNotFound",
	       name);
	char log[64];
	snprintf(log, sizeof(log), "%s.log", name);
	tap_ok(tap_count_in_file(tmp, log, "RepoNotFound") >= unverified + broken &&
	       tap_count_in_file(tmp, log, "stays desynchronized") >= unverified + broken,
	       "%s: the log says so, and that the repository stays desynchronized", name);
	json_decref(got);
}

/* A generated feed's two relays and two stores, in tmp/name: the whole feed and the relay's
 * version of it, each a capture served by a replay of its own; the reference store, filled from
 * the whole feed by an unverifying builder (its records in want), and the store under test. */
struct feedrun {
	char dir[128];
	struct store ref, s;
	pid_t r_all, r_relay;
	int port_all, port_relay;
	json_t *want;
};

static bool feedrun_start(struct feedrun *fr, const char *name, const struct atkv_buf *all, size_t n_all,
                          const struct atkv_buf *relay, size_t n_relay, int64_t last, int n_acc)
{
	char all_path[192], relay_path[192], dir_all[160], dir_relay[160], ref_name[64];
	*fr = (struct feedrun){.r_all = -1, .r_relay = -1};
	snprintf(fr->dir, sizeof(fr->dir), "%s/%s", tmp, name);
	snprintf(all_path, sizeof(all_path), "%s/all.bin", fr->dir);
	snprintf(relay_path, sizeof(relay_path), "%s/relay.bin", fr->dir);
	snprintf(dir_all, sizeof(dir_all), "%s/all", fr->dir);
	snprintf(dir_relay, sizeof(dir_relay), "%s/relay", fr->dir);
	snprintf(ref_name, sizeof(ref_name), "%s-ref", name);
	mkdir(fr->dir, 0700);
	mkdir(dir_all, 0700);
	mkdir(dir_relay, 0700);
	if (sf_write_capture(all_path, all, n_all) || sf_write_capture(relay_path, relay, n_relay) ||
	    (fr->r_all = spawn_replay(dir_all, all_path, NULL, &fr->port_all)) < 0 ||
	    (fr->r_relay = spawn_replay(dir_relay, relay_path, NULL, &fr->port_relay)) < 0 ||
	    !store_open(&fr->ref, ref_name) || !store_open(&fr->s, name)) {
		tap_ok(false, "%s: the captures, their replays and nats-servers", name);
		return false;
	}
	tap_ok(start_builder(&fr->ref, fr->port_all, "--verify=false", ref_name) > 0 && wait_cursor(&fr->ref, last, 60000),
	       "%s: %zu signed commits of %d accounts stored by an unverifying builder", name, n_all, n_acc);
	fr->want = open_buckets(&fr->ref) ? snapshot_of(fr->ref.js, fr->ref.record, false) : json_object();
	return true;
}

static void feedrun_stop(struct feedrun *fr)
{
	store_close(&fr->ref);
	store_close(&fr->s);
	if (fr->r_all > 0)
		spawn_stop(fr->r_all, SIGTERM, 5000);
	if (fr->r_relay > 0)
		spawn_stop(fr->r_relay, SIGTERM, 5000);
	json_decref(fr->want);
}

/* The generated feed: 8 accounts, 30 commits each, one commit of account 3 left out (its 10th);
 * the PDS serves account 3's repository as it was after its 12th commit, so the 18 held after
 * it must be applied from what the builder kept. Account 5's last 3 commits are left out too,
 * and a #sync at its last rev closes the feed. */
#define FEED_ACCOUNTS 8
#define FEED_COMMITS 240
#define FEED_VICTIM FEED_VICTIM_AT
#define FEED_LEFT_OUT (9 * FEED_ACCOUNTS + FEED_VICTIM)
#define FEED_SNAPSHOT (11 * FEED_ACCOUNTS + FEED_VICTIM)
#define FEED_APPLIED (FEED_COMMITS / FEED_ACCOUNTS - 12)
#define FEED_SYNCED 5
#define FEED_UNSENT 3   /* the last commits of account 5 the relay does not send */

static void generated_feed(void)
{
	char pds[64];
	snprintf(pds, sizeof(pds), "http://127.0.0.1:%d", plc_port);
	struct signedfeed *f = sf_new(FEED_ACCOUNTS, 5000);
	struct atkv_buf frames[FEED_COMMITS + 1] = {0}, doc = ATKV_BUF_INIT;
	int64_t feed_last = 0;
	feed_cars = calloc(FEED_ACCOUNTS, sizeof(*feed_cars));
	for (int i = 0; i < FEED_COMMITS; i++) {
		feed_last = sf_commit(f, &frames[i]);
		if (i == FEED_SNAPSHOT)
			sf_repo_car(f, FEED_VICTIM, &feed_cars[FEED_VICTIM]);
	}
	int64_t sync_seq = sf_sync(f, FEED_SYNCED, &frames[FEED_COMMITS]);
	for (size_t i = 0; i < FEED_ACCOUNTS; i++) {
		if (i != FEED_VICTIM)
			sf_repo_car(f, i, &feed_cars[i]);
		sf_did_doc(f, i, pds, &doc);
		json_object_set_new(docs, sf_did(f, i), json_loadb(doc.data, doc.len, 0, NULL));
	}
	feed = f;
	/* Without the commits left out, then the #sync. */
	struct atkv_buf gap[FEED_COMMITS + 1];
	size_t n_gap = 0;
	for (int i = 0; i <= FEED_COMMITS; i++) {
		bool unsent = i < FEED_COMMITS && i % FEED_ACCOUNTS == FEED_SYNCED &&
		              i / FEED_ACCOUNTS >= FEED_COMMITS / FEED_ACCOUNTS - FEED_UNSENT;
		if (i != FEED_LEFT_OUT && !unsent)
			gap[n_gap++] = frames[i];
	}
	struct feedrun fr = {.r_all = -1, .r_relay = -1};
	if (!feedrun_start(&fr, "feed", frames, FEED_COMMITS, gap, n_gap, feed_last, FEED_ACCOUNTS))
		goto out;
	json_t *want = fr.want;

	/* A key of the victim that its repository does not hold: the resynchronization deletes it. */
	char stale[ATKV_KEY_MAX + 1];
	const char *victim = sf_did(f, FEED_VICTIM);
	atkv_key_build(stale, sizeof(stale), victim, strlen(victim), "app.bsky.feed.like", 18, "3zzzzzzzzzzz2", 13);
	uint64_t rev;
	tap_ok(!kv_bucket_create(fr.s.js, "record") && open_buckets_record(&fr.s) &&
	       kvStore_PutString(&rev, fr.s.record, stale, "{\"stale\":true}") == NATS_OK,
	       "feed: the store holds a record of account %d that its repository does not", FEED_VICTIM);
	tap_ok(start_builder(&fr.s, fr.port_relay, NULL, "feed") > 0 && wait_cursor(&fr.s, sync_seq, 60000),
	       "feed: a verifying builder reads the feed with commits left out, and the #sync");
	bool settled = false;
	for (int t = 0; t < 20000 && !settled; t += 100, sleep_ms(100))
		settled = metric(&fr.s, "atkv_builder_resyncs_total") >= 2 && metric(&fr.s, "atkv_builder_resyncs_waiting") == 0;
	tap_eq((long long)metric(&fr.s, "atkv_builder_commits_verified_total"), FEED_COMMITS - 1 - FEED_UNSENT,
	       "feed: every commit it got verifies (%d)", FEED_COMMITS - 1 - FEED_UNSENT);
	tap_eq((long long)metric(&fr.s, "atkv_builder_errors_total{kind=\"broken_chain\"}"), 1,
	       "feed: the commit after the one left out breaks its repository's chain");
	tap_ok(settled && metric(&fr.s, "atkv_builder_resync_failures_total") == 0,
	       "feed: both repositories are resynchronized from the PDS, after the gap and after the #sync (%.0f "
	       "resyncs, %.0f failed)",
	       metric(&fr.s, "atkv_builder_resyncs_total"), metric(&fr.s, "atkv_builder_resync_failures_total"));
	tap_ok(tap_count_in_file(tmp, "feed.log", "records written") == 2 &&
	       tap_count_in_file(tmp, "feed.log", " 1 deleted") == 1,
	       "feed: its log says what each resynchronization wrote, and that one deleted a key");
	/* How many were held depends on how fast the builder read the rest (a sanitizer build is
	 * slower): those not held were written live once the repository was in sync again. */
	double applied = metric(&fr.s, "atkv_builder_held_applied_total");
	tap_ok(applied >= 1 && applied <= FEED_APPLIED,
	       "feed: the PDS's snapshot is older than the feed: the commits held after it are applied (%.0f of the %d "
	       "after it)",
	       applied, FEED_APPLIED);
	char diff[512];
	json_t *got = open_buckets(&fr.s) ? snapshot_of(fr.s.js, fr.s.record, false) : json_object();
	tap_ok(json_object_size(want) == FEED_COMMITS && same_records(want, got, NULL, NULL, diff, sizeof(diff)),
	       "feed: the store equals the one of the whole feed: the record left out is there, the stale key gone (%zu "
	       "records) %s",
	       json_object_size(got), diff);
	json_t *h = head_of(&fr.s, victim);
	tap_ok(h && !strcmp(json_string_value(json_object_get(h, "status")), "synced") &&
	       json_array_size(json_object_get(h, "collections")) == 1,
	       "feed: its head is synced again, knowing its one collection");
	json_decref(h);
	json_decref(got);
out:
	feedrun_stop(&fr);
	for (int i = 0; i <= FEED_COMMITS; i++)
		atkv_buf_free(&frames[i]);
	atkv_buf_free(&doc);
}

/* A store atkv-backfill filled halfway through a feed, then a builder reading the rest: the
 * backfill leaves each repository's head (rev, data, collections) in bucket repo, and the
 * builder checks the first commits after it against them — one account's first commit after
 * the snapshot is left out, so its next breaks the chain and it is resynchronized (without the
 * head, that commit would have been taken as the account's first). 3 accounts, 20 commits
 * each, the backfill after the 10th. */
#define BF_ACCOUNTS 3
#define BF_COMMITS 60
#define BF_SNAPSHOT 30  /* commits made when the backfill fetches the repositories */
#define BF_VICTIM 1
#define BF_LAG 6        /* commits the snapshot has that the relay sends after it */

/* The account of feed f that ev (decoded by fh from frame) is a commit of, or -1. */
static long account_in(struct signedfeed *f, struct atkv_firehose *fh, const struct atkv_buf *frame,
                       char rev[ATKV_TID_LEN + 1])
{
	const struct atkv_event *ev;
	struct atkv_err err = {0};
	char did[ATKV_DID_MAX + 1];
	if (atkv_firehose_decode(fh, (const uint8_t *)frame->data, frame->len, &ev, &err) || ev->did.n > ATKV_DID_MAX ||
	    ev->rev.n != ATKV_TID_LEN)
		return -1;
	snprintf(did, sizeof(did), "%.*s", (int)ev->did.n, ev->did.p);
	snprintf(rev, ATKV_TID_LEN + 1, "%.*s", (int)ev->rev.n, ev->rev.p);
	return sf_find(f, did);
}

/* Runs atkv-backfill on the store for the DIDs given; its exit status, or -1. */
static int run_backfill(struct store *s, const char *const *dids, size_t n, const char *option, const char *log_name)
{
	char plc[64], log[128];
	snprintf(plc, sizeof(plc), "http://127.0.0.1:%d", plc_port);
	snprintf(log, sizeof(log), "%s/%s.log", tmp, log_name);
	char *argv[16] = {"src/atkv-backfill", "--config", "/dev/null", "--nats", s->server.url, "--plc", plc,
	                  "--log-level", "debug", (char *)option};
	size_t argc = option ? 10 : 9;
	for (size_t i = 0; i < n && argc < 15; i++)
		argv[argc++] = (char *)dids[i];
	pid_t p = spawn(argv, NULL, log);
	int st = 0;
	for (int t = 0; p > 0 && t < 60000 && spawn_running(p, &st); t += 50)
		sleep_ms(50);
	if (p > 0 && spawn_running(p, &st)) {
		spawn_stop(p, SIGKILL, 5000);
		return -1;
	}
	return p > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool head_status(struct store *s, const char *did, const char *status, const char *rev)
{
	json_t *h = head_of(s, did);
	const char *st = json_string_value(json_object_get(h, "status"));
	const char *r = json_string_value(json_object_get(h, "rev"));
	bool yes = st && !strcmp(st, status) && (!rev || (r && !strcmp(r, rev)));
	json_decref(h);
	return yes;
}

/* Keys of did in bucket record. */
static size_t keys_of(struct store *s, const char *did)
{
	char esc[256];
	escaped_did(did, esc, sizeof(esc));
	json_t *all = snapshot_of(s->js, s->record, false);
	size_t n = 0;
	const char *key;
	json_t *v;
	json_object_foreach(all, key, v)
		n += strstr(key, esc) != NULL;
	json_decref(all);
	return n;
}

/* Resynchronizations owed survive a restart (bucket cursor notes them): a #sync of account 2
 * whose PDS answers 503, the builder stopped before it tries again, started again with nothing
 * more to read — it resynchronizes the repository all the same. Then the state a crash in the
 * middle of an account's deletion leaves (its note, its head): the next start removes its
 * records. The builder of s is running on entry. */
static void restarted(struct store *s, struct signedfeed *f, struct atkv_firehose *fh, struct atkv_buf *cars,
                      const char *const *dids, const char *dir)
{
	spawn_stop(s->builder, SIGTERM, 10000);
	s->builder = -1;
	/* A commit of account 2 the relay never sends (the others' too), then its #sync. */
	struct atkv_buf frame = ATKV_BUF_INIT, sync = ATKV_BUF_INIT;
	char rev[ATKV_TID_LEN + 1] = "";
	for (int i = 0; i < BF_ACCOUNTS; i++) {
		sf_commit(f, &frame);
		if (account_in(f, fh, &frame, rev) == 2)
			break;
	}
	int64_t sync_seq = sf_sync(f, 2, &sync);
	sf_repo_car(f, 2, &cars[2]);
	char path[224], rdir[192], note[32];
	snprintf(rdir, sizeof(rdir), "%s/restart", dir);
	snprintf(path, sizeof(path), "%s/sync.bin", rdir);
	mkdir(rdir, 0700);
	int port = 0;
	pid_t r = -1;
	pds_down = 2;
	if (sf_write_capture(path, &sync, 1) || (r = spawn_replay(rdir, path, NULL, &port)) < 0) {
		tap_ok(false, "restart: the #sync's capture and replay");
		goto out;
	}
	tap_ok(start_builder(s, port, NULL, "restart1") > 0 && wait_cursor(s, sync_seq, 60000),
	       "restart: a #sync of account 2 at a later rev is read, its PDS answering 503");
	note_of(s, dids[2], false, note, sizeof(note));
	tap_ok(!strcmp(note, "fetch") && head_status(s, dids[2], "desynchronized", NULL),
	       "restart: bucket cursor notes the resynchronization owed (\"%s\"), the head is desynchronized", note);
	spawn_stop(s->builder, SIGTERM, 10000);
	s->builder = -1;
	pds_down = -1;
	tap_ok(start_builder(s, port, NULL, "restart2") > 0, "restart: started again, with nothing more to read");
	/* The head is written, then the note removed: both awaited. */
	bool synced = false;
	for (int t = 0; t < 30000 && !(synced && !note[0]); t += 100, sleep_ms(100)) {
		synced = head_status(s, dids[2], "synced", rev);
		note_of(s, dids[2], false, note, sizeof(note));
	}
	tap_ok(synced && !note[0] && tap_count_in_file(tmp, "restart2.log", "as bucket cursor notes") == 1,
	       "restart: it resynchronizes the repository to the #sync's rev %s, as the note said, and removes the note "
	       "(no delete marker left: %s)",
	       rev, note[0] ? note : "none");

	/* What a crash between an account's deletion and the removal of its records leaves. */
	spawn_stop(s->builder, SIGTERM, 10000);
	s->builder = -1;
	char subject[320], esc[256];
	escaped_did(dids[0], esc, sizeof(esc));
	esc[strlen(esc) - 1] = '\0';
	note_subject(dids[0], true, subject, sizeof(subject));
	const char *key = subject + strlen("$KV.cursor.");
	kvStore *cursor = NULL;
	uint64_t seq;
	/* As ingest writes it when the #account event comes (its reason told apart from the
	 * one the builder writes once the records are gone). */
	static const char gone[] = "{\"rev\":\"\",\"data\":\"\",\"seq\":-1,\"status\":\"desynchronized\",\"reason\":"
	                           "\"account deleted (its records to remove)\"}";
	size_t before = keys_of(s, dids[0]);
	bool noted = js_KeyValue(&cursor, s->js, "cursor") == NATS_OK &&
	             kvStore_PutString(&seq, cursor, key, "purge") == NATS_OK &&
	             kvStore_PutString(&seq, s->repo, esc + 1, gone) == NATS_OK;
	kvStore_Destroy(cursor);
	tap_ok(noted && before > 0 && start_builder(s, port, NULL, "restart3") > 0,
	       "restart: a deleted account's note and head as a crash leaves them (%zu records of it stored)", before);
	/* The records go, then the head is written, then the note removed. */
	size_t left = before;
	const char *reason = NULL;
	json_t *h = NULL;
	for (int t = 0; t < 30000 && (left || note[0] || !reason || strcmp(reason, "account deleted")); t += 100) {
		sleep_ms(100);
		left = keys_of(s, dids[0]);
		note_of(s, dids[0], true, note, sizeof(note));
		json_decref(h);
		h = head_of(s, dids[0]);
		reason = json_string_value(json_object_get(h, "reason"));
	}
	tap_ok(left == 0 && !note[0] && reason && !strcmp(reason, "account deleted"),
	       "restart: its records are removed at the start (%zu left), its head says so, the note is removed", left);
	json_decref(h);
out:
	pds_down = -1;
	if (r > 0)
		spawn_stop(r, SIGTERM, 5000);
	atkv_buf_free(&frame);
	atkv_buf_free(&sync);
}

static void backfilled_feed(void)
{
	char pds[64];
	snprintf(pds, sizeof(pds), "http://127.0.0.1:%d", plc_port);
	struct signedfeed *f = sf_new(BF_ACCOUNTS, 9000);
	struct atkv_buf frames[BF_COMMITS] = {0}, doc = ATKV_BUF_INIT;
	struct atkv_buf *cars = calloc(BF_ACCOUNTS, sizeof(*cars));
	char mid_rev[BF_ACCOUNTS][ATKV_TID_LEN + 1] = {{0}};
	const char *dids[BF_ACCOUNTS];
	struct atkv_firehose *fh = atkv_firehose_new();
	int64_t last = 0;
	for (int i = 0; i < BF_COMMITS; i++) {
		last = sf_commit(f, &frames[i]);
		char rev[ATKV_TID_LEN + 1];
		long a = i < BF_SNAPSHOT ? account_in(f, fh, &frames[i], rev) : -1;
		if (a >= 0)
			memcpy(mid_rev[a], rev, sizeof(rev));
		if (i == BF_SNAPSHOT - 1)
			for (size_t k = 0; k < BF_ACCOUNTS; k++)
				sf_repo_car(f, k, &cars[k]);
	}
	for (size_t k = 0; k < BF_ACCOUNTS; k++) {
		dids[k] = sf_did(f, k);
		sf_did_doc(f, k, pds, &doc);
		json_object_set_new(docs, dids[k], json_loadb(doc.data, doc.len, 0, NULL));
	}
	/* The relay's part: it lags the PDS (the last BF_LAG commits before the snapshot come
	 * first), then what came after, without the victim's first commit. */
	struct atkv_buf live[BF_COMMITS];
	size_t n_live = 0;
	bool left_out = false;
	for (int i = BF_SNAPSHOT - BF_LAG; i < BF_COMMITS; i++) {
		char rev[ATKV_TID_LEN + 1];
		if (i >= BF_SNAPSHOT && !left_out && account_in(f, fh, &frames[i], rev) == BF_VICTIM) {
			left_out = true;
			continue;
		}
		live[n_live++] = frames[i];
	}
	feed = f;
	feed_cars = cars;
	struct feedrun fr = {.r_all = -1, .r_relay = -1};
	if (!left_out || !feedrun_start(&fr, "backfilled", frames, BF_COMMITS, live, n_live, last, BF_ACCOUNTS))
		goto out;
	json_t *want = fr.want;

	int rc1 = run_backfill(&fr.s, dids, 1, "--verify=false", "backfill-unverified");
	bool opened = open_buckets(&fr.s);
	json_t *h = opened ? head_of(&fr.s, dids[0]) : NULL;
	tap_ok(rc1 == 0 && opened && !h, "backfilled: atkv-backfill --verify=false writes no head (exit %d)", rc1);
	json_decref(h);
	int rc2 = run_backfill(&fr.s, dids, BF_ACCOUNTS, "--force", "backfill");
	int heads_ok = 0;
	for (size_t k = 0; k < BF_ACCOUNTS; k++) {
		h = head_of(&fr.s, dids[k]);
		json_t *c = json_object_get(h, "collections");
		const char *rev = json_string_value(json_object_get(h, "rev"));
		const char *data = json_string_value(json_object_get(h, "data"));
		const char *status = json_string_value(json_object_get(h, "status"));
		/* No collections: the store could hold keys of the repository the snapshot lacks. */
		if (rev && !strcmp(rev, mid_rev[k]) && data && *data && status && !strcmp(status, "synced") &&
		    json_integer_value(json_object_get(h, "seq")) == -1 && !c)
			heads_ok++;
		else
			note_head(dids[k], h);
		json_decref(h);
	}
	tap_ok(rc2 == 0 && heads_ok == BF_ACCOUNTS,
	       "backfilled: atkv-backfill (verifying) leaves each repository's head: its rev and data, seq -1, synced, "
	       "no collections claimed (%d of %d; exit %d)",
	       heads_ok, BF_ACCOUNTS, rc2);

	/* The PDS has moved on: a resynchronization gets the repositories as they end. */
	for (size_t k = 0; k < BF_ACCOUNTS; k++)
		sf_repo_car(f, k, &cars[k]);
	tap_ok(start_builder(&fr.s, fr.port_relay, NULL, "backfilled") > 0 && wait_cursor(&fr.s, last, 60000),
	       "backfilled: a verifying builder reads what came after the snapshot");
	bool settled = false;
	for (int t = 0; t < 20000 && !settled; t += 100, sleep_ms(100))
		settled = metric(&fr.s, "atkv_builder_resyncs_total") >= 1 && metric(&fr.s, "atkv_builder_resyncs_waiting") == 0;
	/* At least BF_LAG: writes replayed after a slow acknowledgement see some of them again. */
	int behind = tap_count_in_file(tmp, "backfilled.log", "commit skipped: the repository's snapshot at rev");
	double stale = metric(&fr.s, "atkv_builder_errors_total{kind=\"stale_rev\"}");
	tap_ok(stale == 0 && behind >= BF_LAG,
	       "backfilled: the %d commits the snapshot has already are skipped, and not as errors (%d lines, %.0f stale)",
	       BF_LAG, behind, stale);
	tap_eq((long long)metric(&fr.s, "atkv_builder_errors_total{kind=\"broken_chain\"}"), 1,
	       "backfilled: the first commits chain on the backfill's heads; the victim's, after the one left out, "
	       "does not");
	tap_ok(settled && metric(&fr.s, "atkv_builder_resync_failures_total") == 0 &&
	           metric(&fr.s, "atkv_builder_desynchronized_total") == 1,
	       "backfilled: that one repository is resynchronized, and no other");
	char diff[512];
	json_t *got = snapshot_of(fr.s.js, fr.s.record, false);
	tap_ok(json_object_size(want) == BF_COMMITS && same_records(want, got, NULL, NULL, diff, sizeof(diff)),
	       "backfilled: the store equals the one of the whole feed (%zu records) %s", json_object_size(got), diff);
	json_decref(got);
	/* The builder's heads are newer: a backfill run again leaves them. */
	h = head_of(&fr.s, dids[0]);
	char *before = h ? json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(h);
	int rc3 = run_backfill(&fr.s, dids, 1, "--force", "backfill-again");
	h = head_of(&fr.s, dids[0]);
	char *after = h ? json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	tap_ok(rc3 == 0 && before && after && !strcmp(before, after) && json_integer_value(json_object_get(h, "seq")) > 0,
	       "backfilled: the builder's head is left by a backfill run again: %s", after ? after : "none");
	json_decref(h);
	free(before);
	free(after);
	restarted(&fr.s, f, fh, cars, dids, fr.dir);

	/* A PDS whose clock runs a day ahead: such a head would make every real commit look stale. */
	sf_repo_car_at(f, 2, (int64_t)time(NULL) * 1000000 + 86400 * INT64_C(1000000), &cars[2]);
	char key[256];
	escaped_did(dids[2], key, sizeof(key));
	key[strlen(key) - 1] = '\0';
	bool deleted = kvStore_Delete(fr.s.repo, key + 1) == NATS_OK;
	int rc4 = run_backfill(&fr.s, dids + 2, 1, "--force", "backfill-future");
	h = head_of(&fr.s, dids[2]);
	tap_ok(deleted && rc4 == 0 && !h &&
	           tap_count_in_file(tmp, "backfill-future.log", "no head written: its commit (rev ") == 1,
	       "backfilled: a repository whose rev is a day ahead gets no head, and the log says why (exit %d)", rc4);
	json_decref(h);
out:
	feedrun_stop(&fr);
	feed = NULL;
	feed_cars = NULL;
	for (size_t k = 0; k < BF_ACCOUNTS; k++)
		atkv_buf_free(&cars[k]);
	free(cars);
	for (int i = 0; i < BF_COMMITS; i++)
		atkv_buf_free(&frames[i]);
	atkv_buf_free(&doc);
	atkv_firehose_free(fh);
	sf_free(f);
}

int main(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/atkv-test-verify-XXXXXX");
	if (!mkdtemp(tmp))
		return 1;
	capture = tap_read_file(tap_path("tests/data/signed-capture.bin"), &capture_n);
	last_seq = -1;
	each_frame(capture, capture_n, count_commit, NULL);
	tap_note("signed capture: %d commits of %d accounts, last seq %lld", n_commits, n_accounts, (long long)last_seq);
	struct httpserver *plc = httpserver_start_threads(serve_plc, NULL, &plc_port, 16);
	load_docs();
	struct store ref = {0}, s = {0};
	int replay_port = 0;
	pid_t replay = spawn_replay(tmp, tap_path("tests/data/signed-capture.bin"), NULL, &replay_port);
	if (!plc || n_accounts < 4 || replay < 0 || !store_open(&ref, "ref") || !store_open(&s, "verified")) {
		tap_ok(false, "the PLC directory, the replay, nats-servers");
		return tap_done();
	}
	tap_ok(start_builder(&ref, replay_port, "--verify=false", "builder-ref") > 0 && wait_cursor(&ref, last_seq, 60000),
	       "an unverifying builder stores the capture (the reference)");
	json_t *want = open_buckets(&ref) ? snapshot(ref.js, ref.record) : json_object();
	verified_run(&s, replay_port, want);

	/* Three accounts' commits changed, one left alone; then one account's commit left out. */
	static const enum change changed[] = {RECORD, SIGNATURE, PREV_DATA};
	static const enum change left_out[] = {LEFT_OUT};
	const struct {
		const char *name;
		const enum change *changes;
		int n, unverified, broken;
	} runs[] = {{"altered", changed, 3, 3, 0}, {"left-out", left_out, 1, 0, 1}};
	for (size_t r = 0; r < sizeof(runs) / sizeof(runs[0]); r++) {
		char dir[128], path[160];
		struct alter al;
		struct store alt = {0};
		int port = 0;
		snprintf(dir, sizeof(dir), "%s/%s", tmp, runs[r].name);
		snprintf(path, sizeof(path), "%s/capture.bin", dir);
		mkdir(dir, 0700);
		pid_t p = -1;
		if (!write_altered(path, runs[r].changes, runs[r].n, &al) ||
		    (p = spawn_replay(dir, path, NULL, &port)) < 0 || !store_open(&alt, runs[r].name))
			tap_ok(false, "%s: the capture, its replay and a nats-server", runs[r].name);
		else
			altered_run(&alt, port, want, runs[r].name, runs[r].unverified, runs[r].broken);
		store_close(&alt);
		if (p > 0)
			spawn_stop(p, SIGTERM, 5000);
	}

	store_close(&ref);
	store_close(&s);
	spawn_stop(replay, SIGTERM, 5000);
	backfilled_feed();
	generated_feed();
	httpserver_stop(plc);
	json_decref(want);
	json_decref(docs);
	free(capture);
	if (feed) {
		for (size_t i = 0; i < sf_accounts(feed); i++)
			atkv_buf_free(&feed_cars[i]);
		free(feed_cars);
		sf_free(feed);
	}
	if (!getenv("KEEP")) tap_remove_dir(tmp);
	/* nats.c's threads gone, and with them the last references to the connections. */
	nats_CloseAndWait(5000);
	return tap_done();
}
