/* firehose-replay.c — atkv-firehose-replay: serves a firehose capture (capture.h) as
 * com.atproto.sync.subscribeRepos over WebSocket (atproto event stream spec), so consumers can be
 * tested against a known stream: cursor resume, rate limits, replay loops with rewritten seq,
 * dropped connections and malformed frames on demand. One libwebsockets 4.1 service loop; the
 * capture is mmap'd once and every client keeps only its position in it. */
#include "capture.h"
#include "capturerecord.h"
#include "replayloop.h"
#include "cborscan.h"
#include "err.h"
#include "firehose.h"

#include <libwebsockets.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PROG "atkv-firehose-replay"
#define MAX_RECORD_SECONDS (UINT64_C(10) * 366 * 86400)
#define XRPC_PATH "/xrpc/com.atproto.sync.subscribeRepos"

/* Largest piece of a message handed to lws_write at once (--fragment lowers it). Frames can be
 * several MB; sending them in fragments keeps lws from copying the unsent rest of a huge write
 * into its own buffer, and lets one shared scratch buffer serve every client. */
#define FRAG_MAX ((size_t)64 * 1024)

/* Fragments written per WRITEABLE callback at most, so one fast client cannot starve others. */
#define WRITES_PER_CALLBACK 16

#define GARBAGE_LEN 64

/* How often the service loop wakes up to look at the signal flag, and how long a stop waits for
 * clients to acknowledge the close before the context is torn down anyway. */
#define TICK_US ((lws_usec_t)100 * 1000)
#define STOP_GRACE_US ((uint64_t)2 * 1000 * 1000)

static volatile sig_atomic_t stop_signal;

/* One frame of the capture, indexed once at startup. */
struct frame {
	size_t off;           /* of the frame's bytes in the capture */
	uint32_t len;
	uint32_t seq_at;      /* offset of the body's seq integer in the frame */
	int64_t seq;          /* -1: no seq of its own (#info, error frames, undecodable frames) */
	uint8_t seq_n;        /* encoded length of that integer; 0 when it cannot be rewritten */
	uint16_t rkeys_n;     /* TID record keys in its ops, at replay.rkey_at[rkeys_first...] */
	uint32_t rkeys_first;
};

/* The ops of one commit a replay rewrites at most (the firehose carries 200 at most). */
#define RKEYS_PER_FRAME 1024

struct options {
	const char *file;
	const char *listen;
	const char *port_file;
	char addr[128];         /* from --listen: a numeric address, or "*" for every interface */
	int port;
	uint64_t rate;          /* frames per second; 0 = unlimited */
	uint64_t loops;
	uint64_t close_after;   /* 0 = never */
	uint64_t garbage_every; /* 0 = never */
	uint64_t fragment;      /* bytes per WebSocket frame, at most FRAG_MAX */
	const char *tls_cert;   /* both set: serve wss:// */
	const char *tls_key;
	struct atkv_capture_record_options record; /* --record: record.file set */
};

struct replay {
	struct options opt;
	const uint8_t *cap;
	size_t cap_len;
	struct frame *frames;
	size_t n_frames;
	int64_t max_seq;        /* -1 when no frame carries a seq */
	int64_t loop_step;      /* added to every seq once per completed loop */
	uint32_t *rkey_at;      /* offsets of TID record keys in their frames (frame.rkeys_first) */
	size_t n_rkey_at;
	uint32_t max_len;       /* the longest frame */
	uint8_t *scratch;       /* LWS_PRE + FRAG_MAX: lws_write needs writable headroom */
	struct lws_context *ctx;
	lws_sorted_usec_list_t tick;
	bool stopping;
	bool tearing_down;      /* lws_context_destroy is closing whoever is left */
	uint64_t stop_deadline;
	size_t n_clients;
};

/* A message as sent: the frame with, on loops after the first, its seq integer replaced.
 * Three pieces so that rewriting never copies the frame. */
struct msg {
	const uint8_t *a;
	size_t an;
	uint8_t mid[9];
	size_t mn;
	const uint8_t *b;
	size_t bn;
};

enum client_end { END_PEER, END_CLOSE_AFTER, END_STOP, END_STOP_FORCED, END_ERROR };

/* Per-connection state, allocated by lws (per_session_data_size), zeroed at connection start. */
struct client {
	struct lws *wsi;
	lws_sorted_usec_list_t pace;   /* --rate: wakes the connection when its next frame is due */
	bool established;
	bool has_cursor;
	int64_t cursor;
	uint64_t loop;                 /* position: loop number and frame index of the next frame */
	size_t idx;
	bool in_msg;                   /* a message is partly sent */
	struct msg msg;
	uint8_t *own;                  /* max_len + 9 bytes: a frame being rewritten on a later loop */
	size_t msg_sent;
	bool garbage_due;
	uint64_t frames_sent, garbage_sent;
	uint64_t t0;                   /* --rate schedule anchor (monotonic µs) */
	enum client_end end;
	char peer[64];
};

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ------------------------------------------------------------------------------------------ */
/* Frames: index, seq location, rewriting                                                      */

/* The shortest CBOR encoding of unsigned v (major type 0) into out; returns its length. */
static size_t cbor_uint_encode(uint64_t v, uint8_t out[9])
{
	if (v < 24) {
		out[0] = (uint8_t)v;
		return 1;
	}
	size_t n = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffu ? 4 : 8;
	out[0] = (uint8_t)(n == 1 ? 0x18 : n == 2 ? 0x19 : n == 4 ? 0x1a : 0x1b);
	for (size_t i = 0; i < n; i++)
		out[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return 1 + n;
}

/* Finds the body's top-level "seq" in frame[0..n): the offset and encoded length of its integer
 * and its value. Returns 0, ATKV_E_FRAME when there is none (or it is not a non-negative
 * integer), or the tokenizer's error. */
static int seq_locate(const uint8_t *frame, size_t n, size_t *at, size_t *len, int64_t *value)
{
	struct atkv_cbor r;
	struct atkv_cbor_item body, key, val;
	atkv_cbor_init(&r, frame, n);
	int rc = atkv_cbor_skip(&r, NULL); /* the header {op, t} */
	if (rc == 0)
		rc = atkv_cbor_next(&r, &body, NULL);
	if (rc)
		return rc;
	if (body.kind != ATKV_CBOR_MAP)
		return ATKV_E_FRAME;
	for (uint64_t i = 0; i < body.count; i++) {
		if ((rc = atkv_cbor_next(&r, &key, NULL)))
			return rc;
		if (!atkv_cbor_text_is(&key, "seq")) {
			if ((rc = atkv_cbor_skip(&r, NULL)))
				return rc;
			continue;
		}
		size_t start = r.off;
		if ((rc = atkv_cbor_next(&r, &val, NULL)))
			return rc;
		if (val.kind != ATKV_CBOR_INT || val.i < 0)
			return ATKV_E_FRAME;
		*at = start;
		*len = r.off - start;
		*value = val.i;
		return 0;
	}
	return ATKV_E_FRAME;
}

static size_t msg_len(const struct msg *m)
{
	return m->an + m->mn + m->bn;
}

/* Copies bytes [off, off + n) of the message to dst. The caller keeps the range in bounds. */
static void msg_copy(const struct msg *m, size_t off, uint8_t *dst, size_t n)
{
	const uint8_t *piece[3] = {m->a, m->mid, m->b};
	size_t len[3] = {m->an, m->mn, m->bn};
	for (int i = 0; i < 3 && n > 0; i++) {
		if (off >= len[i]) {
			off -= len[i];
			continue;
		}
		size_t k = len[i] - off < n ? len[i] - off : n;
		memcpy(dst, piece[i] + off, k);
		dst += k;
		n -= k;
		off = 0;
	}
}

/* Builds in *m the message for frame f on loop `loop`: the frame itself on loop 0, or with its
 * seq replaced by seq + loop * loop_step in its shortest encoding (the key "seq" and everything
 * around it stay as they are, so key order and the rest of the body are untouched). Frames
 * without a rewritable seq go out as they are on every loop. The caller checked at startup that
 * the new seq cannot overflow. Cannot fail. */
static void msg_build(const struct replay *r, const struct frame *f, uint64_t loop, struct msg *m,
                      uint8_t *own)
{
	const uint8_t *p = r->cap + f->off;
	memset(m, 0, sizeof(*m));
	if (loop == 0 || f->seq < 0 || f->seq_n == 0) {
		m->a = p;
		m->an = f->len;
	} else {
		uint64_t v = (uint64_t)f->seq + loop * (uint64_t)r->loop_step;
		m->a = p;
		m->an = f->seq_at;
		m->mn = cbor_uint_encode(v, m->mid);
		m->b = p + f->seq_at + f->seq_n;
		m->bn = f->len - f->seq_at - f->seq_n;
	}
	if (loop == 0 || f->rkeys_n == 0)
		return;
	/* New record keys: the one case that copies the frame, into the client's own buffer. */
	size_t len = msg_len(m);
	msg_copy(m, 0, own, len);
	for (uint16_t i = 0; i < f->rkeys_n; i++) {
		size_t at = r->rkey_at[f->rkeys_first + i];
		if (m->mn && at > f->seq_at) /* behind a seq that changed length */
			at = at - f->seq_n + m->mn;
		atkv_loop_tid_shift((char *)own + at, loop); /* checked at startup: cannot fail */
	}
	memset(m, 0, sizeof(*m));
	m->a = own;
	m->an = len;
}

/* The garbage message number g of a connection: deterministic bytes from a fixed LCG seeded by
 * g. The first byte is 0xff, a CBOR "break" outside any indefinite item, so the message is
 * malformed CBOR whatever follows and no decoder can mistake it for a frame. */
static void garbage_fill(uint64_t g, uint8_t *out)
{
	uint64_t x = 0x9e3779b97f4a7c15u ^ g;
	for (size_t i = 0; i < GARBAGE_LEN; i++) {
		x = x * 6364136223846793005u + 1442695040888963407u;
		out[i] = (uint8_t)(x >> 56);
	}
	out[0] = 0xff;
}

/* Maps the capture file read-only. Returns 0 or -1 with errno set. */
static int capture_map(const char *path, const uint8_t **p, size_t *n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if (st.st_size < ATKV_CAPTURE_MAGIC_LEN) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	int e = errno;
	close(fd);
	if (m == MAP_FAILED) {
		errno = e;
		return -1;
	}
	*p = m;
	*n = (size_t)st.st_size;
	return 0;
}

/* Notes where frame f's TID record keys are, for later loops. A key that cannot move through
 * every loop asked for (one close to the largest TID) is left out: it repeats, like a
 * profile's "self". Returns 0, or -1 after printing why. */
static int rkeys_index(struct replay *r, struct frame *f, const uint8_t *p, size_t len)
{
	uint32_t at[RKEYS_PER_FRAME];
	size_t found = 0;
	if (atkv_loop_rkeys_locate(p, len, at, RKEYS_PER_FRAME, &found) || found == 0)
		return 0;
	if (found > RKEYS_PER_FRAME)
		found = RKEYS_PER_FRAME; /* beyond the firehose's limit: the rest repeat their keys */
	if (r->n_rkey_at + found > UINT32_MAX) {
		fprintf(stderr, PROG ": %s: too many record keys to index\n", r->opt.file);
		return -1;
	}
	uint32_t *more = realloc(r->rkey_at, (r->n_rkey_at + found) * sizeof(*more));
	if (!more) {
		fprintf(stderr, PROG ": out of memory indexing %s\n", r->opt.file);
		return -1;
	}
	r->rkey_at = more;
	f->rkeys_first = (uint32_t)r->n_rkey_at;
	for (size_t i = 0; i < found; i++)
		if (atkv_loop_max((const char *)p + at[i]) >= r->opt.loops - 1)
			r->rkey_at[r->n_rkey_at++] = at[i];
	f->rkeys_n = (uint16_t)(r->n_rkey_at - f->rkeys_first);
	return 0;
}

/* Indexes every frame of the capture: position, seq, where the seq integer sits. Frames that do
 * not decode keep their place and are sent as they are. Returns 0, or -1 after printing why. */
static int capture_index(struct replay *r)
{
	long start = atkv_capture_start(r->cap, r->cap_len);
	if (start < 0) {
		fprintf(stderr, PROG ": %s: not a capture (no \"atkvcap1\" magic)\n", r->opt.file);
		return -1;
	}
	struct atkv_firehose *fh = atkv_firehose_new();
	if (!fh) {
		fprintf(stderr, PROG ": out of memory\n");
		return -1;
	}
	size_t off = (size_t)start, cap = 0, bad = 0, len;
	int64_t min_seq = -1;
	const uint8_t *p;
	int rc;
	r->max_seq = -1;
	while ((rc = atkv_capture_next(r->cap, r->cap_len, &off, &p, &len)) == 1) {
		if (r->n_frames == cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			struct frame *nf = ncap > SIZE_MAX / sizeof(*nf) ? NULL :
			                   realloc(r->frames, ncap * sizeof(*nf));
			if (!nf) {
				atkv_firehose_free(fh);
				fprintf(stderr, PROG ": out of memory indexing %s\n", r->opt.file);
				return -1;
			}
			r->frames = nf;
			cap = ncap;
		}
		struct frame *f = &r->frames[r->n_frames];
		memset(f, 0, sizeof(*f));
		f->off = (size_t)(p - r->cap);
		f->len = (uint32_t)len; /* capture lengths are 4 bytes */
		if (f->len > r->max_len)
			r->max_len = f->len;
		f->seq = -1;
		const struct atkv_event *ev;
		struct atkv_err err = {0};
		if (atkv_firehose_decode(fh, p, len, &ev, &err) != 0) {
			char e[160];
			if (bad++ < 5)
				fprintf(stderr, PROG ": frame %zu does not decode (%s); sent as it is\n",
				        r->n_frames, atkv_err_format(&err, e, sizeof(e)));
		} else if (ev->seq >= 0) {
			size_t at, n;
			int64_t v;
			f->seq = ev->seq;
			/* Rewritable only when the integer found is the seq the decoder read. */
			if (seq_locate(p, len, &at, &n, &v) == 0 && v == ev->seq) {
				f->seq_at = (uint32_t)at;
				f->seq_n = (uint8_t)n;
			}
			if (rkeys_index(r, f, p, len))
				return atkv_firehose_free(fh), -1;
			if (ev->seq > r->max_seq)
				r->max_seq = ev->seq;
			if (min_seq < 0 || ev->seq < min_seq)
				min_seq = ev->seq;
		}
		r->n_frames++;
	}
	atkv_firehose_free(fh);
	if (rc < 0)
		fprintf(stderr, PROG ": %s ends inside a frame; serving the %zu whole frames before it\n",
		        r->opt.file, r->n_frames);
	if (bad > 5)
		fprintf(stderr, PROG ": %zu frames in all do not decode\n", bad);
	/* The spec'd step is the last seq; when the capture starts at seq 0 that would repeat a seq
	 * at the loop boundary, so use the seq span then. Either way seqs keep increasing when the
	 * capture's own seqs do. */
	r->loop_step = r->max_seq < 0 ? 0 : r->max_seq;
	if (r->max_seq >= 0 && r->max_seq - min_seq + 1 > r->loop_step)
		r->loop_step = r->max_seq - min_seq + 1;
	if (r->loop_step > 0 && r->opt.loops - 1 > (uint64_t)(INT64_MAX - r->max_seq) / (uint64_t)r->loop_step) {
		fprintf(stderr, PROG ": --loop %" PRIu64 ": seq would overflow a 64-bit integer\n",
		        r->opt.loops);
		return -1;
	}
	fprintf(stderr, PROG ": %s: %zu frames, seq %" PRId64 "..%" PRId64 ", %zu undecodable\n",
	        r->opt.file, r->n_frames, min_seq, r->max_seq, bad);
	return 0;
}

/* Where a connection with cursor c starts: the first frame (in loop order) whose seq, as sent,
 * is greater than c. Frames without a seq before that point are skipped; after it, everything is
 * sent. Past the end of the last loop when no frame qualifies. */
static void resume_point(const struct replay *r, int64_t c, uint64_t *loop, size_t *idx)
{
	uint64_t k = 0;
	if (r->max_seq >= 0 && c >= r->max_seq) /* skip whole loops whose seqs are all <= c */
		k = (uint64_t)(c - r->max_seq) / (uint64_t)r->loop_step + 1;
	for (; r->max_seq >= 0 && k < r->opt.loops; k++) {
		for (size_t i = 0; i < r->n_frames; i++) {
			const struct frame *f = &r->frames[i];
			if (f->seq >= 0 && (uint64_t)f->seq + k * (uint64_t)r->loop_step > (uint64_t)c) {
				*loop = k;
				*idx = i;
				return;
			}
		}
	}
	*loop = r->opt.loops;
	*idx = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Connections                                                                                 */

/* Parses a cursor: decimal digits only, fitting a signed 64-bit integer. Returns 0 or -1. */
static int parse_cursor(const char *s, int64_t *out)
{
	if (!*s)
		return -1;
	uint64_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > ((uint64_t)INT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = (int64_t)v;
	return 0;
}

/* Finds the `cursor` query argument. Returns 1 with *cursor set, 0 when absent, -1 when present
 * but not a non-negative integer, or when an argument is too long to inspect. */
static int request_cursor(struct lws *wsi, int64_t *cursor)
{
	char arg[128];
	for (int i = 0;; i++) {
		int n = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
		if (n <= 0)
			return 0;
		if (n >= (int)sizeof(arg))
			return -1;
		if (lws_hdr_copy_fragment(wsi, arg, sizeof(arg), WSI_TOKEN_HTTP_URI_ARGS, i) < 0)
			return -1;
		if (strncmp(arg, "cursor=", 7) == 0)
			return parse_cursor(arg + 7, cursor) == 0 ? 1 : -1;
	}
}

/* True when the request's path is the subscribeRepos endpoint (query string aside). */
static bool request_path_ok(struct lws *wsi)
{
	char *uri;
	int len;
	if (lws_http_get_uri_and_method(wsi, &uri, &len) < 0)
		return false;
	return (size_t)len == sizeof(XRPC_PATH) - 1 && memcmp(uri, XRPC_PATH, (size_t)len) == 0;
}

static void pace_due(lws_sorted_usec_list_t *sul)
{
	struct client *c = lws_container_of(sul, struct client, pace);
	lws_callback_on_writable(c->wsi);
}

/* Writes the next fragment of the current message. Returns 1, or -1 to drop the connection. */
static int send_fragment(struct replay *r, struct client *c)
{
	size_t total = msg_len(&c->msg), n = total - c->msg_sent;
	if (n > r->opt.fragment)
		n = r->opt.fragment;
	msg_copy(&c->msg, c->msg_sent, r->scratch + LWS_PRE, n);
	bool first = c->msg_sent == 0, last = c->msg_sent + n == total;
	int flags = lws_write_ws_flags(LWS_WRITE_BINARY, first, last);
	if (lws_write(c->wsi, r->scratch + LWS_PRE, n, (enum lws_write_protocol)flags) < 0) {
		c->end = END_ERROR;
		return -1;
	}
	c->msg_sent += n;
	if (!last)
		return 1;
	c->in_msg = false;
	c->frames_sent++;
	if (++c->idx == r->n_frames) {
		c->idx = 0;
		c->loop++;
	}
	if (r->opt.garbage_every && c->frames_sent % r->opt.garbage_every == 0)
		c->garbage_due = true;
	return 1;
}

/* Does the next piece of work for a writable connection. Returns 1 when it wrote something,
 * 0 when there is nothing to write now (all sent, or waiting for --rate), -1 to close. */
static int client_step(struct replay *r, struct client *c)
{
	if (c->in_msg)
		return send_fragment(r, c);
	if (r->stopping) {
		static const char why[] = "server stopping";
		lws_close_reason(c->wsi, LWS_CLOSE_STATUS_GOINGAWAY, (unsigned char *)why,
		                 sizeof(why) - 1);
		c->end = END_STOP;
		return -1;
	}
	if (c->garbage_due) {
		garbage_fill(c->garbage_sent, r->scratch + LWS_PRE);
		if (lws_write(c->wsi, r->scratch + LWS_PRE, GARBAGE_LEN, LWS_WRITE_BINARY) < 0) {
			c->end = END_ERROR;
			return -1;
		}
		c->garbage_due = false;
		c->garbage_sent++;
		return 1;
	}
	/* Everything written before has left lws's own buffer by now (lws calls WRITEABLE only
	 * after flushing it, and client_writeable stops while the pipe is choked), so the N frames
	 * are in the kernel when the socket closes. No close reason is set: lws then shuts the TCP
	 * connection down without a WebSocket close frame, as a lost connection would. */
	if (r->opt.close_after && c->frames_sent >= r->opt.close_after) {
		c->end = END_CLOSE_AFTER;
		return -1;
	}
	if (c->loop >= r->opt.loops || r->n_frames == 0)
		return 0; /* like a live relay with nothing new: stay open, idle */
	if (r->opt.rate) {
		uint64_t now = mono_us(), period = 1000000u / r->opt.rate;
		uint64_t due = c->t0 + c->frames_sent * 1000000u / r->opt.rate;
		if (now < due) {
			lws_sul_schedule(r->ctx, 0, &c->pace, pace_due, (lws_usec_t)(due - now));
			return 0;
		}
		/* A reader that fell behind restarts the schedule instead of getting a burst. */
		if (now - due > period)
			c->t0 = now - c->frames_sent * 1000000u / r->opt.rate;
	}
	if (c->loop > 0 && r->frames[c->idx].rkeys_n && !c->own && !(c->own = malloc((size_t)r->max_len + 9))) {
		fprintf(stderr, PROG ": out of memory for a rewritten frame\n");
		c->end = END_ERROR;
		return -1;
	}
	msg_build(r, &r->frames[c->idx], c->loop, &c->msg, c->own);
	c->in_msg = true;
	c->msg_sent = 0;
	return send_fragment(r, c);
}

static int client_writeable(struct replay *r, struct client *c)
{
	for (int i = 0; i < WRITES_PER_CALLBACK; i++) {
		if (i > 0 && lws_send_pipe_choked(c->wsi))
			break;
		int rc = client_step(r, c);
		if (rc <= 0)
			return rc;
	}
	lws_callback_on_writable(c->wsi);
	return 0;
}

static void client_open(struct replay *r, struct client *c, struct lws *wsi)
{
	c->wsi = wsi;
	c->established = true;
	c->end = END_PEER;
	if (lws_get_peer_simple(wsi, c->peer, sizeof(c->peer)) == NULL)
		strcpy(c->peer, "?");
	/* Checked already when the upgrade was confirmed; the headers are still attached here. */
	c->has_cursor = request_cursor(wsi, &c->cursor) == 1;
	if (c->has_cursor)
		resume_point(r, c->cursor, &c->loop, &c->idx);
	c->t0 = mono_us();
	r->n_clients++;
	lws_callback_on_writable(wsi);
}

static void client_close(struct replay *r, struct client *c)
{
	static const char *const ends[] = {
		[END_PEER] = "client closed or connection lost",
		[END_CLOSE_AFTER] = "dropped (--close-after)",
		[END_STOP] = "server stopping",
		[END_STOP_FORCED] = "server stopping, cut off after the grace period",
		[END_ERROR] = "write failed",
	};
	if (!c->established)
		return;
	c->established = false;
	if (r->tearing_down && c->end == END_PEER)
		c->end = END_STOP_FORCED;
	lws_sul_cancel(&c->pace);
	free(c->own);
	c->own = NULL;
	r->n_clients--;
	char cur[24] = "none";
	if (c->has_cursor)
		snprintf(cur, sizeof(cur), "%" PRId64, c->cursor);
	fprintf(stderr, PROG ": peer %s cursor %s: %" PRIu64 " frames, %" PRIu64 " garbage sent; %s\n",
	        c->peer, cur, c->frames_sent, c->garbage_sent, ends[c->end]);
}

/* Answers a request that is not a subscribeRepos connection with an HTTP status, and logs it.
 * Returns lws_return_http_status's result: nonzero when the answer could not be written. */
static int http_refuse(struct lws *wsi, unsigned int status, const char *why)
{
	char peer[64], path[160] = "?";
	char *uri;
	int len = 0;
	if (lws_get_peer_simple(wsi, peer, sizeof(peer)) == NULL)
		strcpy(peer, "?");
	if (lws_http_get_uri_and_method(wsi, &uri, &len) >= 0)
		snprintf(path, sizeof(path), "%.*s", len, uri);
	fprintf(stderr, PROG ": peer %s %s: HTTP %u (%s)\n", peer, path, status, why);
	return lws_return_http_status(wsi, status, NULL);
}

/* The one protocol: serves plain HTTP requests (404, or 426 on the endpoint itself) and the
 * subscribeRepos WebSocket connections. */
static int replay_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                           void *in, size_t len)
{
	struct replay *r = lws_context_user(lws_get_context(wsi));
	struct client *c = user;
	int64_t cursor;
	(void)in;
	(void)len;

	switch (reason) {
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		/* Return > 0 after answering ourselves: lws then finishes the HTTP transaction. */
		if (!request_path_ok(wsi))
			http_refuse(wsi, HTTP_STATUS_NOT_FOUND, "no such endpoint");
		else if (request_cursor(wsi, &cursor) < 0)
			http_refuse(wsi, HTTP_STATUS_BAD_REQUEST, "cursor is not a non-negative integer");
		else
			return 0;
		return 1;
	case LWS_CALLBACK_HTTP:
		if (request_path_ok(wsi) ? http_refuse(wsi, 426, "not a WebSocket upgrade") :
		    http_refuse(wsi, HTTP_STATUS_NOT_FOUND, "no such endpoint"))
			return -1;
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	case LWS_CALLBACK_ESTABLISHED:
		client_open(r, c, wsi);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return client_writeable(r, c);
	case LWS_CALLBACK_CLOSED:
		client_close(r, c);
		return 0;
	default:
		return 0; /* incoming messages (there should be none) are ignored */
	}
}

/* ------------------------------------------------------------------------------------------ */
/* Process: options, signals, service loop                                                     */

static void usage(FILE *to)
{
	fprintf(to,
	"usage: " PROG " FILE --listen ADDR:PORT [--rate N] [--loop N] [--close-after N]\n"
	"       [--garbage-every N] [--fragment BYTES] [--tls-cert FILE --tls-key FILE]\n"
	"       [--port-file PATH]\n"
	"   or: " PROG " --record FILE --from URL [--cursor SEQ] [--frames N] [--seconds N]\n"
	"       [--ca FILE]\n"
	"Serves the firehose capture FILE (atkvcap1, as written by tests/reference/capture.js) as\n"
	"com.atproto.sync.subscribeRepos at ws://ADDR:PORT" XRPC_PATH " (wss:// with --tls-cert).\n"
	"Every frame goes out as one binary WebSocket message, byte for byte as captured. Each\n"
	"connection starts at the first frame, or with ?cursor=N after the resume point: the first\n"
	"frame whose seq is greater than N (frames without a seq, such as #info, are sent only when\n"
	"they come after it). After the last frame the connection stays open and idle, like a live\n"
	"relay with no new events. Any other path gets HTTP 404; a bad cursor gets HTTP 400.\n"
	"\n"
	"  --listen ADDR:PORT   numeric address and port to listen on: 127.0.0.1:2583, [::1]:2583,\n"
	"                       *:2583 (every interface); port 0 picks a free port\n"
	"  --port-file PATH     once listening, write the bound port (decimal and a newline) to PATH,\n"
	"                       atomically (written to PATH.tmp, then renamed)\n"
	"  --rate N             send at most N frames per second on each connection (default:\n"
	"                       unlimited)\n"
	"  --loop N             replay the capture N times (default 1). On loop k (from 0) every\n"
	"                       seq is raised by k times the capture's last seq, so seqs keep\n"
	"                       increasing, and every record key of an op that is a TID moves\n"
	"                       k x 2^36 us (19 h) later, so each loop writes records of its own\n"
	"                       (other keys, such as a profile's \"self\", or a TID too close to\n"
	"                       the largest to move that far, repeat). Values, CIDs\n"
	"                       and revisions repeat as captured; the CAR's MST keeps the\n"
	"                       original keys\n"
	"  --close-after N      after sending N frames on a connection, drop it without a close\n"
	"                       frame (to test reconnecting with a cursor)\n"
	"  --garbage-every N    after every N-th frame, also send one binary message of 64\n"
	"                       deterministic garbage bytes that are not valid CBOR\n"
	"  --fragment BYTES     split each message into WebSocket frames of at most BYTES\n"
	"                       (default and maximum 65536), to test reassembly\n"
	"  --tls-cert FILE      serve wss:// with this PEM certificate (chain) ...\n"
	"  --tls-key FILE       ... and this PEM private key\n"
	"  --help               show this help\n"
	"\n"
	"Recording: --record FILE --from URL connects to a relay or PDS (ws:// or wss://; the\n"
	"subscribeRepos path is added unless the URL has it) and writes every message it sends\n"
	"into the new capture FILE (an existing one is refused), until --frames N messages, after\n"
	"--seconds N, or at SIGINT/SIGTERM; then it says how many frames and which seqs it holds.\n"
	"  --cursor SEQ         start after SEQ (default: live, from now)\n"
	"  --ca FILE            CA bundle for wss:// (default: the system's)\n"
	"\n"
	"One line per connection goes to stderr when it ends (peer, cursor, frames sent).\n"
	"SIGTERM or SIGINT closes every connection (close code 1001) and exits 0.\n"
	"Exit status: 0 after a signal, 1 when the capture or the socket cannot be used, 2 for bad\n"
	"arguments.\n");
}

static int bad_arg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints one line naming the bad argument; returns -1 for the caller to pass on. */
static int bad_arg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs(PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs(" (see --help)\n", stderr);
	va_end(ap);
	return -1;
}

/* Parses a positive decimal integer option value. Returns 0 or -1 after printing why. */
static int parse_count(const char *opt, const char *s, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;
	if (!*p)
		return bad_arg("%s: expected a positive integer, got '%s'", opt, s);
	for (; *p; p++) {
		if (*p < '0' || *p > '9' || v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return bad_arg("%s: expected a positive integer, got '%s'", opt, s);
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v == 0)
		return bad_arg("%s: expected a positive integer, got '%s'", opt, s);
	*out = v;
	return 0;
}

/* Splits ADDR:PORT (ADDR may be [IPv6]) into buf (the address) and *port. Returns 0 or -1
 * after printing why. */
static int parse_listen(const char *s, char *buf, size_t size, int *port)
{
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s)
		return bad_arg("--listen: expected ADDR:PORT, got '%s'", s);
	const char *h = s;
	size_t hn = (size_t)(colon - s);
	if (h[0] == '[') {
		if (hn < 3 || h[hn - 1] != ']')
			return bad_arg("--listen: expected [ADDR]:PORT, got '%s'", s);
		h++;
		hn -= 2;
	} else if (memchr(h, ':', hn)) {
		return bad_arg("--listen: write an IPv6 address as [ADDR]:PORT, got '%s'", s);
	}
	if (hn >= size)
		return bad_arg("--listen: address too long in '%s'", s);
	memcpy(buf, h, hn);
	buf[hn] = '\0';
	/* lws wants an address (or an interface name), not a host name: say so here rather than
	 * let the bind fail later with a puzzling message. */
	unsigned char sa[16];
	if (strcmp(buf, "*") != 0 && inet_pton(AF_INET, buf, sa) != 1 && inet_pton(AF_INET6, buf, sa) != 1)
		return bad_arg("--listen: '%s' is not a numeric IPv4 address, [IPv6] address or *", buf);
	const char *p = colon + 1;
	long v = 0;
	if (!*p)
		return bad_arg("--listen: missing port in '%s'", s);
	for (; *p; p++) {
		if (*p < '0' || *p > '9' || (v = v * 10 + (*p - '0')) > 65535)
			return bad_arg("--listen: port must be 0..65535 in '%s'", s);
	}
	*port = (int)v;
	return 0;
}

/* Returns 0, 1 for --help, or -1 after printing the problem. */
static int parse_args(int argc, char **argv, struct options *o)
{
	static const char *const valued[] = {
		"--listen", "--rate", "--loop", "--close-after", "--garbage-every", "--port-file",
		"--fragment", "--tls-cert", "--tls-key", "--record", "--from", "--cursor", "--frames",
		"--seconds", "--ca",
	};
	o->loops = 1;
	o->fragment = FRAG_MAX;
	o->record.cursor = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
			return 1;
		if (a[0] != '-' || strcmp(a, "-") == 0) {
			if (o->file)
				return bad_arg("unexpected argument '%s' (FILE is '%s')", a, o->file);
			o->file = a;
			continue;
		}
		const char *eq = strchr(a, '=');
		size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
		const char *name = NULL;
		for (size_t k = 0; k < sizeof(valued) / sizeof(valued[0]); k++)
			if (strlen(valued[k]) == nlen && strncmp(a, valued[k], nlen) == 0)
				name = valued[k];
		if (!name)
			return bad_arg("unknown option '%s'", a);
		const char *v = eq ? eq + 1 : NULL;
		if (!v) {
			if (i + 1 >= argc)
				return bad_arg("%s needs a value", name);
			v = argv[++i];
		}
		if (strcmp(name, "--listen") == 0)
			o->listen = v;
		else if (strcmp(name, "--record") == 0 || strcmp(name, "--from") == 0 || strcmp(name, "--ca") == 0) {
			if (!*v)
				return bad_arg("%s: empty", name);
			*(strcmp(name, "--record") == 0 ? &o->record.file :
			  strcmp(name, "--from") == 0   ? &o->record.from : &o->record.ca_file) = v;
		} else if (strcmp(name, "--cursor") == 0) {
			uint64_t c = 0;
			if (strcmp(v, "0") && parse_count(name, v, &c))
				return -1;
			if (c > INT64_MAX)
				return bad_arg("--cursor: too large, got '%s'", v);
			o->record.cursor = (int64_t)c;
		} else if (strcmp(name, "--frames") == 0 || strcmp(name, "--seconds") == 0) {
			if (parse_count(name, v, strcmp(name, "--frames") == 0 ? &o->record.frames : &o->record.seconds))
				return -1;
			if (o->record.seconds > MAX_RECORD_SECONDS)
				return bad_arg("--seconds: at most %llu (ten years), got '%s'",
				               (unsigned long long)MAX_RECORD_SECONDS, v);
		}
		else if (strcmp(name, "--port-file") == 0 || strcmp(name, "--tls-cert") == 0 ||
		         strcmp(name, "--tls-key") == 0) {
			if (!*v)
				return bad_arg("%s: empty path", name);
			if (strcmp(name, "--port-file") == 0)
				o->port_file = v;
			else if (strcmp(name, "--tls-cert") == 0)
				o->tls_cert = v;
			else
				o->tls_key = v;
		} else if (strcmp(name, "--fragment") == 0) {
			if (parse_count(name, v, &o->fragment))
				return -1;
			if (o->fragment > FRAG_MAX)
				return bad_arg("--fragment: at most %zu bytes, got '%s'", FRAG_MAX, v);
		} else if (parse_count(name, v, strcmp(name, "--rate") == 0 ? &o->rate :
		                                strcmp(name, "--loop") == 0 ? &o->loops :
		                                strcmp(name, "--close-after") == 0 ? &o->close_after :
		                                &o->garbage_every))
			return -1;
	}
	if (o->record.file || o->record.from) {
		if (!o->record.file || !o->record.from)
			return bad_arg("--record FILE and --from URL go together");
		if (o->file || o->listen)
			return bad_arg("--record records; it takes no capture to serve and no --listen");
		if (strncmp(o->record.from, "ws://", 5) && strncmp(o->record.from, "wss://", 6))
			return bad_arg("--from: a ws:// or wss:// URL, got '%s'", o->record.from);
		return 0;
	}
	if (o->record.cursor >= 0 || o->record.frames || o->record.seconds || o->record.ca_file)
		return bad_arg("--cursor, --frames, --seconds and --ca are for --record");
	if (!o->file)
		return bad_arg("missing the capture FILE");
	if (!o->listen)
		return bad_arg("missing --listen ADDR:PORT");
	if (!o->tls_cert != !o->tls_key)
		return bad_arg("--tls-cert and --tls-key go together");
	return parse_listen(o->listen, o->addr, sizeof(o->addr), &o->port);
}

/* Writes "PORT\n" to path through a temporary file and a rename, so readers never see a partial
 * file. Returns 0 or -1 after printing why. */
static int port_file_write(const char *path, int port)
{
	size_t n = strlen(path);
	char *tmp = malloc(n + 5);
	if (!tmp) {
		fprintf(stderr, PROG ": out of memory\n");
		return -1;
	}
	memcpy(tmp, path, n);
	memcpy(tmp + n, ".tmp", 5);
	FILE *f = fopen(tmp, "w");
	int ok = f && fprintf(f, "%d\n", port) > 0;
	if (f && fclose(f) != 0)
		ok = 0;
	if (ok && rename(tmp, path) != 0)
		ok = 0;
	if (!ok) {
		fprintf(stderr, PROG ": --port-file %s: %s\n", path, strerror(errno));
		unlink(tmp);
	}
	free(tmp);
	return ok ? 0 : -1;
}

static void on_signal(int sig)
{
	(void)sig;
	stop_signal = 1;
}

static void lws_log_line(int level, const char *line)
{
	(void)level;
	fprintf(stderr, PROG ": lws: %s", line);
}

/* Keeps the service loop waking up so it sees the signal flag even when a signal lands just
 * before lws goes back to waiting. */
static void tick(lws_sorted_usec_list_t *sul)
{
	struct replay *r = lws_container_of(sul, struct replay, tick);
	lws_sul_schedule(r->ctx, 0, &r->tick, tick, TICK_US);
}

static const struct lws_protocols protocols[] = {
	{
		.name = "atkv-firehose-replay",
		.callback = replay_callback,
		.per_session_data_size = sizeof(struct client),
		.rx_buffer_size = 4096,
		/* One fragment per send(): room for its WebSocket header too. */
		.tx_packet_size = FRAG_MAX + 16,
	},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

static int serve(struct replay *r)
{
	const char *addr = r->opt.addr;
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_line);
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	if (r->opt.tls_cert)
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.user = r;
	r->ctx = lws_create_context(&info);
	if (!r->ctx) {
		fprintf(stderr, PROG ": cannot create the libwebsockets context\n");
		return 1;
	}
	memset(&info, 0, sizeof(info));
	info.port = r->opt.port;
	/* lws takes an interface name or an address; NULL listens on every interface. */
	bool any = !strcmp(addr, "*") || !strcmp(addr, "0.0.0.0") || !strcmp(addr, "::");
	info.iface = any ? NULL : addr;
	info.protocols = protocols;
	info.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
	if (r->opt.tls_cert) {
		/* lws looks for the option on the vhost too, not only on the context. */
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = r->opt.tls_cert;
		info.ssl_private_key_filepath = r->opt.tls_key;
	}
	if (!strchr(addr, ':') && strcmp(addr, "*") != 0)
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6; /* an IPv4 address: bind IPv4 */
	struct lws_vhost *vh = lws_create_vhost(r->ctx, &info);
	int bound = vh ? lws_get_vhost_listen_port(vh) : -1;
	if (bound <= 0) {
		fprintf(stderr, PROG ": cannot listen on %s\n", r->opt.listen);
		lws_context_destroy(r->ctx);
		return 1;
	}
	if (r->opt.port_file && port_file_write(r->opt.port_file, bound)) {
		lws_context_destroy(r->ctx);
		return 1;
	}
	fprintf(stderr, PROG ": listening on %s port %d\n", any ? "*" : addr, bound);

	int rc = 0;
	lws_sul_schedule(r->ctx, 0, &r->tick, tick, TICK_US);
	for (;;) {
		if (lws_service(r->ctx, 0) < 0) {
			fprintf(stderr, PROG ": the libwebsockets service loop failed\n");
			rc = 1;
			break;
		}
		if (stop_signal && !r->stopping) {
			r->stopping = true;
			r->stop_deadline = mono_us() + STOP_GRACE_US;
			/* Each client closes from its WRITEABLE callback, after any message in
			 * progress, so no client sees half a frame. */
			lws_callback_on_writable_all_protocol(r->ctx, &protocols[0]);
		}
		if (r->stopping && (r->n_clients == 0 || mono_us() >= r->stop_deadline))
			break;
	}
	lws_sul_cancel(&r->tick);
	r->tearing_down = true;
	lws_context_destroy(r->ctx);
	r->ctx = NULL;
	fprintf(stderr, PROG ": stopped\n");
	return rc;
}

int main(int argc, char **argv)
{
	struct replay r;
	memset(&r, 0, sizeof(r));
	int rc = parse_args(argc, argv, &r.opt);
	if (rc > 0) {
		usage(stdout);
		return 0;
	}
	if (rc < 0)
		return 2;

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN; /* a client gone mid-write must not kill the server */
	sigaction(SIGPIPE, &sa, NULL);

	if (r.opt.record.file)
		return atkv_capture_record(&r.opt.record, &stop_signal);
	if (capture_map(r.opt.file, &r.cap, &r.cap_len)) {
		fprintf(stderr, PROG ": %s: %s\n", r.opt.file,
		        errno == EINVAL ? "too short to be a capture" : strerror(errno));
		return 1;
	}
	rc = 1;
	r.scratch = malloc(LWS_PRE + FRAG_MAX);
	if (!r.scratch)
		fprintf(stderr, PROG ": out of memory\n");
	else if (capture_index(&r) == 0)
		rc = serve(&r);
	free(r.scratch);
	free(r.frames);
	free(r.rkey_at);
	munmap((void *)r.cap, r.cap_len);
	return rc;
}
