/* relay.c — the subscribeRepos client (see relay.h). libwebsockets carries the TCP connection
 * and runs the loop; the WebSocket protocol (websocket.c) and TLS (tls.c) are atkv's own, so a
 * frame is handled whole: lws 4.1's client parser goes byte by byte and took half the builder's
 * CPU, and its raw connections cannot start TLS. */
#include "relay.h"
#include "clock.h"
#include "buf.h"
#include "tls.h"
#include "websocket.h"

#include <libwebsockets.h>
#include <openssl/rand.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* How long a relay has to end the connection after the close handshake. */
#define CLOSE_GRACE_MS 2000

enum state {
	IDLE,           /* no connection */
	CONNECTING,     /* TCP connect */
	TLS_HANDSHAKE,
	UPGRADING,      /* the HTTP upgrade request sent, its answer awaited */
	OPEN,
	CLOSING,        /* a close frame answered; the relay ends the connection, or we do soon */
};

struct atkv_relay {
	struct atkv_relay_options o;
	struct atkv_relay_handler h;
	struct lws_context *ctx;
	struct lws *wsi;             /* the open or opening connection */
	lws_sorted_usec_list_t tick;
	lws_sorted_usec_list_t resume; /* goes on with input left when reading was paused */
	struct atkv_tls_context *tls_ctx; /* wss:// only */
	struct atkv_tls *tls;        /* the connection's, once TCP is up */
	struct atkv_ws_reader ws;
	struct atkv_buf in;          /* plaintext received and not used yet */
	struct atkv_buf out;         /* bytes for the socket, after LWS_PRE bytes lws may use */
	enum state state;
	bool paused;
	bool pinged;
	bool killed;                 /* being closed: nothing more is read or written */
	bool wss;
	int port;
	int64_t started_ms, last_rx_ms, closing_ms;
	char key[ATKV_WS_KEY_SIZE];
	char url[2048];              /* full URL without the cursor */
	char host[512];
	char host_header[520];
	char path[1536];             /* path and query without the cursor */
	char request[1600];          /* path with the cursor, for the open connection */
	char close_why[256];
	unsigned closures;           /* connections ended, to notice a silent connect failure */
};

static void out_reset(struct atkv_relay *r) { r->out.len = LWS_PRE; }

/* Ends the connection from outside a callback of its own, with why for the log. lws closes it on
 * its next pass; until then its callbacks see killed and refuse to go on. */
static void kill_connection(struct atkv_relay *r, const char *why)
{
	if (why && !r->close_why[0])
		snprintf(r->close_why, sizeof(r->close_why), "%s", why);
	if (r->wsi) {
		r->killed = true;
		lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_REASON_BASE, LWS_TO_KILL_ASYNC);
	}
}

static void closed(struct atkv_relay *r, const char *why)
{
	r->wsi = NULL;
	r->state = IDLE;
	atkv_tls_free(r->tls);
	r->tls = NULL;
	atkv_buf_reset(&r->in);
	out_reset(r);
	atkv_ws_reader_reset(&r->ws, r->o.max_message);
	lws_sul_cancel(&r->resume);
	r->paused = false;
	r->killed = false;
	r->closures++;
	r->h.closed(r->h.arg, why);
}

/* Queues bytes for the server, encrypted when the connection is TLS. Returns 0 or -1. */
static int send_bytes(struct atkv_relay *r, const void *p, size_t n)
{
	char why[256] = "out of memory";
	if (r->tls) {
		if (atkv_tls_write(r->tls, p, n, why, sizeof(why)) || atkv_tls_take(r->tls, &r->out)) {
			snprintf(r->close_why, sizeof(r->close_why), "%s", why);
			return -1;
		}
	} else if (atkv_buf_append(&r->out, p, n)) {
		snprintf(r->close_why, sizeof(r->close_why), "out of memory");
		return -1;
	}
	lws_callback_on_writable(r->wsi);
	return 0;
}

static int send_control(struct atkv_relay *r, enum atkv_ws_opcode op, const uint8_t *p, size_t n)
{
	uint8_t frame[ATKV_WS_MAX_HEADER + ATKV_WS_MAX_CONTROL], mask[4];
	if (RAND_bytes(mask, sizeof(mask)) != 1) {
		snprintf(r->close_why, sizeof(r->close_why), "no random bytes for a WebSocket mask");
		return -1;
	}
	return send_bytes(r, frame, atkv_ws_frame(frame, op, p, n, mask));
}

/* Answers a close frame with its code, as RFC 6455 section 5.5.1 asks; codes that must not be
 * sent (none, 1005, 1006, 1015, below 1000) become 1000. */
static int send_close_reply(struct atkv_relay *r, const uint8_t *p, size_t n)
{
	unsigned code = n >= 2 ? (unsigned)(p[0] << 8 | p[1]) : 1000;
	if (code < 1000 || code == 1005 || code == 1006 || code == 1015)
		code = 1000;
	uint8_t reply[2] = {(uint8_t)(code >> 8), (uint8_t)code};
	return send_control(r, ATKV_WS_OP_CLOSE, reply, sizeof(reply));
}

static int send_upgrade(struct atkv_relay *r)
{
	uint8_t nonce[16];
	char req[2400];
	if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
		snprintf(r->close_why, sizeof(r->close_why), "no random bytes for the WebSocket key");
		return -1;
	}
	atkv_ws_key(nonce, r->key);
	long n = atkv_ws_request(req, sizeof(req), r->host_header, r->request, r->key, "atkv/" PACKAGE_VERSION);
	if (n < 0) {
		snprintf(r->close_why, sizeof(r->close_why), "the request line is too long");
		return -1;
	}
	r->state = UPGRADING;
	return send_bytes(r, req, (size_t)n);
}

/* Handles what r->in holds: the upgrade answer, then frames until reading is paused. Returns 0,
 * or -1 with close_why set when the connection must end. */
static int process(struct atkv_relay *r)
{
	size_t pos = 0;
	int rc = 0;
	if (r->state == UPGRADING) {
		long end = atkv_ws_response_end((const uint8_t *)r->in.data, r->in.len);
		if (end == 0)
			return 0;
		char why[256];
		if (end < 0) {
			snprintf(r->close_why, sizeof(r->close_why), "the relay's HTTP answer is over %d bytes",
			         ATKV_WS_MAX_RESPONSE);
			return -1;
		}
		if (atkv_ws_check_response(r->in.data, (size_t)end, r->key, why, sizeof(why))) {
			snprintf(r->close_why, sizeof(r->close_why), "%s", why);
			return -1;
		}
		pos = (size_t)end;
		r->state = OPEN;
		r->h.connected(r->h.arg);
	}
	while (r->state == OPEN && !r->paused && pos < r->in.len) {
		struct atkv_ws_event ev;
		struct atkv_err err = {0, 0, NULL};
		long used = atkv_ws_read(&r->ws, (const uint8_t *)r->in.data + pos, r->in.len - pos, &ev, &err);
		if (used == 0)
			break;
		if (used < 0) {
			char e[160];
			if (used == ATKV_E_TOO_LARGE)
				snprintf(r->close_why, sizeof(r->close_why), "a message exceeded %zu bytes", r->o.max_message);
			else
				snprintf(r->close_why, sizeof(r->close_why), "%s", atkv_err_format(&err, e, sizeof(e)));
			rc = -1;
			break;
		}
		pos += (size_t)used;
		if (ev.kind == ATKV_WS_MESSAGE) {
			if (r->h.frame(r->h.arg, ev.data, ev.len)) {
				snprintf(r->close_why, sizeof(r->close_why), "closed by atkv");
				rc = -1;
				break;
			}
		} else if (ev.kind == ATKV_WS_PING) {
			if ((rc = send_control(r, ATKV_WS_OP_PONG, ev.data, ev.len)))
				break;
		} else if (ev.kind == ATKV_WS_CLOSE) {
			char reason[200];
			atkv_ws_close_reason(ev.data, ev.len, reason, sizeof(reason));
			snprintf(r->close_why, sizeof(r->close_why), "relay closed it (%s)", reason);
			rc = send_close_reply(r, ev.data, ev.len);
			r->state = CLOSING;
			r->closing_ms = atkv_now_ms();
			break;
		}
	}
	/* What is left is the start of a frame, or frames held while paused; a large frame that is
	 * still arriving is not moved on every read. */
	if (pos) {
		memmove(r->in.data, r->in.data + pos, r->in.len - pos);
		r->in.len -= pos;
		r->in.data[r->in.len] = '\0';
	}
	return rc;
}

static void on_resume(lws_sorted_usec_list_t *sul)
{
	struct atkv_relay *r = (struct atkv_relay *)(void *)((char *)sul - offsetof(struct atkv_relay, resume));
	if (r->wsi && !r->paused && !r->killed && process(r))
		kill_connection(r, NULL);
}

/* Input from the socket: decrypted when TLS, then handled. Returns 0 or -1 to close. */
static int received(struct atkv_relay *r, const void *p, size_t n)
{
	char why[256] = "out of memory";
	r->last_rx_ms = atkv_now_ms();
	r->pinged = false;
	if (r->state == CLOSING)
		return 0;
	if (!r->tls) {
		if (atkv_buf_append(&r->in, p, n)) {
			snprintf(r->close_why, sizeof(r->close_why), "out of memory");
			return -1;
		}
		return process(r);
	}
	if (atkv_tls_put(r->tls, p, n)) {
		snprintf(r->close_why, sizeof(r->close_why), "out of memory");
		return -1;
	}
	if (r->state == TLS_HANDSHAKE) {
		int hs = atkv_tls_handshake(r->tls, why, sizeof(why));
		if (hs < 0 || atkv_tls_take(r->tls, &r->out)) {
			snprintf(r->close_why, sizeof(r->close_why), "%s", hs < 0 ? why : "out of memory");
			return -1;
		}
		lws_callback_on_writable(r->wsi);
		if (hs == 0)
			return 0;
		if (send_upgrade(r))
			return -1;
	}
	/* Frames decrypted before the end (an error frame, then close_notify) still count. */
	int ended = atkv_tls_read(r->tls, &r->in, why, sizeof(why));
	if (atkv_tls_take(r->tls, &r->out)) {
		snprintf(r->close_why, sizeof(r->close_why), "out of memory");
		return -1;
	}
	if (r->out.len > LWS_PRE)
		lws_callback_on_writable(r->wsi);
	int rc = process(r);
	if (ended && !r->close_why[0])
		snprintf(r->close_why, sizeof(r->close_why), "%s", why);
	return rc || ended ? -1 : 0;
}

static int connected(struct atkv_relay *r)
{
	char why[256] = "out of memory";
	r->last_rx_ms = atkv_now_ms();
	if (!r->tls_ctx)
		return send_upgrade(r);
	r->state = TLS_HANDSHAKE;
	if (atkv_tls_new(r->tls_ctx, r->host, &r->tls, why, sizeof(why)) || atkv_tls_handshake(r->tls, why, sizeof(why)) < 0 ||
	    atkv_tls_take(r->tls, &r->out)) {
		snprintf(r->close_why, sizeof(r->close_why), "%s", why);
		return -1;
	}
	lws_callback_on_writable(r->wsi);
	return 0;
}

static int writable(struct atkv_relay *r, struct lws *wsi)
{
	if (r->out.len > LWS_PRE) {
		size_t n = r->out.len - LWS_PRE;
		/* lws keeps what the socket does not take and holds WRITEABLE until it is sent. */
		if (lws_write(wsi, (unsigned char *)r->out.data + LWS_PRE, n, LWS_WRITE_RAW) < 0) {
			snprintf(r->close_why, sizeof(r->close_why), "cannot write to the relay");
			return -1;
		}
		out_reset(r);
	}
	/* In CLOSING the relay is the one to end the connection (on_tick does if it does not). */
	return 0;
}

static const char *state_phase(enum state s)
{
	switch (s) {
	case TLS_HANDSHAKE: return " during the TLS handshake";
	case UPGRADING: return " before the WebSocket handshake completed";
	default: return "";
	}
}

/* What a connection that ends loses: bytes of a message not yet whole (a relay that hung up or
 * reset mid-frame), or frames held while reading was paused. The cursor brings them back. */
static void dropped_input(const struct atkv_relay *r, char *out, size_t n)
{
	size_t held = r->in.len + r->ws.message.len;
	if (r->state == OPEN && held)
		snprintf(out, n, " (%zu bytes received and not yet handled are dropped)", held);
	else
		out[0] = '\0';
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct atkv_relay *r = lws_context_user(lws_get_context(wsi));
	char why[600], dropped[80];
	(void)user;
	switch (reason) {
	case LWS_CALLBACK_RAW_CONNECTED:
		return r->killed || connected(r) ? -1 : 0;
	case LWS_CALLBACK_RAW_RX:
		return r->killed || received(r, in, len) ? -1 : 0;
	case LWS_CALLBACK_RAW_WRITEABLE:
		return r->killed ? -1 : writable(r, wsi);
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		snprintf(why, sizeof(why), "cannot connect to %.160s: %.256s", r->url,
		         r->close_why[0] ? r->close_why : in ? (const char *)in : "error");
		closed(r, why);
		break;
	case LWS_CALLBACK_RAW_CLOSE:
		if (wsi != r->wsi)
			break;
		dropped_input(r, dropped, sizeof(dropped));
		snprintf(why, sizeof(why), "connection to %.160s closed%s%s%.256s%s", r->url, state_phase(r->state),
		         r->close_why[0] ? ": " : "", r->close_why, dropped);
		closed(r, why);
		break;
	case LWS_CALLBACK_WSI_DESTROY:
		/* A connection freed without RAW_CLOSE (e.g. killed while connecting). */
		if (wsi == r->wsi) {
			snprintf(why, sizeof(why), "connection to %.160s abandoned%s%.256s", r->url,
			         r->close_why[0] ? ": " : "", r->close_why);
			closed(r, why);
		}
		break;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		r->h.tick(r->h.arg);
		break;
	default:
		break;
	}
	return 0;
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
	struct atkv_relay *r = (struct atkv_relay *)(void *)((char *)sul - offsetof(struct atkv_relay, tick));
	/* A half-open TCP connection would otherwise look like a quiet firehose forever. */
	int64_t now = atkv_now_ms(), limit = r->o.timeout_ms;
	char why[96];
	/* While reading is paused the relay cannot be heard: its silence means nothing then. */
	bool listening = r->wsi && r->state == OPEN && !r->paused;
	if (r->wsi && r->state != OPEN && r->state != CLOSING && now - r->started_ms > limit) {
		snprintf(why, sizeof(why), "no WebSocket connection within %lld ms", (long long)limit);
		kill_connection(r, why);
	} else if (r->wsi && r->state == CLOSING && now - r->closing_ms > CLOSE_GRACE_MS) {
		kill_connection(r, NULL);
	} else if (listening && now - r->last_rx_ms > limit) {
		snprintf(why, sizeof(why), "nothing from the relay for %lld ms, not even a pong", (long long)limit);
		kill_connection(r, why);
	} else if (listening && now - r->last_rx_ms > limit / 2 && !r->pinged) {
		r->pinged = true;
		if (send_control(r, ATKV_WS_OP_PING, (const uint8_t *)"atkv", 4))
			kill_connection(r, NULL);
	}
	r->h.tick(r->h.arg);
	lws_sul_schedule(r->ctx, 0, &r->tick, on_tick, (lws_usec_t)r->o.tick_ms * LWS_US_PER_MS);
}

static const struct lws_protocols protocols[] = {
	{"atkv-relay", callback, 0, 0, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Splits the URL; the subscribeRepos path is appended to a base URL. */
static int parse_url(struct atkv_relay *r, const char *url, char *why, size_t why_n)
{
	char copy[2048];
	const char *prot, *ads, *path;
	int port;
	if (strlen(url) >= sizeof(copy) - sizeof(ATKV_SUBSCRIBE_PATH)) {
		snprintf(why, why_n, "--relay: URL too long");
		return -1;
	}
	strcpy(copy, url);
	if (lws_parse_uri(copy, &prot, &ads, &port, &path) || (strcmp(prot, "ws") && strcmp(prot, "wss")) ||
	    !*ads) {
		snprintf(why, why_n, "--relay: expected a ws:// or wss:// URL, got \"%s\"", url);
		return -1;
	}
	r->wss = !strcmp(prot, "wss");
	r->port = port;
	snprintf(r->host, sizeof(r->host), "%s", ads);
	bool v6 = strchr(r->host, ':') != NULL;
	if ((r->wss && port == 443) || (!r->wss && port == 80))
		snprintf(r->host_header, sizeof(r->host_header), v6 ? "[%s]" : "%s", r->host);
	else
		snprintf(r->host_header, sizeof(r->host_header), v6 ? "[%s]:%d" : "%s:%d", r->host, port);
	/* lws_parse_uri drops the leading '/' of the path. */
	const char *p = path;
	while (*p == '/')
		p++;
	size_t n = strlen(p);
	while (n > 0 && p[n - 1] == '/')
		n--;
	if (n >= sizeof(ATKV_SUBSCRIBE_PATH) - 2 &&
	    !strncmp(p + n - (sizeof(ATKV_SUBSCRIBE_PATH) - 2), ATKV_SUBSCRIBE_PATH + 1, sizeof(ATKV_SUBSCRIBE_PATH) - 2))
		snprintf(r->path, sizeof(r->path), "/%.*s", (int)n, p);
	else
		snprintf(r->path, sizeof(r->path), "%s%.*s%s", n ? "/" : "", (int)n, p, ATKV_SUBSCRIBE_PATH);
	if ((r->wss && port == 443) || (!r->wss && port == 80))
		snprintf(r->url, sizeof(r->url), "%s://%.500s%.1500s", prot, r->host, r->path);
	else
		snprintf(r->url, sizeof(r->url), "%s://%.500s:%d%.1500s", prot, r->host, port, r->path);
	return 0;
}

int atkv_relay_new(const struct atkv_relay_options *o, const struct atkv_relay_handler *h,
                   struct atkv_relay **out, char *why, size_t why_n)
{
	struct atkv_relay *r = calloc(1, sizeof(*r));
	if (!r || atkv_buf_reserve(&r->out, LWS_PRE + 4096)) {
		free(r);
		snprintf(why, why_n, "out of memory");
		return -1;
	}
	r->o = *o;
	r->h = *h;
	out_reset(r);
	atkv_ws_reader_reset(&r->ws, o->max_message);
	if (parse_url(r, o->url, why, why_n) || (r->wss && atkv_tls_context_new(o->ca_file, &r->tls_ctx, why, why_n))) {
		atkv_buf_free(&r->out);
		free(r);
		return -1;
	}
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.user = r;
	/* Reads of 64 KiB: a busy firehose fills them, and each read is a system call. */
	info.pt_serv_buf_size = 65536;
	/* TLS for the relay is tls.c's; lws only serves plain /metrics. */
	/* atkv logs for itself; lws only reports its errors. */
	lws_set_log_level(LLL_ERR, NULL);
	if (!(r->ctx = lws_create_context(&info))) {
		snprintf(why, why_n, "cannot create the libwebsockets context");
		atkv_tls_context_free(r->tls_ctx);
		atkv_buf_free(&r->out);
		free(r);
		return -1;
	}
	lws_sul_schedule(r->ctx, 0, &r->tick, on_tick, (lws_usec_t)o->tick_ms * LWS_US_PER_MS);
	*out = r;
	return 0;
}

void atkv_relay_free(struct atkv_relay *r)
{
	if (!r)
		return;
	lws_sul_cancel(&r->tick);
	lws_sul_cancel(&r->resume);
	lws_context_destroy(r->ctx);
	atkv_tls_free(r->tls);
	atkv_tls_context_free(r->tls_ctx);
	atkv_ws_reader_free(&r->ws);
	atkv_buf_free(&r->in);
	atkv_buf_free(&r->out);
	free(r);
}

int atkv_relay_connect(struct atkv_relay *r, int64_t cursor)
{
	if (r->wsi)
		return -1;
	if (cursor >= 0)
		snprintf(r->request, sizeof(r->request), "%s%scursor=%lld", r->path, strchr(r->path, '?') ? "&" : "?",
		         (long long)cursor);
	else
		snprintf(r->request, sizeof(r->request), "%s", r->path);
	struct lws_client_connect_info ci;
	memset(&ci, 0, sizeof(ci));
	ci.context = r->ctx;
	ci.address = r->host;
	ci.port = r->port;
	ci.host = r->host;
	ci.method = "RAW";
	ci.local_protocol_name = protocols[0].name;
	ci.pwsi = &r->wsi;
	r->close_why[0] = '\0';
	r->state = CONNECTING;
	r->started_ms = atkv_now_ms();
	r->pinged = false;
	unsigned before = r->closures;
	if (!lws_client_connect_via_info(&ci)) {
		/* lws reports most failures through CONNECTION_ERROR; the owner hears of the rest here. */
		r->wsi = NULL;
		if (r->closures == before)
			closed(r, "cannot start the connection");
		return -1;
	}
	return 0;
}

void atkv_relay_close(struct atkv_relay *r) { kill_connection(r, NULL); }

bool atkv_relay_is_open(const struct atkv_relay *r) { return r->wsi != NULL; }

void atkv_relay_pause(struct atkv_relay *r, bool pause)
{
	if (!r->wsi || r->paused == pause)
		return;
	r->paused = pause;
	lws_rx_flow_control(r->wsi, pause ? 0 : 1);
	if (!pause) {
		/* Silence is measured from here: nothing could be heard while paused. */
		r->last_rx_ms = atkv_now_ms();
		r->pinged = false;
	}
	/* Frames already received wait in r->in; they go first, from the loop rather than from
	 * inside the caller. */
	if (!pause && r->in.len)
		lws_sul_schedule(r->ctx, 0, &r->resume, on_resume, 1);
}

void atkv_relay_wake(struct atkv_relay *r) { lws_cancel_service(r->ctx); }

int atkv_relay_service(struct atkv_relay *r) { return lws_service(r->ctx, 0); }

const char *atkv_relay_url(const struct atkv_relay *r) { return r->url; }
struct lws_context *atkv_relay_context(struct atkv_relay *r) { return r->ctx; }
