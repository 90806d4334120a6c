/* test-builder.c — atkv-builder end to end on real parts: a nats-server and the replay server
 * (atkv-firehose-replay) serving the committed capture of the reference PDS. The store must end
 * equal to what the reference libraries decoded (tests/data/firehose-expected.jsonl): every key,
 * value and header of bucket record, deletes as KV deletes, bucket account, the cursor at the
 * last seq; and so after a SIGTERM and restart, a kill -9 mid-stream, garbage frames, dropped
 * connections and a stalled NATS. systemd's messages are read from a NOTIFY_SOCKET. */
#define _DEFAULT_SOURCE
#include "cbuild.h"
#include "expected.h"
#include "natsserver.h"
#include "notify.h"
#include "spawn.h"
#include "scrape.h"
#include "tap.h"

#include <jansson.h>
#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUILDER "src/atkv-builder"

static struct nats_server server;
static char tmp[64];
static natsConnection *nc;
static jsCtx *js;

static int64_t stored_cursor(void) { return expected_stored_cursor(js); }
static int compare_records(const struct expected *e) { return expected_compare_records(js, e); }
static int compare_accounts(const struct expected *e) { return expected_compare_accounts(js, e); }

static void show_log_tail(const char *name, int lines);

/* Waits for the stored cursor; on a timeout shows the end of the logs, for the CI record. */
static bool wait_cursor(int64_t want, int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 100) {
		if (stored_cursor() == want)
			return true;
		sleep_ms(100);
	}
	tap_note("cursor %lld after %d ms, waiting for %lld", (long long)stored_cursor(), timeout_ms, (long long)want);
	show_log_tail("builder.log", 25);
	show_log_tail("replay.log", 8);
	return false;
}

static uint64_t stream_msgs(const char *stream)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	uint64_t n = 0;
	if (js_GetStreamInfo(&si, js, stream, NULL, &jerr) == NATS_OK) {
		n = si->State.Msgs;
		jsStreamInfo_Destroy(si);
	}
	return n;
}

static void reset_store(void)
{
	js_DeleteKeyValue(js, "record");
	js_DeleteKeyValue(js, "account");
	js_DeleteKeyValue(js, "cursor");
}

/* ---- the processes ---- */

static pid_t replay_pid;
static int replay_port;

static const char *capture_path;

/* Starts the replay server with up to 8 more arguments (NULL-terminated). */
static bool start_replay_with(const char *const *extra)
{
	replay_pid = spawn_replay(tmp, capture_path, extra, &replay_port);
	return replay_pid > 0;
}

static bool start_replay(const char *extra1, const char *extra2)
{
	const char *extra[] = {extra1, extra2, NULL};
	return start_replay_with(extra);
}

static void stop_replay(void)
{
	spawn_stop(replay_pid, SIGTERM, 5000);
	replay_pid = 0;
}

static char notify_path[128];

/* The builder on relay (NULL: the replay server over ws://), with up to two more arguments. */
static pid_t start_builder_with(const char *relay_url, const char *extra, const char *extra2)
{
	static char relay[256], nats[64], env_notify[160];
	static char *env[] = {env_notify, "WATCHDOG_USEC=2000000", NULL};
	char log[128];
	if (relay_url)
		snprintf(relay, sizeof(relay), "%s", relay_url);
	else
		snprintf(relay, sizeof(relay), "ws://127.0.0.1:%d", replay_port);
	snprintf(nats, sizeof(nats), "%s", server.url);
	snprintf(env_notify, sizeof(env_notify), "NOTIFY_SOCKET=%s", notify_path);
	snprintf(log, sizeof(log), "%s/builder.log", tmp);
	/* The capture's accounts lived in a PLC directory that is gone: their keys cannot be had. */
	char *argv[] = {BUILDER, "--nats", nats, "--relay", relay, "--ack-timeout", "2000", "--verify=false",
	                "--config", "/dev/null", (char *)extra, (char *)extra2, NULL};
	return spawn(argv, env, log);
}

static pid_t start_builder(const char *extra) { return start_builder_with(NULL, extra, NULL); }

/* A CA of the test's own and a server certificate it signed for the name localhost only. */
static bool make_certs(void)
{
	char cmd[1600];
	snprintf(cmd, sizeof(cmd),
	         "(cd '%s' && printf 'subjectAltName=DNS:localhost\\n' > ext && "
	         "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem "
	         "-days 2 -subj /CN=atkv-test-ca && "
	         "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key -out srv.csr "
	         "-subj /CN=localhost && "
	         "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 "
	         "-extfile ext) >/dev/null 2>&1",
	         tmp);
	return system(cmd) == 0;
}

static void show_log_tail(const char *name, int lines) { tap_note_tail(tmp, name, lines); }

static int count_in_log(const char *needle) { return tap_count_in_file(tmp, "builder.log", needle); }

int main(void)
{
	struct expected e;
	expected_load(&e, tap_path("tests/data/firehose-expected.jsonl"));
	capture_path = tap_path("tests/data/firehose-capture.bin");
	static char capture_copy[4096];
	snprintf(capture_copy, sizeof(capture_copy), "%s", capture_path);
	capture_path = capture_copy;
	snprintf(tmp, sizeof(tmp), "/tmp/atkv-test-builder.XXXXXX");
	if (!mkdtemp(tmp) || nats_server_start(&server, 0)) {
		printf("Bail out! cannot set up nats-server\n");
		return 1;
	}
	natsConnection_ConnectTo(&nc, server.url);
	natsConnection_JetStream(&js, nc, NULL);

	if (notify_start(tmp, notify_path, sizeof(notify_path))) {
		printf("Bail out! cannot bind the notify socket\n");
		return 1;
	}
	tap_note("expecting %zu record keys, %zu accounts, last seq %lld", json_object_size(e.records),
	         json_object_size(e.accounts), (long long)e.last_seq);

	/* 1. The whole capture; systemd hears READY, STATUS and WATCHDOG. */
	bool listening = start_replay(NULL, NULL);
	tap_ok(listening, "replay server listening on port %d", replay_port);
	int mport = spawn_free_port();
	char metrics_flag[64];
	snprintf(metrics_flag, sizeof(metrics_flag), "--metrics=127.0.0.1:%d", mport);
	pid_t b = start_builder(metrics_flag);
	tap_ok(wait_cursor(e.last_seq, 30000), "the cursor reaches the last seq %lld", (long long)e.last_seq);
	static char page[65536];
	char want[64];
	snprintf(want, sizeof(want), "\natkv_builder_cursor %lld\n", (long long)e.last_seq);
	scrape_get(mport, "/metrics", page, sizeof(page));
	tap_ok(strstr(page, "200 OK") && strstr(page, want) && strstr(page, "atkv_builder_ops_total{action=\"create\"}") &&
	       strstr(page, "# TYPE atkv_builder_frames_total counter"),
	       "GET /metrics: Prometheus text with the cursor at %lld", (long long)e.last_seq);
	scrape_get(mport, "/other", page, sizeof(page));
	tap_ok(strstr(page, "404") != NULL, "other paths: 404");
	tap_eq(compare_records(&e), 0, "bucket record equals the reference decoding");
	tap_eq(compare_accounts(&e), 0, "bucket account holds the merged identity and account events");
	sleep_ms(2500);
	static char said[1 << 16];
	notify_take(said, sizeof(said));
	tap_ok(strstr(said, "READY=1") != NULL, "READY=1 sent");
	tap_ok(strstr(said, "STATUS=streaming") != NULL && strstr(said, "events/s"), "STATUS= lines with figures");
	tap_ok(strstr(said, "WATCHDOG=1") != NULL, "watchdog pinged while healthy");
	int st = spawn_stop(b, SIGTERM, 10000);
	tap_ok(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM: clean exit 0");
	notify_take(said, sizeof(said));
	tap_ok(strstr(said, "STOPPING=1") != NULL, "STOPPING=1 sent");
	tap_eq(stored_cursor(), e.last_seq, "the cursor is saved at shutdown");

	/* 2. A restart resumes at the cursor and writes nothing again. */
	uint64_t before = stream_msgs("KV_record");
	b = start_builder(NULL);
	sleep_ms(2000);
	tap_eq((long long)stream_msgs("KV_record"), (long long)before, "a restart at the cursor rewrites nothing");
	spawn_stop(b, SIGTERM, 10000);

	/* 3. kill -9 in the middle of a slow replay, then a restart: the store ends complete. */
	reset_store();
	stop_replay();
	start_replay("--rate", "60");
	b = start_builder(NULL);
	for (int t = 0; t < 20000 && stored_cursor() < 40; t += 50)
		sleep_ms(50);
	int64_t at_kill = stored_cursor();
	spawn_stop(b, SIGKILL, 5000);
	tap_ok(at_kill >= 40 && at_kill < e.last_seq, "killed with -9 at cursor %lld", (long long)at_kill);
	b = start_builder(NULL);
	tap_ok(wait_cursor(e.last_seq, 30000), "after the restart the cursor reaches the last seq");
	tap_eq(compare_records(&e), 0, "and bucket record equals the reference");
	tap_eq(compare_accounts(&e), 0, "and bucket account too");
	spawn_stop(b, SIGTERM, 10000);

	/* 4. Garbage frames and dropped connections: skipped, counted, the rest lands. */
	reset_store();
	stop_replay();
	start_replay("--garbage-every", "10");
	b = start_builder("--log-level=info");
	tap_ok(wait_cursor(e.last_seq, 30000), "with garbage every 10 frames the cursor reaches the end");
	tap_eq(compare_records(&e), 0, "and the store is exact");
	tap_ok(count_in_log("kind=malformed_frame") >= 10, "malformed frames logged with their kind (%d)",
	       count_in_log("kind=malformed_frame"));
	spawn_stop(b, SIGTERM, 10000);

	reset_store();
	stop_replay();
	start_replay("--close-after", "25");
	b = start_builder(NULL);
	tap_ok(wait_cursor(e.last_seq, 60000), "with the connection dropped every 25 frames the cursor reaches the end");
	tap_eq(compare_records(&e), 0, "and the store is exact");
	spawn_stop(b, SIGTERM, 10000);

	/* 4b. --loop 3: seqs keep increasing and every loop writes records of its own. */
	reset_store();
	stop_replay();
	start_replay("--loop", "3");
	b = start_builder(NULL);
	struct expected three = expected_looped(&e, 3);
	tap_ok(wait_cursor(3 * e.last_seq, 30000), "--loop 3: the cursor reaches 3 x the last seq (%lld)",
	       (long long)(3 * e.last_seq));
	tap_ok(json_object_size(three.records) > 2 * json_object_size(e.records),
	       "the looped store has %zu record keys (one loop: %zu)", json_object_size(three.records),
	       json_object_size(e.records));
	tap_eq(compare_records(&three), 0, "and equals three loops of the reference, TID record keys shifted per loop");
	tap_eq(compare_accounts(&three), 0, "bucket account holds the last loop's events");
	expected_free(&three);
	spawn_stop(b, SIGTERM, 10000);

	/* 5. NATS stalled longer than the ack timeout, then resumed. */
	reset_store();
	stop_replay();
	start_replay("--rate", "100");
	b = start_builder(NULL);
	for (int t = 0; t < 20000 && stored_cursor() < 20; t += 50)
		sleep_ms(50);
	nats_server_signal(&server, SIGSTOP);
	sleep_ms(5000);
	nats_server_signal(&server, SIGCONT);
	tap_ok(spawn_running(b, NULL), "the builder survives a 5 s stall of NATS (ack timeout 2 s)");
	tap_ok(wait_cursor(e.last_seq, 120000), "after the stall the cursor reaches the end");
	tap_eq(compare_records(&e), 0, "and the store is exact");

	spawn_stop(b, SIGTERM, 10000);

	/* 6. NATS stopped in the middle of the stream and started again: nothing is lost. */
	reset_store();
	stop_replay();
	start_replay("--rate", "100");
	b = start_builder(NULL);
	for (int t = 0; t < 20000 && stored_cursor() < 30; t += 50)
		sleep_ms(50);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_server_stop(&server);
	sleep_ms(2000);
	tap_ok(spawn_running(b, NULL), "the builder survives NATS going away");
	tap_ok(nats_server_start(&server, server.port) == 0, "NATS back on port %d", server.port);
	natsConnection_ConnectTo(&nc, server.url);
	natsConnection_JetStream(&js, nc, NULL);
	tap_ok(wait_cursor(e.last_seq, 120000), "after NATS returns the cursor reaches the end");
	tap_eq(compare_records(&e), 0, "and the store is exact");
	st = spawn_stop(b, SIGTERM, 10000);
	tap_ok(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "and it still stops cleanly");

	/* 7. wss:// with the test's own CA, every message split into WebSocket frames of 100 bytes. */
	reset_store();
	stop_replay();
	char cert[128], key[128], ca[128], url[128];
	snprintf(cert, sizeof(cert), "%s/srv.pem", tmp);
	snprintf(key, sizeof(key), "%s/srv.key", tmp);
	snprintf(ca, sizeof(ca), "%s/ca.pem", tmp);
	const char *tls_args[] = {"--tls-cert", cert, "--tls-key", key, "--fragment", "100", NULL};
	tap_ok(make_certs() && start_replay_with(tls_args), "a wss:// replay server with a CA made by the test");
	snprintf(url, sizeof(url), "wss://localhost:%d", replay_port);
	b = start_builder_with(url, "--relay-ca", ca);
	tap_ok(wait_cursor(e.last_seq, 30000), "over TLS in 100-byte WebSocket frames the cursor reaches the end");
	tap_eq(compare_records(&e), 0, "and the store is exact");
	tap_eq(compare_accounts(&e), 0, "and bucket account too");
	spawn_stop(b, SIGTERM, 10000);

	/* A certificate the system's CAs do not know, or for another name: refused, nothing written. */
	reset_store();
	b = start_builder_with(url, NULL, NULL);
	for (int t = 0; t < 10000 && !count_in_log("the TLS certificate of localhost does not verify"); t += 100)
		sleep_ms(100);
	tap_ok(count_in_log("the TLS certificate of localhost does not verify: unable to get local issuer") >= 1,
	       "a certificate from an unknown CA is refused, and the log says why");
	tap_eq((long long)stream_msgs("KV_record"), 0, "and nothing is written");
	spawn_stop(b, SIGTERM, 10000);
	snprintf(url, sizeof(url), "wss://127.0.0.1:%d", replay_port);
	b = start_builder_with(url, "--relay-ca", ca);
	for (int t = 0; t < 10000 && !count_in_log("the TLS certificate of 127.0.0.1 does not verify"); t += 100)
		sleep_ms(100);
	tap_ok(count_in_log("the TLS certificate of 127.0.0.1 does not verify: IP address mismatch") >= 1,
	       "a certificate for another name is refused");
	tap_eq((long long)stream_msgs("KV_record"), 0, "and nothing is written");
	spawn_stop(b, SIGTERM, 10000);
	stop_replay();

	/* 8. A relay that falls silent (its process stopped: no data, no pong) is dropped after
	 * --relay-timeout and reconnected; an idle one that answers pings is kept. */
	reset_store();
	start_replay("--rate", "50");
	b = start_builder_with(NULL, "--relay-timeout", "2000");
	for (int t = 0; t < 20000 && stored_cursor() < 20; t += 50)
		sleep_ms(50);
	int silent_before = count_in_log("nothing from the relay for 2000 ms, not even a pong");
	kill(replay_pid, SIGSTOP);
	for (int t = 0; t < 20000 && count_in_log("nothing from the relay for 2000 ms, not even a pong") == silent_before;
	     t += 100)
		sleep_ms(100);
	tap_ok(count_in_log("nothing from the relay for 2000 ms, not even a pong") > silent_before,
	       "a relay silent for --relay-timeout is dropped, and the log says why");
	kill(replay_pid, SIGCONT);
	tap_ok(wait_cursor(e.last_seq, 30000), "the builder reconnects and the cursor reaches the end");
	tap_eq(compare_records(&e), 0, "and the store is exact");
	int connects = count_in_log("connected to ws://");
	sleep_ms(5000);
	tap_ok(spawn_running(b, NULL) && count_in_log("connected to ws://") == connects,
	       "an idle relay that answers pings stays connected (5 s at --relay-timeout 2000)");
	spawn_stop(b, SIGTERM, 10000);
	stop_replay();

	/* A server that accepts the connection and never answers the upgrade. */
	int mute = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in ma = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t ma_len = sizeof(ma);
	bool mute_ok = mute >= 0 && bind(mute, (struct sockaddr *)&ma, sizeof(ma)) == 0 && listen(mute, 8) == 0 &&
	               getsockname(mute, (struct sockaddr *)&ma, &ma_len) == 0;
	snprintf(url, sizeof(url), "ws://127.0.0.1:%d", ntohs(ma.sin_port));
	int mute_before = count_in_log("no WebSocket connection within 1000 ms");
	b = start_builder_with(url, "--relay-timeout", "1000");
	for (int t = 0; t < 8000 && count_in_log("no WebSocket connection within 1000 ms") == mute_before; t += 100)
		sleep_ms(100);
	tap_ok(mute_ok && count_in_log("no WebSocket connection within 1000 ms") > mute_before,
	       "a server that never answers the upgrade is dropped after --relay-timeout");
	spawn_stop(b, SIGTERM, 10000);
	close(mute);

	/* 9. A relay that answers with an error frame: logged, and retried with backoff. */
	stop_replay();
	static char errcap[128];
	snprintf(errcap, sizeof(errcap), "%s/error.cap", tmp);
	struct atkv_buf f = ATKV_BUF_INIT, file = ATKV_BUF_INIT;
	cb_head(&f, 5, 1);
	cb_text(&f, "op");
	cb_int(&f, -1);
	cb_head(&f, 5, 2);
	cb_text(&f, "error");
	cb_text(&f, "FutureCursor");
	cb_text(&f, "message");
	cb_text(&f, "Cursor in the future.");
	uint8_t len[4] = {0, 0, (uint8_t)(f.len >> 8), (uint8_t)f.len};
	cb_raw(&file, "atkvcap1", 8);
	cb_raw(&file, len, 4);
	cb_raw(&file, f.data, f.len);
	FILE *out = fopen(errcap, "wb");
	bool written = out && fwrite(file.data, 1, file.len, out) == file.len;
	if (out)
		fclose(out);
	atkv_buf_free(&f);
	atkv_buf_free(&file);
	capture_path = errcap;
	tap_ok(written && start_replay(NULL, NULL), "a relay that sends only an error frame");
	reset_store(); /* no cursor: the replay server sends its capture from the start */
	int errors_before = count_in_log("relay error FutureCursor: Cursor in the future.");
	b = start_builder(NULL);
	/* Counted from the first error, not from the start: a slow start-up must not look like
	 * backoff. */
	int errors = 0;
	for (int t = 0; t < 20000 && (errors = count_in_log("relay error FutureCursor: Cursor in the future.") -
	                                       errors_before) < 1; t += 50)
		sleep_ms(50);
	int first = errors;
	sleep_ms(2500);
	errors = count_in_log("relay error FutureCursor: Cursor in the future.") - errors_before;
	tap_ok(first >= 1 && errors >= 2 && spawn_running(b, NULL),
	       "the error is logged and the builder retries (%d times in the 2.5 s after the first)", errors - 1);
	tap_ok(errors <= 5, "with backoff, not in a loop");
	tap_ok(count_in_log("run once with --cursor 0") >= 1, "and the log says what to do about it");
	spawn_stop(b, SIGTERM, 10000);

	/* The same over wss://, the relay hanging up right after the error frame: the frame
	 * decrypted with the end of the TLS stream still counts. */
	stop_replay();
	const char *tls_err_args[] = {"--tls-cert", cert, "--tls-key", key, "--close-after", "1", NULL};
	start_replay_with(tls_err_args);
	snprintf(url, sizeof(url), "wss://localhost:%d", replay_port);
	errors_before = count_in_log("relay error FutureCursor: Cursor in the future.");
	b = start_builder_with(url, "--relay-ca", ca);
	for (int t = 0; t < 5000 && count_in_log("relay error FutureCursor: Cursor in the future.") == errors_before;
	     t += 100)
		sleep_ms(100);
	tap_ok(count_in_log("relay error FutureCursor: Cursor in the future.") > errors_before,
	       "over wss:// an error frame followed by the end of the connection is logged");
	spawn_stop(b, SIGTERM, 10000);

	/* 10. A bad configuration exits 2. */
	char *argv[] = {BUILDER, "--replicas", "0", NULL};
	char log[128];
	snprintf(log, sizeof(log), "%s/bad.log", tmp);
	pid_t bad = spawn(argv, NULL, log);
	st = -1;
	for (int t = 0; t < 5000 && spawn_running(bad, &st); t += 20)
		sleep_ms(20);
	tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 2, "a bad option exits 2");

	stop_replay();
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_server_destroy(&server);
	nats_Close();
	notify_stop();
	tap_remove_dir(tmp);
	json_decref(e.records);
	json_decref(e.accounts);
	return tap_done();
}
