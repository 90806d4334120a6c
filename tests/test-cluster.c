/* test-cluster.c — atkv-builder and atkv-like-indexer on a three-node JetStream cluster on
 * loopback, buckets with 3 replicas, both programs given the whole server list. In the middle of
 * a looped replay the leader of stream KV_record is killed with -9; once it is back and caught
 * up, the leader of the consumer like-indexer is killed. Both programs must go on through the
 * other nodes, and the store and the like index must end exact. */
#define _DEFAULT_SOURCE
#include "expected.h"
#include "likecheck.h"
#include "natsserver.h"
#include "spawn.h"
#include "tap.h"
#include <atkv/recordkey.h>

#include <jansson.h>
#include <nats/nats.h>
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
#define NODES 3
/* The replay: LOOPS times the capture at RATE frames a second, about 20 s in all. */
#define LOOPS 12
#define RATE "80"

static struct nats_server nodes[NODES];
static char urls[256], tmp[64], db[128];
static natsConnection *nc;
static jsCtx *js;
/* For following leaders: a request nobody answers (no leader yet) times out after 250 ms, so
 * an election is timed to a fraction of a second, not to the default 5 s wait. */
static jsCtx *poll_js;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t stored_cursor(void) { return expected_stored_cursor(js); }

static void show_log_tail(const char *name, int lines) { tap_note_tail(tmp, name, lines); }

static int count_in_log(const char *name, const char *needle) { return tap_count_in_file(tmp, name, needle); }

/* ---- the cluster as JetStream reports it ---- */

static int node_named(const char *name)
{
	for (int i = 0; name && i < NODES; i++)
		if (!strcmp(nodes[i].name, name))
			return i;
	return -1;
}

/* The node leading the stream (consumer NULL) or the consumer; -1 while there is none. With
 * caught_up, only when every replica is online and current. */
static int leader_of(const char *stream, const char *consumer, bool caught_up)
{
	jsStreamInfo *si = NULL;
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	jsClusterInfo *cl = NULL;
	if (consumer ? js_GetConsumerInfo(&ci, poll_js, stream, consumer, NULL, &jerr) == NATS_OK
	             : js_GetStreamInfo(&si, poll_js, stream, NULL, &jerr) == NATS_OK)
		cl = consumer ? ci->Cluster : si->Cluster;
	int leader = cl ? node_named(cl->Leader) : -1;
	if (cl && caught_up) {
		if (cl->ReplicasLen != NODES - 1)
			leader = -1;
		for (int i = 0; i < cl->ReplicasLen; i++)
			if (!cl->Replicas[i]->Current || cl->Replicas[i]->Offline)
				leader = -1;
	}
	jsStreamInfo_Destroy(si);
	jsConsumerInfo_Destroy(ci);
	return leader;
}

/* The replicas stream is configured with, and how many nodes hold it (leader included). */
static int replicas(const char *stream, int *placed)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	int r = -1;
	*placed = 0;
	if (js_GetStreamInfo(&si, js, stream, NULL, &jerr) == NATS_OK) {
		r = si->Config->Replicas;
		*placed = si->Cluster && si->Cluster->Leader ? 1 + si->Cluster->ReplicasLen : 0;
	}
	jsStreamInfo_Destroy(si);
	return r;
}

static uint64_t last_stream_seq(const char *stream)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	uint64_t seq = 0;
	if (js_GetStreamInfo(&si, poll_js, stream, NULL, &jerr) == NATS_OK)
		seq = si->State.LastSeq;
	jsStreamInfo_Destroy(si);
	return seq;
}

static void consumer_state(uint64_t *pending, int64_t *ack_pending)
{
	jsConsumerInfo *ci = NULL;
	*pending = 999;
	*ack_pending = 999;
	if (js_GetConsumerInfo(&ci, js, "KV_record", "like-indexer", NULL, NULL) == NATS_OK) {
		*pending = ci->NumPending;
		*ack_pending = ci->NumAckPending;
	}
	jsConsumerInfo_Destroy(ci);
}

/* ---- the processes ---- */

static pid_t replay_pid;
static int replay_port;

static bool start_replay(const char *capture, const char *loops)
{
	const char *extra[] = {"--loop", loops, "--rate", RATE, NULL};
	replay_pid = spawn_replay(tmp, capture, extra, &replay_port);
	return replay_pid > 0;
}

static pid_t start_builder(void)
{
	char relay[64], log[128];
	snprintf(relay, sizeof(relay), "ws://127.0.0.1:%d", replay_port);
	snprintf(log, sizeof(log), "%s/builder.log", tmp);
	char *argv[] = {BUILDER, "--nats", urls, "--replicas", "3", "--relay", relay, "--ack-timeout", "2000", "--verify=false",
	                "--config", "/dev/null", NULL};
	return spawn(argv, NULL, log);
}

static pid_t start_indexer(void)
{
	char log[128];
	snprintf(log, sizeof(log), "%s/indexer.log", tmp);
	char *argv[] = {INDEXER, "--nats", urls, "--db", db, "--config", "/dev/null", "--log-level", "debug", NULL};
	return spawn(argv, NULL, log);
}

/* ---- the like index against the store ---- */

/* ---- a leader killed ---- */

struct outage {
	int node;             /* the node killed */
	int64_t killed_ms;
	int64_t elected_ms;   /* the stream or consumer reports another leader; -1: never */
	int64_t resumed_ms;   /* what is watched moves again; -1: never */
};

/* Kills node i with -9 and follows what comes after for up to timeout_ms: when stream (or its
 * consumer) has a leader again, and when moved() first returns true. */
static struct outage kill_and_follow(int i, const char *stream, const char *consumer, bool (*moved)(void),
                                     int timeout_ms)
{
	struct outage o = {.node = i, .elected_ms = -1, .resumed_ms = -1};
	o.killed_ms = now_ms();
	nats_server_signal(&nodes[i], SIGKILL);
	waitpid(nodes[i].pid, NULL, 0);
	nodes[i].pid = 0;
	while (now_ms() - o.killed_ms < timeout_ms && (o.elected_ms < 0 || o.resumed_ms < 0)) {
		int leader = o.elected_ms < 0 ? leader_of(stream, consumer, false) : -1;
		if (o.elected_ms < 0 && leader >= 0 && leader != i)
			o.elected_ms = now_ms();
		if (o.resumed_ms < 0 && moved())
			o.resumed_ms = now_ms();
		sleep_ms(50);
	}
	return o;
}

static uint64_t seq_at_kill;
static bool record_written(void) { return last_stream_seq("KV_record") > seq_at_kill; }

/* The consumer's delivered and acknowledged stream seqs, or -1 while nobody answers. */
static void consumer_floors(int64_t *delivered, int64_t *acked)
{
	jsConsumerInfo *ci = NULL;
	*delivered = *acked = -1;
	if (js_GetConsumerInfo(&ci, poll_js, "KV_record", "like-indexer", NULL, NULL) == NATS_OK) {
		*delivered = (int64_t)ci->Delivered.Stream;
		*acked = (int64_t)ci->AckFloor.Stream;
	}
	jsConsumerInfo_Destroy(ci);
}

static int64_t delivered_at_kill, acked_at_kill;

static bool likes_delivered(void)
{
	int64_t delivered, acked;
	consumer_floors(&delivered, &acked);
	return delivered > delivered_at_kill;
}

static bool restart_caught_up(int i, const char *what)
{
	bool up = nats_server_start(&nodes[i], 0) == 0, current = false;
	int64_t t0 = now_ms();
	/* Judged once per round: a second look could catch the cluster between two answers. */
	while (up && !current && now_ms() - t0 < 60000) {
		current = leader_of("KV_record", NULL, true) >= 0 && leader_of("KV_record", "like-indexer", true) >= 0;
		if (!current)
			sleep_ms(100);
	}
	tap_ok(current, "%s %s restarted%s: every replica of KV_record and of like-indexer is current again (%.1f s)",
	       what, nodes[i].name, up ? "" : " (it did not start)", (double)(now_ms() - t0) / 1000);
	return current;
}

/* Has KV_record's leader step down until node i leads it (the new leader is drawn among the
 * current replicas); true once it does. */
static bool make_leader(int i)
{
	for (int tries = 0; tries < 16; tries++) {
		int leader = -1;
		for (int t = 0; t < 10000 && (leader = leader_of("KV_record", NULL, false)) < 0; t += 100)
			sleep_ms(100);
		if (leader == i)
			return true;
		natsMsg *reply = NULL;
		natsConnection_RequestString(&reply, nc, "$JS.API.STREAM.LEADER.STEPDOWN.KV_record", "", 5000);
		natsMsg_Destroy(reply);
		/* The old leader may still answer for a moment. */
		for (int t = 0; t < 5000 && leader_of("KV_record", NULL, false) == leader; t += 100)
			sleep_ms(100);
	}
	return false;
}

/* The bucket is read through an ephemeral consumer, which the cluster may place on a node that
 * has just come back and still catches up (it can say it is current before it is): a read that
 * differs is tried again, for up to 20 s. Only a store that stays wrong fails. */
static int compare_eventually(int (*compare)(jsCtx *, const struct expected *), const struct expected *e)
{
	int bad = 0;
	for (int t = 0; t < 20000; t += 1000) {
		if ((bad = compare(js, e)) == 0)
			return 0;
		tap_note("read again in 1 s");
		sleep_ms(1000);
	}
	return bad;
}

static bool wait_cursor(int64_t want, int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 100) {
		if (stored_cursor() >= want)
			return true;
		sleep_ms(100);
	}
	return false;
}

int main(void)
{
	struct expected e;
	expected_load(&e, tap_path("tests/data/firehose-expected.jsonl"));
	static char capture[4096];
	snprintf(capture, sizeof(capture), "%s", tap_path("tests/data/firehose-capture.bin"));
	snprintf(tmp, sizeof(tmp), "/tmp/atkv-test-cluster.XXXXXX");
	if (!mkdtemp(tmp)) {
		printf("Bail out! cannot create a temporary directory\n");
		return 1;
	}
	for (int i = 0; i < NODES; i++)
		snprintf(nodes[i].dir, sizeof(nodes[i].dir), "%s/n%d", tmp, i);
	snprintf(db, sizeof(db), "%s/likes.sqlite", tmp);
	int64_t t0 = now_ms();
	if (nats_cluster_start(nodes, NODES, 30000, urls, sizeof(urls))) {
		printf("Bail out! cannot start a cluster of %d nats-servers\n", NODES);
		tap_remove_dir(tmp);
		return 1;
	}
	tap_ok(true, "a JetStream cluster of %d nats-servers with a meta leader in %.1f s: %s", NODES,
	       (double)(now_ms() - t0) / 1000, urls);
	nc = nats_cluster_connect(urls);
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = 250;
	if (!nc || natsConnection_JetStream(&js, nc, NULL) != NATS_OK || natsConnection_JetStream(&poll_js, nc, &jo) != NATS_OK) {
		printf("Bail out! cannot connect to the cluster\n");
		return 1;
	}

	struct expected looped = expected_looped(&e, LOOPS);
	json_t *likes = expected_likes(&looped);
	int64_t last = LOOPS * e.last_seq;
	tap_note("replaying %d loops at %s frames/s: last seq %lld, %zu record keys, %zu likes", LOOPS, RATE,
	         (long long)last, json_object_size(looped.records), json_object_size(likes));
	char loops[16];
	snprintf(loops, sizeof(loops), "%d", LOOPS);
	bool listening = start_replay(capture, loops);
	tap_ok(listening, "replay server listening on port %d", replay_port);
	pid_t b = start_builder();

	/* The buckets, created by the builder with 3 replicas each. */
	static const char *const streams[] = {"KV_record", "KV_cursor", "KV_account"};
	int placed = 0;
	for (int t = 0; t < 30000 && stored_cursor() < 0; t += 100)
		sleep_ms(100);
	for (int i = 0; i < 3; i++) {
		int r = replicas(streams[i], &placed);
		tap_ok(r == 3 && placed == 3, "%s: 3 replicas (configured %d, on %d nodes)", streams[i], r, placed);
	}
	pid_t x = start_indexer();
	t0 = now_ms();
	/* The loop's own answer is the one checked: asking again could catch a replica a moment
	 * behind, which says nothing about placement. */
	int consumer_leader = -1;
	for (int t = 0; t < 30000 && (consumer_leader = leader_of("KV_record", "like-indexer", true)) < 0; t += 100)
		sleep_ms(100);
	tap_ok(consumer_leader >= 0,
	       "the indexer's consumer like-indexer, replicated on %d nodes (after %.1f s)", NODES,
	       (double)(now_ms() - t0) / 1000);

	/* 1. The leader of KV_record killed with -9 a quarter of the way in. */
	wait_cursor(last / 4, 30000);
	int victim = -1;
	for (int t = 0; t < 5000 && (victim = leader_of("KV_record", NULL, false)) < 0; t += 100)
		sleep_ms(100);
	int64_t cursor_at_kill = stored_cursor();
	seq_at_kill = last_stream_seq("KV_record");
	tap_ok(victim >= 0 && cursor_at_kill > 0 && cursor_at_kill < last, "KV_record led by %s, killed at cursor %lld of %lld",
	       victim >= 0 ? nodes[victim].name : "nobody", (long long)cursor_at_kill, (long long)last);
	if (victim < 0) {
		printf("Bail out! no leader to kill\n");
		return 1;
	}
	struct outage o = kill_and_follow(victim, "KV_record", NULL, record_written, 60000);
	tap_ok(o.elected_ms >= 0, "another node leads KV_record %lld ms after the kill", (long long)(o.elected_ms - o.killed_ms));
	tap_ok(o.resumed_ms >= 0, "the builder writes into KV_record again %lld ms after the kill",
	       (long long)(o.resumed_ms - o.killed_ms));
	tap_ok(wait_cursor(cursor_at_kill + 139, 60000), "the cursor moves a loop further (%lld ms after the kill)",
	       (long long)(now_ms() - o.killed_ms));
	int st = 0;
	tap_ok(spawn_running(b, &st) && spawn_running(x, &st), "the builder and the indexer still run");
	restart_caught_up(victim, "the killed node");

	/* 2. The leader of the consumer killed, likes still coming. */
	consumer_leader = -1;
	for (int t = 0; t < 5000 && (consumer_leader = leader_of("KV_record", "like-indexer", false)) < 0; t += 100)
		sleep_ms(100);
	int64_t cursor_at_kill2 = stored_cursor();
	consumer_floors(&delivered_at_kill, &acked_at_kill);
	uint64_t pending_at_kill;
	int64_t ack_pending_at_kill;
	consumer_state(&pending_at_kill, &ack_pending_at_kill);
	tap_ok(consumer_leader >= 0 && cursor_at_kill2 < last,
	       "like-indexer led by %s, killed at cursor %lld of %lld (delivered %lld, acknowledged %lld)",
	       consumer_leader >= 0 ? nodes[consumer_leader].name : "nobody", (long long)cursor_at_kill2, (long long)last,
	       (long long)delivered_at_kill, (long long)acked_at_kill);
	if (consumer_leader < 0) {
		printf("Bail out! no leader to kill\n");
		return 1;
	}
	o = kill_and_follow(consumer_leader, "KV_record", "like-indexer", likes_delivered, 60000);
	tap_ok(o.elected_ms >= 0, "another node leads like-indexer %lld ms after the kill", (long long)(o.elected_ms - o.killed_ms));
	tap_ok(o.resumed_ms >= 0, "the indexer gets likes again %lld ms after the kill", (long long)(o.resumed_ms - o.killed_ms));
	/* Acknowledgements sent while no node led the consumer are lost: those likes come again
	 * after the consumer's ack wait (30 s). The new leader takes acknowledgements when the ack
	 * floor moves, or the count of unacknowledged likes falls (nats-server 2.9 may keep one
	 * lost acknowledgement pending below the floor until libatkv has the leader changed). */
	int64_t delivered, acked = -1, ack_pending = 0;
	uint64_t pending;
	for (;;) {
		consumer_floors(&delivered, &acked);
		consumer_state(&pending, &ack_pending);
		if (acked > acked_at_kill || (ack_pending_at_kill > 0 && ack_pending < ack_pending_at_kill) ||
		    now_ms() - o.killed_ms >= 180000)
			break;
		sleep_ms(100);
	}
	tap_ok(acked > acked_at_kill || (ack_pending_at_kill > 0 && ack_pending < ack_pending_at_kill),
	       "its acknowledgements reach the new leader %lld ms after the kill (ack floor %lld -> %lld, "
	       "unacknowledged %lld -> %lld)",
	       (long long)(now_ms() - o.killed_ms), (long long)acked_at_kill, (long long)acked,
	       (long long)ack_pending_at_kill, (long long)ack_pending);
	tap_ok(spawn_running(b, &st) && spawn_running(x, &st), "the builder and the indexer still run");
	restart_caught_up(consumer_leader, "the node killed second");

	/* The end: the store and the index exact, nothing left unacknowledged. */
	tap_ok(wait_cursor(last, 90000), "the cursor reaches the last seq of the %d loops (%lld)", LOOPS, (long long)last);
	if (stored_cursor() != last) {
		tap_note("cursor %lld", (long long)stored_cursor());
		show_log_tail("builder.log", 25);
	}
	tap_eq(compare_eventually(expected_compare_records, &looped), 0, "bucket record equals %d loops of the reference",
	       LOOPS);
	tap_eq(compare_eventually(expected_compare_accounts, &looped), 0, "bucket account too");
	/* The node killed first missed a part of the replay: leading KV_record, it has it all. */
	bool leads = make_leader(victim);
	tap_ok(leads, "the node killed first, %s, made leader of KV_record by step-downs", nodes[victim].name);
	tap_eq(leads ? compare_eventually(expected_compare_records, &looped) : -1, 0, "and the store it serves is exact");
	pending = 999;
	ack_pending = 999;
	int64_t t_index = now_ms();
	while (now_ms() - t_index < 90000) {
		consumer_state(&pending, &ack_pending);
		if (pending == 0 && ack_pending == 0 && likecheck_compare(db, likes, false) == 0)
			break;
		sleep_ms(200);
	}
	/* nats-server 2.9 can keep one delivery whose acknowledgement was lost in the election pending
	 * for good (nats-server#6387); libatkv asks for a new leader after two ack waits, which may
	 * take longer than this wait. Every change is still delivered and indexed (checked below). */
	tap_ok(pending == 0 && ack_pending <= 1, "like-indexer: nothing pending, at most one delivery unacknowledged (%llu, %lld)",
	       (unsigned long long)pending, (long long)ack_pending);
	tap_eq(likecheck_compare(db, likes, true), 0, "the like index holds exactly the store's %zu likes", json_object_size(likes));
	if (pending || ack_pending)
		show_log_tail("indexer.log", 15);
	tap_note("builder: %d replays after failed writes; indexer: %d consumer reopenings",
	         count_in_log("builder.log", "pausing the firehose to replay"),
	         count_in_log("indexer.log", "opening it again"));
	tap_ok(spawn_running(b, &st) && spawn_running(x, &st), "both still run");
	st = spawn_stop(b, SIGTERM, 15000);
	tap_ok(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the builder stops cleanly (exit 0)");
	st = spawn_stop(x, SIGTERM, 15000);
	tap_ok(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the indexer stops cleanly (exit 0)");

	spawn_stop(replay_pid, SIGTERM, 5000);
	jsCtx_Destroy(js);
	jsCtx_Destroy(poll_js);
	natsConnection_Destroy(nc);
	for (int i = 0; i < NODES; i++)
		nats_server_stop(&nodes[i]);
	nats_Close();
	json_decref(likes);
	expected_free(&looped);
	expected_free(&e);
	tap_remove_dir(tmp);
	return tap_done();
}
