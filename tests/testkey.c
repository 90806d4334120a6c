/* testkey.c — see testkey.h. */
#include "testkey.h"
#include "didkey.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <stdlib.h>

void testkey_new(struct testkey *k)
{
	EVP_PKEY *p = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
	uint8_t point[65];
	size_t n = 0;
	if (!p || !EVP_PKEY_get_octet_string_param(p, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, sizeof(point), &n) ||
	    n != 65)
		abort();
	/* Compressed: the parity of y, then x. */
	struct atkv_pubkey pub = {.curve = ATKV_CURVE_K256};
	pub.point[0] = (uint8_t)(2 | (point[64] & 1));
	for (int i = 0; i < 32; i++)
		pub.point[1 + i] = point[1 + i];
	char didkey[ATKV_DIDKEY_MAX];
	if (atkv_didkey_format(&pub, didkey, sizeof(didkey)) < 0)
		abort();
	/* "did:key:z...": the multibase is what follows "did:key:". */
	const char *z = didkey + 8;
	size_t i = 0;
	for (; z[i] && i + 1 < sizeof(k->multibase); i++)
		k->multibase[i] = z[i];
	k->multibase[i] = '\0';
	k->pkey = p;
}

void testkey_free(struct testkey *k)
{
	EVP_PKEY_free(k->pkey);
	k->pkey = NULL;
}

void testkey_sign(const struct testkey *k, const void *msg, size_t n, uint8_t sig[64])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t der[80];
	size_t der_n = sizeof(der);
	if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) != 1 ||
	    EVP_DigestSign(ctx, der, &der_n, msg, n) != 1)
		abort();
	EVP_MD_CTX_free(ctx);
	const uint8_t *at = der;
	ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &at, (long)der_n);
	EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_secp256k1);
	BIGNUM *low = BN_new(), *half = BN_new();
	if (!s || !g || !low || !half)
		abort();
	const BIGNUM *r, *sv, *order = EC_GROUP_get0_order(g);
	ECDSA_SIG_get0(s, &r, &sv);
	BN_rshift1(half, order);
	/* atproto takes only the low-S form of a signature. */
	if (BN_cmp(sv, half) > 0)
		BN_sub(low, order, sv);
	else
		BN_copy(low, sv);
	if (BN_bn2binpad(r, sig, 32) != 32 || BN_bn2binpad(low, sig + 32, 32) != 32)
		abort();
	BN_free(low);
	BN_free(half);
	EC_GROUP_free(g);
	ECDSA_SIG_free(s);
}
