/* bench-like-indexer.c — how fast atkv-like-indexer indexes a record KV full of likes, beside
 * the raw rate of a libatkv consumer fetching and acknowledging the same likes with no SQLite
 * work, on one nats-server started here; then the latency of atkv-get-likes-by (likes of an
 * account) and of its likers query (--subject), each run as a process, as a user would.
 * Run from the build directory:
 *   bench/bench-like-indexer [--likes N] [--queries N] [--incremental] [--smoke]
 * Prints likes/s of both and their ratio, CPU time, the indexer's peak RSS, and p50/p99 of both
 * queries. The indexer starts from an empty index, so it bulk loads; --incremental turns that
 * off, to measure the path live changes take. */
#define _DEFAULT_SOURCE
#include "../tests/natsserver.h"
#include "../tests/spawn.h"

#include <atkv/atkv.h>

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ACCOUNTS 10000
#define POSTS 100000

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void account(long i, char *out, size_t n) { snprintf(out, n, "did:plc:bench%06ld", i); }
static void post(long i, char *out, size_t n) { snprintf(out, n, "at://did:plc:poster%04ld/app.bsky.feed.post/p%06ld", i % 1000, i); }

/* Publishes n likes: account i % ACCOUNTS likes post (i * 7919) % POSTS. Returns 0 or -1. */
static int fill(natsConnection *nc, long n)
{
	jsCtx *js = NULL;
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = 20000;
	if (natsConnection_JetStream(&js, nc, &jo) != NATS_OK)
		return -1;
	int rc = 0;
	for (long i = 0; i < n && !rc; i++) {
		char did[64], rkey[32], subject[96], key[ATKV_KEY_MAX + 1], json[384];
		account(i % ACCOUNTS, did, sizeof(did));
		snprintf(rkey, sizeof(rkey), "3l%011ld", i);
		post((i * 7919) % POSTS, subject, sizeof(subject));
		int len = snprintf(json, sizeof(json),
		                   "{\"$type\":\"app.bsky.feed.like\",\"subject\":{\"uri\":\"%s\",\"cid\":"
		                   "\"bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku\"},"
		                   "\"createdAt\":\"2026-11-27T%02ld:%02ld:%02ld.%03ldZ\"}",
		                   subject, i / 3600000 % 24, i / 60000 % 60, i / 1000 % 60, i % 1000);
		natsMsg *m = NULL;
		if (atkv_key_build(key, sizeof(key), did, strlen(did), "app.bsky.feed.like", 18, rkey, strlen(rkey)) < 0 ||
		    atkv_record_msg(&m, ATKV_BUCKET_RECORD, key, json, (size_t)len, false, NULL, NULL) ||
		    js_PublishMsgAsync(js, &m, NULL) != NATS_OK)
			rc = -1;
		natsMsg_Destroy(m);
	}
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = 120000;
	if (js_PublishAsyncComplete(js, &po) != NATS_OK)
		rc = -1;
	jsCtx_Destroy(js);
	return rc;
}

/* Fetches and acknowledges every like with a consumer of its own; returns the seconds taken. */
static double raw_consume(natsConnection *nc, long n)
{
	static const char *likes[] = {"app.bsky.feed.like", NULL};
	struct atkv_consumer_options o;
	atkv_consumer_options_init(&o);
	o.name = "bench-raw";
	o.collections = likes;
	/* As atkv-like-indexer asks with its default --batch. */
	o.batch = 5000;
	o.max_ack_pending = 20000;
	struct atkv_consumer *c = NULL;
	char why[256];
	if (atkv_consumer_open(nc, &o, &c, why, sizeof(why))) {
		fprintf(stderr, "bench-like-indexer: %s\n", why);
		return -1;
	}
	long got = 0;
	double t0 = now_s();
	struct atkv_change *ch;
	while (got < n && atkv_consumer_next(c, 10000, &ch) > 0) {
		got++;
		atkv_change_ack(ch);
		atkv_change_free(ch);
	}
	double took = now_s() - t0;
	atkv_consumer_close(c);
	return got == n ? took : -1;
}

static bool consumer_done(jsCtx *js, const char *name, long n)
{
	jsConsumerInfo *ci = NULL;
	bool done = false;
	if (js_GetConsumerInfo(&ci, js, "KV_record", name, NULL, NULL) == NATS_OK)
		done = ci->Delivered.Stream >= (uint64_t)n && ci->NumPending == 0 && ci->NumAckPending == 0;
	jsConsumerInfo_Destroy(ci);
	return done;
}

/* Runs the query tool once with output to /dev/null; returns its wall time in ms, or -1. */
static double run_query(const char *tool, const char *db, const char *a1, const char *a2)
{
	double t0 = now_s();
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		execl(tool, tool, "--config", "/dev/null", "--db", db, a1, a2, (char *)NULL);
		_exit(127);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
		return -1;
	return (now_s() - t0) * 1000;
}

/* True when the index answers with the last like of the n published as its account's newest:
 * then every like before it is in too (they are applied in stream order). Asked of the index,
 * not of nats-server, which would count the pending changes through the whole stream. */
static bool last_like_indexed(const char *tool, const char *db, long n)
{
	char did[64], want[128], got[160] = "", cmd[512];
	account((n - 1) % ACCOUNTS, did, sizeof(did));
	post(((n - 1) * 7919) % POSTS, want, sizeof(want));
	snprintf(cmd, sizeof(cmd), "%s --config /dev/null --db '%s' --limit 1 %s 2>/dev/null", tool, db, did);
	FILE *f = popen(cmd, "r");
	if (!f)
		return false;
	if (!fgets(got, sizeof(got), f))
		got[0] = '\0';
	pclose(f);
	got[strcspn(got, "\n")] = '\0';
	return !strcmp(got, want);
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Times q runs of the tool; prints p50 and p99. */
static int latency(const char *what, const char *tool, const char *db, int q, bool subject)
{
	double *ms = calloc((size_t)q, sizeof(*ms));
	int bad = 0;
	for (int i = 0; i < q && ms; i++) {
		char arg[128];
		if (subject)
			post(((long)i * 7919 * 13) % POSTS, arg, sizeof(arg));
		else
			account(((long)i * 37) % ACCOUNTS, arg, sizeof(arg));
		ms[i] = run_query(tool, db, subject ? "--subject" : arg, subject ? arg : NULL);
		bad += ms[i] < 0;
	}
	if (!ms || bad) {
		fprintf(stderr, "bench-like-indexer: %d of %d %s queries failed\n", bad, q, what);
		free(ms);
		return -1;
	}
	qsort(ms, (size_t)q, sizeof(*ms), by_value);
	printf("%s: queries=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", what, q, ms[q / 2], ms[(q * 99) / 100], ms[q - 1]);
	free(ms);
	return 0;
}

int main(int argc, char **argv)
{
	long n = 1000000;
	int queries = 500;
	bool incremental = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--smoke")) {
			n = 20000;
			queries = 50;
		} else if (!strcmp(argv[i], "--incremental")) {
			incremental = true;
		} else if (!strcmp(argv[i], "--likes") && i + 1 < argc) {
			n = atol(argv[++i]);
		} else if (!strcmp(argv[i], "--queries") && i + 1 < argc) {
			queries = atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: bench-like-indexer [--likes N] [--queries N] [--incremental] [--smoke]\n");
			return 2;
		}
	}
	/* The real binaries, not libtool's wrapper scripts: the latency is the tool's own. */
	const char *indexer = access("src/.libs/atkv-like-indexer", X_OK) ? "src/atkv-like-indexer" : "src/.libs/atkv-like-indexer";
	const char *tool = access("src/.libs/atkv-get-likes-by", X_OK) ? "src/atkv-get-likes-by" : "src/.libs/atkv-get-likes-by";
	if (access(indexer, X_OK) || access(tool, X_OK)) {
		fprintf(stderr, "bench-like-indexer: run from the build directory after make\n");
		return 1;
	}
	setenv("LD_LIBRARY_PATH", "src/.libs", 1);
	char tmp[] = "/tmp/atkv-bench-likes.XXXXXX", db[128], log[128];
	struct nats_server server = {0};
	if (!mkdtemp(tmp) || nats_server_start(&server, 0))
		return 1;
	snprintf(db, sizeof(db), "%s/likes.sqlite", tmp);
	snprintf(log, sizeof(log), "%s/indexer.log", tmp);
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	natsConnection_ConnectTo(&nc, server.url);
	natsConnection_JetStream(&js, nc, NULL);
	kv_bucket_create(js, "record");

	int rc = 1;
	double t0 = now_s();
	if (fill(nc, n)) {
		fprintf(stderr, "bench-like-indexer: filling the bucket failed\n");
		goto out;
	}
	printf("store: %ld likes by %d accounts of %d posts, written in %.1f s\n", n, ACCOUNTS, POSTS, now_s() - t0);
	double srv0 = spawn_cpu_seconds(server.pid), self0 = spawn_cpu_seconds(getpid());
	double raw = raw_consume(nc, n);
	if (raw <= 0)
		goto out;
	printf("baseline (libatkv consumer, fetch + ack, no SQLite): likes=%ld seconds=%.2f likes_per_s=%.0f cpu_s=%.2f "
	       "nats_server_cpu_s=%.2f\n",
	       n, raw, (double)n / raw, spawn_cpu_seconds(getpid()) - self0, spawn_cpu_seconds(server.pid) - srv0);

	char *argv_ix[] = {(char *)indexer, "--nats", server.url, "--db", db, "--config", "/dev/null",
	                   "--bulk-load", incremental ? "0" : "10000", NULL};
	t0 = now_s();
	pid_t x = spawn(argv_ix, NULL, log);
	long rss = -1;
	double cpu = 0;
	srv0 = spawn_cpu_seconds(server.pid);
	/* Done when the last like is in the index (checked every 100 ms) and every like is
	 * acknowledged. */
	for (int i = 1; spawn_running(x, NULL) && now_s() - t0 < 600; i++) {
		long r = spawn_peak_rss_kb(x);
		rss = r > rss ? r : rss;
		double c = spawn_cpu_seconds(x);
		cpu = c > cpu ? c : cpu;
		if (i % 5 == 0 && last_like_indexed(tool, db, n) && consumer_done(js, "like-indexer", n))
			break;
		sleep_ms(20);
	}
	double took = now_s() - t0, srv_cpu = spawn_cpu_seconds(server.pid) - srv0;
	long r = spawn_peak_rss_kb(x);
	rss = r > rss ? r : rss;
	spawn_stop(x, SIGTERM, 20000);
	if (!consumer_done(js, "like-indexer", n)) {
		fprintf(stderr, "bench-like-indexer: the indexer did not finish (log: %s)\n", log);
		goto out;
	}
	printf("atkv-like-indexer (%s): likes=%ld seconds=%.2f likes_per_s=%.0f cpu_s=%.2f nats_server_cpu_s=%.2f "
	       "peak_rss_mb=%.1f (from process start)\n",
	       incremental ? "one like at a time" : "bulk load", n, took, (double)n / took, cpu, srv_cpu, (double)rss / 1024);
	printf("ratio: indexer / baseline likes per second = %.2f\n", raw / took);
	if (latency("atkv-get-likes-by DID", tool, db, queries, false) ||
	    latency("atkv-get-likes-by --subject URI", tool, db, queries, true))
		goto out;
	rc = 0;
out:
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_server_destroy(&server);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (getenv("ATKV_BENCH_KEEP"))
		fprintf(stderr, "bench-like-indexer: kept %s\n", tmp);
	else if (system(cmd) != 0)
		fprintf(stderr, "bench-like-indexer: could not remove %s\n", tmp);
	return rc;
}
