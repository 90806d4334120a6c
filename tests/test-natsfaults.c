/* test-natsfaults.c — atkv-builder and atkv-like-indexer while their nats-server fails under
 * them: killed with -9 and restarted, paused for 30 s (ATKV_TEST_PAUSE_S shortens it), and
 * out of JetStream storage. Each time both must stay up with bounded memory, say what is wrong,
 * recover by themselves once NATS does, and end with the store and the index exact. */
#define _DEFAULT_SOURCE
#include "expected.h"
#include "likecheck.h"
#include "natsserver.h"
#include "spawn.h"
#include "tap.h"

#include <atkv/atkv.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUILDER "src/atkv-builder"
#define INDEXER "src/atkv-like-indexer"

/* Peak resident memory allowed to each service, in MiB: the builder's bound is --max-message
 * (16 MiB) + --max-inflight-bytes (8 MiB here) + nats.c's reconnect buffer (8 MiB) + code and
 * caches. Not checked under AddressSanitizer, whose shadow memory and quarantine dwarf it. */
#define RSS_LIMIT_MB 96
#if defined(__SANITIZE_ADDRESS__)
#define RSS_CHECKED false
#else
#define RSS_CHECKED true
#endif

static char tmp[64];
static struct expected one;
static int replay_port;

static int count_in(const char *name, const char *needle) { return tap_count_in_file(tmp, name, needle); }

static void show_log_tail(const char *name, int lines) { tap_note_tail(tmp, name, lines); }

/* Empties the services' logs, so that each part reads only what was said during it. */
static void truncate_logs(void)
{
	const char *names[] = {"builder.log", "indexer.log"};
	for (int i = 0; i < 2; i++) {
		char path[160];
		snprintf(path, sizeof(path), "%s/%s", tmp, names[i]);
		FILE *f = fopen(path, "w");
		if (f)
			fclose(f);
	}
}

static pid_t start_replay(int loops, const char *rate)
{
	char loops_s[16];
	snprintf(loops_s, sizeof(loops_s), "%d", loops);
	const char *extra[] = {"--loop", loops_s, rate ? "--rate" : NULL, rate, NULL};
	return spawn_replay(tmp, tap_path("tests/data/firehose-capture.bin"), extra, &replay_port);
}

static pid_t start_builder(const struct nats_server *s)
{
	char relay[64], log[128];
	snprintf(relay, sizeof(relay), "ws://127.0.0.1:%d", replay_port);
	snprintf(log, sizeof(log), "%s/builder.log", tmp);
	char *argv[] = {BUILDER, "--nats", (char *)s->url, "--relay", relay, "--verify=false", "--max-inflight-bytes", "8388608",
	                "--ack-timeout", "3000", "--config", "/dev/null", NULL};
	return spawn(argv, NULL, log);
}

static pid_t start_indexer(const struct nats_server *s, const char *db)
{
	char log[128];
	snprintf(log, sizeof(log), "%s/indexer.log", tmp);
	char *argv[] = {INDEXER, "--nats", (char *)s->url, "--db", (char *)db, "--config", "/dev/null", NULL};
	return spawn(argv, NULL, log);
}

/* The current resident memory of a process, in KiB (VmRSS), or -1. */
static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kb;
}

/* A client of the test's own, for looking at the store. */
struct look {
	natsConnection *nc;
	jsCtx *js;
};

static bool look_open(struct look *l, const struct nats_server *s)
{
	natsOptions *o = NULL;
	natsOptions_Create(&o);
	natsOptions_SetURL(o, s->url);
	natsOptions_SetMaxReconnect(o, -1);
	natsOptions_SetReconnectWait(o, 200);
	bool ok = natsConnection_Connect(&l->nc, o) == NATS_OK && natsConnection_JetStream(&l->js, l->nc, NULL) == NATS_OK;
	natsOptions_Destroy(o);
	return ok;
}

static void look_close(struct look *l)
{
	jsCtx_Destroy(l->js);
	natsConnection_Destroy(l->nc);
	*l = (struct look){0};
}

static bool wait_cursor(struct look *l, int64_t want, int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 200) {
		if (expected_stored_cursor(l->js) >= want)
			return true;
		sleep_ms(200);
	}
	tap_note("cursor %lld after %d ms, waiting for %lld", (long long)expected_stored_cursor(l->js), timeout_ms,
	         (long long)want);
	show_log_tail("builder.log", 15);
	return false;
}

static bool indexer_done(struct look *l, int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 200) {
		jsConsumerInfo *ci = NULL;
		bool done = js_GetConsumerInfo(&ci, l->js, "KV_record", "like-indexer", NULL, NULL) == NATS_OK &&
		            ci->NumPending == 0 && ci->NumAckPending == 0;
		jsConsumerInfo_Destroy(ci);
		if (done)
			return true;
		sleep_ms(200);
	}
	show_log_tail("indexer.log", 10);
	return false;
}

/* Once NATS is healthy again: the builder reaches the end by itself, the indexer reads it all,
 * both stop cleanly, and the store and the index are exact. */
static void check_recovered(struct look *l, pid_t b, pid_t x, const char *db, const struct expected *want)
{
	tap_ok(wait_cursor(l, want->last_seq, 180000), "the builder goes on by itself to the end (%lld)",
	       (long long)want->last_seq);
	tap_ok(indexer_done(l, 60000), "and the indexer reads everything");
	int stb = spawn_stop(b, SIGTERM, 10000), stx = spawn_stop(x, SIGTERM, 10000);
	tap_ok(stb >= 0 && WIFEXITED(stb) && WEXITSTATUS(stb) == 0 && stx >= 0 && WIFEXITED(stx) && WEXITSTATUS(stx) == 0,
	       "both stop cleanly");
	tap_eq(expected_compare_records(l->js, want), 0, "bucket record is exact: nothing lost, nothing wrong");
	tap_eq(expected_compare_accounts(l->js, want), 0, "bucket account too");
	json_t *likes = expected_likes(want);
	tap_ok(json_object_size(likes) > 0 && likecheck_compare(db, likes, true) == 0,
	       "the like index is exact (%zu likes), every count right", json_object_size(likes));
	json_decref(likes);
}

/* 1 and 2: NATS killed with -9 and restarted, then paused, under both services. */
static void killed_and_paused(void)
{
	struct nats_server server = {0};
	struct look l = {0};
	char db[128];
	snprintf(db, sizeof(db), "%s/likes.sqlite", tmp);
	const int loops = 30;
	struct expected want = expected_looped(&one, loops);
	const char *pause_env = getenv("ATKV_TEST_PAUSE_S");
	int pause_s = pause_env ? atoi(pause_env) : 30;

	tap_ok(nats_server_start(&server, 0) == 0 && look_open(&l, &server), "nats-server started");
	pid_t replay = start_replay(loops, "300");
	pid_t b = start_builder(&server), x = start_indexer(&server, db);
	tap_ok(replay > 0 && wait_cursor(&l, 400, 30000), "the builder writes (cursor past 400 of %lld)",
	       (long long)want.last_seq);

	nats_server_signal(&server, SIGKILL);
	waitpid(server.pid, NULL, 0);
	server.pid = 0;
	nats_server_stop(&server); /* forgets the old ports file */
	sleep_ms(3000);
	int stb = 0, stx = 0;
	bool run_b = spawn_running(b, &stb), run_x = spawn_running(x, &stx);
	if (!run_b || !run_x)
		tap_note("builder %s %d, indexer %s %d", run_b ? "runs" : WIFSIGNALED(stb) ? "died of signal" : "exited",
		         WIFSIGNALED(stb) ? WTERMSIG(stb) : WEXITSTATUS(stb), run_x ? "runs" : WIFSIGNALED(stx) ? "died of signal" : "exited",
		         WIFSIGNALED(stx) ? WTERMSIG(stx) : WEXITSTATUS(stx));
	tap_ok(run_b && run_x, "NATS killed with -9: both services keep running");
	tap_ok(count_in("builder.log", "lost the connection to NATS") >= 1 && count_in("indexer.log", "lost the connection to NATS") >= 1,
	       "and both say they lost NATS");
	tap_ok(nats_server_start(&server, server.port) == 0, "NATS restarted on its port with its store");
	int64_t before = expected_stored_cursor(l.js);
	tap_ok(wait_cursor(&l, before + 500, 60000), "the builder goes on (cursor %lld)", (long long)expected_stored_cursor(l.js));
	/* The indexer reconnects on a schedule of its own. */
	for (int t = 0; t < 30000 && !count_in("indexer.log", "reconnected to NATS at nats://127.0.0.1:"); t += 100)
		sleep_ms(100);
	tap_ok(count_in("builder.log", "reconnected to NATS at nats://127.0.0.1:") >= 1 &&
	           count_in("indexer.log", "reconnected to NATS at nats://127.0.0.1:") >= 1,
	       "both say they are back");

	int lost_b = count_in("builder.log", "lost the connection to NATS");
	nats_server_signal(&server, SIGSTOP);
	long early_b = -1, late_b = -1, early_x = -1, late_x = -1;
	bool up = true;
	for (int s = 0; s < pause_s; s++) {
		sleep_ms(1000);
		up = up && spawn_running(b, NULL) && spawn_running(x, NULL);
		if (s == 4) {
			early_b = rss_kb(b);
			early_x = rss_kb(x);
		}
	}
	late_b = rss_kb(b);
	late_x = rss_kb(x);
	tap_ok(up, "NATS paused for %d s: both services keep running", pause_s);
	tap_note("resident memory 5 s into the pause and at its end: builder %ld -> %ld KiB, indexer %ld -> %ld KiB",
	         early_b, late_b, early_x, late_x);
	tap_ok(!RSS_CHECKED || (late_b <= early_b + 4096 && late_x <= early_x + 4096), "neither grows while NATS is away%s",
	       RSS_CHECKED ? "" : " (not checked under AddressSanitizer)");
	tap_ok(count_in("builder.log", "lost the connection to NATS") > lost_b ||
	           count_in("builder.log", "not acknowledged") >= 1,
	       "the builder says NATS is not answering");
	nats_server_signal(&server, SIGCONT);

	long peak_b = spawn_peak_rss_kb(b), peak_x = spawn_peak_rss_kb(x);
	tap_note("peak resident memory: builder %ld KiB, indexer %ld KiB", peak_b, peak_x);
	tap_ok(!RSS_CHECKED || (peak_b > 0 && peak_b < RSS_LIMIT_MB * 1024 && peak_x > 0 && peak_x < RSS_LIMIT_MB * 1024),
	       "both peaked below %d MiB so far%s", RSS_LIMIT_MB, RSS_CHECKED ? "" : " (not checked under AddressSanitizer)");
	check_recovered(&l, b, x, db, &want);
	spawn_stop(replay, SIGTERM, 5000);
	look_close(&l);
	nats_server_destroy(&server);
	expected_free(&want);
}

/* Waits for the builder's cursor to stand still for `ms` (NATS refusing its writes); returns
 * where it stands. */
static int64_t cursor_settled(struct look *l, int ms, int timeout_ms)
{
	int64_t at = expected_stored_cursor(l->js);
	for (int still = 0, t = 0; still < ms && t < timeout_ms; t += 500) {
		sleep_ms(500);
		int64_t now = expected_stored_cursor(l->js);
		still = now == at ? still + 500 : 0;
		at = now;
	}
	return at;
}

static bool write_conf(struct nats_server *s, const char *max_file_store)
{
	snprintf(s->conf, sizeof(s->conf), "%s/limits.conf", s->dir);
	FILE *f = fopen(s->conf, "w");
	if (!f)
		return false;
	fprintf(f, "jetstream {\n  store_dir: \"%s/store\"\n  max_file_store: %s\n}\n", s->dir, max_file_store);
	return fclose(f) == 0;
}

/* 3. JetStream's storage limit reached: the builder's writes are refused until NATS gets room
 *    (restarted with a larger limit, as an operator would). */
static void storage_limit(void)
{
	struct nats_server server = {0};
	struct look l = {0};
	char db[128];
	snprintf(db, sizeof(db), "%s/limit.sqlite", tmp);
	snprintf(server.dir, sizeof(server.dir), "%s/nats-limit", tmp);
	const int loops = 60;
	struct expected want = expected_looped(&one, loops);
	tap_ok(mkdir(server.dir, 0700) == 0 && write_conf(&server, "1MB") && nats_server_start(&server, 0) == 0 &&
	           look_open(&l, &server),
	       "nats-server with JetStream storage limited to 1 MB");
	truncate_logs();
	pid_t replay = start_replay(loops, NULL);
	pid_t b = start_builder(&server), x = start_indexer(&server, db);
	/* The cursor is never saved at this limit: it settles at once; the refusal is waited for. */
	for (int t = 0; t < 60000 && !count_in("builder.log", "insufficient resources ("); t += 100)
		sleep_ms(100);
	int64_t stuck = cursor_settled(&l, 4000, 60000);
	tap_ok(stuck < want.last_seq, "the builder stops short of the end at the limit (cursor %lld of %lld)",
	       (long long)stuck, (long long)want.last_seq);
	long peak_b = spawn_peak_rss_kb(b);
	tap_ok(spawn_running(b, NULL) && spawn_running(x, NULL), "both services keep running");
	tap_ok(count_in("builder.log", "insufficient resources (JetStream is out of storage: free disk space") >= 1,
	       "the builder says why and what to do");
	for (int t = 0; t < 60000 && !count_in("builder.log", " in 8 s"); t += 100)
		sleep_ms(100);
	int said = count_in("builder.log", "insufficient resources (");
	tap_ok(said <= 7 && count_in("builder.log", "from seq") && count_in("builder.log", " in 8 s"),
	       "with a wait that doubles between attempts, not in a loop (%d attempts before the wait of 8 s)", said);
	tap_note("builder peak resident memory at the limit: %ld KiB", peak_b);
	tap_ok(!RSS_CHECKED || (peak_b > 0 && peak_b < RSS_LIMIT_MB * 1024), "its memory stays bounded");

	nats_server_stop(&server);
	write_conf(&server, "1GB");
	tap_ok(nats_server_start(&server, server.port) == 0, "NATS restarted with room");
	check_recovered(&l, b, x, db, &want);
	spawn_stop(replay, SIGTERM, 5000);
	look_close(&l);
	nats_server_destroy(&server);
	expected_free(&want);
}

/* A process holding a mount namespace of its own with a tmpfs of mb MiB at dir, for a store on
 * a small filesystem; -1 when this is not possible (not root, no unshare). */
static pid_t tmpfs_holder(const char *dir, int mb)
{
	char size[32], probe[400], log[128];
	snprintf(size, sizeof(size), "size=%dm", mb);
	snprintf(log, sizeof(log), "%s/holder.log", tmp);
	char *argv[] = {"unshare", "--mount", "--propagation", "private", "sh", "-c",
	                "mount -t tmpfs -o \"$0\" tmpfs \"$1\" && exec sleep 100000", size, (char *)dir, NULL};
	if (geteuid() != 0)
		return -1;
	pid_t h = spawn(argv, NULL, log);
	for (int t = 0; h > 0 && t < 5000; t += 20) {
		struct statfs fs;
		snprintf(probe, sizeof(probe), "/proc/%d/root%s", (int)h, dir);
		if (!spawn_running(h, NULL))
			return -1;
		if (statfs(probe, &fs) == 0 && fs.f_type == TMPFS_MAGIC)
			return h;
		sleep_ms(20);
	}
	if (h > 0)
		spawn_stop(h, SIGKILL, 5000);
	return -1;
}

/* Fills the filesystem at path (seen through the holder's root) with one file; returns its
 * size in MiB. */
static int fill(const char *path)
{
	static char block[1 << 20];
	FILE *f = fopen(path, "w");
	int mb = 0;
	while (f && fwrite(block, 1, sizeof(block), f) == sizeof(block) && fflush(f) == 0)
		mb++;
	if (f)
		fclose(f);
	return mb;
}

/* 4. The store's filesystem full: writes fail inside nats-server (2.9 stops answering and
 *    needs a restart once there is room again); the services wait, then recover by themselves. */
static void disk_full(void)
{
	struct nats_server server = {0};
	struct look l = {0};
	char db[128], store[300], filler[360];
	snprintf(db, sizeof(db), "%s/full.sqlite", tmp);
	snprintf(server.dir, sizeof(server.dir), "%s/nats-full", tmp);
	snprintf(store, sizeof(store), "%s/store", server.dir);
	mkdir(server.dir, 0700);
	mkdir(store, 0700);
	pid_t holder = tmpfs_holder(store, 64);
	if (holder < 0) {
		tap_skip("a full filesystem needs root and unshare (a tmpfs in a mount namespace)");
		return;
	}
	snprintf(filler, sizeof(filler), "/proc/%d/root%s/filler", (int)holder, store);
	const int loops = 150;
	struct expected want = expected_looped(&one, loops);
	server.mount_ns = holder;
	tap_ok(nats_server_start(&server, 0) == 0 && look_open(&l, &server), "nats-server with its store on a 64 MB tmpfs");
	truncate_logs();
	pid_t replay = start_replay(loops, "1500");
	pid_t b = start_builder(&server), x = start_indexer(&server, db);
	tap_ok(wait_cursor(&l, 1500, 60000), "the builder writes");
	int mb = fill(filler);
	tap_note("the filesystem filled with %d MiB", mb);
	bool up = true;
	long early_b = -1;
	for (int s = 0; s < 20; s++) {
		sleep_ms(1000);
		up = up && spawn_running(b, NULL) && spawn_running(x, NULL);
		if (s == 4)
			early_b = rss_kb(b);
	}
	long late_b = rss_kb(b);
	tap_ok(up, "the disk full for 20 s: both services keep running");
	tap_note("builder resident memory 5 s and 20 s into it: %ld -> %ld KiB", early_b, late_b);
	tap_ok(!RSS_CHECKED || late_b <= early_b + 4096, "its memory does not grow%s",
	       RSS_CHECKED ? "" : " (not checked under AddressSanitizer)");
	tap_ok(count_in("builder.log", "not acknowledged") + count_in("builder.log", "lost the connection to NATS") >= 1,
	       "the builder says NATS is not taking its writes");
	unlink(filler);
	nats_server_stop(&server);
	tap_ok(nats_server_start(&server, server.port) == 0, "room made and NATS restarted");
	check_recovered(&l, b, x, db, &want);
	spawn_stop(replay, SIGTERM, 5000);
	look_close(&l);
	nats_server_stop(&server);
	spawn_stop(holder, SIGKILL, 5000);
	nats_server_destroy(&server);
	expected_free(&want);
}

int main(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/atkv-test-natsfaults.XXXXXX");
	if (!mkdtemp(tmp)) {
		printf("Bail out! cannot make a temporary directory\n");
		return 1;
	}
	expected_load(&one, tap_path("tests/data/firehose-expected.jsonl"));
	killed_and_paused();
	storage_limit();
	disk_full();
	expected_free(&one);
	tap_remove_dir(tmp);
	return tap_done();
}
