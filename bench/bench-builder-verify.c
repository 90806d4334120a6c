/* bench-builder-verify.c — atkv-builder's throughput with verification off and on, over the
 * same firehose: a feed of signed commits made here (tests/signedfeed.c: one like per commit,
 * accounts with keys of their own), served by atkv-firehose-replay, the accounts' DID documents
 * by a PLC directory of the benchmark. Each run has a nats-server of its own and is timed from
 * the builder's start to its last record stored (so it includes fetching every signing key
 * once). Run from the build directory:
 *   bench/bench-builder-verify [--commits N] [--accounts N] [--smoke]
 * Prints commits/s, CPU and peak RSS of each run, and the ratio of on to off. */
#define _DEFAULT_SOURCE
#include "../tests/httpserver.h"
#include "../tests/natsserver.h"
#include "../tests/signedfeed.h"
#include "../tests/spawn.h"

#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct atkv_buf *docs;
static struct signedfeed *feed;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool serve_plc(int fd, const char *path, void *arg)
{
	(void)arg;
	long i = sf_find(feed, path + 1);
	if (i < 0)
		return httpserver_reply(fd, 404, "", "Not Found", 9);
	return httpserver_reply(fd, 200, "Content-Type: application/json\r\n", docs[i].data, docs[i].len);
}

static uint64_t stored(jsCtx *js)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	uint64_t n = 0;
	if (js_GetStreamInfo(&si, js, "KV_record", NULL, &jerr) == NATS_OK) {
		n = si->State.LastSeq;
		jsStreamInfo_Destroy(si);
	}
	return n;
}

/* One builder run over the capture; prints its figures and returns its seconds, or -1. */
static double run(const char *tmp, const char *capture, const char *plc, uint64_t commits, bool verify)
{
	const char *name = verify ? "on" : "off";
	char dir[200], log[300], relay[64];
	snprintf(dir, sizeof(dir), "%s/%s", tmp, name);
	mkdir(dir, 0700);
	struct nats_server server = {0};
	snprintf(server.dir, sizeof(server.dir), "%s/nats", dir);
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	int port = 0;
	pid_t r = spawn_replay(dir, capture, NULL, &port);
	if (r < 0 || nats_server_start(&server, 0) || natsConnection_ConnectTo(&nc, server.url) != NATS_OK ||
	    natsConnection_JetStream(&js, nc, NULL) != NATS_OK) {
		fprintf(stderr, "bench-builder-verify: cannot start the replay or nats-server\n");
		return -1;
	}
	snprintf(relay, sizeof(relay), "ws://127.0.0.1:%d", port);
	snprintf(log, sizeof(log), "%s/builder.log", dir);
	char *argv[] = {"src/atkv-builder", "--nats", server.url, "--relay", relay, "--plc", (char *)plc, "--config",
	                "/dev/null", verify ? "--verify=true" : "--verify=false", NULL};
	double t0 = now_s(), took = -1;
	pid_t b = spawn(argv, NULL, log);
	long rss = 0;
	double cpu = 0;
	while (spawn_running(b, NULL) && now_s() - t0 < 600) {
		long k = spawn_peak_rss_kb(b);
		double c = spawn_cpu_seconds(b);
		rss = k > rss ? k : rss;
		cpu = c > cpu ? c : cpu;
		if (stored(js) >= commits) {
			took = now_s() - t0;
			break;
		}
		sleep_ms(5);
	}
	spawn_stop(b, SIGTERM, 20000);
	spawn_stop(r, SIGTERM, 5000);
	if (took > 0)
		printf("verify %s: commits=%llu seconds=%.3f commits_per_s=%.0f cpu_s=%.2f peak_rss_mb=%.1f\n", name,
		       (unsigned long long)commits, took, (double)commits / took, cpu, (double)rss / 1024);
	else
		fprintf(stderr, "bench-builder-verify: verify %s stopped at %llu of %llu records (log %s)\n", name,
		        (unsigned long long)stored(js), (unsigned long long)commits, log);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_server_destroy(&server);
	return took;
}

int main(int argc, char **argv)
{
	long commits = 30000, accounts = 1000;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--smoke")) {
			commits = 2000;
			accounts = 100;
		} else if (!strcmp(argv[i], "--commits") && i + 1 < argc) {
			commits = atol(argv[++i]);
		} else if (!strcmp(argv[i], "--accounts") && i + 1 < argc) {
			accounts = atol(argv[++i]);
		} else {
			fprintf(stderr, "usage: bench-builder-verify [--commits N] [--accounts N] [--smoke]\n");
			return 2;
		}
	}
	if (access("src/atkv-builder", X_OK) || commits < 1 || accounts < 1) {
		fprintf(stderr, "bench-builder-verify: run from the build directory after make\n");
		return 1;
	}
	char tmp[] = "/tmp/atkv-bench-builder-verify.XXXXXX";
	if (!mkdtemp(tmp))
		return 1;
	double g0 = now_s();
	feed = sf_new((size_t)accounts, 0);
	struct atkv_buf *frames = calloc((size_t)commits, sizeof(*frames));
	size_t bytes = 0;
	for (long i = 0; i < commits; i++) {
		sf_commit(feed, &frames[i]);
		bytes += frames[i].len;
	}
	char capture[300], plc[64];
	snprintf(capture, sizeof(capture), "%s/feed.bin", tmp);
	int plc_port = 0;
	/* A connection per thread: more than the builder's verifying threads, each of which keeps
	 * one open (else a fetch waits for a connection to end). */
	struct httpserver *srv = httpserver_start_threads(serve_plc, NULL, &plc_port, HTTPSERVER_MAX_THREADS);
	snprintf(plc, sizeof(plc), "http://127.0.0.1:%d", plc_port);
	docs = calloc((size_t)accounts, sizeof(*docs));
	for (long i = 0; i < accounts; i++)
		sf_did_doc(feed, (size_t)i, plc, &docs[i]);
	if (!srv || sf_write_capture(capture, frames, (size_t)commits)) {
		fprintf(stderr, "bench-builder-verify: cannot serve the PLC or write %s\n", capture);
		return 1;
	}
	printf("feed: %ld signed commits (one like each) of %ld accounts, %.1f MB, made in %.1f s\n", commits, accounts,
	       (double)bytes / 1e6, now_s() - g0);
	double off = run(tmp, capture, plc, (uint64_t)commits, false);
	double on = run(tmp, capture, plc, (uint64_t)commits, true);
	if (off > 0 && on > 0)
		printf("ratio: verify on / off commits per second = %.2f\n", off / on);
	httpserver_stop(srv);
	for (long i = 0; i < commits; i++)
		atkv_buf_free(&frames[i]);
	for (long i = 0; i < accounts; i++)
		atkv_buf_free(&docs[i]);
	free(frames);
	free(docs);
	sf_free(feed);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "bench-builder-verify: could not remove %s\n", tmp);
	return off > 0 && on > 0 ? 0 : 1;
}
