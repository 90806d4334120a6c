/* relay.c — the subscribeRepos client on libwebsockets (see relay.h). */
#include "relay.h"
#include "buf.h"

#include <libwebsockets.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct atkv_relay {
	struct atkv_relay_options o;
	struct atkv_relay_handler h;
	struct lws_context *ctx;
	struct lws *wsi;             /* the open or opening connection */
	lws_sorted_usec_list_t tick;
	struct atkv_buf message;     /* reassembly of the current message */
	bool paused;
	bool tls;
	int port;
	char url[2048];              /* full URL without the cursor */
	char host[512];
	char path[1536];             /* path and query without the cursor */
	char request[1600];          /* path with the cursor, for the open connection */
	char close_why[256];
	unsigned closures;           /* connections ended, to notice a silent connect failure */
};

static struct atkv_relay *relay_of_tick(lws_sorted_usec_list_t *sul)
{
	return (struct atkv_relay *)(void *)((char *)sul - offsetof(struct atkv_relay, tick));
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
	struct atkv_relay *r = relay_of_tick(sul);
	r->h.tick(r->h.arg);
	lws_sul_schedule(r->ctx, 0, &r->tick, on_tick, (lws_usec_t)r->o.tick_ms * LWS_US_PER_MS);
}

static void closed(struct atkv_relay *r, const char *why)
{
	r->wsi = NULL;
	atkv_buf_reset(&r->message);
	r->paused = false;
	r->closures++;
	r->h.closed(r->h.arg, why);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct atkv_relay *r = lws_context_user(lws_get_context(wsi));
	char why[300];
	(void)user;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		r->close_why[0] = '\0';
		r->h.connected(r->h.arg);
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		snprintf(why, sizeof(why), "cannot connect to %.160s: %.100s", r->url, in ? (const char *)in : "error");
		closed(r, why);
		break;
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (wsi != r->wsi)
			break;
		snprintf(why, sizeof(why), "connection to %.160s closed%s%.100s", r->url, r->close_why[0] ? ": " : "",
		         r->close_why);
		closed(r, why);
		break;
	case LWS_CALLBACK_WSI_DESTROY:
		/* A connection freed without CLIENT_CLOSED (e.g. killed while handshaking). */
		if (wsi == r->wsi)
			closed(r, "connection abandoned");
		break;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		/* The close frame's payload: a 2-byte code, then a reason. */
		if (len > 2)
			snprintf(r->close_why, sizeof(r->close_why), "relay closed it: %.*s", (int)(len - 2),
			         (const char *)in + 2);
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (lws_is_first_fragment(wsi))
			atkv_buf_reset(&r->message);
		/* Too long: close now rather than read the rest of it. */
		if (r->message.len + len > r->o.max_message || atkv_buf_append(&r->message, in, len)) {
			snprintf(r->close_why, sizeof(r->close_why), "a message exceeded %zu bytes", r->o.max_message);
			return -1;
		}
		if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
			break;
		if (r->h.frame(r->h.arg, (const uint8_t *)r->message.data, r->message.len)) {
			snprintf(r->close_why, sizeof(r->close_why), "closed by atkv");
			return -1;
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

/* A silent relay is pinged after 30 s; one that answers nothing for 60 s is a dead connection
 * (a half-open TCP connection would otherwise look like a quiet firehose forever). */
static const lws_retry_bo_t idle_policy = {
	.secs_since_valid_ping = 30,
	.secs_since_valid_hangup = 60,
};

static const struct lws_protocols protocols[] = {
	{"atkv-relay", callback, 0, 65536, 0, NULL, 0},
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
	r->tls = !strcmp(prot, "wss");
	r->port = port;
	snprintf(r->host, sizeof(r->host), "%s", ads);
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
	if ((r->tls && port == 443) || (!r->tls && port == 80))
		snprintf(r->url, sizeof(r->url), "%s://%.500s%.1500s", prot, r->host, r->path);
	else
		snprintf(r->url, sizeof(r->url), "%s://%.500s:%d%.1500s", prot, r->host, port, r->path);
	return 0;
}

int atkv_relay_new(const struct atkv_relay_options *o, const struct atkv_relay_handler *h,
                   struct atkv_relay **out, char *why, size_t why_n)
{
	struct atkv_relay *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(why, why_n, "out of memory");
		return -1;
	}
	r->o = *o;
	r->h = *h;
	if (parse_url(r, o->url, why, why_n)) {
		free(r);
		return -1;
	}
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.user = r;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.client_ssl_ca_filepath = o->ca_file;
	/* atkv logs for itself; lws only reports its errors. */
	lws_set_log_level(LLL_ERR, NULL);
	if (!(r->ctx = lws_create_context(&info))) {
		snprintf(why, why_n, "cannot create the libwebsockets context");
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
	lws_context_destroy(r->ctx);
	atkv_buf_free(&r->message);
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
	ci.path = r->request;
	ci.host = r->host;
	ci.origin = r->host;
	ci.ssl_connection = r->tls ? LCCSCF_USE_SSL : 0;
	ci.local_protocol_name = protocols[0].name;
	ci.pwsi = &r->wsi;
	ci.retry_and_idle_policy = &idle_policy;
	r->close_why[0] = '\0';
	unsigned before = r->closures;
	if (!lws_client_connect_via_info(&ci)) {
		/* lws reports most failures through CONNECTION_ERROR; the owner hears of the rest here. */
		if (r->closures == before)
			closed(r, "cannot start the connection");
		return -1;
	}
	return 0;
}

void atkv_relay_close(struct atkv_relay *r)
{
	if (r->wsi)
		lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_REASON_BASE, LWS_TO_KILL_ASYNC);
}

bool atkv_relay_is_open(const struct atkv_relay *r) { return r->wsi != NULL; }

void atkv_relay_pause(struct atkv_relay *r, bool pause)
{
	if (!r->wsi || r->paused == pause)
		return;
	r->paused = pause;
	lws_rx_flow_control(r->wsi, pause ? 0 : 1);
}

void atkv_relay_wake(struct atkv_relay *r) { lws_cancel_service(r->ctx); }

int atkv_relay_service(struct atkv_relay *r) { return lws_service(r->ctx, 0); }

const char *atkv_relay_url(const struct atkv_relay *r) { return r->url; }
struct lws_context *atkv_relay_context(struct atkv_relay *r) { return r->ctx; }
