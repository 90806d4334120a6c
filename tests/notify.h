/* notify.h — a NOTIFY_SOCKET for integration tests, read all the time by a thread as systemd
 * reads its own: the socket's queue is short (net.unix.max_dgram_qlen, often 10) and a full one
 * blocks the service that writes to it. One per test program. */
#ifndef ATKV_TEST_NOTIFY_H
#define ATKV_TEST_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>

/* Binds DIR/notify and starts the reader; path gets the socket's path (for NOTIFY_SOCKET=).
 * Returns 0, or -1 after printing why. */
int notify_start(const char *dir, char *path, size_t path_n);
/* Moves what was said since the last call into buf, one message per line. */
void notify_take(char *buf, size_t n);
/* True when what was said and not taken yet contains what. */
bool notify_said(const char *what);
/* Stops the reader and closes the socket. */
void notify_stop(void);

#endif
