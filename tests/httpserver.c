/* httpserver.c — the tests' HTTP server thread (see httpserver.h). One connection at a time is
 * plenty for the clients under test, which are single-threaded. */
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
	pthread_t thread;
	httpserver_handler handler;
	void *arg;
	volatile int connections;
};

bool httpserver_reply(int fd, int status, const char *headers, const void *body, size_t n)
{
	char head[1024];
	int hn = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\n%sContent-Length: %zu\r\n\r\n", status, headers, n);
	return send(fd, head, (size_t)hn, MSG_NOSIGNAL) == hn && (!n || send(fd, body, n, MSG_NOSIGNAL) == (ssize_t)n);
}

static void *serve(void *arg)
{
	struct httpserver *s = arg;
	for (;;) {
		int fd = accept(s->fd, NULL, NULL);
		if (fd < 0)
			return NULL;
		s->connections++;
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
	struct httpserver *s = calloc(1, sizeof(*s));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	if (!s || (s->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(s->fd, 16) || getsockname(s->fd, (struct sockaddr *)&a, &len)) {
		free(s);
		return NULL;
	}
	*port = ntohs(a.sin_port);
	s->handler = handler;
	s->arg = arg;
	if (pthread_create(&s->thread, NULL, serve, s)) {
		close(s->fd);
		free(s);
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
	pthread_join(s->thread, NULL);
	free(s);
}

int httpserver_connections(const struct httpserver *s) { return s->connections; }
