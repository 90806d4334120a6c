/* test-relayfaults.c — atkv-builder, on a real nats-server, against a hostile relay: a thread of
 * the test serves the committed capture over raw WebSocket and breaks it once per scenario. The
 * builder must live on in bounded memory, count and skip the bad input, and end with the
 * reference store. */
#define _GNU_SOURCE
#include "base64.h"
#include "buf.h"
#include "capture.h"
#include "cbuild.h"
#include "cid.h"
#include "expected.h"
#include "firehose.h"
#include "ingest.h"
#include "natsserver.h"
#include "sha256.h"
#include "spawn.h"
#include "scrape.h"
#include "tap.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUILDER "src/atkv-builder"
#define MB (1024L * 1024L)
#define DEFAULT_MAX_MESSAGE (16 * MB)   /* the builder's --max-message default */
#define DEEP 100000                     /* nesting levels of the deep-nesting frames */

/* Memory the builder may use beside the largest message it accepts. ASan's shadow memory and
 * its quarantine of freed blocks (every step of a buffer's growth stays resident) need more. */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_FACTOR 2
#else
#define RSS_FACTOR 1
#endif

static struct nats_server server;
static char tmp[64];
static natsConnection *nc;
static jsCtx *js;

/* ---- the capture ---- */

struct frame {
	const uint8_t *p;
	size_t n;
	int64_t seq;
	enum atkv_event_type type;
};

static uint8_t *capture;
static struct frame *frames;
static size_t n_frames;

static void load_capture(const char *path)
{
	size_t len, off, n;
	const uint8_t *p;
	capture = tap_read_file(path, &len);
	long start = atkv_capture_start(capture, len);
	struct atkv_firehose *fh = atkv_firehose_new();
	frames = calloc(1024, sizeof(*frames));
	if (start < 0 || !fh || !frames) {
		printf("Bail out! cannot read %s\n", path);
		exit(1);
	}
	off = (size_t)start;
	while (n_frames < 1024 && atkv_capture_next(capture, len, &off, &p, &n) == 1) {
		const struct atkv_event *ev;
		struct atkv_err err = {0};
		if (atkv_firehose_decode(fh, p, n, &ev, &err)) {
			printf("Bail out! frame %zu of the capture does not decode\n", n_frames);
			exit(1);
		}
		frames[n_frames++] = (struct frame){p, n, ev->seq, ev->type};
	}
	atkv_firehose_free(fh);
}

/* ---- hostile messages, built with cbuild ---- */

static const char *FAULT_DID = "did:plc:hostilerelayfaultsxxxx";

static void header(struct atkv_buf *b, int64_t op, const char *t)
{
	cb_head(b, 5, t ? 2 : 1);
	cb_text(b, "op");
	cb_int(b, op);
	if (t) {
		cb_text(b, "t");
		cb_text(b, t);
	}
}

static void error_frame(struct atkv_buf *b, const char *name, const char *message)
{
	header(b, -1, NULL);
	cb_head(b, 5, 2);
	cb_text(b, "error");
	cb_text(b, name);
	cb_text(b, "message");
	cb_text(b, message);
}

/* Records (DAG-CBOR maps, keys in canonical order: shorter first). */
static void record_text(struct atkv_buf *b, size_t text_n, char c)
{
	char *text = malloc(text_n + 1);
	memset(text, c, text_n);
	text[text_n] = '\0';
	cb_head(b, 5, 2);
	cb_text(b, "text");
	cb_text(b, text);
	cb_text(b, "$type");
	cb_text(b, "app.bsky.feed.post");
	free(text);
}

static void record_with(struct atkv_buf *b, void (*value)(struct atkv_buf *))
{
	cb_head(b, 5, 2);
	cb_text(b, "x");
	value(b);
	cb_text(b, "$type");
	cb_text(b, "app.bsky.feed.post");
}

static void deep_array(struct atkv_buf *b) { cb_nest(b, DEEP); }

/* An array header claiming 2^32 elements, and a few bytes. */
static void huge_array(struct atkv_buf *b)
{
	cb_head(b, 4, UINT64_C(1) << 32);
	cb_uint(b, 1);
	cb_uint(b, 2);
}

enum flaw { FLAW_NONE, FLAW_BAD_CID, FLAW_TRUNCATED_CAR };

/* A #commit creating one record (app.bsky.feed.post/rkey of FAULT_DID) at seq. */
static void commit_frame(struct atkv_buf *b, int64_t seq, const char *rkey, const struct atkv_buf *record,
                         enum flaw flaw)
{
	struct atkv_sha256 *sha = atkv_sha256_new();
	struct atkv_buf car = ATKV_BUF_INIT;
	uint8_t cid[ATKV_CID_SHA256_BYTES];
	char path[128];
	atkv_cid_compute(sha, ATKV_CODEC_DAG_CBOR, (const uint8_t *)record->data, record->len, cid);
	atkv_sha256_free(sha);
	cb_car_header(&car, cid, sizeof(cid));
	size_t at = cb_car_section(&car, cid, sizeof(cid), record->data, record->len);
	if (flaw == FLAW_BAD_CID)
		car.data[at + record->len / 2] ^= 0x01; /* inside the text: still CBOR, another hash */
	if (flaw == FLAW_TRUNCATED_CAR)
		car.len -= 1;
	snprintf(path, sizeof(path), "app.bsky.feed.post/%s", rkey);
	header(b, 1, "#commit");
	cb_head(b, 5, 8);
	cb_text(b, "seq");
	cb_uint(b, (uint64_t)seq);
	cb_text(b, "repo");
	cb_text(b, FAULT_DID);
	cb_text(b, "commit");
	cb_link(b, cid, sizeof(cid));
	cb_text(b, "rev");
	cb_text(b, "3n3b2w2ogis2v");
	cb_text(b, "since");
	cb_null(b);
	cb_text(b, "blocks");
	cb_bytes(b, car.data, car.len);
	cb_text(b, "ops");
	cb_head(b, 4, 1);
	cb_head(b, 5, 3);
	cb_text(b, "cid");
	cb_link(b, cid, sizeof(cid));
	cb_text(b, "path");
	cb_text(b, path);
	cb_text(b, "action");
	cb_text(b, "create");
	cb_text(b, "time");
	cb_text(b, "2026-11-27T01:45:46.000Z");
	atkv_buf_free(&car);
}

/* A #commit whose body starts with `key` holding what `value` writes (the rest never read). */
static void claim_frame(struct atkv_buf *b, const char *key, void (*value)(struct atkv_buf *))
{
	header(b, 1, "#commit");
	cb_head(b, 5, 2);
	cb_text(b, key);
	value(b);
	cb_text(b, "seq");
	cb_uint(b, 1);
}

/* A byte string header claiming 4 GiB, and a few bytes. */
static void huge_bytes(struct atkv_buf *b)
{
	cb_head(b, 2, UINT64_C(1) << 32);
	cb_raw(b, "abcd", 4);
}

static void ten_mb_garbage(struct atkv_buf *b)
{
	size_t n = 10 * MB;
	uint8_t *junk = malloc(n);
	memset(junk, 0xff, n);
	cb_bytes(b, junk, n);
	free(junk);
}

/* A header {op, t} with DEEP nested arrays under an extra key. */
static void deep_header_frame(struct atkv_buf *b)
{
	cb_head(b, 5, 3);
	cb_text(b, "op");
	cb_int(b, 1);
	cb_text(b, "t");
	cb_text(b, "#commit");
	cb_text(b, "x");
	cb_nest(b, DEEP);
	cb_head(b, 5, 0);
}

/* ---- the hostile relay ---- */

enum fault_kind {
	FAULT_INSERT,    /* msg as one more binary message before the frame */
	FAULT_REPLACE,   /* msg instead of the frame */
	FAULT_RESET,     /* half the frame, then a TCP reset */
	FAULT_HANGUP,    /* half the frame, then an orderly end of the TCP stream */
	FAULT_STALL,     /* half the frame, then silence until the builder hangs up */
	FAULT_RAW,       /* msg as raw bytes where a frame header belongs, then wait for the hang-up */
	FAULT_FLOOD,     /* msg (a frame header), then zeros until the builder hangs up */
};

struct fault {
	enum fault_kind kind;
	size_t at;               /* the capture frame it comes with */
	struct atkv_buf msg;
	bool done;
	uint64_t flooded;        /* FAULT_FLOOD: bytes the socket took before the builder hung up */
};

struct scenario {
	const char *name;
	struct fault faults[4];
	size_t n_faults;
	uint64_t errors[ATKV_INGEST_KINDS];   /* inputs skipped, by kind ("replayed" not checked) */
	unsigned reconnects;
	const char *log_says;
	long max_message;                     /* --max-message; 0: the default */
	int relay_timeout;                    /* --relay-timeout; 0: 10 s, so that only a stall
	                                       * made on purpose (not a loaded machine) reconnects */
};

struct relay {
	int fd, port;
	pthread_t thread;
	atomic_bool stop;
	struct scenario *sc;
	unsigned connections;
	int64_t last_cursor;     /* the cursor the builder asked for last, -1 for none */
};

/* The flood sent after an over-limit header: four times the limit, so that a builder that
 * buffered it would have to take far more than it may. */
#define FLOOD_BYTES(limit) (4 * (uint64_t)(limit))

static int send_all(int c, const void *p, size_t n)
{
	const uint8_t *q = p;
	while (n > 0) {
		ssize_t k = send(c, q, n, MSG_NOSIGNAL);
		if (k <= 0)
			return -1;
		q += k;
		n -= (size_t)k;
	}
	return 0;
}

static size_t ws_header(uint8_t h[10], uint8_t opcode, uint64_t n)
{
	h[0] = (uint8_t)(0x80 | opcode);
	if (n < 126) {
		h[1] = (uint8_t)n;
		return 2;
	}
	if (n <= 0xffff) {
		h[1] = 126;
		h[2] = (uint8_t)(n >> 8);
		h[3] = (uint8_t)n;
		return 4;
	}
	h[1] = 127;
	for (int i = 0; i < 8; i++)
		h[2 + i] = (uint8_t)(n >> (56 - 8 * i));
	return 10;
}

static int send_message(int c, const void *p, size_t n)
{
	uint8_t h[10];
	return send_all(c, h, ws_header(h, 0x2, n)) || send_all(c, p, n) ? -1 : 0;
}

/* Waits up to ms for input; false when the test stops or nothing came. */
static bool readable(struct relay *r, int c, int ms)
{
	struct pollfd p = {c, POLLIN, 0};
	for (int t = 0; t < ms && !atomic_load(&r->stop); t += 100)
		if (poll(&p, 1, 100) > 0)
			return true;
	return false;
}

/* Reads the upgrade request and answers 101 with the Sec-WebSocket-Accept of RFC 6455. */
static int handshake(struct relay *r, int c, int64_t *cursor)
{
	char req[8192] = "", accept[64], resp[256];
	size_t have = 0;
	while (!strstr(req, "\r\n\r\n")) {
		ssize_t k;
		if (have + 1 >= sizeof(req) || !readable(r, c, 10000) || (k = recv(c, req + have, sizeof(req) - 1 - have, 0)) <= 0)
			return -1;
		have += (size_t)k;
		req[have] = '\0';
	}
	char *eol = strstr(req, "\r\n"), *q = strstr(req, "cursor=");
	*cursor = q && q < eol ? strtoll(q + 7, NULL, 10) : -1;
	char *key = strcasestr(req, "\r\nSec-WebSocket-Key:");
	if (!key)
		return -1;
	key += 20;
	key += strspn(key, " ");
	char text[128];
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned md_n = 0;
	int n = snprintf(text, sizeof(text), "%.*s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", (int)strcspn(key, " \r"), key);
	EVP_Digest(text, (size_t)n, md, &md_n, EVP_sha1(), NULL);
	size_t a = atkv_base64_encode(md, md_n, accept);
	memcpy(accept + a, "=", 2); /* 20 bytes: one '=' of padding, which the atproto encoder omits */
	n = snprintf(resp, sizeof(resp),
	             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	             "Sec-WebSocket-Accept: %s\r\n\r\n",
	             accept);
	return send_all(c, resp, (size_t)n);
}

/* Reads what the builder sends until it hangs up or the test stops; with answer set, its pings
 * get pongs (a relay with nothing new to say), otherwise nothing does (a stalled relay). */
static void listen_to(struct relay *r, int c, bool answer)
{
	uint8_t in[4096];
	size_t have = 0;
	while (!atomic_load(&r->stop)) {
		if (!readable(r, c, 100))
			continue;
		ssize_t k = recv(c, in + have, sizeof(in) - have, 0);
		if (k <= 0)
			return;
		have = answer ? have + (size_t)k : 0;
		/* All the builder sends now: masked control frames (pings, a close) of 125 bytes at most. */
		while (have >= 6) {
			size_t len = in[1] & 0x7f, h = 6;
			if (len >= 126 || h + len > have)
				break;
			uint8_t op = in[0] & 0x0f, out[2 + 125];
			for (size_t i = 0; i < len; i++)
				out[2 + i] = in[h + i] ^ in[2 + (i & 3)];
			if (op == 0x9 || op == 0x8) {
				ws_header(out, op == 0x9 ? 0xa : 0x8, len);
				if (send_all(c, out, 2 + len) || op == 0x8)
					return;
			}
			memmove(in, in + h + len, have - h - len);
			have -= h + len;
		}
		if (have == sizeof(in))
			return;
	}
}

enum step { GO_ON, SKIP_FRAME, HUNG_UP };

static enum step apply(struct relay *r, int *c, struct fault *f, const struct frame *fr)
{
	uint8_t h[10];
	size_t hn = ws_header(h, 0x2, fr->n);
	f->done = true;
	switch (f->kind) {
	case FAULT_INSERT:
		return send_message(*c, f->msg.data, f->msg.len) ? HUNG_UP : GO_ON;
	case FAULT_REPLACE:
		return send_message(*c, f->msg.data, f->msg.len) ? HUNG_UP : SKIP_FRAME;
	case FAULT_RESET: {
		struct linger lg = {1, 0}; /* close() then sends RST, not FIN */
		send_all(*c, h, hn);
		send_all(*c, fr->p, fr->n / 2);
		setsockopt(*c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(*c);
		*c = -1;
		return HUNG_UP;
	}
	case FAULT_HANGUP:
		send_all(*c, h, hn);
		send_all(*c, fr->p, fr->n / 2);
		shutdown(*c, SHUT_WR);
		listen_to(r, *c, false);
		return HUNG_UP;
	case FAULT_STALL:
		send_all(*c, h, hn);
		send_all(*c, fr->p, fr->n / 2);
		listen_to(r, *c, false);
		return HUNG_UP;
	case FAULT_RAW:
		send_all(*c, f->msg.data, f->msg.len);
		listen_to(r, *c, false);
		return HUNG_UP;
	case FAULT_FLOOD: {
		static const uint8_t zeros[65536];
		uint64_t limit = FLOOD_BYTES(r->sc->max_message ? r->sc->max_message : DEFAULT_MAX_MESSAGE);
		if (send_all(*c, f->msg.data, f->msg.len))
			return HUNG_UP;
		while (f->flooded < limit && send_all(*c, zeros, sizeof(zeros)) == 0)
			f->flooded += sizeof(zeros);
		return HUNG_UP;
	}
	}
	return GO_ON;
}

/* One connection: the capture after the cursor, each fault once where it belongs, then an idle
 * relay that answers pings. */
static void serve(struct relay *r, int c)
{
	int64_t cursor;
	struct timeval tv = {20, 0}; /* a builder that stops reading must not hang the test */
	setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (handshake(r, c, &cursor)) {
		close(c);
		return;
	}
	r->last_cursor = cursor;
	for (size_t i = 0; i < n_frames; i++) {
		if (cursor >= 0 && frames[i].seq <= cursor)
			continue;
		enum step s = GO_ON;
		for (size_t k = 0; k < r->sc->n_faults && s != HUNG_UP; k++) {
			struct fault *f = &r->sc->faults[k];
			if (!f->done && f->at == i) {
				enum step t = apply(r, &c, f, &frames[i]);
				s = t > s ? t : s;
			}
		}
		if (s == HUNG_UP || (s == GO_ON && send_message(c, frames[i].p, frames[i].n))) {
			if (c >= 0)
				close(c);
			return;
		}
	}
	listen_to(r, c, true);
	close(c);
}

static void *relay_main(void *arg)
{
	struct relay *r = arg;
	while (!atomic_load(&r->stop)) {
		struct pollfd p = {r->fd, POLLIN, 0};
		if (poll(&p, 1, 100) <= 0)
			continue;
		int c = accept(r->fd, NULL, NULL);
		if (c < 0)
			continue;
		r->connections++;
		serve(r, c);
	}
	return NULL;
}

static int relay_start(struct relay *r, struct scenario *sc)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t n = sizeof(a);
	memset(r, 0, sizeof(*r));
	r->sc = sc;
	r->last_cursor = -1;
	atomic_init(&r->stop, false);
	r->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (r->fd < 0 || bind(r->fd, (struct sockaddr *)&a, sizeof(a)) || listen(r->fd, 8) ||
	    getsockname(r->fd, (struct sockaddr *)&a, &n) || pthread_create(&r->thread, NULL, relay_main, r)) {
		if (r->fd >= 0)
			close(r->fd);
		return -1;
	}
	r->port = ntohs(a.sin_port);
	return 0;
}

static void relay_stop(struct relay *r)
{
	atomic_store(&r->stop, true);
	pthread_join(r->thread, NULL);
	close(r->fd);
}

/* ---- the builder and what it says ---- */

static char *read_log(const char *name)
{
	char path[160];
	size_t n;
	snprintf(path, sizeof(path), "%s/%s.log", tmp, name);
	return (char *)tap_read_file(path, &n);
}

static int count_in(const char *text, const char *needle)
{
	int count = 0;
	for (const char *p = text; (p = strstr(p, needle)); p++)
		count++;
	return count;
}

static void show_log_tail(const char *text, int lines)
{
	const char *p = text + strlen(text);
	for (int k = 0; p > text && k <= lines; p--)
		if (p[-1] == '\n')
			k++;
	for (const char *line = p, *nl; *line && (nl = strchr(line, '\n')); line = nl + 1)
		tap_note("  %.*s", (int)(nl - line), line);
}

static pid_t start_builder(const struct scenario *sc, int relay_port, int metrics_port)
{
	char relay[64], metrics[64], max[32], log[160], timeout[32];
	snprintf(relay, sizeof(relay), "ws://127.0.0.1:%d", relay_port);
	snprintf(metrics, sizeof(metrics), "--metrics=127.0.0.1:%d", metrics_port);
	snprintf(max, sizeof(max), "--max-message=%ld", sc->max_message ? sc->max_message : DEFAULT_MAX_MESSAGE);
	snprintf(log, sizeof(log), "%s/%s.log", tmp, sc->name);
	snprintf(timeout, sizeof(timeout), "--relay-timeout=%d", sc->relay_timeout ? sc->relay_timeout : 10000);
	char *argv[] = {BUILDER, "--nats", server.url, "--relay", relay, "--config", "/dev/null", "--verify=false", timeout,
	                metrics, max, NULL};
	return spawn(argv, NULL, log);
}

static void reset_store(void)
{
	js_DeleteKeyValue(js, "record");
	js_DeleteKeyValue(js, "account");
	js_DeleteKeyValue(js, "cursor");
}

static bool wait_cursor(pid_t b, int64_t want, int timeout_ms)
{
	for (int t = 0; t < timeout_ms && spawn_running(b, NULL); t += 100) {
		if (expected_stored_cursor(js) == want)
			return true;
		sleep_ms(100);
	}
	return expected_stored_cursor(js) == want;
}

/* Runs the builder through one scenario and checks everything the issue asks of it. */
static void run(struct scenario *sc, const struct expected *e)
{
	struct relay r;
	static char page[65536];
	char sample[96];
	tap_note("--- %s", sc->name);
	reset_store();
	if (relay_start(&r, sc)) {
		tap_ok(false, "%s: the hostile relay listens", sc->name);
		return;
	}
	int mport = spawn_free_port();
	pid_t b = start_builder(sc, r.port, mport);
	bool reached = wait_cursor(b, e->last_seq, 60000);
	int st = 0;
	bool alive = spawn_running(b, &st);
	long peak = spawn_peak_rss_kb(b);
	scrape_get(mport, "/metrics", page, sizeof(page));
	tap_ok(alive, "%s: the builder is still running%s", sc->name,
	       alive ? "" : WIFSIGNALED(st) ? " (killed by a signal)" : " (it exited)");
	tap_ok(reached, "%s: the cursor reaches the last seq %lld", sc->name, (long long)e->last_seq);
	tap_eq(expected_compare_records(js, e), 0, "%s: bucket record equals the reference", sc->name);
	tap_eq(expected_compare_accounts(js, e), 0, "%s: bucket account equals the reference", sc->name);

	for (size_t k = 0; k < ATKV_INGEST_KINDS; k++) {
		if (k == ATKV_INGEST_REPLAYED)
			continue; /* events sent again after a reconnect: how many depends on timing */
		snprintf(sample, sizeof(sample), "atkv_builder_errors_total{kind=\"%s\"}", atkv_ingest_error_names[k]);
		if (sc->errors[k] || scrape_value(page, sample) != 0)
			tap_eq((long long)scrape_value(page, sample), (long long)sc->errors[k], "%s: %s counted %llu time(s)", sc->name,
			       atkv_ingest_error_names[k], (unsigned long long)sc->errors[k]);
	}
	tap_eq((long long)scrape_value(page, "atkv_builder_reconnects_total"), sc->reconnects,
	       "%s: %u connection(s) to the relay ended", sc->name, sc->reconnects);

	long max = sc->max_message ? sc->max_message : DEFAULT_MAX_MESSAGE;
	long limit_kb = RSS_FACTOR * (64 * MB + max) / 1024;
	tap_note("%s: peak RSS of the builder %ld kB (limit %ld kB)", sc->name, peak, limit_kb);
	tap_ok(peak > 0 && peak < limit_kb, "%s: peak RSS %ld kB stays below %ld kB", sc->name, peak, limit_kb);

	st = spawn_stop(b, SIGTERM, 20000);
	tap_ok(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: SIGTERM: clean exit 0 (status %d)", sc->name, st);
	relay_stop(&r);

	char *log = read_log(sc->name);
	for (size_t k = 0; k < ATKV_INGEST_KINDS; k++) {
		char kind[64];
		snprintf(kind, sizeof(kind), " kind=%s\n", atkv_ingest_error_names[k]);
		if (sc->errors[k] && k != ATKV_INGEST_RELAY_ERROR) /* relay errors are no skipped input */
			tap_eq(count_in(log, kind), (long long)sc->errors[k], "%s: the log names each skipped input (kind=%s)",
			       sc->name, atkv_ingest_error_names[k]);
	}
	if (sc->log_says)
		tap_ok(strstr(log, sc->log_says) != NULL, "%s: the log says \"%s\"", sc->name, sc->log_says);
	for (size_t k = 0; k < sc->n_faults; k++) {
		struct fault *f = &sc->faults[k];
		tap_ok(f->done, "%s: fault %zu was served (at frame %zu)", sc->name, k + 1, f->at);
		if (f->kind == FAULT_FLOOD) {
			tap_note("%s: the builder took %llu bytes after the header before hanging up", sc->name,
			         (unsigned long long)f->flooded);
			tap_ok(f->flooded < (uint64_t)max, "%s: refused from the header: hung up after %llu of %llu bytes sent",
			       sc->name, (unsigned long long)f->flooded, (unsigned long long)FLOOD_BYTES(max));
		}
	}
	if (sc->reconnects)
		tap_ok(r.connections == sc->reconnects + 1 && r.last_cursor > 0,
		       "%s: reconnected and resumed with ?cursor=%lld (%u connections)", sc->name, (long long)r.last_cursor,
		       r.connections);
	if (!reached || !alive) {
		tap_note("end of %s.log:", sc->name);
		show_log_tail(log, 20);
	}
	free(log);
}

/* ---- the scenarios ---- */

static struct fault fault_at(enum fault_kind kind, size_t at) { return (struct fault){kind, at, ATKV_BUF_INIT, false, 0}; }

/* The index of the n-th #sync frame: replacing a #sync with a bad #commit of the same seq
 * keeps the seqs in order and the reference store as it is (a #sync writes nothing). */
static size_t nth_sync(int n)
{
	for (size_t i = 0; i < n_frames; i++)
		if (frames[i].type == ATKV_EVENT_SYNC && n-- == 0)
			return i;
	printf("Bail out! the capture has too few #sync frames\n");
	exit(1);
}

static struct fault bad_commit(size_t at, const char *rkey, void (*record)(struct atkv_buf *), enum flaw flaw)
{
	struct fault f = fault_at(FAULT_REPLACE, at);
	struct atkv_buf rec = ATKV_BUF_INIT;
	record(&rec);
	commit_frame(&f.msg, frames[at].seq, rkey, &rec, flaw);
	atkv_buf_free(&rec);
	return f;
}

static void small_record(struct atkv_buf *b) { record_text(b, 40, 'a'); }
static void big_record(struct atkv_buf *b) { record_text(b, 10 * MB, 'a'); }
/* Every byte a control character: six bytes of JSON each (\u0001). */
static void escaped_record(struct atkv_buf *b) { record_text(b, 15 * MB, '\x01'); }
static void deep_record(struct atkv_buf *b) { record_with(b, deep_array); }
static void huge_array_record(struct atkv_buf *b) { record_with(b, huge_array); }

int main(void)
{
	struct expected e;
	signal(SIGPIPE, SIG_IGN);
	expected_load(&e, tap_path("tests/data/firehose-expected.jsonl"));
	load_capture(tap_path("tests/data/firehose-capture.bin"));
	snprintf(tmp, sizeof(tmp), "/tmp/atkv-test-relayfaults.XXXXXX");
	if (!mkdtemp(tmp) || nats_server_start(&server, 0)) {
		printf("Bail out! cannot set up nats-server\n");
		return 1;
	}
	natsConnection_ConnectTo(&nc, server.url);
	natsConnection_JetStream(&js, nc, NULL);
	tap_note("capture: %zu frames, last seq %lld", n_frames, (long long)e.last_seq);

	static struct scenario sc[11];
	size_t n = 0, sync = 0;
	struct fault f;

	/* The control: the same relay without a fault, for the baseline figures. */
	sc[n++] = (struct scenario){.name = "clean"};

	/* After a reset the kernel may discard the half frame unread; after an orderly end the
	 * builder has it, and says it drops it. */
	sc[n] = (struct scenario){.name = "a-reset-mid-frame", .reconnects = 2,
	                          .log_says = "bytes received and not yet handled are dropped"};
	sc[n].faults[sc[n].n_faults++] = fault_at(FAULT_RESET, 60);
	sc[n].faults[sc[n].n_faults++] = fault_at(FAULT_HANGUP, 100);
	n++;

	sc[n] = (struct scenario){.name = "b-stall-mid-frame", .reconnects = 1, .relay_timeout = 2000,
	                          .log_says = "nothing from the relay for 2000 ms, not even a pong"};
	sc[n].faults[sc[n].n_faults++] = fault_at(FAULT_STALL, 70);
	n++;

	sc[n] = (struct scenario){.name = "c-error-frame", .reconnects = 1,
	                          .log_says = "relay error ConsumerTooSlow: Stream consumer too slow"};
	f = fault_at(FAULT_INSERT, 80);
	error_frame(&f.msg, "ConsumerTooSlow", "Stream consumer too slow");
	sc[n].faults[sc[n].n_faults++] = f;
	sc[n].errors[ATKV_INGEST_RELAY_ERROR] = 1;
	n++;

	/* Garbage as a message (skipped), then where a frame header belongs (the connection is
	 * beyond repair: dropped and resumed). */
	sc[n] = (struct scenario){.name = "d-garbage", .reconnects = 1, .log_says = "websocket frame reserved bits"};
	f = fault_at(FAULT_INSERT, 30);
	static const char garbage[] = "\xff\xfe garbage, not CBOR \x00\x01\x02";
	cb_raw(&f.msg, garbage, sizeof(garbage) - 1);
	sc[n].faults[sc[n].n_faults++] = f;
	f = fault_at(FAULT_RAW, 90);
	static const char not_a_header[] = "\x7fGARBAGE instead of a frame header";
	cb_raw(&f.msg, not_a_header, sizeof(not_a_header) - 1);
	sc[n].faults[sc[n].n_faults++] = f;
	sc[n].errors[ATKV_INGEST_MALFORMED] = 1;
	n++;

	/* 10 MB messages under the 16 MB limit: a commit whose record is 10 MB (its JSON exceeds
	 * the NATS max payload) and a 10 MB frame that is no valid commit. */
	sc[n] = (struct scenario){.name = "e-10mb-messages"};
	sc[n].faults[sc[n].n_faults++] = bad_commit(nth_sync(sync++), "3kbigrecord22", big_record, FLAW_NONE);
	sc[n].faults[sc[n].n_faults++] = bad_commit(nth_sync(sync++), "3kescapes2222", escaped_record, FLAW_NONE);
	f = fault_at(FAULT_INSERT, 40);
	claim_frame(&f.msg, "blocks", ten_mb_garbage);
	sc[n].faults[sc[n].n_faults++] = f;
	sc[n].errors[ATKV_INGEST_TOO_LARGE] = 2;
	sc[n].errors[ATKV_INGEST_MALFORMED] = 1;
	n++;

	/* A header announcing 32 MB, over the 16 MB limit, then the bytes. */
	sc[n] = (struct scenario){.name = "e-over-max-message", .reconnects = 1,
	                          .log_says = "a message exceeded 16777216 bytes"};
	f = fault_at(FAULT_FLOOD, 50);
	uint8_t h[10];
	cb_raw(&f.msg, h, ws_header(h, 0x2, 32 * MB));
	sc[n].faults[sc[n].n_faults++] = f;
	n++;

	sc[n] = (struct scenario){.name = "f-bad-cid", .log_says = "record skipped"};
	sc[n].faults[sc[n].n_faults++] = bad_commit(nth_sync(sync++), "3kbadcid2222a", small_record, FLAW_BAD_CID);
	sc[n].errors[ATKV_INGEST_CID_MISMATCH] = 1;
	n++;

	sc[n] = (struct scenario){.name = "g-truncated-car"};
	sc[n].faults[sc[n].n_faults++] = bad_commit(nth_sync(sync++), "3ktruncated2a", small_record, FLAW_TRUNCATED_CAR);
	sc[n].errors[ATKV_INGEST_MALFORMED] = 1;
	n++;

	sc[n] = (struct scenario){.name = "h-deep-nesting", .log_says = "CBOR nested too deeply"};
	sc[n].faults[sc[n].n_faults++] = bad_commit(nth_sync(sync++), "3kdeepnested2", deep_record, FLAW_NONE);
	f = fault_at(FAULT_INSERT, 20);
	deep_header_frame(&f.msg);
	sc[n].faults[sc[n].n_faults++] = f;
	sc[n].errors[ATKV_INGEST_BAD_RECORD] = 1;
	sc[n].errors[ATKV_INGEST_MALFORMED] = 1;
	n++;

	/* Lengths claiming gigabytes: a WebSocket frame of 2^40 bytes, a byte string and an ops
	 * array of 2^32 in small frames, an array of 2^32 elements in a record. */
	sc[n] = (struct scenario){.name = "i-gigabyte-lengths", .reconnects = 1,
	                          .log_says = "a message exceeded 16777216 bytes"};
	sc[n].faults[sc[n].n_faults++] = bad_commit(nth_sync(sync++), "3khugearray2a", huge_array_record, FLAW_NONE);
	f = fault_at(FAULT_INSERT, 25);
	claim_frame(&f.msg, "blocks", huge_bytes);
	sc[n].faults[sc[n].n_faults++] = f;
	f = fault_at(FAULT_INSERT, 26);
	claim_frame(&f.msg, "ops", huge_array);
	sc[n].faults[sc[n].n_faults++] = f;
	f = fault_at(FAULT_FLOOD, 100);
	cb_raw(&f.msg, h, ws_header(h, 0x2, UINT64_C(1) << 40));
	sc[n].faults[sc[n].n_faults++] = f;
	sc[n].errors[ATKV_INGEST_BAD_RECORD] = 1;
	sc[n].errors[ATKV_INGEST_MALFORMED] = 2;
	n++;

	for (size_t i = 0; i < n; i++)
		run(&sc[i], &e);

	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < sc[i].n_faults; k++)
			atkv_buf_free(&sc[i].faults[k].msg);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_server_destroy(&server);
	nats_Close();
	tap_remove_dir(tmp);
	expected_free(&e);
	free(frames);
	free(capture);
	return tap_done();
}
