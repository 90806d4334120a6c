/* notify.c — the tests' NOTIFY_SOCKET reader (see notify.h). */
#include "notify.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int fd = -1;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char text[1 << 16];

static void *reader(void *arg)
{
	char d[1024];
	ssize_t got;
	(void)arg;
	while ((got = recv(fd, d, sizeof(d) - 1, 0)) > 0) {
		d[got] = '\0';
		pthread_mutex_lock(&mu);
		size_t len = strlen(text);
		/* Keep the newest messages when the buffer fills: the older half goes, from a line
		 * boundary (never all at once, which a check could fall between). */
		if (len + (size_t)got + 2 > sizeof(text)) {
			char *keep = strchr(text + len / 2, '\n');
			size_t from = keep ? (size_t)(keep + 1 - text) : len;
			memmove(text, text + from, len - from + 1);
			len -= from;
		}
		snprintf(text + len, sizeof(text) - len, "%s\n", d);
		pthread_mutex_unlock(&mu);
	}
	return NULL;
}

int notify_start(const char *dir, char *path, size_t path_n)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(path, path_n, "%s/notify", dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", path);
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	pthread_t t;
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || pthread_create(&t, NULL, reader, NULL)) {
		fprintf(stderr, "cannot listen on the notify socket %s\n", path);
		return -1;
	}
	pthread_detach(t);
	return 0;
}

void notify_take(char *buf, size_t n)
{
	pthread_mutex_lock(&mu);
	snprintf(buf, n, "%s", text);
	text[0] = '\0';
	pthread_mutex_unlock(&mu);
}

bool notify_said(const char *what)
{
	pthread_mutex_lock(&mu);
	bool yes = strstr(text, what) != NULL;
	pthread_mutex_unlock(&mu);
	return yes;
}

void notify_stop(void)
{
	if (fd < 0)
		return;
	shutdown(fd, SHUT_RDWR);
	close(fd);
	fd = -1;
}
