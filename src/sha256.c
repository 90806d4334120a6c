/* sha256.c — a reusable SHA-256 hasher on libcrypto's EVP interface (see sha256.h). */
#include "sha256.h"
#include "err.h"

#include <openssl/evp.h>
#include <stdlib.h>

struct atkv_sha256 {
	EVP_MD *md;
	EVP_MD_CTX *ctx;
};

struct atkv_sha256 *atkv_sha256_new(void)
{
	struct atkv_sha256 *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	h->ctx = EVP_MD_CTX_new();
	if (!h->md || !h->ctx) {
		atkv_sha256_free(h);
		return NULL;
	}
	return h;
}

void atkv_sha256_free(struct atkv_sha256 *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	EVP_MD_free(h->md);
	free(h);
}

int atkv_sha256(struct atkv_sha256 *h, const void *p, size_t n, uint8_t out[32])
{
	unsigned int len = 0;
	if (!EVP_DigestInit_ex(h->ctx, h->md, NULL) || !EVP_DigestUpdate(h->ctx, p, n) ||
	    !EVP_DigestFinal_ex(h->ctx, out, &len) || len != 32)
		return ATKV_E_NOMEM;
	return 0;
}
