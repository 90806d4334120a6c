/* sha256.h — SHA-256 through OpenSSL's libcrypto, with the digest fetched once per hasher:
 * OpenSSL 3's one-shot SHA256() looks the algorithm up on every call, which costs as much as
 * hashing a typical record. */
#ifndef ATKV_SHA256_H
#define ATKV_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct atkv_sha256;

/* Returns a new hasher, or NULL when libcrypto cannot provide SHA-256 or memory is short.
 * Free with atkv_sha256_free. One hasher must not be used by two threads at once. */
struct atkv_sha256 *atkv_sha256_new(void);
void atkv_sha256_free(struct atkv_sha256 *h);

/* Writes the SHA-256 of p[0..n) into out. Returns 0, or ATKV_E_NOMEM if libcrypto fails. */
int atkv_sha256(struct atkv_sha256 *h, const void *p, size_t n, uint8_t out[32]);

#endif
