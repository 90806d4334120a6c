/* bench-builder.c — throughput of atkv-builder against a plain async-publish baseline, on one
 * nats-server started here. Both publish the same writes (the capture's, LOOPS times: the
 * replay server rewrites seq per loop); each run is timed from its first write stored to its
 * last, read from the streams' last sequence numbers. Run from the build directory:
 *   bench/bench-builder [--loops N] [--smoke]
 * Prints the baseline's and the builder's writes/s, the builder's events/s and peak RSS, and
 * the ratio of builder to baseline. */
#define _DEFAULT_SOURCE
#include "../tests/natsserver.h"
#include "../tests/spawn.h"
#include "writes.h"

#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t last_seq(jsCtx *js, const char *stream)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	uint64_t n = 0;
	if (js_GetStreamInfo(&si, js, stream, NULL, &jerr) == NATS_OK) {
		n = si->State.LastSeq;
		jsStreamInfo_Destroy(si);
	}
	return n;
}

/* Waits until the buckets hold total writes; returns the seconds from the first to the last. */
static double time_writes(jsCtx *js, uint64_t total, pid_t watch, double limit_s)
{
	double t0 = 0, start = now_s();
	for (;;) {
		uint64_t got = last_seq(js, "KV_record") + last_seq(js, "KV_account");
		double t = now_s();
		if (got > 0 && t0 == 0)
			t0 = t;
		if (got >= total)
			return t - t0;
		if (t - start > limit_s || !spawn_running(watch, NULL)) {
			fprintf(stderr, "bench-builder: stopped at %llu of %llu writes\n", (unsigned long long)got,
			        (unsigned long long)total);
			return -1;
		}
		sleep_ms(2);
	}
}

int main(int argc, char **argv)
{
	long loops = 300;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--smoke"))
			loops = 10;
		else if (!strcmp(argv[i], "--loops") && i + 1 < argc)
			loops = atol(argv[++i]);
		else {
			fprintf(stderr, "usage: bench-builder [--loops N] [--smoke]\n");
			return 2;
		}
	}
	const char *capture = getenv("ATKV_CAPTURE") ? getenv("ATKV_CAPTURE") : "tests/data/firehose-capture.bin";
	struct bench_write *w;
	size_t n, events;
	if (access("src/atkv-builder", X_OK) || bench_writes_load(capture, &w, &n, &events)) {
		fprintf(stderr, "bench-builder: run from the build directory after make (capture: %s)\n", capture);
		return 1;
	}
	uint64_t total = (uint64_t)n * (uint64_t)loops;
	char tmp[] = "/tmp/atkv-bench-builder.XXXXXX";
	struct nats_server server = {0};
	if (!mkdtemp(tmp) || nats_server_start(&server, 0))
		return 1;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	natsConnection_ConnectTo(&nc, server.url);
	natsConnection_JetStream(&js, nc, NULL);
	char log[128], loops_s[24], portfile[128];
	snprintf(loops_s, sizeof(loops_s), "%ld", loops);
	printf("capture: %s, %zu events and %zu writes per loop, %ld loops: %llu writes\n", capture, events, n,
	       loops, (unsigned long long)total);

	/* The baseline: create the buckets the builder would, then publish. */
	kvConfig kc;
	kvStore *kv;
	const char *buckets[] = {"record", "account"};
	for (int i = 0; i < 2; i++) {
		kvConfig_Init(&kc);
		kc.Bucket = buckets[i];
		kc.History = 1;
		js_CreateKeyValue(&kv, js, &kc);
		kvStore_Destroy(kv);
	}
	snprintf(log, sizeof(log), "%s/publish.log", tmp);
	char *pub[] = {"bench/bench-publish", server.url, (char *)capture, loops_s, "20000", NULL};
	double srv0 = spawn_cpu_seconds(server.pid);
	pid_t p = spawn(pub, NULL, log);
	double base = time_writes(js, total, p, 300);
	double pub_cpu = spawn_cpu_seconds(p), base_srv_cpu = spawn_cpu_seconds(server.pid) - srv0;
	spawn_stop(p, SIGTERM, 60000);
	js_DeleteKeyValue(js, "record");
	js_DeleteKeyValue(js, "account");
	if (base > 0)
		printf("baseline (plain async publish): writes=%llu seconds=%.3f writes_per_s=%.0f "
		       "cpu_s=%.2f nats_server_cpu_s=%.2f\n",
		       (unsigned long long)total, base, (double)total / base, pub_cpu, base_srv_cpu);

	/* The builder, fed by the replay server. */
	snprintf(portfile, sizeof(portfile), "%s/port", tmp);
	snprintf(log, sizeof(log), "%s/replay.log", tmp);
	char *rep[] = {"src/atkv-firehose-replay", (char *)capture, "--listen", "127.0.0.1:0", "--port-file", portfile,
	               "--loop", loops_s, NULL};
	pid_t r = spawn(rep, NULL, log);
	int port = 0;
	for (int t = 0; t < 5000 && !port; t += 20) {
		FILE *f = fopen(portfile, "r");
		if (f) {
			if (fscanf(f, "%d", &port) != 1)
				port = 0;
			fclose(f);
		}
		sleep_ms(20);
	}
	char relay[64];
	snprintf(relay, sizeof(relay), "ws://127.0.0.1:%d", port);
	snprintf(log, sizeof(log), "%s/builder.log", tmp);
	char *bld[] = {"src/atkv-builder", "--nats", server.url, "--relay", relay, "--config", "/dev/null", "--verify=false", NULL};
	pid_t b = spawn(bld, NULL, log);
	double cpu0 = spawn_cpu_seconds(b), rcpu0 = spawn_cpu_seconds(r);
	srv0 = spawn_cpu_seconds(server.pid);
	double took = time_writes(js, total, b, 300);
	long rss = spawn_peak_rss_kb(b);
	double cpu = spawn_cpu_seconds(b) - cpu0, rcpu = spawn_cpu_seconds(r) - rcpu0, srv_cpu = spawn_cpu_seconds(server.pid) - srv0;
	spawn_stop(b, SIGTERM, 20000);
	spawn_stop(r, SIGTERM, 5000);
	if (took > 0) {
		printf("builder: events=%llu writes=%llu seconds=%.3f events_per_s=%.0f writes_per_s=%.0f "
		       "cpu_s=%.2f peak_rss_mb=%.1f replay_cpu_s=%.2f nats_server_cpu_s=%.2f\n",
		       (unsigned long long)events * (unsigned long long)loops, (unsigned long long)total, took,
		       (double)events * (double)loops / took, (double)total / took, cpu, (double)rss / 1024, rcpu, srv_cpu);
		if (base > 0)
			printf("ratio: builder / baseline writes per second = %.2f\n", base / took);
	}
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_server_destroy(&server);
	bench_writes_free(w, n);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "bench-builder: could not remove %s\n", tmp);
	return took > 0 && base > 0 ? 0 : 1;
}
