/* tls.c — a TLS client over memory buffers (see tls.h). */
#include "tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* A TLS record is at most 16 KiB of plaintext: reading in that unit wastes no call. */
#define READ_CHUNK 16384

struct atkv_tls_context {
	SSL_CTX *ctx;
};

struct atkv_tls {
	SSL *ssl;
	BIO *in;  /* ciphertext from the server, owned by ssl */
	BIO *out; /* ciphertext for the server, owned by ssl */
	const char *host;
};

/* The oldest queued OpenSSL error as text, emptying the queue. */
static void openssl_error(const char *what, char *why, size_t why_n)
{
	unsigned long e = ERR_get_error();
	char text[256];
	if (e)
		ERR_error_string_n(e, text, sizeof(text));
	else
		snprintf(text, sizeof(text), "unknown error");
	ERR_clear_error();
	snprintf(why, why_n, "%s: %s", what, text);
}

int atkv_tls_context_new(const char *ca_file, struct atkv_tls_context **out, char *why, size_t why_n)
{
	struct atkv_tls_context *c = calloc(1, sizeof(*c));
	if (!c || !(c->ctx = SSL_CTX_new(TLS_client_method()))) {
		free(c);
		openssl_error("cannot set up TLS", why, why_n);
		return -1;
	}
	SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	int ok = ca_file ? SSL_CTX_load_verify_locations(c->ctx, ca_file, NULL) : SSL_CTX_set_default_verify_paths(c->ctx);
	if (ok != 1) {
		char what[300];
		snprintf(what, sizeof(what), "cannot load the CA bundle %.200s", ca_file ? ca_file : "of the system");
		openssl_error(what, why, why_n);
		atkv_tls_context_free(c);
		return -1;
	}
	*out = c;
	return 0;
}

void atkv_tls_context_free(struct atkv_tls_context *c)
{
	if (!c)
		return;
	SSL_CTX_free(c->ctx);
	free(c);
}

int atkv_tls_new(struct atkv_tls_context *c, const char *host, struct atkv_tls **out, char *why, size_t why_n)
{
	struct atkv_tls *t = calloc(1, sizeof(*t));
	if (!t || !(t->ssl = SSL_new(c->ctx)) || !(t->in = BIO_new(BIO_s_mem())) || !(t->out = BIO_new(BIO_s_mem()))) {
		if (t) {
			BIO_free(t->in);
			SSL_free(t->ssl);
			free(t);
		}
		openssl_error("cannot start TLS", why, why_n);
		return -1;
	}
	/* An empty input buffer means "wait for more", not end of stream. */
	BIO_set_mem_eof_return(t->in, -1);
	SSL_set_bio(t->ssl, t->in, t->out);
	SSL_set_connect_state(t->ssl);
	t->host = host;
	unsigned char addr[16];
	bool ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
	X509_VERIFY_PARAM *param = SSL_get0_param(t->ssl);
	/* A name gets SNI and is checked against the certificate's names; an address against its
	 * IP addresses. */
	int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host)
	            : SSL_set_tlsext_host_name(t->ssl, host) == 1 && SSL_set1_host(t->ssl, host) == 1;
	if (ok != 1) {
		openssl_error("cannot set the TLS server name", why, why_n);
		atkv_tls_free(t);
		return -1;
	}
	*out = t;
	return 0;
}

void atkv_tls_free(struct atkv_tls *t)
{
	if (!t)
		return;
	SSL_free(t->ssl);
	free(t);
}

int atkv_tls_put(struct atkv_tls *t, const void *p, size_t n)
{
	size_t done = 0;
	return n == 0 || (BIO_write_ex(t->in, p, n, &done) == 1 && done == n) ? 0 : -1;
}

/* Why the last call on t->ssl, which returned rc, failed; 0 when it only waits for input. */
static int failure(struct atkv_tls *t, int rc, char *why, size_t why_n)
{
	switch (SSL_get_error(t->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		snprintf(why, why_n, "the relay closed the TLS connection");
		return -1;
	default:
		break;
	}
	long v = SSL_get_verify_result(t->ssl);
	if (v != X509_V_OK) {
		ERR_clear_error();
		snprintf(why, why_n, "the TLS certificate of %.200s does not verify: %s", t->host,
		         X509_verify_cert_error_string(v));
		return -1;
	}
	openssl_error("TLS failed", why, why_n);
	return -1;
}

int atkv_tls_handshake(struct atkv_tls *t, char *why, size_t why_n)
{
	if (SSL_is_init_finished(t->ssl))
		return 1;
	ERR_clear_error();
	int rc = SSL_do_handshake(t->ssl);
	if (rc == 1)
		return 1;
	return failure(t, rc, why, why_n);
}

int atkv_tls_read(struct atkv_tls *t, struct atkv_buf *out, char *why, size_t why_n)
{
	for (;;) {
		if (atkv_buf_reserve(out, READ_CHUNK)) {
			snprintf(why, why_n, "out of memory");
			return -1;
		}
		size_t n = 0;
		ERR_clear_error();
		int rc = SSL_read_ex(t->ssl, out->data + out->len, READ_CHUNK, &n);
		if (rc != 1)
			return failure(t, rc, why, why_n);
		out->len += n;
		out->data[out->len] = '\0';
	}
}

int atkv_tls_write(struct atkv_tls *t, const void *p, size_t n, char *why, size_t why_n)
{
	size_t done = 0;
	ERR_clear_error();
	int rc = SSL_write_ex(t->ssl, p, n, &done);
	if (rc == 1 && done == n)
		return 0;
	if (failure(t, rc, why, why_n) == 0)
		snprintf(why, why_n, "TLS write before the handshake finished");
	return -1;
}

int atkv_tls_take(struct atkv_tls *t, struct atkv_buf *out)
{
	size_t pending = BIO_ctrl_pending(t->out);
	if (!pending)
		return 0;
	if (atkv_buf_reserve(out, pending))
		return -1;
	size_t got = 0;
	if (BIO_read_ex(t->out, out->data + out->len, pending, &got) != 1)
		return -1;
	out->len += got;
	out->data[out->len] = '\0';
	return 0;
}
