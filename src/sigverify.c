/* sigverify.c — ECDSA verification for atproto (see sigverify.h). libcrypto wants DER
 * signatures; atproto sends r||s, so each is wrapped in DER here after the low-S check.
 * secp256k1 keys go to libsecp256k1 when it is built in (HAVE_SECP256K1): it verifies in a
 * tenth of libcrypto's time, from r||s as given, with its static context (nothing to set up,
 * nothing shared that changes). */
#include "sigverify.h"
#include "err.h"

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>
#ifdef HAVE_SECP256K1
#include <secp256k1.h>
#endif
#include <stdlib.h>
#include <string.h>

struct atkv_sigkey {
	EVP_PKEY *pkey;          /* NULL for a secp256k1 key libsecp256k1 holds: */
#ifdef HAVE_SECP256K1
	secp256k1_pubkey k256;
#endif
	struct atkv_pubkey pub;
	enum atkv_curve curve;
	int refs;                /* holders: a cache and the verifications using its entry */
};

/* Half the order of each curve's group, big-endian: an s above it is "high". */
static const uint8_t P256_HALF_ORDER[32] = {
	0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
};
static const uint8_t K256_HALF_ORDER[32] = {
	0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
};

#ifdef HAVE_SECP256K1
static int load_k256(const struct atkv_pubkey *k, struct atkv_sigkey **out)
{
	struct atkv_sigkey *key = calloc(1, sizeof(*key));
	if (!key)
		return ATKV_E_NOMEM;
	/* Parsing decodes the point, which fails when it is not on the curve. */
	if (!secp256k1_ec_pubkey_parse(secp256k1_context_static, &key->k256, k->point, ATKV_POINT_BYTES)) {
		free(key);
		return ATKV_E_SIGNATURE;
	}
	key->curve = k->curve;
	key->pub = *k;
	key->refs = 1;
	*out = key;
	return 0;
}

static int verify_k256(const struct atkv_sigkey *key, const uint8_t *msg, size_t n, const uint8_t sig[64])
{
	uint8_t hash[SHA256_DIGEST_LENGTH];
	secp256k1_ecdsa_signature s;
	SHA256(msg, n, hash);
	/* A high S was refused already; libsecp256k1 refuses it as well. */
	if (!secp256k1_ecdsa_signature_parse_compact(secp256k1_context_static, &s, sig) ||
	    !secp256k1_ecdsa_verify(secp256k1_context_static, &s, hash, &key->k256))
		return ATKV_E_SIGNATURE;
	return 0;
}
#endif

int atkv_sigkey_load(const struct atkv_pubkey *k, struct atkv_sigkey **out)
{
#ifdef HAVE_SECP256K1
	if (k->curve == ATKV_CURVE_K256)
		return load_k256(k, out);
#endif
	struct atkv_sigkey *key = calloc(1, sizeof(*key));
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	int rc = ATKV_E_NOMEM;
	if (!key || !bld || !ctx ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
	                                     k->curve == ATKV_CURVE_P256 ? "prime256v1" : "secp256k1", 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, k->point, ATKV_POINT_BYTES) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld)) || EVP_PKEY_fromdata_init(ctx) != 1)
		goto out;
	/* Importing decodes the point, which fails when it is not on the curve. */
	rc = ATKV_E_SIGNATURE;
	if (EVP_PKEY_fromdata(ctx, &key->pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	key->curve = k->curve;
	key->pub = *k;
	key->refs = 1;
	*out = key;
	key = NULL;
	rc = 0;
out:
	atkv_sigkey_free(key);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return rc;
}

const struct atkv_pubkey *atkv_sigkey_pub(const struct atkv_sigkey *key) { return &key->pub; }

struct atkv_sigkey *atkv_sigkey_ref(struct atkv_sigkey *key)
{
	__atomic_add_fetch(&key->refs, 1, __ATOMIC_RELAXED);
	return key;
}

void atkv_sigkey_free(struct atkv_sigkey *key)
{
	if (!key || __atomic_sub_fetch(&key->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	EVP_PKEY_free(key->pkey);
	free(key);
}

/* r||s as the DER ECDSA-Sig-Value libcrypto verifies; returns its length, or 0. */
static int to_der(const uint8_t sig[64], uint8_t *der, int cap)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
	int n = 0;
	if (es && r && s && ECDSA_SIG_set0(es, r, s)) {
		r = s = NULL; /* es owns them */
		if (i2d_ECDSA_SIG(es, NULL) <= cap)
			n = i2d_ECDSA_SIG(es, &der);
	}
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	return n > 0 ? n : 0;
}

int atkv_sig_verify(const struct atkv_sigkey *key, const uint8_t *msg, size_t n, const uint8_t *sig, size_t sig_n)
{
	if (sig_n != 64)
		return ATKV_E_SIGNATURE;
	const uint8_t *half = key->curve == ATKV_CURVE_P256 ? P256_HALF_ORDER : K256_HALF_ORDER;
	if (memcmp(sig + 32, half, 32) > 0)
		return ATKV_E_SIGNATURE;
#ifdef HAVE_SECP256K1
	if (!key->pkey)
		return verify_k256(key, msg, n, sig);
#endif
	uint8_t der[80];
	int der_n = to_der(sig, der, (int)sizeof(der));
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!der_n || !md) {
		EVP_MD_CTX_free(md);
		return ATKV_E_NOMEM;
	}
	int ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key->pkey) == 1 &&
	         EVP_DigestVerify(md, der, (size_t)der_n, msg, n) == 1;
	EVP_MD_CTX_free(md);
	return ok ? 0 : ATKV_E_SIGNATURE;
}
