/* didkey.c — did:key and publicKeyMultibase read and written (see didkey.h). Base58 is done
 * here, on at most a few dozen bytes: schoolbook base conversion is plenty. */
#include "didkey.h"
#include "err.h"

#include <openssl/bn.h>
#include <stdbool.h>
#include <string.h>

static const char b58[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/* The multicodec varints of the two key types, as they open the decoded bytes. */
static const uint8_t P256_PREFIX[] = {0x80, 0x24};
static const uint8_t K256_PREFIX[] = {0xe7, 0x01};

/* Base58btc s[0..n) into out (big-endian, leading '1's as zero bytes). Returns the length,
 * or -1 when a character is not base58 or the value does not fit in cap bytes. */
static long b58_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
	size_t zeros = 0, len = 0; /* len: bytes of the value so far, little-endian in out */
	while (zeros < n && s[zeros] == '1')
		zeros++;
	for (size_t i = zeros; i < n; i++) {
		const char *at = s[i] ? memchr(b58, s[i], sizeof(b58) - 1) : NULL;
		if (!at)
			return -1;
		unsigned carry = (unsigned)(at - b58);
		for (size_t j = 0; j < len; j++) {
			carry += (unsigned)out[j] * 58;
			out[j] = (uint8_t)carry;
			carry >>= 8;
		}
		for (; carry; carry >>= 8) {
			if (len == cap)
				return -1;
			out[len++] = (uint8_t)carry;
		}
	}
	if (len + zeros > cap)
		return -1;
	for (size_t i = 0; i < len / 2; i++) {
		uint8_t t = out[i];
		out[i] = out[len - 1 - i];
		out[len - 1 - i] = t;
	}
	memmove(out + zeros, out, len);
	memset(out, 0, zeros);
	return (long)(len + zeros);
}

/* p[0..n) big-endian in base58btc into out. Returns the length, or -1 when cap is too small. */
static long b58_encode(const uint8_t *p, size_t n, char *out, size_t cap)
{
	uint8_t digits[96]; /* little-endian base-58 digits: 35 bytes need 48 */
	size_t len = 0, zeros = 0;
	while (zeros < n && !p[zeros])
		zeros++;
	for (size_t i = zeros; i < n; i++) {
		unsigned carry = p[i];
		for (size_t j = 0; j < len; j++) {
			carry += (unsigned)digits[j] << 8;
			digits[j] = (uint8_t)(carry % 58);
			carry /= 58;
		}
		for (; carry; carry /= 58) {
			if (len == sizeof(digits))
				return -1;
			digits[len++] = (uint8_t)(carry % 58);
		}
	}
	if (zeros + len >= cap)
		return -1;
	size_t k = 0;
	for (; k < zeros; k++)
		out[k] = '1';
	for (size_t j = len; j--;)
		out[k++] = b58[digits[j]];
	out[k] = '\0';
	return (long)k;
}

/* Whether (x, y) is a point of the curve: y^2 = x^3 + ax + b over its prime field (secp256k1:
 * a = 0, b = 7; P-256: a = -3). A compressed point is checked when it is loaded; an
 * uncompressed one is checked here, before its y is dropped. */
static bool on_curve(enum atkv_curve curve, const uint8_t x[32], const uint8_t y[32])
{
	static const char *const p256_p = "FFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF";
	static const char *const p256_b = "5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B";
	static const char *const k256_p = "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F";
	bool p256 = curve == ATKV_CURVE_P256;
	BN_CTX *ctx = BN_CTX_new();
	BIGNUM *p = NULL, *b = NULL, *bx = BN_bin2bn(x, 32, NULL), *by = BN_bin2bn(y, 32, NULL), *lhs = BN_new(),
	       *rhs = BN_new(), *t = BN_new(), *three = BN_new();
	bool ok = ctx && bx && by && lhs && rhs && t && three && BN_hex2bn(&p, p256 ? p256_p : k256_p) &&
	          BN_hex2bn(&b, p256 ? p256_b : "07") && BN_cmp(bx, p) < 0 && BN_cmp(by, p) < 0 &&
	          BN_mod_sqr(lhs, by, p, ctx) && BN_mod_sqr(t, bx, p, ctx) && BN_mod_mul(rhs, t, bx, p, ctx) &&
	          BN_mod_add(rhs, rhs, b, p, ctx);
	if (ok && p256)
		ok = BN_set_word(three, 3) && BN_mod_mul(t, bx, three, p, ctx) && BN_mod_sub(rhs, rhs, t, p, ctx);
	ok = ok && BN_cmp(lhs, rhs) == 0;
	BN_free(p);
	BN_free(b);
	BN_free(bx);
	BN_free(by);
	BN_free(lhs);
	BN_free(rhs);
	BN_free(t);
	BN_free(three);
	BN_CTX_free(ctx);
	return ok;
}

/* A point of curve, compressed (33 bytes) or uncompressed (65: checked on the curve, then
 * compressed here from x and y's parity). */
static int point(const uint8_t *raw, long len, enum atkv_curve curve, struct atkv_pubkey *k)
{
	k->curve = curve;
	if (len == 65 && raw[0] == 0x04) {
		if (!on_curve(curve, raw + 1, raw + 33))
			return ATKV_E_SIGNATURE;
		k->point[0] = (uint8_t)(0x02 | (raw[64] & 1));
		memcpy(k->point + 1, raw + 1, 32);
		return 0;
	}
	if (len != ATKV_POINT_BYTES || (raw[0] != 0x02 && raw[0] != 0x03))
		return ATKV_E_SIGNATURE;
	memcpy(k->point, raw, ATKV_POINT_BYTES);
	return 0;
}

/* The bytes of a base58btc multibase s[0..n) into raw; their length, or -1. */
static long multibase(const char *s, size_t n, uint8_t *raw, size_t cap)
{
	if (n < 2 || s[0] != 'z')
		return -1;
	return b58_decode(s + 1, n - 1, raw, cap);
}

int atkv_didkey_parse(const char *s, size_t n, struct atkv_pubkey *k)
{
	if (n >= 8 && !memcmp(s, "did:key:", 8)) {
		s += 8;
		n -= 8;
	}
	uint8_t raw[80];
	long len = multibase(s, n, raw, sizeof(raw));
	if (len < 2)
		return ATKV_E_SYNTAX;
	if (!memcmp(raw, P256_PREFIX, 2))
		return point(raw + 2, len - 2, ATKV_CURVE_P256, k);
	if (!memcmp(raw, K256_PREFIX, 2))
		return point(raw + 2, len - 2, ATKV_CURVE_K256, k);
	return ATKV_E_ARG;
}

int atkv_didkey_parse_method(const char *type, const char *s, size_t n, struct atkv_pubkey *k)
{
	if (!strcmp(type, "Multikey"))
		return atkv_didkey_parse(s, n, k);
	enum atkv_curve curve;
	if (!strcmp(type, "EcdsaSecp256r1VerificationKey2019"))
		curve = ATKV_CURVE_P256;
	else if (!strcmp(type, "EcdsaSecp256k1VerificationKey2019"))
		curve = ATKV_CURVE_K256;
	else
		return ATKV_E_ARG;
	uint8_t raw[80];
	long len = multibase(s, n, raw, sizeof(raw));
	return len < 0 ? ATKV_E_SYNTAX : point(raw, len, curve, k);
}

long atkv_didkey_format(const struct atkv_pubkey *k, char *out, size_t cap)
{
	uint8_t raw[2 + ATKV_POINT_BYTES];
	memcpy(raw, k->curve == ATKV_CURVE_P256 ? P256_PREFIX : K256_PREFIX, 2);
	memcpy(raw + 2, k->point, ATKV_POINT_BYTES);
	if (cap < 10)
		return ATKV_E_BUFFER;
	memcpy(out, "did:key:z", 9);
	long len = b58_encode(raw, sizeof(raw), out + 9, cap - 9);
	return len < 0 ? ATKV_E_BUFFER : len + 9;
}
