/* didkey.h — atproto signing keys as they are written, read into their curve and point: a
 * did:key or a Multikey publicKeyMultibase (multibase base58btc 'z' of a multicodec varint,
 * p256-pub 0x1200 or secp256k1-pub 0xe7, and the point), or the older DID document suites
 * (EcdsaSecp256k1VerificationKey2019 / ...r1...: the point alone, the curve named by the type).
 * Points come compressed or uncompressed; they are kept compressed. */
#ifndef ATKV_DIDKEY_H
#define ATKV_DIDKEY_H

#include <stddef.h>
#include <stdint.h>

enum atkv_curve {
	ATKV_CURVE_P256 = 1,  /* NIST P-256 (secp256r1): ES256 */
	ATKV_CURVE_K256,      /* secp256k1: ES256K */
};

#define ATKV_POINT_BYTES 33  /* a compressed point: 0x02 or 0x03, then x */

struct atkv_pubkey {
	enum atkv_curve curve;
	uint8_t point[ATKV_POINT_BYTES];
};

/* Reads s[0..n): "did:key:z..." or a bare "z..." multibase. Returns 0, or ATKV_E_SYNTAX (not
 * base58btc, no such prefix), ATKV_E_ARG (a curve atproto does not sign with) or
 * ATKV_E_SIGNATURE (not a compressed point of that length). The point is not checked to be on
 * the curve here: loading it for a verification does that. */
int atkv_didkey_parse(const char *s, size_t n, struct atkv_pubkey *k);

/* Reads a DID document's verification method: its type and publicKeyMultibase s[0..n).
 * Returns as atkv_didkey_parse; ATKV_E_ARG also for a type not listed above. */
int atkv_didkey_parse_method(const char *type, const char *s, size_t n, struct atkv_pubkey *k);

/* Writes k as "did:key:z..." into out (NUL-terminated). Returns the length, or ATKV_E_BUFFER. */
#define ATKV_DIDKEY_MAX 64
long atkv_didkey_format(const struct atkv_pubkey *k, char *out, size_t cap);

#endif
