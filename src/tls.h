/* tls.h — a TLS client over memory buffers (OpenSSL): the relay connection's transport moves
 * ciphertext in and out, this turns it into plaintext and back. The server is verified against
 * the system's CAs (or a given bundle) and the host name it was reached by. libwebsockets 4.1
 * cannot start TLS on a raw client connection, which is why atkv does this part itself. */
#ifndef ATKV_TLS_H
#define ATKV_TLS_H

#include "buf.h"

#include <stddef.h>

struct atkv_tls_context; /* shared by the connections to one relay */
struct atkv_tls;         /* one connection */

/* ca_file NULL: the system's CAs. Returns 0, or -1 with why. */
int atkv_tls_context_new(const char *ca_file, struct atkv_tls_context **out, char *why, size_t why_n);
void atkv_tls_context_free(struct atkv_tls_context *c);

/* Starts a client handshake with host (a name or an IP literal). Returns 0, or -1 with why. */
int atkv_tls_new(struct atkv_tls_context *c, const char *host, struct atkv_tls **out, char *why, size_t why_n);
void atkv_tls_free(struct atkv_tls *t);

/* Ciphertext that arrived. Returns 0, or -1 when out of memory. */
int atkv_tls_put(struct atkv_tls *t, const void *p, size_t n);

/* Moves the handshake on: 1 once it is complete, 0 while it needs more from the server, -1 with
 * why when it failed (a certificate that does not verify, a protocol error). */
int atkv_tls_handshake(struct atkv_tls *t, char *why, size_t why_n);

/* Appends the plaintext available so far to out. Returns 0, or -1 with why when the connection
 * failed or the server closed it; what came before the end is appended even then, so the
 * caller can use it before giving up the connection. */
int atkv_tls_read(struct atkv_tls *t, struct atkv_buf *out, char *why, size_t why_n);

/* Encrypts p[0..n) after the handshake. Returns 0, or -1 with why. */
int atkv_tls_write(struct atkv_tls *t, const void *p, size_t n, char *why, size_t why_n);

/* Appends the ciphertext waiting to be sent to out. Returns 0, or -1 when out of memory. */
int atkv_tls_take(struct atkv_tls *t, struct atkv_buf *out);

#endif
