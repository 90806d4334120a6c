/* bench-backfill.c — how fast atkv-backfill fills an empty record store from a PDS, beside the
 * raw rate of plain asynchronous JetStream puts of the same keys and values (the ceiling), on
 * a nats-server started here. The PDS and PLC directory are threads of this program serving
 * repositories built here (tests/fakepds.h), so the network costs nothing and the figures are
 * atkv's. Run from the build directory:
 *   bench/bench-backfill [--records N] [--repos N] [--concurrency N] [--smoke]
 * Prints records/s and CPU of both and their ratio, the backfill's peak RSS, then the time of a
 * second run (everything already current) and of a --force run (every key taken: each put
 * settled one by one). Every value stored is checked against the record it came from. */
#define _DEFAULT_SOURCE
#include "../tests/fakepds.h"
#include "../tests/natsserver.h"
#include "../tests/spawn.h"

#include <atkv/atkv.h>

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct fakepds *pds;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
	for (long r = 0; r < pds->n_repos; r++)
		for (size_t i = 0; i < pds->repos[r].n; i++) {
			const struct fakepds_record *rec = &pds->repos[r].records[i];
			char key[ATKV_KEY_MAX + 1];
			fakepds_key(&pds->repos[r], rec, key, sizeof(key));
			struct atkv_record_meta meta = {.seq = -1, .cid = "bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454",
			                                .cid_n = 59, .rev = pds->repos[r].rev, .rev_n = 13,
			                                .time = "2026-11-27T00:00:00.000Z", .time_n = 24};
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
	return wrong + fakepds_wrong_in_store(pds, js);
}

/* One atkv-backfill run to its end; prints its figures. Returns seconds, or -1. */
static double backfill(const char *bin, const char *url, const char *log, const char *concurrency, bool force,
                       const char *what, long total)
{
	char *argv[] = {(char *)bin, "--config", "/dev/null", "--nats", (char *)url, "--source", pds->url, "--plc", pds->url,
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
	/* The benchmark's PDS serves repositories it cannot sign. */
	setenv("ATKV_VERIFY", "false", 1);
	long total = 100000, n_repos = 500;
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
	double t0 = now_s();
	pds = fakepds_start(n_repos, total, 16);
	char tmp[] = "/tmp/atkv-bench-backfill.XXXXXX", log[128];
	if (!pds || !mkdtemp(tmp))
		return 1;
	printf("pds: %ld records in %ld repositories (%.1f MB of CAR), built in %.1f s\n", total, n_repos,
	       (double)pds->car_bytes / 1e6, now_s() - t0);
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
	fakepds_stop(pds);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (getenv("ATKV_BENCH_KEEP"))
		fprintf(stderr, "bench-backfill: kept %s\n", tmp);
	else if (system(cmd) != 0)
		fprintf(stderr, "bench-backfill: could not remove %s\n", tmp);
	return rc;
}
