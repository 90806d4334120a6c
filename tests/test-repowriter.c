/* test-repowriter.c — backfilled puts against what the live path wrote, on a real nats-server:
 * a new key is written; a live put or delete at a later revision is kept (a backfill never
 * resurrects a record deleted live); an older one, another value at the same revision, or a
 * hand-made put without Atkv-Rev, is written over; every written value carries its Atkv-Cid and Atkv-Rev. The same with
 * 2000 puts in flight at once (atkv_repowriter), every tenth key taken live before. */
#include "natsserver.h"
#include "repowriter.h"
#include "tap.h"

#include <atkv/atkv.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static jsCtx *js;

#define OLD "3kaaaaaaaaa2a"
#define MID "3kbbbbbbbbb2b"
#define NEW "3kccccccccc2c"

static struct atkv_record_meta meta(const char *rev, const char *cid)
{
	return (struct atkv_record_meta){.seq = -1, .cid = cid, .cid_n = cid ? strlen(cid) : 0, .rev = rev,
	                                 .rev_n = rev ? strlen(rev) : 0};
}

/* A write as the live path makes it: unconditional, with its headers. */
static void live(const char *key, const char *json, bool del, const char *rev)
{
	natsMsg *m = NULL;
	struct atkv_record_meta mt = meta(rev, del ? NULL : "bafylive");
	atkv_record_msg(&m, ATKV_BUCKET_RECORD, key, json, json ? strlen(json) : 0, del, &mt, NULL);
	js_PublishMsg(NULL, js, m, NULL, NULL);
	natsMsg_Destroy(m);
}

static int backfill(const char *key, const char *json, const char *rev)
{
	char why[256] = "";
	struct atkv_record_meta mt = meta(rev, "bafyback");
	int rc = atkv_repo_put(js, key, json, strlen(json), &mt, why, sizeof(why));
	if (rc < 0)
		tap_note("%s: %s", key, why);
	return rc;
}

/* The value and Atkv-Rev the key holds ("DEL" for a delete). */
static void held(const char *key, char *value, size_t vn, char *rev, size_t rn)
{
	natsMsg *m = kv_last_msg(js, "record", key);
	const char *op = NULL, *r = NULL;
	if (m) {
		natsMsgHeader_Get(m, "KV-Operation", &op);
		natsMsgHeader_Get(m, "Atkv-Rev", &r);
	}
	snprintf(value, vn, "%s", !m ? "nothing" : op ? op : "");
	if (m && !op)
		snprintf(value, vn, "%.*s", natsMsg_GetDataLength(m), natsMsg_GetData(m));
	snprintf(rev, rn, "%s", r ? r : "");
	natsMsg_Destroy(m);
}

static void check(const char *what, const char *key, int got, int want, const char *want_value, const char *want_rev)
{
	char value[256], rev[32];
	held(key, value, sizeof(value), rev, sizeof(rev));
	tap_ok(got == want && !strcmp(value, want_value) && !strcmp(rev, want_rev), "%s (outcome %d, holds %s at %s)", what,
	       got, value, rev);
}

int main(void)
{
	struct nats_server server = {0};
	natsConnection *nc = NULL;
	if (nats_server_start(&server, 0) || natsConnection_ConnectTo(&nc, server.url) != NATS_OK ||
	    natsConnection_JetStream(&js, nc, NULL) != NATS_OK || kv_bucket_create(js, "record")) {
		printf("Bail out! cannot set up nats-server\n");
		return 1;
	}
	const char *k = "1.app.bsky.feed.like.did/3Aplc/3Aa.";
	char key[128];
#define KEY(s) (snprintf(key, sizeof(key), "%s%s", k, s), key)

	check("a key nobody wrote: written", KEY("new"), backfill(KEY("new"), "{\"v\":1}", MID), ATKV_REPOWRITE_NEW,
	      "{\"v\":1}", MID);
	live(KEY("newer"), "{\"live\":1}", false, NEW);
	check("a live put at a later rev: kept", KEY("newer"), backfill(KEY("newer"), "{\"v\":1}", MID),
	      ATKV_REPOWRITE_KEPT, "{\"live\":1}", NEW);
	live(KEY("same"), "{\"live\":1}", false, MID);
	check("another value at the same rev: replaced by the repository's, signed at that rev", KEY("same"),
	      backfill(KEY("same"), "{\"v\":1}", MID), ATKV_REPOWRITE_OVER, "{\"v\":1}", MID);
	live(KEY("older"), "{\"live\":1}", false, OLD);
	check("a live put at an older rev: written over", KEY("older"), backfill(KEY("older"), "{\"v\":2}", MID),
	      ATKV_REPOWRITE_OVER, "{\"v\":2}", MID);
	live(KEY("same-cid"), "{\"v\":1}", false, OLD);
	struct atkv_record_meta same = meta(MID, "bafylive");
	char why0[128];
	check("the same record (CID) at an older rev: kept, nothing rewritten", KEY("same-cid"),
	      atkv_repo_put(js, KEY("same-cid"), "{\"v\":1}", 7, &same, why0, sizeof(why0)), ATKV_REPOWRITE_KEPT,
	      "{\"v\":1}", OLD);
	live(KEY("deleted"), NULL, true, NEW);
	check("a live delete at a later rev: not resurrected", KEY("deleted"), backfill(KEY("deleted"), "{\"v\":1}", MID),
	      ATKV_REPOWRITE_KEPT, "DEL", NEW);
	live(KEY("deleted-before"), NULL, true, OLD);
	check("a live delete at an older rev: written (created again since)", KEY("deleted-before"),
	      backfill(KEY("deleted-before"), "{\"v\":3}", MID), ATKV_REPOWRITE_OVER, "{\"v\":3}", MID);
	live(KEY("by-hand"), "{\"hand\":1}", false, NULL);
	check("a put without Atkv-Rev (by hand): written over", KEY("by-hand"), backfill(KEY("by-hand"), "{\"v\":4}", MID),
	      ATKV_REPOWRITE_OVER, "{\"v\":4}", MID);
	check("the same backfill again: kept, nothing rewritten", KEY("by-hand"),
	      backfill(KEY("by-hand"), "{\"v\":4}", MID), ATKV_REPOWRITE_KEPT, "{\"v\":4}", MID);
	struct atkv_record_meta none = meta(NULL, "bafyback");
	char why[128];
	tap_eq(atkv_repo_put(js, KEY("norev"), "{}", 2, &none, why, sizeof(why)), ATKV_E_ARG, "a put without rev: refused (%s)",
	       why);

	/* Many in flight: 2000 keys of which every tenth was written live before, at a later rev
	 * for half of them and an older one for the rest. */
	struct atkv_repowriter *w = NULL;
	tap_eq(atkv_repowriter_new(nc, 256, 10000, &w, why, sizeof(why)), 0, "an asynchronous writer (256 in flight)");
	enum { N = 2000 };
	int sent = 0;
	for (int i = 0; w && i < N; i++) {
		char kk[64];
		snprintf(kk, sizeof(kk), "async%04d", i);
		if (i % 10 == 0)
			live(KEY(kk), "{\"live\":1}", false, i % 20 == 0 ? NEW : OLD);
		struct atkv_record_meta mt = meta(MID, "bafyback");
		sent += atkv_repowriter_put(w, KEY(kk), "{\"v\":5}", 7, &mt, why, sizeof(why)) == 0;
	}
	struct atkv_repowrite_counts counts = {0};
	int rc = w ? atkv_repowriter_finish(w, &counts, why, sizeof(why)) : -1;
	tap_ok(sent == N && rc == 0 && counts.written == N - N / 20 && counts.kept == N / 20,
	       "%d puts in flight: %llu written, %llu kept (the live ones at a later rev), finish %d", sent,
	       (unsigned long long)counts.written, (unsigned long long)counts.kept, rc);
	int right = 0;
	for (int i = 0; i < N; i++) {
		char kk[64], value[64], rev[32];
		snprintf(kk, sizeof(kk), "async%04d", i);
		held(KEY(kk), value, sizeof(value), rev, sizeof(rev));
		bool live_kept = i % 20 == 0;
		right += !strcmp(value, live_kept ? "{\"live\":1}" : "{\"v\":5}") && !strcmp(rev, live_kept ? NEW : MID);
	}
	tap_eq(right, N, "each key holds the later of the live and the backfilled write");
	struct atkv_repowrite_counts again = {0};
	for (int i = 0; w && i < 100; i++) {
		char kk[64];
		snprintf(kk, sizeof(kk), "async%04d", i);
		struct atkv_record_meta mt = meta(MID, "bafyback");
		atkv_repowriter_put(w, KEY(kk), "{\"v\":5}", 7, &mt, why, sizeof(why));
	}
	rc = w ? atkv_repowriter_finish(w, &again, why, sizeof(why)) : -1;
	tap_ok(rc == 0 && again.written == 0 && again.kept == 100, "the same 100 again: all kept (%llu written, finish %d)",
	       (unsigned long long)again.written, rc);
	atkv_repowriter_free(w);

	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_server_destroy(&server);
	return tap_done();
}
