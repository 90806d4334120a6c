/* test-httpconn.c — the backfill's HTTP client (src/httpconn.c) against a server in a thread of
 * the test: bodies by length and chunked, one kept-alive connection for many requests, a new
 * one after "Connection: close", a kept connection the server dropped retried once, 429 with
 * Retry-After, a silent server timed out, a body over the limit refused; and https:// against
 * `openssl s_server` with a CA the test makes, refused without that CA. */
#define _DEFAULT_SOURCE
#include "httpconn.h"
#include "httpserver.h"
#include "spawn.h"
#include "tap.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

static int port;

/* Answers one request by its path; returns false to close the connection after it. */
static bool answer(int fd, const char *path, void *arg)
{
	(void)arg;
	if (!strcmp(path, "/len"))
		return httpserver_reply(fd, 200, "", "hello", 5);
	if (!strcmp(path, "/chunked")) {
		const char *r = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
		return send(fd, r, strlen(r), MSG_NOSIGNAL) > 0;
	}
	if (!strcmp(path, "/close"))
		return httpserver_reply(fd, 200, "Connection: close\r\n", "ok", 2) && false;
	/* Looks kept alive but is closed at once: the client finds out on its next use. */
	if (!strcmp(path, "/drop"))
		return httpserver_reply(fd, 200, "", "drop", 4) && false;
	if (!strcmp(path, "/429"))
		return httpserver_reply(fd, 429, "Retry-After: 7\r\n", "", 0);
	if (!strcmp(path, "/big")) {
		const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n";
		return send(fd, r, strlen(r), MSG_NOSIGNAL) > 0;
	}
	if (!strcmp(path, "/stall"))
		return sleep_ms(1500), false;
	/* A byte every 100 ms: never silent for the timeout (even on a loaded machine), never done. */
	if (!strcmp(path, "/trickle")) {
		const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
		if (send(fd, r, strlen(r), MSG_NOSIGNAL) <= 0)
			return false;
		for (int i = 0; i < 30 && send(fd, "x", 1, MSG_NOSIGNAL) == 1; i++)
			sleep_ms(100);
		return false;
	}
	return httpserver_reply(fd, 404, "", "", 0);
}

static int get(struct atkv_httpc *c, const char *path, size_t max, struct atkv_buf *body, struct atkv_http_response *r,
               char *why, size_t why_n)
{
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	return atkv_httpc_get(c, url, "*/*", max, body, r, why, why_n);
}

static bool body_is(const struct atkv_buf *b, const char *want) { return b->len == strlen(want) && (!b->len || !memcmp(b->data, want, b->len)); }

static void plain(void)
{
	struct httpserver *srv = httpserver_start(answer, NULL, &port);
	struct atkv_httpc *c = NULL;
	char why[256] = "";
	tap_ok(atkv_httpc_new(NULL, 500, "atkv-test", &c, why, sizeof(why)) == 0, "a client%s", why);
	struct atkv_buf body = ATKV_BUF_INIT;
	struct atkv_http_response r = {0};
	int rc = get(c, "/len", 1 << 20, &body, &r, why, sizeof(why));
	tap_ok(rc == 0 && r.status == 200 && body_is(&body, "hello"), "a body by Content-Length: %s", rc ? why : "hello");
	rc = get(c, "/chunked", 1 << 20, &body, &r, why, sizeof(why));
	tap_ok(rc == 0 && body_is(&body, "abcde"), "a chunked body: %s", rc ? why : "abcde");
	rc = get(c, "/len", 1 << 20, &body, &r, why, sizeof(why));
	tap_ok(rc == 0 && atkv_httpc_connections(c) == 1 && httpserver_connections(srv) == 1,
	       "three requests on one kept-alive connection (%lu)",
	       atkv_httpc_connections(c));
	rc = get(c, "/close", 1 << 20, &body, &r, why, sizeof(why));
	rc |= get(c, "/len", 1 << 20, &body, &r, why, sizeof(why));
	tap_ok(rc == 0 && atkv_httpc_connections(c) == 2, "after Connection: close, a new connection (%lu)",
	       atkv_httpc_connections(c));
	rc = get(c, "/drop", 1 << 20, &body, &r, why, sizeof(why));
	sleep_ms(100);
	rc |= get(c, "/len", 1 << 20, &body, &r, why, sizeof(why));
	tap_ok(rc == 0 && body_is(&body, "hello") && atkv_httpc_connections(c) == 3,
	       "a kept connection the server dropped: retried once on a new one (%s)", rc ? why : "ok");
	rc = get(c, "/429", 1 << 20, &body, &r, why, sizeof(why));
	tap_ok(rc == 0 && r.status == 429 && r.retry_after_s == 7, "429 with Retry-After: 7 s");
	rc = get(c, "/big", 1000, &body, &r, why, sizeof(why));
	tap_ok(rc == -1 && strstr(why, "length beyond"), "a body over the limit: refused (%s)", why);
	rc = get(c, "/stall", 1 << 20, &body, &r, why, sizeof(why));
	tap_ok(rc == -1 && strstr(why, "sent nothing for the timeout"), "a silent server: given up on (%s)", why);
	/* Each wait is under the timeout (500 ms); the GET as a whole is bounded to 1 s. A server
	 * of its own: the one above is still sleeping in /stall. */
	int first_port = port;
	struct httpserver *trickler = httpserver_start(answer, NULL, &port);
	atkv_httpc_set_total(c, 1000);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = get(c, "/trickle", 1 << 20, &body, &r, why, sizeof(why));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	tap_ok(rc == -1 && took >= 0.9 && took < 2.9 && strstr(why, "longer than 1000 ms"),
	       "a server trickling a byte every 100 ms: given up on after the total of 1 s (%.1f s: %s)", took, why);
	atkv_httpc_set_total(c, 0);
	httpserver_stop(trickler);
	port = first_port;
	atkv_buf_free(&body);
	atkv_http_response_free(&r);
	atkv_httpc_free(c);
	httpserver_stop(srv);
}

/* https:// against openssl s_server -WWW, serving files of a directory the test made. */
static void tls(void)
{
	char dir[] = "/tmp/atkv-test-httpconn.XXXXXX", cmd[2048], url[160], ca[160], why[256] = "";
	if (!mkdtemp(dir)) {
		tap_ok(false, "a temporary directory");
		return;
	}
	snprintf(cmd, sizeof(cmd),
	         "(cd '%s' && printf 'subjectAltName=DNS:localhost\\n' > ext && "
	         "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem "
	         "-days 2 -subj /CN=atkv-test-ca && "
	         "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key -out srv.csr -subj /CN=localhost && "
	         "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext && "
	         "printf 'over tls' > hello.txt) >/dev/null 2>&1",
	         dir);
	bool made = system(cmd) == 0;
	int tls_port = spawn_free_port();
	char accept_arg[32], cert[160], key[160], log[160];
	snprintf(accept_arg, sizeof(accept_arg), "127.0.0.1:%d", tls_port);
	snprintf(cert, sizeof(cert), "%s/srv.pem", dir);
	snprintf(key, sizeof(key), "%s/srv.key", dir);
	snprintf(log, sizeof(log), "%s/s_server.log", dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	char *argv[] = {"sh", "-c", "cd \"$0\" && exec openssl s_server -quiet -WWW -accept \"$1\" -cert \"$2\" -key \"$3\"",
	                dir, accept_arg, cert, key, NULL};
	pid_t server = made ? spawn(argv, NULL, log) : -1;
	tap_ok(made && server > 0, "a TLS server with a certificate from the test's own CA");
	snprintf(url, sizeof(url), "https://localhost:%d/hello.txt", tls_port);
	struct atkv_httpc *c = NULL;
	struct atkv_buf body = ATKV_BUF_INIT;
	struct atkv_http_response r = {0};
	int rc = -1;
	atkv_httpc_new(ca, 2000, "atkv-test", &c, why, sizeof(why));
	for (int t = 0; c && t < 50 && rc; t++) {
		rc = atkv_httpc_get(c, url, "*/*", 1 << 20, &body, &r, why, sizeof(why));
		if (rc)
			sleep_ms(100);
	}
	tap_ok(rc == 0 && r.status == 200 && body_is(&body, "over tls"), "https:// with the CA: %s", rc ? why : "over tls");
	atkv_httpc_free(c);
	c = NULL;
	atkv_httpc_new(NULL, 2000, "atkv-test", &c, why, sizeof(why));
	rc = c ? atkv_httpc_get(c, url, "*/*", 1 << 20, &body, &r, why, sizeof(why)) : 0;
	tap_ok(rc == -1 && strstr(why, "verif"), "without it: refused (%s)", why);
	atkv_httpc_free(c);
	atkv_buf_free(&body);
	atkv_http_response_free(&r);
	if (server > 0)
		spawn_stop(server, SIGTERM, 5000);
	tap_remove_dir(dir);
}

int main(void)
{
	plain();
	tls();
	return tap_done();
}
