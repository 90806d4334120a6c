/* cid.c — binary CID parsing, string forms (base32 for v1, base58btc for v0) and sha2-256
 * verification (multiformats CID and multihash specs). */
#include "cid.h"
#include "base32.h"
#include "sha256.h"
#include "varint.h"

#include <string.h>

int atkv_cid_parse(const uint8_t *p, size_t n, struct atkv_cid *cid, size_t *used,
                   struct atkv_err *err)
{
	struct atkv_cid c = {.bytes = p};
	size_t off = 0;
	uint64_t v;
	int k;

	/* A CIDv0 is a bare sha2-256 multihash: 0x12 0x20 and 32 bytes. */
	if (n >= 2 && p[0] == ATKV_MULTIHASH_SHA256 && p[1] == 32) {
		if (n < 34)
			return atkv_fail(err, ATKV_E_TRUNCATED, n, "cid");
		c.version = 0;
		c.codec = ATKV_CODEC_DAG_PB;
		c.hash = ATKV_MULTIHASH_SHA256;
		c.digest = p + 2;
		c.digest_len = 32;
		c.len = 34;
		*cid = c;
		*used = 34;
		return 0;
	}
	if ((k = atkv_varint_read(p, n, &v)) < 0)
		return atkv_fail(err, k, 0, "cid version");
	if (v != 1)
		return atkv_fail(err, ATKV_E_CID, 0, "cid version");
	c.version = 1;
	off += (size_t)k;
	if ((k = atkv_varint_read(p + off, n - off, &c.codec)) < 0)
		return atkv_fail(err, k, off, "cid codec");
	off += (size_t)k;
	if ((k = atkv_varint_read(p + off, n - off, &c.hash)) < 0)
		return atkv_fail(err, k, off, "cid multihash code");
	off += (size_t)k;
	if ((k = atkv_varint_read(p + off, n - off, &v)) < 0)
		return atkv_fail(err, k, off, "cid digest length");
	off += (size_t)k;
	if (v > 64 || (c.hash == ATKV_MULTIHASH_SHA256 && v != 32))
		return atkv_fail(err, ATKV_E_CID, off, "cid digest length");
	if (n - off < v)
		return atkv_fail(err, ATKV_E_TRUNCATED, n, "cid digest");
	c.digest = p + off;
	c.digest_len = (size_t)v;
	off += (size_t)v;
	c.len = off;
	*cid = c;
	*used = off;
	return 0;
}

/* CIDv0 strings are base58btc; only formatting is needed (atproto never writes them). */
static size_t base58_encode(const uint8_t *p, size_t n, char *out)
{
	static const char alphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
	uint8_t digits[ATKV_CID_STR_MAX];
	size_t nd = 0, zeros = 0;
	while (zeros < n && p[zeros] == 0)
		zeros++;
	for (size_t i = zeros; i < n; i++) {
		unsigned carry = p[i];
		for (size_t j = 0; j < nd; j++) {
			carry += (unsigned)digits[j] << 8;
			digits[j] = (uint8_t)(carry % 58);
			carry /= 58;
		}
		while (carry) {
			digits[nd++] = (uint8_t)(carry % 58);
			carry /= 58;
		}
	}
	size_t o = 0;
	for (size_t i = 0; i < zeros; i++)
		out[o++] = '1';
	while (nd)
		out[o++] = alphabet[digits[--nd]];
	out[o] = '\0';
	return o;
}

size_t atkv_cid_format(const struct atkv_cid *cid, char *out)
{
	if (cid->version == 0)
		return base58_encode(cid->bytes, cid->len, out);
	out[0] = 'b';
	return 1 + atkv_base32_encode(cid->bytes, cid->len, out + 1);
}

long atkv_cid_from_string(const char *s, size_t n, uint8_t out[ATKV_CID_MAX_BYTES])
{
	if (n < 2 || s[0] != 'b')
		return ATKV_E_CID;
	long len = atkv_base32_decode(s + 1, n - 1, out, ATKV_CID_MAX_BYTES);
	if (len == ATKV_E_BUFFER)
		return ATKV_E_CID;
	if (len < 0)
		return len;
	struct atkv_cid cid;
	size_t used;
	if (atkv_cid_parse(out, (size_t)len, &cid, &used, NULL) || used != (size_t)len ||
	    cid.version != 1)
		return ATKV_E_CID;
	return len;
}

int atkv_cid_verify(struct atkv_sha256 *h, const struct atkv_cid *cid, const uint8_t *block,
                    size_t n)
{
	uint8_t digest[32];
	if (cid->hash != ATKV_MULTIHASH_SHA256 || cid->digest_len != 32)
		return ATKV_E_CID;
	int rc = atkv_sha256(h, block, n, digest);
	if (rc)
		return rc;
	return memcmp(digest, cid->digest, 32) ? ATKV_E_CID_MISMATCH : 0;
}

int atkv_cid_compute(struct atkv_sha256 *h, uint8_t codec, const uint8_t *block, size_t n,
                     uint8_t out[ATKV_CID_SHA256_BYTES])
{
	out[0] = 1;
	out[1] = codec;
	out[2] = ATKV_MULTIHASH_SHA256;
	out[3] = 32;
	return atkv_sha256(h, block, n, out + 4);
}
