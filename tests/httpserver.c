/* httpserver.c — the tests' HTTP server threads (see httpserver.h). Each serves one connection
 * at a time, all accepting on the same socket. */
#define _DEFAULT_SOURCE
#include "httpserver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct httpserver {
	int fd;
	pthread_t threads[HTTPSERVER_MAX_THREADS];
	int n_threads;
	httpserver_handler handler;
	void *arg;
	int connections;
};

bool httpserver_reply(int fd, int status, const char *headers, const void *body, size_t n)
{
	char head[1024];
	int hn = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\n%sContent-Length: %zu\r\n\r\n", status, headers, n);
	/* MSG_MORE: head and body leave together, not the body a delayed ACK later (Nagle). */
	return send(fd, head, (size_t)hn, MSG_NOSIGNAL | (n ? MSG_MORE : 0)) == hn &&
	       (!n || send(fd, body, n, MSG_NOSIGNAL) == (ssize_t)n);
}

static void *serve(void *arg)
{
	struct httpserver *s = arg;
	for (;;) {
		int fd = accept(s->fd, NULL, NULL);
		if (fd < 0)
			return NULL;
		__atomic_add_fetch(&s->connections, 1, __ATOMIC_RELAXED);
		char in[8192];
		size_t have = 0;
		for (bool open = true; open;) {
			ssize_t r = recv(fd, in + have, sizeof(in) - have - 1, 0);
			if (r <= 0)
				break;
			have += (size_t)r;
			in[have] = '\0';
			char *end;
			while (open && (end = strstr(in, "\r\n\r\n"))) {
				char path[4096] = "";
				sscanf(in, "GET %4095s", path);
				open = s->handler(fd, path, s->arg);
				size_t used = (size_t)(end + 4 - in);
				memmove(in, end + 4, have - used + 1);
				have -= used;
			}
		}
		close(fd);
	}
}

struct httpserver *httpserver_start(httpserver_handler handler, void *arg, int *port)
{
	return httpserver_start_threads(handler, arg, port, 1);
}

struct httpserver *httpserver_start_threads(httpserver_handler handler, void *arg, int *port, int threads)
{
	if (threads < 1 || threads > HTTPSERVER_MAX_THREADS)
		return NULL;
	struct httpserver *s = calloc(1, sizeof(*s));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	if (!s || (s->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(s->fd, 64) || getsockname(s->fd, (struct sockaddr *)&a, &len)) {
		free(s);
		return NULL;
	}
	*port = ntohs(a.sin_port);
	s->handler = handler;
	s->arg = arg;
	for (; s->n_threads < threads; s->n_threads++)
		if (pthread_create(&s->threads[s->n_threads], NULL, serve, s)) {
			httpserver_stop(s);
			return NULL;
		}
	return s;
}

void httpserver_stop(struct httpserver *s)
{
	if (!s)
		return;
	shutdown(s->fd, SHUT_RDWR);
	close(s->fd);
	for (int i = 0; i < s->n_threads; i++)
		pthread_join(s->threads[i], NULL);
	free(s);
}

int httpserver_connections(const struct httpserver *s) { return __atomic_load_n(&s->connections, __ATOMIC_RELAXED); }
