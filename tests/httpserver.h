/* httpserver.h — a small HTTP/1.1 server in a thread of a test, on a free loopback port: each
 * request's line is handed to the test's handler, which writes the whole response; the
 * connection stays open for the next request unless the handler says to close it. One
 * connection is served at a time unless more threads are asked for. */
#ifndef ATKV_TESTS_HTTPSERVER_H
#define ATKV_TESTS_HTTPSERVER_H

#include <stdbool.h>
#include <stddef.h>

/* Answers the request for path on fd (send the full response); returns false to close. */
typedef bool (*httpserver_handler)(int fd, const char *path, void *arg);

struct httpserver;

/* Starts the server; *port gets its port. NULL when it cannot listen. */
struct httpserver *httpserver_start(httpserver_handler handler, void *arg, int *port);
/* The same with `threads` connections served at once (the handler must then be thread-safe). */
#define HTTPSERVER_MAX_THREADS 64
struct httpserver *httpserver_start_threads(httpserver_handler handler, void *arg, int *port, int threads);
/* Stops it: no more connections, the thread joined. */
void httpserver_stop(struct httpserver *s);
/* Connections accepted so far. */
int httpserver_connections(const struct httpserver *s);
/* Sends a response with status, extra header lines ("" or "Name: v\r\n..."), and a body. */
bool httpserver_reply(int fd, int status, const char *headers, const void *body, size_t n);

#endif
