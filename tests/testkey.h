/* testkey.h — signing keys of a test's own (secp256k1, as most atproto accounts use), for
 * repositories and commits whose signatures atkv must find valid: sign as atproto does (the
 * SHA-256 of the message, a 64-byte r||s with s in the lower half of the order). */
#ifndef ATKV_TESTS_TESTKEY_H
#define ATKV_TESTS_TESTKEY_H

#include <stddef.h>
#include <stdint.h>

struct testkey {
	void *pkey;                 /* EVP_PKEY */
	char multibase[64];         /* the public key as a Multikey ("zQ3s...") */
};

/* A new random key; aborts when OpenSSL cannot make one. */
void testkey_new(struct testkey *k);
void testkey_free(struct testkey *k);

/* msg[0..n) signed into sig. Aborts on failure. */
void testkey_sign(const struct testkey *k, const void *msg, size_t n, uint8_t sig[64]);

#endif
