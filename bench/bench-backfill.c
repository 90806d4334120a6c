/* bench-backfill.c — how fast atkv-backfill fills an empty record store from a PDS, beside the
 * raw rate of plain asynchronous JetStream puts of the same keys and values (the ceiling), on
 * a nats-server started here. The PDS and PLC directory are threads of this program serving
 * repositories built here (likes, posts and follows; an MST and a commit each), so the network
 * costs nothing and the figures are atkv's. Run from the build directory:
 *   bench/bench-backfill [--records N] [--repos N] [--concurrency N] [--smoke]
 * Prints records/s and CPU of both and their ratio, the backfill's peak RSS, then the time of a
 * second run (everything already current) and of a --force run (every key taken: each put
 * settled one by one). Every value stored is checked against the record it came from. */
#define _DEFAULT_SOURCE
#include "../tests/cbuild.h"
#include "../tests/httpserver.h"
#include "../tests/natsserver.h"
#include "../tests/repobuild.h"
#include "../tests/spawn.h"

#include <atkv/atkv.h>

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REV "3lbenchrev22a"

struct record {
	char path[64];
	struct atkv_buf cbor;
	char *json;
};

struct repo {
	char did[40];
	struct record *records;
	size_t n;
	struct atkv_buf car;
};

static struct repo *repos;
static long n_repos;
static int port;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* v as 13 base32-sortable characters: a TID when v < 2^63. */
static void tid(uint64_t v, char out[14])
{
	static const char a[] = "234567abcdefghijklmnopqrstuvwxyz";
	for (int i = 12; i >= 0; i--, v >>= 5)
		out[i] = a[v & 31];
	out[13] = '\0';
}

static long did_index(const char *did)
{
	static const char a[] = "234567abcdefghijklmnopqrstuvwxyz";
	if (strlen(did) != 32 || strncmp(did, "did:plc:benchaaaaaa", 19))
		return -1;
	long v = 0;
	for (const char *p = did + 19; *p; p++) {
		const char *at = strchr(a, *p);
		if (!at)
			return -1;
		v = v * 32 + (at - a);
	}
	return v < n_repos ? v : -1;
}

/* The compact JSON of v, which it takes. */
static char *dump(json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	return s;
}

static int cmp_record(const void *a, const void *b)
{
	return strcmp(((const struct record *)a)->path, ((const struct record *)b)->path);
}

/* Record i of repository r: a like, a post or a follow, as DAG-CBOR and as the JSON expected. */
static void make_record(long r, long i, struct record *rec)
{
	char rkey[14], when[32], other[40], text[96];
	tid(((uint64_t)1700000000000000 + (uint64_t)i * 1000) << 10 | (uint64_t)(r & 1023), rkey);
	snprintf(when, sizeof(when), "2026-11-27T%02ld:%02ld:%02ld.%03ldZ", i / 3600 % 24, i / 60 % 60, i % 60, r % 1000);
	snprintf(other, sizeof(other), "%s", repos[(r * 7919 + i) % n_repos].did);
	struct atkv_buf *b = &rec->cbor;
	cb_head(b, 5, 3);
	switch (i % 5) {
	case 0: case 1: case 2: {
		char uri[128];
		const char *cid = "bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
		snprintf(rec->path, sizeof(rec->path), "app.bsky.feed.like/%s", rkey);
		snprintf(uri, sizeof(uri), "at://%s/app.bsky.feed.post/%s", other, rkey);
		cb_text(b, "$type");
		cb_text(b, "app.bsky.feed.like");
		cb_text(b, "subject");
		cb_head(b, 5, 2);
		cb_text(b, "cid");
		cb_text(b, cid);
		cb_text(b, "uri");
		cb_text(b, uri);
		rec->json = dump(json_pack("{s:s, s:{s:s, s:s}, s:s}", "$type", "app.bsky.feed.like", "subject", "cid",
		                                 cid, "uri", uri, "createdAt", when));
		break;
	}
	case 3:
		snprintf(rec->path, sizeof(rec->path), "app.bsky.feed.post/%s", rkey);
		snprintf(text, sizeof(text), "post %ld of account %ld, written for the backfill benchmark", i, r);
		cb_text(b, "text");
		cb_text(b, text);
		cb_text(b, "$type");
		cb_text(b, "app.bsky.feed.post");
		rec->json = dump(json_pack("{s:s, s:s, s:s}", "text", text, "$type", "app.bsky.feed.post", "createdAt",
		                                 when));
		break;
	default:
		snprintf(rec->path, sizeof(rec->path), "app.bsky.graph.follow/%s", rkey);
		cb_text(b, "$type");
		cb_text(b, "app.bsky.graph.follow");
		cb_text(b, "subject");
		cb_text(b, other);
		rec->json = dump(json_pack("{s:s, s:s, s:s}", "$type", "app.bsky.graph.follow", "subject", other,
		                                 "createdAt", when));
	}
	cb_text(b, "createdAt");
	cb_text(b, when);
}

/* Repositories of `per` records each (the first ones one more, to make `total`). */
static size_t make_repos(long total, struct atkv_sha256 *h)
{
	size_t bytes = 0;
	repos = calloc((size_t)n_repos, sizeof(*repos));
	for (long r = 0; r < n_repos; r++) {
		char t[14];
		tid((uint64_t)r, t);
		snprintf(repos[r].did, sizeof(repos[r].did), "did:plc:benchaaaaaa%s", t);
	}
	for (long r = 0; r < n_repos; r++) {
		struct repo *rp = &repos[r];
		rp->n = (size_t)(total / n_repos + (r < total % n_repos));
		rp->records = calloc(rp->n ? rp->n : 1, sizeof(*rp->records));
		for (size_t i = 0; i < rp->n; i++)
			make_record(r, (long)i, &rp->records[i]);
		qsort(rp->records, rp->n, sizeof(*rp->records), cmp_record);
		const char **paths = malloc((rp->n ? rp->n : 1) * sizeof(*paths));
		struct atkv_buf *cbor = malloc((rp->n ? rp->n : 1) * sizeof(*cbor));
		for (size_t i = 0; i < rp->n; i++) {
			paths[i] = rp->records[i].path;
			cbor[i] = rp->records[i].cbor;
		}
		rb_repo_car(h, rp->did, REV, paths, cbor, rp->n, &rp->car);
		bytes += rp->car.len;
		free(paths);
		free(cbor);
	}
	return bytes;
}

/* The PLC directory, listRepos and getRepo; read-only, so any number of threads may serve. */
static bool serve(int fd, const char *path, void *arg)
{
	(void)arg;
	const char *list = "/xrpc/com.atproto.sync.listRepos", *get = "/xrpc/com.atproto.sync.getRepo?did=";
	if (!strncmp(path, "/did:plc:", 9)) {
		char doc[512];
		int n = snprintf(doc, sizeof(doc),
		                 "{\"id\":\"%s\",\"service\":[{\"id\":\"#atproto_pds\",\"type\":\"AtprotoPersonalDataServer\","
		                 "\"serviceEndpoint\":\"http://127.0.0.1:%d\"}]}",
		                 path + 1, port);
		return httpserver_reply(fd, did_index(path + 1) >= 0 ? 200 : 404, "", doc, (size_t)n);
	}
	if (!strncmp(path, list, strlen(list))) {
		const char *c = strstr(path, "cursor="), *l = strstr(path, "limit=");
		long from = c ? atol(c + 7) : 0, limit = l ? atol(l + 6) : 500;
		struct atkv_buf page = ATKV_BUF_INIT;
		atkv_buf_puts(&page, "{\"repos\":[");
		long r = from;
		for (; r < n_repos && r < from + limit; r++) {
			char one[160];
			int n = snprintf(one, sizeof(one), "%s{\"did\":\"%s\",\"head\":\"bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454\","
			                 "\"rev\":\"" REV "\",\"active\":true}", r > from ? "," : "", repos[r].did);
			atkv_buf_append(&page, one, (size_t)n);
		}
		char tail[64];
		int n = r < n_repos ? snprintf(tail, sizeof(tail), "],\"cursor\":\"%ld\"}", r) : snprintf(tail, sizeof(tail), "]}");
		atkv_buf_append(&page, tail, (size_t)n);
		bool ok = httpserver_reply(fd, 200, "Content-Type: application/json\r\n", page.data, page.len);
		atkv_buf_free(&page);
		return ok;
	}
	if (!strncmp(path, get, strlen(get))) {
		long r = did_index(path + strlen(get));
		if (r < 0)
			return httpserver_reply(fd, 400, "", "{\"error\":\"RepoNotFound\"}", 24);
		return httpserver_reply(fd, 200, "Content-Type: application/vnd.ipld.car\r\n", repos[r].car.data, repos[r].car.len);
	}
	return httpserver_reply(fd, 404, "", "", 0);
}

/* The ceiling: every record put unconditionally with nats.c async publishes, as the builder's
 * writes are, with the same headers. Returns seconds, or -1. */
static double raw_puts(natsConnection *nc, int max_pending)
{
	jsCtx *js = NULL;
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = max_pending;
	if (natsConnection_JetStream(&js, nc, &jo) != NATS_OK)
		return -1;
	double t0 = now_s();
	for (long r = 0; r < n_repos; r++)
		for (size_t i = 0; i < repos[r].n; i++) {
			const struct record *rec = &repos[r].records[i];
			char key[ATKV_KEY_MAX + 1];
			const char *slash = strchr(rec->path, '/');
			atkv_key_build(key, sizeof(key), repos[r].did, strlen(repos[r].did), rec->path, (size_t)(slash - rec->path),
			               slash + 1, strlen(slash + 1));
			struct atkv_record_meta meta = {.seq = -1, .cid = "bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454",
			                                .cid_n = 59, .rev = REV, .rev_n = 13, .time = "2026-11-27T00:00:00.000Z",
			                                .time_n = 24};
			natsMsg *m = NULL;
			atkv_record_msg(&m, ATKV_BUCKET_RECORD, key, rec->json, strlen(rec->json), false, &meta, NULL);
			if (js_PublishMsgAsync(js, &m, NULL) != NATS_OK)
				fprintf(stderr, "bench-backfill: a raw put failed\n");
			natsMsg_Destroy(m);
		}
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = 120000;
	natsStatus s = js_PublishAsyncComplete(js, &po);
	double took = now_s() - t0;
	jsCtx_Destroy(js);
	return s == NATS_OK ? took : -1;
}

/* Every record's key holds its JSON, and the stream nothing else. Returns the wrong ones. */
static long check_store(jsCtx *js, long total)
{
	jsStreamInfo *si = NULL;
	long wrong = 0;
	if (js_GetStreamInfo(&si, js, "KV_record", NULL, NULL) != NATS_OK)
		return total;
	if ((long)si->State.Msgs != total) {
		fprintf(stderr, "bench-backfill: KV_record holds %llu messages, not %ld\n", (unsigned long long)si->State.Msgs,
		        total);
		wrong++;
	}
	jsStreamInfo_Destroy(si);
	for (long r = 0; r < n_repos; r++)
		for (size_t i = 0; i < repos[r].n; i++) {
			const struct record *rec = &repos[r].records[i];
			char key[ATKV_KEY_MAX + 1];
			const char *slash = strchr(rec->path, '/');
			atkv_key_build(key, sizeof(key), repos[r].did, strlen(repos[r].did), rec->path, (size_t)(slash - rec->path),
			               slash + 1, strlen(slash + 1));
			natsMsg *m = kv_last_msg(js, "record", key);
			json_t *got = m ? json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, NULL) : NULL;
			json_t *want = json_loads(rec->json, 0, NULL);
			if (!json_equal(got, want) && wrong++ < 3)
				fprintf(stderr, "bench-backfill: %s %s differs\n", repos[r].did, rec->path);
			json_decref(got);
			json_decref(want);
			natsMsg_Destroy(m);
		}
	return wrong;
}

/* One atkv-backfill run to its end; prints its figures. Returns seconds, or -1. */
static double backfill(const char *bin, const char *url, const char *log, const char *concurrency, bool force,
                       const char *what, long total)
{
	char source[64];
	snprintf(source, sizeof(source), "http://127.0.0.1:%d", port);
	char *argv[] = {(char *)bin, "--config", "/dev/null", "--nats", (char *)url, "--source", source, "--plc", source,
	                "--concurrency", (char *)concurrency, force ? "--force" : NULL, NULL};
	double t0 = now_s();
	pid_t p = spawn(argv, NULL, log);
	long rss = 0;
	double cpu = 0;
	int status = -1;
	while (spawn_running(p, &status) && now_s() - t0 < 1200) {
		long r = spawn_peak_rss_kb(p);
		double c = spawn_cpu_seconds(p);
		rss = r > rss ? r : rss;
		cpu = c > cpu ? c : cpu;
		usleep(20000);
	}
	double took = now_s() - t0;
	if (spawn_running(p, &status)) {
		spawn_stop(p, SIGKILL, 5000);
		fprintf(stderr, "bench-backfill: %s did not finish (log: %s)\n", what, log);
		return -1;
	}
	if (status != 0) {
		fprintf(stderr, "bench-backfill: %s failed (exit %d; log: %s)\n", what, status, log);
		return -1;
	}
	printf("atkv-backfill (%s, concurrency %s): records=%ld seconds=%.2f records_per_s=%.0f cpu_s=%.2f "
	       "peak_rss_mb=%.1f\n",
	       what, concurrency, total, took, (double)total / took, cpu, (double)rss / 1024);
	return took;
}

int main(int argc, char **argv)
{
	long total = 100000;
	n_repos = 500;
	const char *concurrency = "4";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--smoke")) {
			total = 5000;
			n_repos = 50;
		} else if (!strcmp(argv[i], "--records") && i + 1 < argc) {
			total = atol(argv[++i]);
		} else if (!strcmp(argv[i], "--repos") && i + 1 < argc) {
			n_repos = atol(argv[++i]);
		} else if (!strcmp(argv[i], "--concurrency") && i + 1 < argc) {
			concurrency = argv[++i];
		} else {
			fprintf(stderr, "usage: bench-backfill [--records N] [--repos N] [--concurrency N] [--smoke]\n");
			return 2;
		}
	}
	if (n_repos < 1 || total < n_repos) {
		fprintf(stderr, "bench-backfill: --records must be at least --repos, which must be positive\n");
		return 2;
	}
	/* The real binary, not libtool's wrapper script: its RSS and CPU are atkv-backfill's own. */
	const char *bin = access("src/.libs/atkv-backfill", X_OK) ? "src/atkv-backfill" : "src/.libs/atkv-backfill";
	if (access(bin, X_OK)) {
		fprintf(stderr, "bench-backfill: run from the build directory after make\n");
		return 1;
	}
	setenv("LD_LIBRARY_PATH", "src/.libs", 1);
	struct atkv_sha256 *h = atkv_sha256_new();
	double t0 = now_s();
	size_t bytes = make_repos(total, h);
	printf("pds: %ld records in %ld repositories (%.1f MB of CAR), built in %.1f s\n", total, n_repos,
	       (double)bytes / 1e6, now_s() - t0);
	struct httpserver *http = httpserver_start_threads(serve, NULL, &port, 16);
	char tmp[] = "/tmp/atkv-bench-backfill.XXXXXX", log[128];
	if (!http || !mkdtemp(tmp))
		return 1;
	snprintf(log, sizeof(log), "%s/backfill.log", tmp);
	int rc = 1;

	struct nats_server raw = {0};
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	if (nats_server_start(&raw, 0) || natsConnection_ConnectTo(&nc, raw.url) != NATS_OK ||
	    natsConnection_JetStream(&js, nc, NULL) != NATS_OK || kv_bucket_create(js, "record"))
		return 1;
	double srv0 = spawn_cpu_seconds(raw.pid);
	double base = raw_puts(nc, 4096 * atoi(concurrency));
	printf("baseline (plain async puts of the same records): records=%ld seconds=%.2f records_per_s=%.0f "
	       "nats_server_cpu_s=%.2f\n",
	       total, base, (double)total / base, spawn_cpu_seconds(raw.pid) - srv0);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_server_destroy(&raw);
	js = NULL;
	nc = NULL;

	struct nats_server server = {0};
	if (base <= 0 || nats_server_start(&server, 0) || natsConnection_ConnectTo(&nc, server.url) != NATS_OK ||
	    natsConnection_JetStream(&js, nc, NULL) != NATS_OK)
		goto out;
	srv0 = spawn_cpu_seconds(server.pid);
	double took = backfill(bin, server.url, log, concurrency, false, "empty store", total);
	if (took < 0)
		goto out;
	printf("nats_server_cpu_s=%.2f during the backfill\n", spawn_cpu_seconds(server.pid) - srv0);
	printf("ratio: backfill / baseline records per second = %.2f\n", base / took);
	long wrong = check_store(js, total);
	printf("store: %ld of %ld records wrong or missing\n", wrong, total);
	if (wrong)
		goto out;
	if (backfill(bin, server.url, log, concurrency, false, "again, all current", total) < 0 ||
	    backfill(bin, server.url, log, concurrency, true, "--force, every key taken", total) < 0)
		goto out;
	rc = check_store(js, total) ? 1 : 0;
out:
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_server_destroy(&server);
	httpserver_stop(http);
	atkv_sha256_free(h);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (getenv("ATKV_BENCH_KEEP"))
		fprintf(stderr, "bench-backfill: kept %s\n", tmp);
	else if (system(cmd) != 0)
		fprintf(stderr, "bench-backfill: could not remove %s\n", tmp);
	return rc;
}
