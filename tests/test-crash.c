/* test-crash.c — crash consistency on real parts: atkv-builder killed with -9 at 20 random
 * moments of a replay of more than 50 000 events, and atkv-like-indexer killed with -9 at 20
 * random moments while 50 000 likes, moves and unlikes are written; each time restarted, the
 * store and the index must end exactly as expected. ATKV_TEST_SEED=N repeats a run's moments. */
#define _DEFAULT_SOURCE
#include "expected.h"
#include "natsserver.h"
#include "spawn.h"
#include "tap.h"

#include <atkv/atkv.h>

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BUILDER "src/atkv-builder"
#define INDEXER "src/atkv-like-indexer"
#define LIKE "app.bsky.feed.like"

#define KILLS 20
/* 400 loops of the capture's 139 events: 55 600 events. */
#define LOOPS 400
/* Frames per second the replay sends while the builder is being killed: slow enough that 20
 * lives of up to 3 s (it saves its cursor every second) all end mid-replay. The rest of the
 * replay after the last restart goes at full speed. */
#define RATE "1200"

static struct nats_server server;
static natsConnection *nc;
static jsCtx *js;
static char tmp[64];

/* A random number of milliseconds in [lo, hi). */
static int random_ms(int lo, int hi) { return lo + (int)(random() % (unsigned)(hi - lo)); }

static void show_log_tail(const char *name, int lines) { tap_note_tail(tmp, name, lines); }

/* ---- the builder ---- */

static int replay_port;

static pid_t start_replay(const char *rate)
{
	char loops[16];
	snprintf(loops, sizeof(loops), "%d", LOOPS);
	const char *extra[] = {"--loop", loops, rate ? "--rate" : NULL, rate, NULL};
	return spawn_replay(tmp, tap_path("tests/data/firehose-capture.bin"), extra, &replay_port);
}

static pid_t start_builder(void)
{
	char relay[64], log[128];
	snprintf(relay, sizeof(relay), "ws://127.0.0.1:%d", replay_port);
	snprintf(log, sizeof(log), "%s/builder.log", tmp);
	char *argv[] = {BUILDER, "--nats", server.url, "--relay", relay, "--config", "/dev/null", "--verify=false", NULL};
	return spawn(argv, NULL, log);
}

static uint64_t stream_msgs(const char *stream)
{
	jsStreamInfo *si = NULL;
	uint64_t n = 0;
	if (js_GetStreamInfo(&si, js, stream, NULL, NULL) == NATS_OK) {
		n = si->State.Msgs;
		jsStreamInfo_Destroy(si);
	}
	return n;
}

static void builder_crashes(void)
{
	struct expected one, want;
	expected_load(&one, tap_path("tests/data/firehose-expected.jsonl"));
	want = expected_looped(&one, LOOPS);
	int64_t last = want.last_seq;
	tap_note("builder: a replay of %lld events; expecting %zu record keys", (long long)last,
	         json_object_size(want.records));

	pid_t replay = start_replay(RATE);
	tap_ok(replay > 0, "replay server of %d loops at %s frames/s", LOOPS, RATE);
	int mid = 0, backwards = 0, kill_progress = 0;
	int64_t before = -1;
	for (int k = 0; k < KILLS; k++) {
		/* Each life timed from its connection to the relay: start-up (slow under a sanitizer)
		 * must not eat it. */
		int connected = tap_count_in_file(tmp, "builder.log", "connected to ws://");
		pid_t b = start_builder();
		for (int t = 0; t < 10000 && tap_count_in_file(tmp, "builder.log", "connected to ws://") <= connected; t += 20)
			sleep_ms(20);
		sleep_ms(random_ms(300, 3000));
		spawn_stop(b, SIGKILL, 5000);
		int64_t at = expected_stored_cursor(js);
		mid += at < last;
		backwards += at < before;
		kill_progress += at > before;
		before = at;
		tap_note("kill -9 #%d at cursor %lld", k + 1, (long long)at);
	}
	tap_eq(mid, KILLS, "all %d kills came in the middle of the replay", KILLS);
	tap_eq(backwards, 0, "the cursor never went back across a kill");
	tap_ok(before > last / 10 && kill_progress >= KILLS / 4,
	       "and it moved on between kills (%d times; %lld of %lld events before the last restart)", kill_progress,
	       (long long)before, (long long)last);

	spawn_stop(replay, SIGTERM, 5000);
	replay = start_replay(NULL);
	pid_t b = start_builder();
	bool done = false;
	for (int t = 0; t < 240000 && !done; t += 200) {
		done = expected_stored_cursor(js) == last;
		if (!done)
			sleep_ms(200);
	}
	if (!done) {
		tap_note("cursor %lld, waiting for %lld", (long long)expected_stored_cursor(js), (long long)last);
		show_log_tail("builder.log", 20);
	}
	tap_ok(done, "restarted after the last kill, the cursor reaches the end (%lld)", (long long)last);
	int st = spawn_stop(b, SIGTERM, 10000);
	tap_ok(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "and the builder stops cleanly");
	tap_eq(expected_compare_records(js, &want), 0, "bucket record equals %d loops of the reference: nothing missing, "
	                                               "nothing wrong, nothing extra", LOOPS);
	tap_eq(expected_compare_accounts(js, &want), 0, "bucket account too");
	uint64_t writes = stream_msgs("KV_record");
	tap_note("KV_record holds %llu messages for %zu keys", (unsigned long long)writes, json_object_size(want.records));
	spawn_stop(replay, SIGTERM, 5000);
	expected_free(&want);
	expected_free(&one);
}

/* ---- the like indexer ---- */

#define ACCOUNTS 500
#define SUBJECTS 700
#define BACKLOG 30000

/* What the test wrote last at each like key: its subject (-1 after an unlike) and time. */
struct like_state {
	int subject;
	int second;
};

static struct like_state *likes; /* ACCOUNTS x slots */
static int slots;                /* like keys per account */

static void like_key(int i, char *did, size_t did_n, char *rkey, size_t rkey_n)
{
	snprintf(did, did_n, "did:plc:crash%05d", i / slots);
	snprintf(rkey, rkey_n, "k%06d", i % slots);
}

static bool write_like(int i, int subject, int second)
{
	char did[32], rkey[16], uri[128], json[512], why[256];
	like_key(i, did, sizeof(did), rkey, sizeof(rkey));
	snprintf(uri, sizeof(uri), "at://%s/" LIKE "/%s", did, rkey);
	int r;
	if (subject < 0) {
		r = atkv_record_delete(js, uri, NULL, why, sizeof(why));
	} else {
		snprintf(json, sizeof(json),
		         "{\"$type\":\"" LIKE "\",\"subject\":{\"uri\":\"at://did:plc:poster%03d/app.bsky.feed.post/p%d\","
		         "\"cid\":\"bafyreisubject\"},\"createdAt\":\"2026-11-27T%02d:%02d:%02d.000Z\"}",
		         subject % 97, subject, second / 3600 % 24, second / 60 % 60, second % 60);
		r = atkv_record_put(js, uri, json, strlen(json), NULL, why, sizeof(why));
	}
	if (r) {
		tap_note("write %s: %s", uri, why);
		return false;
	}
	likes[i] = (struct like_state){subject, second};
	return true;
}

/* One random change: a new like, a like moved to another subject, or an unlike. */
static bool change_one(int second)
{
	int i = (int)(random() % (unsigned)(ACCOUNTS * slots));
	int subject = likes[i].subject >= 0 && random() % 3 == 0 ? -1 : (int)(random() % SUBJECTS);
	return write_like(i, subject, second);
}

#define LINE_MAX_LEN 200

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The index the writes call for, in dump_index's form: one line per like, in key order. */
static char *expected_index(void)
{
	size_t n = ACCOUNTS * (size_t)slots, rows = 0;
	int count[SUBJECTS] = {0};
	for (size_t i = 0; i < n; i++)
		if (likes[i].subject >= 0)
			count[likes[i].subject]++;
	char **line = calloc(n, sizeof(*line));
	for (size_t i = 0; i < n; i++) {
		const struct like_state *l = &likes[i];
		if (l->subject < 0)
			continue;
		char did[32], rkey[16];
		like_key((int)i, did, sizeof(did), rkey, sizeof(rkey));
		line[rows] = malloc(LINE_MAX_LEN);
		snprintf(line[rows], LINE_MAX_LEN, "%s %s at://did:plc:poster%03d/app.bsky.feed.post/p%d bafyreisubject "
		         "2026-11-27T%02d:%02d:%02d.000Z %d\n",
		         did, rkey, l->subject % 97, l->subject, l->second / 3600 % 24, l->second / 60 % 60,
		         l->second % 60, count[l->subject]);
		rows++;
	}
	qsort(line, rows, sizeof(*line), cmp_str);
	size_t len = 0;
	char *text = NULL;
	FILE *f = open_memstream(&text, &len);
	for (size_t r = 0; r < rows; r++) {
		fputs(line[r], f);
		free(line[r]);
	}
	fclose(f);
	free(line);
	return text;
}

/* Every like of the index with its subject and that subject's count (read with SQL of the
 * test's own, not the index's queries), one per line in key order; NULL when unreadable. */
static char *dump_index(const char *path)
{
	sqlite3 *q = NULL;
	sqlite3_stmt *st = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (sqlite3_open_v2(path, &q, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(q,
	                       "SELECT l.did, l.rkey, s.uri, l.subject_cid, l.created_at,"
	                       " (SELECT count(*) FROM likes c WHERE c.subject = s.id), s.likes"
	                       " FROM likes l JOIN subjects s ON s.id = l.subject ORDER BY l.did, l.rkey",
	                       -1, &st, NULL) == SQLITE_OK)
		while (sqlite3_step(st) == SQLITE_ROW) {
			/* A stored count that disagrees with the rows shows as a count of -1. */
			long long rows = sqlite3_column_int64(st, 5), stored = sqlite3_column_int64(st, 6);
			fprintf(f, "%s %s %s %s %s %lld\n", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1),
			        sqlite3_column_text(st, 2), sqlite3_column_text(st, 3), sqlite3_column_text(st, 4),
			        rows == stored ? stored : -1);
		}
	sqlite3_finalize(st);
	sqlite3_close(q);
	fclose(f);
	return text;
}

static pid_t start_indexer(const char *db)
{
	char log[128];
	snprintf(log, sizeof(log), "%s/indexer.log", tmp);
	char *argv[] = {INDEXER, "--nats", server.url, "--db", (char *)db, "--batch", "500", "--config", "/dev/null", NULL};
	return spawn(argv, NULL, log);
}

static bool consumer_done(void)
{
	jsConsumerInfo *ci = NULL;
	bool done = js_GetConsumerInfo(&ci, js, "KV_record", "like-indexer", NULL, NULL) == NATS_OK &&
	            ci->NumPending == 0 && ci->NumAckPending == 0;
	jsConsumerInfo_Destroy(ci);
	return done;
}

/* The first line where two dumps differ, for the log. */
static void note_difference(const char *got, const char *want)
{
	size_t i = 0, line = 0;
	while (got[i] && got[i] == want[i])
		i++;
	while (i > line && got[i - 1] != '\n')
		i--;
	line = i;
	tap_note("first difference: got \"%.*s\", want \"%.*s\"", (int)strcspn(got + line, "\n"), got + line,
	         (int)strcspn(want + line, "\n"), want + line);
}

static void indexer_crashes(void)
{
	char db[128];
	snprintf(db, sizeof(db), "%s/likes.sqlite", tmp);
	slots = BACKLOG / ACCOUNTS * 2;
	likes = calloc((size_t)(ACCOUNTS * slots), sizeof(*likes));
	for (int i = 0; i < ACCOUNTS * slots; i++)
		likes[i].subject = -1;
	js_DeleteKeyValue(js, "record");
	kv_bucket_create(js, "record");
	int written = 0, second = 0;
	bool ok = true;
	for (int i = 0; ok && i < BACKLOG; i++)
		ok = write_like(i * 2 % (ACCOUNTS * slots), (int)(random() % SUBJECTS), ++second);
	written += BACKLOG;
	tap_ok(ok, "a backlog of %d likes written", BACKLOG);

	int loading_kills = 0;
	for (int k = 0; k < KILLS; k++) {
		/* Changes written all through its life, which ends at a random moment. */
		pid_t x = start_indexer(db);
		struct timespec t0, t;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		long life = random_ms(100, 1500), ms = 0;
		for (int c = 0; ok && ms < life; c++, written++) {
			ok = change_one(++second);
			clock_gettime(CLOCK_MONOTONIC, &t);
			ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		}
		spawn_stop(x, SIGKILL, 5000);
		loading_kills += !consumer_done();
	}
	tap_ok(ok, "%d changes written in all while it was killed %d times", written, KILLS);
	tap_note("%d of the kills left changes unread or unacknowledged", loading_kills);
	tap_ok(loading_kills >= KILLS / 2, "at least half of the kills came with work in flight (%d)", loading_kills);

	pid_t x = start_indexer(db);
	bool done = false;
	for (int t = 0; t < 120000 && !done; t += 200) {
		done = consumer_done();
		if (!done)
			sleep_ms(200);
	}
	/* Acknowledged means committed: the index is final once nothing is pending. */
	int st = spawn_stop(x, SIGTERM, 10000);
	tap_ok(done, "restarted, the indexer reads everything and acknowledges it");
	tap_ok(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "and stops cleanly");
	char *got = dump_index(db), *want = expected_index();
	size_t rows = 0;
	for (const char *p = want; *p; p++)
		rows += *p == '\n';
	bool same = got && !strcmp(got, want);
	if (!same && got)
		note_difference(got, want);
	if (!same)
		show_log_tail("indexer.log", 10);
	tap_ok(same, "the index equals the %zu likes the writes left, with every subject's count", rows);
	free(got);
	free(want);
	free(likes);
}

int main(void)
{
	const char *seed_env = getenv("ATKV_TEST_SEED");
	unsigned seed = seed_env ? (unsigned)strtoul(seed_env, NULL, 10) : (unsigned)time(NULL) ^ (unsigned)getpid();
	srandom(seed);
	tap_note("ATKV_TEST_SEED=%u", seed);
	snprintf(tmp, sizeof(tmp), "/tmp/atkv-test-crash.XXXXXX");
	if (!mkdtemp(tmp) || nats_server_start(&server, 0)) {
		printf("Bail out! cannot set up nats-server\n");
		return 1;
	}
	natsConnection_ConnectTo(&nc, server.url);
	natsConnection_JetStream(&js, nc, NULL);

	builder_crashes();
	indexer_crashes();

	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_server_destroy(&server);
	tap_remove_dir(tmp);
	return tap_done();
}
