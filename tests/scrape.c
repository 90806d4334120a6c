/* scrape.c — see scrape.h. */
#include "scrape.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void scrape_get(int port, const char *path, char *buf, size_t n)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t got = 0;
	buf[0] = '\0';
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	char req[256];
	int rl = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
	if (write(fd, req, (size_t)rl) == rl) {
		ssize_t r;
		while (got + 1 < n && (r = read(fd, buf + got, n - got - 1)) > 0)
			got += (size_t)r;
	}
	buf[got] = '\0';
	close(fd);
}

double scrape_value(const char *page, const char *sample)
{
	char needle[192];
	snprintf(needle, sizeof(needle), "\n%s ", sample);
	const char *p = strstr(page, needle);
	return p ? strtod(p + strlen(needle), NULL) : -1;
}
