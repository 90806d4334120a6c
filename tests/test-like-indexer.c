/* test-like-indexer.c — atkv-like-indexer and atkv-get-likes-by with a real nats-server and a
 * real SQLite file: the whole store indexed from empty, then live puts, moves and deletes; bad
 * values and keys logged, counted and acknowledged; kill -9 in the middle of a large backlog
 * loses and double-counts nothing; readiness, status and stopping through NOTIFY_SOCKET; the
 * query tool's output, input and errors. Records are written with libatkv's atkv_record_put. */
#define _DEFAULT_SOURCE
#include "likeindex.h"
#include "natsserver.h"
#include "notify.h"
#include "spawn.h"
#include "tap.h"

#include <atkv/atkv.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define INDEXER "src/atkv-like-indexer"
#define QUERY "src/atkv-get-likes-by"
#define LIKE "app.bsky.feed.like"
#define A "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
#define B "did:plc:l3rouwludahu3ui3bt66mfvj"
#define C "did:plc:carol8"
#define P1 "at://did:plc:poster/app.bsky.feed.post/p1"
#define P2 "at://did:plc:poster/app.bsky.feed.post/p2"
#define P3 "at://did:plc:poster/app.bsky.feed.post/p3"

static struct nats_server server;
static natsConnection *nc;
static jsCtx *js;
static char tmp[64], db[128], logpath[128];

/* ---- writing likes ---- */

static void like(const char *did, const char *rkey, const char *subject, int second)
{
	char uri[256], json[512], why[256];
	snprintf(uri, sizeof(uri), "at://%s/" LIKE "/%s", did, rkey);
	snprintf(json, sizeof(json),
	         "{\"$type\":\"" LIKE "\",\"subject\":{\"uri\":\"%s\",\"cid\":\"bafyreisubject\"},"
	         "\"createdAt\":\"2026-11-27T00:%02d:%02d.000Z\"}",
	         subject, second / 60, second % 60);
	if (atkv_record_put(js, uri, json, strlen(json), NULL, why, sizeof(why)))
		tap_note("put %s: %s", uri, why);
}

static void raw_put(const char *uri, const char *value)
{
	char why[256];
	if (atkv_record_put(js, uri, value, strlen(value), NULL, why, sizeof(why)))
		tap_note("put %s: %s", uri, why);
}

static void unlike(const char *did, const char *rkey)
{
	char uri[256], why[256];
	snprintf(uri, sizeof(uri), "at://%s/" LIKE "/%s", did, rkey);
	if (atkv_record_delete(js, uri, NULL, why, sizeof(why)))
		tap_note("delete %s: %s", uri, why);
}

/* ---- reading the index ---- */

static int64_t subject_count(const char *subject)
{
	struct atkv_likeindex *ix = NULL;
	char why[256];
	int64_t n = -1;
	if (atkv_likeindex_open(db, true, &ix, why, sizeof(why)) == 0)
		atkv_likeindex_count(ix, subject, &n);
	atkv_likeindex_close(ix);
	return n;
}

/* Likes in the index, and whether the per-subject counts add up to them. */
static int64_t total_likes(bool *consistent)
{
	struct atkv_likeindex *ix = NULL;
	char why[256];
	int64_t likes = -1, subjects = -1;
	if (atkv_likeindex_open(db, true, &ix, why, sizeof(why)) == 0)
		atkv_likeindex_totals(ix, &likes, &subjects);
	atkv_likeindex_close(ix);
	if (consistent) {
		/* Checked with SQL the index does not use for its own counts. */
		sqlite3 *q = NULL;
		sqlite3_stmt *st = NULL;
		*consistent = sqlite3_open_v2(db, &q, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
		              sqlite3_prepare_v2(q,
		                                 "SELECT (SELECT count(*) FROM likes) = (SELECT coalesce(sum(likes), 0) FROM "
		                                 "subjects) AND NOT EXISTS (SELECT 1 FROM subjects s WHERE s.likes != "
		                                 "(SELECT count(*) FROM likes l WHERE l.subject = s.id))",
		                                 -1, &st, NULL) == SQLITE_OK &&
		              sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
		sqlite3_finalize(st);
		sqlite3_close(q);
	}
	return likes;
}

static bool wait_likes(int64_t want, int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 100) {
		if (total_likes(NULL) == want)
			return true;
		sleep_ms(100);
	}
	return false;
}

/* ---- processes ---- */

static char notify_path[128];

/* Starts the indexer on db with up to six more arguments (a NULL ends them). */
static pid_t start_indexer_with(const char *const extra[6])
{
	static char env_notify[160];
	static char *env[] = {env_notify, "WATCHDOG_USEC=2000000", NULL};
	snprintf(env_notify, sizeof(env_notify), "NOTIFY_SOCKET=%s", notify_path);
	char *argv[14] = {INDEXER, "--nats", server.url, "--db", db, "--config", "/dev/null"};
	for (int i = 0; i < 6 && extra[i]; i++)
		argv[7 + i] = (char *)extra[i];
	return spawn(argv, env, logpath);
}

static pid_t start_indexer(const char *extra1, const char *extra2)
{
	return start_indexer_with((const char *[6]){extra1, extra2});
}

static int count_in_log(const char *needle)
{
	size_t n;
	char *text = (char *)tap_read_file(logpath, &n);
	int count = 0;
	for (char *p = text; p && (p = strstr(p, needle)); p++)
		count++;
	free(text);
	return count;
}

/* Runs the query tool through the shell with args and optional stdin; returns its exit status
 * and its stdout and stderr. */
static int query(const char *args, const char *input, char *out, size_t out_n, char *err, size_t err_n)
{
	char cmd[1024], o[160], e[160];
	snprintf(o, sizeof(o), "%s/query.out", tmp);
	snprintf(e, sizeof(e), "%s/query.err", tmp);
	snprintf(cmd, sizeof(cmd), "%s%s%s " QUERY " --config /dev/null %s >'%s' 2>'%s'%s", input ? "printf '%s\\n' '" : "",
	         input ? input : "", input ? "' |" : "", args, o, e, input ? "" : " </dev/null");
	int st = system(cmd);
	size_t n;
	char *t = (char *)tap_read_file(o, &n);
	snprintf(out, out_n, "%s", t ? t : "");
	free(t);
	t = (char *)tap_read_file(e, &n);
	snprintf(err, err_n, "%s", t ? t : "");
	free(t);
	size_t el = strlen(err);
	if (el && err[el - 1] == '\n')
		err[el - 1] = '\0';
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Every like of the index at path with its subject and that subject's count, one per line, in
 * key order; NULL when it cannot be read. */
static char *dump(const char *path)
{
	sqlite3 *q = NULL;
	sqlite3_stmt *st = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (f && sqlite3_open_v2(path, &q, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(q,
	                       "SELECT l.did, l.rkey, s.uri, l.subject_cid, l.created_at, s.likes FROM likes l"
	                       " JOIN subjects s ON s.id = l.subject ORDER BY l.did, l.rkey",
	                       -1, &st, NULL) == SQLITE_OK)
		while (sqlite3_step(st) == SQLITE_ROW)
			fprintf(f, "%s %s %s %s %s %lld\n", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1),
			        sqlite3_column_text(st, 2), sqlite3_column_text(st, 3), sqlite3_column_text(st, 4),
			        (long long)sqlite3_column_int64(st, 5));
	sqlite3_finalize(st);
	sqlite3_close(q);
	if (f)
		fclose(f);
	return text;
}

static bool index_loading(void)
{
	struct atkv_likeindex *ix = NULL;
	char why[256];
	bool loading = atkv_likeindex_open(db, true, &ix, why, sizeof(why)) == 0 && atkv_likeindex_loading(ix);
	atkv_likeindex_close(ix);
	return loading;
}

static int lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void consumer_state(uint64_t *pending, int64_t *ack_pending)
{
	jsConsumerInfo *ci = NULL;
	*pending = 99;
	*ack_pending = 99;
	if (js_GetConsumerInfo(&ci, js, "KV_record", "like-indexer", NULL, NULL) == NATS_OK) {
		*pending = ci->NumPending;
		*ack_pending = ci->NumAckPending;
	}
	jsConsumerInfo_Destroy(ci);
}

static void test_queries(void)
{
	char out[8192], err[1024], args[512];
	snprintf(args, sizeof(args), "--db '%s' " A, db);
	int rc = query(args, NULL, out, sizeof(out), err, sizeof(err));
	tap_ok(rc == 0 && !strcmp(out, P3 "\n" P2 "\n" P1 "\n"), "get-likes-by DID: the subjects, newest like first");
	snprintf(args, sizeof(args), "--db '%s'", db);
	char out2[8192];
	rc = query(args, A, out2, sizeof(out2), err, sizeof(err));
	tap_ok(rc == 0 && !strcmp(out, out2), "the DID on standard input gives the same");
	snprintf(args, sizeof(args), "--db '%s' --limit 1 --json " A, db);
	rc = query(args, NULL, out, sizeof(out), err, sizeof(err));
	tap_ok(rc == 0 && lines(out) == 1 && strstr(out, "\"subject\":\"" P3 "\"") &&
	           strstr(out, "\"like\":\"at://" A "/" LIKE "/a3\"") && strstr(out, "\"createdAt\":"),
	       "--json --limit 1: one JSON object");
	snprintf(args, sizeof(args), "--db '%s' --subject " P1, db);
	rc = query(args, NULL, out, sizeof(out), err, sizeof(err));
	tap_ok(rc == 0 && lines(out) == 2 && strstr(out, C "\n") && strstr(out, A "\n"), "--subject: its likers");
	snprintf(args, sizeof(args), "--db '%s' --subject " P1 " --count", db);
	rc = query(args, NULL, out, sizeof(out), err, sizeof(err));
	tap_ok(rc == 0 && !strcmp(out, "2\n"), "--count: 2");
	snprintf(args, sizeof(args), "--db '%s' did:plc:nolikes", db);
	rc = query(args, NULL, out, sizeof(out), err, sizeof(err));
	tap_ok(rc == 0 && !out[0] && !err[0], "a DID with no likes: no output, exit 0");
	snprintf(args, sizeof(args), "--db '%s' not-a-did", db);
	rc = query(args, NULL, out, sizeof(out), err, sizeof(err));
	tap_ok(rc == 2 && !out[0] && lines(err) == 0 && err[0] && strstr(err, "not-a-did"),
	       "a malformed DID: one line, exit 2: %s", err);
	snprintf(args, sizeof(args), "--db '%s/missing.sqlite' " A, tmp);
	rc = query(args, NULL, out, sizeof(out), err, sizeof(err));
	tap_ok(rc == 1 && !out[0] && lines(err) == 0 && err[0] && strstr(err, "missing.sqlite"), "a missing index: one line, exit 1: %s",
	       err);
	rc = query("--limit -3 " A, NULL, out, sizeof(out), err, sizeof(err));
	tap_ok(rc == 2 && strstr(err, "--limit"), "a bad option: exit 2: %s", err);
}

int main(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/atkv-test-like-indexer.XXXXXX");
	if (!mkdtemp(tmp) || nats_server_start(&server, 0)) {
		printf("Bail out! cannot set up nats-server\n");
		return 1;
	}
	snprintf(db, sizeof(db), "%s/likes.sqlite", tmp);
	snprintf(logpath, sizeof(logpath), "%s/indexer.log", tmp);
	FILE *lf = fopen(logpath, "a"); /* there before the first look at it */
	if (lf)
		fclose(lf);
	natsConnection_ConnectTo(&nc, server.url);
	natsConnection_JetStream(&js, nc, NULL);
	if (notify_start(tmp, notify_path, sizeof(notify_path))) {
		printf("Bail out! cannot bind the notify socket\n");
		return 1;
	}

	/* Started before the bucket exists: it waits for it. */
	pid_t x = start_indexer(NULL, NULL);
	for (int t = 0; t < 5000 && !count_in_log("does not exist"); t += 100)
		sleep_ms(100);
	tap_ok(spawn_running(x, NULL) && count_in_log("bucket record does not exist"),
	       "without the bucket it waits and says why");

	kv_bucket_create(js, "record");
	like(A, "a1", P1, 1);
	like(A, "a2", P2, 2);
	like(B, "b1", P1, 3);
	like(C, "c1", P2, 4);
	raw_put("at://" C "/" LIKE "/bad1", "not json at all");
	raw_put("at://" C "/" LIKE "/bad2", "{\"$type\":\"" LIKE "\",\"subject\":{}}");
	raw_put("at://" A "/app.bsky.feed.post/x1", "{\"$type\":\"app.bsky.feed.post\",\"text\":\"hi\"}");
	natsConnection_PublishString(nc, "$KV.record.5.app.bsky.feed.like.notakey", "{}");
	natsConnection_Flush(nc);

	/* 1. The store from the beginning. */
	tap_ok(wait_likes(4, 15000), "the likes already in the store are indexed");
	tap_ok(notify_said("READY=1"), "READY=1 sent");
	tap_ok(subject_count(P1) == 2 && subject_count(P2) == 2, "like counts 2 and 2");
	for (int t = 0; t < 10000 && !(count_in_log("/bad1)") && count_in_log("/bad2)") && count_in_log("like.notakey"));
	     t += 100)
		sleep_ms(100);
	tap_ok(count_in_log("like skipped: the value is not JSON (at://" C "/" LIKE "/bad1)") == 1 &&
	           count_in_log("like skipped: the like has no subject.uri (at://" C "/" LIKE "/bad2)") == 1,
	       "bad values are logged with their AT-URI");
	tap_ok(count_in_log("key outside the record key scheme skipped: $KV.record.5.app.bsky.feed.like.notakey") == 1,
	       "a bad key is logged");
	uint64_t pending;
	int64_t ack_pending;
	/* Acknowledged after each commit to SQLite, and taken by the server a moment later. */
	for (int t = 0; t < 10000; t += 100) {
		consumer_state(&pending, &ack_pending);
		if (pending == 0 && ack_pending == 0)
			break;
		sleep_ms(100);
	}
	tap_ok(pending == 0 && ack_pending == 0, "and everything is acknowledged (pending %llu, unacked %lld)",
	       (unsigned long long)pending, (long long)ack_pending);

	/* 2. Live: a new like, an unlike, a like that moves to another subject. */
	like(A, "a3", P3, 5);
	unlike(B, "b1");
	like(C, "c1", P1, 4);
	bool consistent = false;
	for (int t = 0; t < 10000 && !(subject_count(P3) == 1 && subject_count(P1) == 2 && subject_count(P2) == 1); t += 100)
		sleep_ms(100);
	tap_ok(subject_count(P1) == 2 && subject_count(P2) == 1 && subject_count(P3) == 1 && total_likes(&consistent) == 4 &&
	           consistent,
	       "live: a like added, one removed, one moved; counts exact");
	/* A status a second at most: the one before may still say it waited for the bucket. */
	for (int t = 0; t < 10000 && !notify_said("STATUS=indexing;"); t += 100)
		sleep_ms(100);
	tap_ok(notify_said("STATUS=indexing;") && notify_said("likes/s") && notify_said("pending"), "STATUS= with likes/s and pending");
	tap_ok(notify_said("WATCHDOG=1"), "watchdog pinged");

	test_queries();

	/* A like whose record turns into a bad value likes nothing any more. */
	like(B, "b9", P3, 6);
	for (int t = 0; t < 10000 && subject_count(P3) != 2; t += 100)
		sleep_ms(100);
	raw_put("at://" B "/" LIKE "/b9", "{\"$type\":\"" LIKE "\"}");
	for (int t = 0; t < 10000 && subject_count(P3) != 1; t += 100)
		sleep_ms(100);
	tap_ok(subject_count(P3) == 1, "a like replaced by a bad value is removed from the index");

	/* A second indexer on the same index refuses to start. */
	char *second[] = {INDEXER, "--nats", server.url, "--db", db, "--config", "/dev/null", NULL};
	pid_t x2 = spawn(second, NULL, logpath);
	int st2 = -1;
	for (int t = 0; t < 5000 && spawn_running(x2, &st2); t += 20)
		sleep_ms(20);
	tap_ok(WIFEXITED(st2) && WEXITSTATUS(st2) == 2 && count_in_log("is in use: another atkv-like-indexer runs on"),
	       "a second indexer on the same index exits 2 and says why");

	/* The consumer deleted under it (say, by atkv reset): it opens a new one and goes on. */
	js_DeleteConsumer(js, "KV_record", "like-indexer", NULL, NULL);
	for (int t = 0; t < 15000 && !count_in_log("opening it again"); t += 100)
		sleep_ms(100);
	like(C, "c2", P3, 7);
	for (int t = 0; t < 20000 && subject_count(P3) != 2; t += 100)
		sleep_ms(100);
	tap_ok(count_in_log("opening it again") >= 1 && subject_count(P3) == 2 && total_likes(&consistent) == 5 && consistent,
	       "a deleted consumer is created again, and the index stays exact");

	/* 3. SIGTERM: exit 0, STOPPING=1. */
	int st = spawn_stop(x, SIGTERM, 10000);
	tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM: exit 0");
	tap_ok(notify_said("STOPPING=1"), "STOPPING=1 sent");

	/* 4. A backlog of 3000 likes, the indexer killed with -9 in the middle, then restarted. */
	for (int i = 0; i < 3000; i++) {
		char rkey[16];
		snprintf(rkey, sizeof(rkey), "k%04d", i);
		like(i % 2 ? A : B, rkey, i % 3 == 0 ? P1 : i % 3 == 1 ? P2 : P3, 100 + i % 3000);
	}
	natsConnection_Flush(nc);
	x = start_indexer("--batch", "20");
	for (int t = 0; t < 30000 && total_likes(NULL) < 600; t += 20)
		sleep_ms(20);
	int64_t at_kill = total_likes(NULL);
	spawn_stop(x, SIGKILL, 5000);
	tap_ok(at_kill >= 600 && at_kill < 3005, "killed with -9 after %lld of 3005 likes", (long long)at_kill);
	x = start_indexer(NULL, NULL);
	tap_ok(wait_likes(3005, 60000), "after the restart all 3005 likes are indexed");
	tap_ok(total_likes(&consistent) == 3005 && consistent && subject_count(P1) == 2 + 1000 &&
	           subject_count(P2) == 1 + 1000 && subject_count(P3) == 2 + 1000,
	       "and every count is exact: nothing lost, nothing counted twice");
	spawn_stop(x, SIGTERM, 10000);

	/* 5. The same store bulk loaded into a second index (its own consumer): killed with -9
	 *    halfway, restarted, it ends equal to the index built one like at a time. */
	char first[128], out[4096], err[512];
	snprintf(first, sizeof(first), "%s", db);
	snprintf(db, sizeof(db), "%s/bulk.sqlite", tmp);
	/* Small batches: a load of hundreds of commits, to be killed in. */
	x = start_indexer_with((const char *[6]){"--consumer", "bulk", "--bulk-load", "1000", "--batch", "10"});
	for (int t = 0; t < 15000 && !count_in_log("bulk load of "); t += 5)
		sleep_ms(5);
	spawn_stop(x, SIGKILL, 5000);
	tap_ok(count_in_log("bulk load of ") == 1 && index_loading(), "a bulk load starts on the empty index (killed with -9)");
	char args[256];
	snprintf(args, sizeof(args), "--db '%s' --subject %s --count", db, P1);
	int qrc = query(args, NULL, out, sizeof(out), err, sizeof(err));
	tap_ok(qrc == 1 && !out[0] && strstr(err, "still being filled by its bulk load"),
	       "while it runs, get-likes-by refuses to answer: %s", err);
	x = start_indexer_with((const char *[6]){"--consumer", "bulk", "--bulk-load", "1000"});
	tap_ok(wait_likes(3005, 60000) && !index_loading(), "restarted, it resumes the load and builds the index");
	/* The index is marked loaded before the line is logged, so the line may trail a little. */
	for (int t = 0; t < 5000 && !count_in_log("bulk load done ("); t += 20)
		sleep_ms(20);
	tap_ok(count_in_log("resuming the bulk load") == 1 && count_in_log("bulk load done (") == 1,
	       "the log says so");
	char *live = dump(first), *bulk = dump(db);
	tap_ok(live && bulk && lines(live) == 3005 && !strcmp(live, bulk) && total_likes(&consistent) == 3005 && consistent,
	       "the bulk-loaded index equals the one built like by like: every like, subject and count");
	free(live);
	free(bulk);
	/* Live changes after the load take the usual path. */
	unlike(A, "k0001");
	like(C, "k9999", P1, 9);
	for (int t = 0; t < 15000 && (subject_count(P1) != 2 + 1000 + 1 || subject_count(P2) != 1000); t += 50)
		sleep_ms(50);
	tap_ok(subject_count(P1) == 2 + 1000 + 1 && subject_count(P2) == 1000 && total_likes(&consistent) == 3005 && consistent,
	       "then it goes on live: an unlike and a like applied");
	spawn_stop(x, SIGTERM, 10000);

	/* A load whose every change was read before a crash (here: left so through the index's
	 * API, under a consumer with nothing left to deliver) is finished at the next start. */
	snprintf(db, sizeof(db), "%s/resumed.sqlite", tmp);
	struct atkv_likeindex *ix = NULL;
	char why[256];
	const char *v = "{\"subject\":{\"uri\":\"" P3 "\"}}";
	bool left = atkv_likeindex_open(db, false, &ix, why, sizeof(why)) == 0 && atkv_likeindex_load_start(ix) == 0 &&
	            atkv_likeindex_begin(ix) == 0 && atkv_likeindex_put(ix, 1, C, "zz", v, strlen(v), why, sizeof(why)) == 0 &&
	            atkv_likeindex_commit(ix) == 0;
	atkv_likeindex_close(ix);
	x = start_indexer("--consumer", "bulk");
	tap_ok(left && wait_likes(1, 15000) && !index_loading() && subject_count(P3) == 1,
	       "a load left with nothing more to read is finished at the next start");
	spawn_stop(x, SIGTERM, 10000);
	snprintf(db, sizeof(db), "%s", first);

	/* 6. A bad option exits 2. */
	char *bad[] = {INDEXER, "--batch", "0", "--config", "/dev/null", NULL};
	pid_t b = spawn(bad, NULL, logpath);
	int bst = -1;
	for (int t = 0; t < 5000 && spawn_running(b, &bst); t += 20)
		sleep_ms(20);
	tap_ok(WIFEXITED(bst) && WEXITSTATUS(bst) == 2, "a bad option exits 2");

	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_server_destroy(&server);
	nats_Close();
	notify_stop();
	tap_remove_dir(tmp);
	return tap_done();
}
