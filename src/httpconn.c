/* httpconn.c — blocking HTTP GETs with deadlines over TCP or TLS (see httpconn.h). The socket
 * is non-blocking underneath so that every connect, write and read waits in poll() for at most
 * the timeout; TLS runs over memory buffers (tls.c), its ciphertext moved here. */
#define _DEFAULT_SOURCE
#include "httpconn.h"
#include "clock.h"
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct atkv_httpc {
	struct atkv_tls_context *tls_ctx;
	int timeout_ms;
	int total_ms;         /* a whole GET's limit (0: none) */
	int64_t deadline_ms;  /* the current GET's end, on the monotonic clock (0: none) */
	char ua[128];
	/* The connection kept alive, to origin. */
	int fd;
	struct atkv_tls *tls;
	char origin[320];
	struct atkv_buf out, plain;
	unsigned long connections;
};

struct url {
	bool https;
	char host[256];
	char port[8];
	char origin[320];     /* scheme://host:port, the key of a kept connection */
	char host_header[270];
	const char *path;     /* from the first '/', or "/" */
};

static int fail(char *why, size_t why_n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *why, size_t why_n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, why_n, fmt, ap);
	va_end(ap);
	return -1;
}

static int parse_url(const char *u, struct url *p, char *why, size_t why_n)
{
	const char *host;
	memset(p, 0, sizeof(*p));
	if (!strncmp(u, "https://", 8)) {
		p->https = true;
		host = u + 8;
	} else if (!strncmp(u, "http://", 7)) {
		host = u + 7;
	} else {
		return fail(why, why_n, "%s: not an http:// or https:// URL", u);
	}
	size_t hn = strcspn(host, ":/?#@[");
	if (!hn || hn >= sizeof(p->host) || host[hn] == '@' || host[hn] == '[')
		return fail(why, why_n, "%s: no host name in the URL", u);
	memcpy(p->host, host, hn);
	const char *rest = host + hn;
	if (*rest == ':') {
		size_t digits = strspn(rest + 1, "0123456789");
		if (!digits || digits > 5)
			return fail(why, why_n, "%s: bad port in the URL", u);
		memcpy(p->port, rest + 1, digits);
		rest += 1 + digits;
	} else {
		strcpy(p->port, p->https ? "443" : "80");
	}
	p->path = *rest == '/' ? rest : "/";
	if (*rest && *rest != '/')
		return fail(why, why_n, "%s: the path must start with /", u);
	snprintf(p->origin, sizeof(p->origin), "%s://%s:%s", p->https ? "https" : "http", p->host, p->port);
	bool default_port = !strcmp(p->port, p->https ? "443" : "80");
	snprintf(p->host_header, sizeof(p->host_header), "%s%s%s", p->host, default_port ? "" : ":",
	         default_port ? "" : p->port);
	return 0;
}

static void drop(struct atkv_httpc *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	atkv_tls_free(c->tls);
	c->tls = NULL;
	c->origin[0] = '\0';
	atkv_buf_reset(&c->out);
	atkv_buf_reset(&c->plain);
}

int atkv_httpc_new(const char *ca_file, int timeout_ms, const char *user_agent, struct atkv_httpc **out, char *why,
                   size_t why_n)
{
	struct atkv_httpc *c = calloc(1, sizeof(*c));
	if (!c)
		return fail(why, why_n, "out of memory");
	c->fd = -1;
	c->timeout_ms = timeout_ms;
	snprintf(c->ua, sizeof(c->ua), "%s", user_agent);
	if (atkv_tls_context_new(ca_file, &c->tls_ctx, why, why_n)) {
		free(c);
		return -1;
	}
	*out = c;
	return 0;
}

void atkv_httpc_set_total(struct atkv_httpc *c, int total_ms) { c->total_ms = total_ms > 0 ? total_ms : 0; }

void atkv_httpc_free(struct atkv_httpc *c)
{
	if (!c)
		return;
	drop(c);
	atkv_buf_free(&c->out);
	atkv_buf_free(&c->plain);
	atkv_tls_context_free(c->tls_ctx);
	free(c);
}

unsigned long atkv_httpc_connections(const struct atkv_httpc *c) { return c->connections; }

/* How long the next wait may last: the timeout, or what is left of the GET's total if less. */
static int wait_for(const struct atkv_httpc *c)
{
	if (!c->deadline_ms)
		return c->timeout_ms;
	int64_t left = c->deadline_ms - atkv_now_ms();
	return left <= 0 ? 0 : left < c->timeout_ms ? (int)left : c->timeout_ms;
}

/* Waits for fd to be ready for events; 1 when it is, 0 after the timeout, -1 on error. */
static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	for (;;) {
		int r = poll(&p, 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		return r < 0 ? -1 : r > 0;
	}
}

static int connect_tcp(struct atkv_httpc *c, const struct url *u, char *why, size_t why_n)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
	int gai = getaddrinfo(u->host, u->port, &hints, &res);
	if (gai)
		return fail(why, why_n, "cannot resolve %s: %s", u->host, gai_strerror(gai));
	int fd = -1;
	const char *last = "no address";
	for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			continue;
		int err = 0;
		socklen_t len = sizeof(err);
		if (connect(fd, a->ai_addr, a->ai_addrlen) && errno != EINPROGRESS) {
			err = errno;
		} else if (wait_fd(fd, POLLOUT, wait_for(c)) != 1) {
			err = ETIMEDOUT;
		} else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)) {
			err = errno;
		}
		if (err) {
			last = strerror(err);
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		return fail(why, why_n, "cannot connect to %s: %s", u->origin, last);
	c->fd = fd;
	c->connections++;
	return 0;
}

/* Writes c->out to the socket, waiting as needed. */
static int flush_out(struct atkv_httpc *c, char *why, size_t why_n)
{
	size_t off = 0;
	while (off < c->out.len) {
		ssize_t w = send(c->fd, c->out.data + off, c->out.len - off, MSG_NOSIGNAL);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return fail(why, why_n, "cannot send to %s: %s", c->origin, strerror(errno));
		if (w < 0 && errno == EAGAIN && wait_fd(c->fd, POLLOUT, wait_for(c)) != 1)
			return fail(why, why_n, "%s does not take what is sent", c->origin);
	}
	atkv_buf_reset(&c->out);
	return 0;
}

/* Reads what arrives (waiting up to the timeout) into c->plain. Returns 1 with bytes, 0 when
 * the server closed the connection, -1 with why. */
static int receive(struct atkv_httpc *c, char *why, size_t why_n)
{
	uint8_t buf[65536];
	int ready = wait_fd(c->fd, POLLIN, wait_for(c));
	if (ready == 0 && c->deadline_ms && atkv_now_ms() >= c->deadline_ms)
		return fail(why, why_n, "%s took longer than %d ms to answer", c->origin, c->total_ms);
	if (ready != 1)
		return ready ? fail(why, why_n, "cannot read from %s", c->origin)
		             : fail(why, why_n, "%s sent nothing for the timeout", c->origin);
	ssize_t r = recv(c->fd, buf, sizeof(buf), 0);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return 1;
	if (r < 0)
		return fail(why, why_n, "cannot read from %s: %s", c->origin, strerror(errno));
	if (!c->tls) {
		if (r && atkv_buf_append(&c->plain, buf, (size_t)r))
			return fail(why, why_n, "out of memory");
		return r > 0;
	}
	if (r == 0)
		return 0;
	char tls_why[256];
	size_t before = c->plain.len;
	if (atkv_tls_put(c->tls, buf, (size_t)r))
		return fail(why, why_n, "out of memory");
	int ended = atkv_tls_read(c->tls, &c->plain, tls_why, sizeof(tls_why));
	if (atkv_tls_take(c->tls, &c->out) || (c->out.len && flush_out(c, why, why_n)))
		return -1;
	return ended && c->plain.len == before ? 0 : 1;
}

static int handshake(struct atkv_httpc *c, const struct url *u, char *why, size_t why_n)
{
	if (atkv_tls_new(c->tls_ctx, u->host, &c->tls, why, why_n))
		return -1;
	for (;;) {
		int hs = atkv_tls_handshake(c->tls, why, why_n);
		if (hs < 0 || atkv_tls_take(c->tls, &c->out) || flush_out(c, why, why_n))
			return -1;
		if (hs == 1)
			return 0;
		uint8_t buf[16384];
		if (wait_fd(c->fd, POLLIN, wait_for(c)) != 1)
			return fail(why, why_n, "%s: no TLS handshake within the timeout", u->origin);
		ssize_t r = recv(c->fd, buf, sizeof(buf), 0);
		if (r == 0)
			return fail(why, why_n, "%s closed the connection during the TLS handshake", u->origin);
		if (r > 0 && atkv_tls_put(c->tls, buf, (size_t)r))
			return fail(why, why_n, "out of memory");
	}
}

static int open_conn(struct atkv_httpc *c, const struct url *u, char *why, size_t why_n)
{
	drop(c);
	if (connect_tcp(c, u, why, why_n) || (u->https && handshake(c, u, why, why_n))) {
		drop(c);
		return -1;
	}
	snprintf(c->origin, sizeof(c->origin), "%s", u->origin);
	return 0;
}

/* One attempt on the current connection. *answered says whether any byte came back (a kept
 * connection the server had closed fails before that, and is worth one retry). */
static int exchange(struct atkv_httpc *c, const struct url *u, const char *accept, size_t max_body,
                    struct atkv_buf *body, struct atkv_http_response *resp, bool *answered, char *why, size_t why_n)
{
	char req[4096], tls_why[256];
	long n = atkv_http_request(req, sizeof(req), u->host_header, u->path, accept, c->ua);
	if (n < 0)
		return fail(why, why_n, "%s: the URL is too long", u->origin);
	if (c->tls ? atkv_tls_write(c->tls, req, (size_t)n, tls_why, sizeof(tls_why)) || atkv_tls_take(c->tls, &c->out)
	           : atkv_buf_append(&c->out, req, (size_t)n))
		return fail(why, why_n, "%s: cannot send the request", u->origin);
	if (flush_out(c, why, why_n))
		return -1;
	atkv_http_response_init(resp, (int64_t)time(NULL));
	atkv_buf_reset(body);
	*answered = false;
	for (;;) {
		if (c->plain.len) {
			size_t used = 0;
			struct atkv_err err = {0};
			char e[128];
			*answered = true;
			if (atkv_http_feed(resp, (const uint8_t *)c->plain.data, c->plain.len, body, max_body, &used, &err))
				return fail(why, why_n, "%s: %s", u->origin, atkv_err_format(&err, e, sizeof(e)));
			memmove(c->plain.data, c->plain.data + used, c->plain.len - used);
			c->plain.len -= used;
			if (resp->state == ATKV_HTTP_DONE)
				return 0;
		}
		int got = receive(c, why, why_n);
		if (got < 0)
			return -1;
		if (got == 0) {
			atkv_http_closed(resp);
			if (resp->state == ATKV_HTTP_DONE)
				return 0;
			return fail(why, why_n, "%s closed the connection %s", u->origin,
			            *answered ? "in the middle of a response" : "without answering");
		}
	}
}

int atkv_httpc_get(struct atkv_httpc *c, const char *url, const char *accept, size_t max_body, struct atkv_buf *body,
                   struct atkv_http_response *resp, char *why, size_t why_n)
{
	struct url u;
	if (parse_url(url, &u, why, why_n))
		return -1;
	c->deadline_ms = c->total_ms ? atkv_now_ms() + c->total_ms : 0;
	bool reused = c->fd >= 0 && !strcmp(c->origin, u.origin);
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!reused && open_conn(c, &u, why, why_n))
			return -1;
		bool answered = false;
		int rc = exchange(c, &u, accept, max_body, body, resp, &answered, why, why_n);
		if (rc == 0) {
			if (!resp->keep_alive || c->plain.len)
				drop(c);
			return 0;
		}
		drop(c);
		if (!reused || answered)
			return -1;
		reused = false; /* the server had closed the kept connection: once more, afresh */
	}
	return -1;
}
