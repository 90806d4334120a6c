/* cid.h — content identifiers (multiformats CID spec; atproto data model "link" type).
 * atproto writes CIDv1 with the dag-cbor (records, commits, MST nodes) or raw (blobs) codec and
 * a sha2-256 multihash; CIDv0 (a bare sha2-256 multihash) is parsed where met. */
#ifndef ATKV_CID_H
#define ATKV_CID_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct atkv_sha256;

#define ATKV_CODEC_RAW 0x55
#define ATKV_CODEC_DAG_PB 0x70
#define ATKV_CODEC_DAG_CBOR 0x71
#define ATKV_MULTIHASH_SHA256 0x12

#define ATKV_CID_MAX_BYTES 84   /* longest binary CID parsed: 1 + 9 + 9 + 1 + a 64-byte digest */
#define ATKV_CID_STR_MAX 140    /* room for the string form of any accepted CID, with its NUL */
#define ATKV_CID_SHA256_BYTES 36 /* a CIDv1 with a one-byte codec and a sha2-256 digest */

/* A parsed binary CID: a view into the caller's bytes, valid as long as they are. */
struct atkv_cid {
	const uint8_t *bytes;   /* the whole binary CID */
	size_t len;
	unsigned version;       /* 0 or 1 */
	uint64_t codec;         /* ATKV_CODEC_*; CIDv0 is dag-pb */
	uint64_t hash;          /* multihash function code */
	const uint8_t *digest;
	size_t digest_len;
};

/* Parses the binary CID at the start of p[0..n); *used is set to its length. Returns 0, or
 * ATKV_E_TRUNCATED, ATKV_E_VARINT, ATKV_E_CID (unknown version, digest length that does not fit).
 * *cid and *used are set only on success; err->offset is relative to p. */
int atkv_cid_parse(const uint8_t *p, size_t n, struct atkv_cid *cid, size_t *used,
                   struct atkv_err *err);

/* Writes the canonical string form (CIDv1: "b" + base32; CIDv0: base58btc) into out, which must
 * hold ATKV_CID_STR_MAX bytes. Returns the length written, without the NUL. Cannot fail. */
size_t atkv_cid_format(const struct atkv_cid *cid, char *out);

/* Decodes the string form of a CIDv1 ("b" + base32) into out (ATKV_CID_MAX_BYTES) and checks it
 * parses as a CID. Returns the binary length, or ATKV_E_CID / ATKV_E_BASE32. */
long atkv_cid_from_string(const char *s, size_t n, uint8_t out[ATKV_CID_MAX_BYTES]);

/* Checks that block[0..n) hashes to cid. Returns 0, ATKV_E_CID_MISMATCH, or ATKV_E_CID when the
 * CID's hash function is not sha2-256 (the only one atproto uses). */
int atkv_cid_verify(struct atkv_sha256 *h, const struct atkv_cid *cid, const uint8_t *block,
                    size_t n);

/* Computes the CIDv1 (codec, sha2-256) of block[0..n) into out. Returns 0 or ATKV_E_NOMEM. */
int atkv_cid_compute(struct atkv_sha256 *h, uint8_t codec, const uint8_t *block, size_t n,
                     uint8_t out[ATKV_CID_SHA256_BYTES]);

#endif
