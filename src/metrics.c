/* metrics.c — the /metrics endpoint (see metrics.h): one lws vhost, one protocol; each request
 * renders into a buffer of its own, freed when the connection closes. */
#include "metrics.h"

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct atkv_metrics {
	void (*render)(void *arg, struct atkv_buf *out);
	void *arg;
	char iface[128];
};

struct session {
	struct atkv_buf body;
	size_t sent;
};

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct session *s = user;
	struct atkv_metrics *m = lws_get_vhost_user(lws_get_vhost(wsi));
	uint8_t head[LWS_PRE + 512], *start = head + LWS_PRE, *p = start, *end = head + sizeof(head) - 1;
	(void)len;
	switch (reason) {
	case LWS_CALLBACK_HTTP: {
		bool found = in && !strcmp((const char *)in, "/metrics");
		/* A kept-alive connection reuses its session: the previous body goes first. */
		atkv_buf_reset(&s->body);
		s->sent = 0;
		if (found)
			m->render(m->arg, &s->body);
		else
			atkv_buf_puts(&s->body, "atkv: the metrics are at /metrics\n");
		if (lws_add_http_common_headers(wsi, found ? HTTP_STATUS_OK : HTTP_STATUS_NOT_FOUND,
		                                "text/plain; version=0.0.4", s->body.len, &p, end) ||
		    lws_finalize_write_http_header(wsi, start, &p, end))
			return 1;
		lws_callback_on_writable(wsi);
		return 0;
	}
	case LWS_CALLBACK_HTTP_WRITEABLE: {
		size_t left = s->body.len - s->sent, chunk = left > 4096 ? 4096 : left;
		uint8_t buf[LWS_PRE + 4096];
		memcpy(buf + LWS_PRE, s->body.data + s->sent, chunk);
		bool last = chunk == left;
		if (lws_write(wsi, buf + LWS_PRE, chunk, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)chunk)
			return 1;
		s->sent += chunk;
		if (!last) {
			lws_callback_on_writable(wsi);
			return 0;
		}
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	case LWS_CALLBACK_CLOSED_HTTP:
		atkv_buf_free(&s->body);
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static const struct lws_protocols protocols[] = {
	{"http", callback, sizeof(struct session), 0, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

int atkv_metrics_start(struct lws_context *ctx, const char *hostport,
                       void (*render)(void *arg, struct atkv_buf *out), void *arg,
                       struct atkv_metrics **out, char *why, size_t why_n)
{
	struct atkv_metrics *m = calloc(1, sizeof(*m));
	const char *colon = strrchr(hostport, ':');
	if (!m || !colon) {
		free(m);
		snprintf(why, why_n, "--metrics: expected ADDRESS:PORT, got \"%s\"", hostport);
		return -1;
	}
	m->render = render;
	m->arg = arg;
	snprintf(m->iface, sizeof(m->iface), "%.*s", (int)(colon - hostport), hostport);
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	info.port = atoi(colon + 1);
	info.iface = m->iface;
	info.protocols = protocols;
	info.vhost_name = "metrics";
	info.user = m;
	if (!lws_create_vhost(ctx, &info)) {
		snprintf(why, why_n, "--metrics: cannot listen on %s (address not local, or port in use)", hostport);
		free(m);
		return -1;
	}
	*out = m;
	return 0;
}

void atkv_metrics_free(struct atkv_metrics *m) { free(m); }

void atkv_metrics_add(struct atkv_buf *out, const char *name, const char *type, const char *help,
                      const char *labels, double value)
{
	char line[512];
	int n;
	if (help) {
		n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
		if (n > 0)
			atkv_buf_append(out, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	}
	n = snprintf(line, sizeof(line), "%s%s%s%s %.17g\n", name, labels ? "{" : "", labels ? labels : "",
	             labels ? "}" : "", value);
	if (n > 0)
		atkv_buf_append(out, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}
