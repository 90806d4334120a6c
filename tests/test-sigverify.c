/* test-sigverify.c — did:key reading and writing, and ECDSA verification (src/didkey.c,
 * src/sigverify.c), against the atproto interop fixtures: every crypto/signature-fixtures.json
 * case verifies or is refused as it says (high-S and DER signatures refused) and its key reads
 * the same as did:key and in its DID document suite, every did:key of
 * the w3c fixtures reads and writes back to itself and loads as a point on its curve; then
 * refusals of our own: a changed message, a bad base58 character, an unknown multicodec, a
 * short key, a point off the curve. */
#include "base64.h"
#include "didkey.h"
#include "sigverify.h"
#include "tap.h"

#include <atkv/error.h>

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define FIXTURES "tests/fixtures/atproto-interop/crypto/"

static json_t *load(const char *name)
{
	json_error_t err;
	json_t *j = json_load_file(tap_path(name), 0, &err);
	if (!j)
		printf("Bail out! %s: %s\n", name, err.text);
	return j;
}

static long b64(const char *s, uint8_t *out, size_t cap) { return atkv_base64_decode(s, strlen(s), out, cap); }

static void signature_fixtures(void)
{
	json_t *cases = load(FIXTURES "signature-fixtures.json");
	size_t i;
	json_t *c;
	json_array_foreach(cases, i, c) {
		const char *comment = json_string_value(json_object_get(c, "comment"));
		const char *did = json_string_value(json_object_get(c, "publicKeyDid"));
		bool valid = json_is_true(json_object_get(c, "validSignature"));
		uint8_t msg[256], sig[128];
		long mn = b64(json_string_value(json_object_get(c, "messageBase64")), msg, sizeof(msg));
		long sn = b64(json_string_value(json_object_get(c, "signatureBase64")), sig, sizeof(sig));
		struct atkv_pubkey k;
		struct atkv_sigkey *key = NULL;
		int rc = atkv_didkey_parse(did, strlen(did), &k);
		/* The same key in the DID document suite the case names: the same point. */
		const char *suite = json_string_value(json_object_get(c, "didDocSuite"));
		const char *mb = json_string_value(json_object_get(c, "publicKeyMultibase"));
		struct atkv_pubkey legacy;
		if (!rc && (atkv_didkey_parse_method(suite, mb, strlen(mb), &legacy) || legacy.curve != k.curve ||
		            memcmp(legacy.point, k.point, ATKV_POINT_BYTES)))
			rc = -1000;
		if (!rc)
			rc = atkv_sigkey_load(&k, &key);
		if (!rc && mn >= 0 && sn >= 0)
			rc = atkv_sig_verify(key, msg, (size_t)mn, sig, (size_t)sn);
		tap_eq(rc, valid ? 0 : ATKV_E_SIGNATURE, "%s: %s", comment, valid ? "verifies" : "refused");
		if (valid && !rc) {
			msg[0] ^= 1;
			tap_eq(atkv_sig_verify(key, msg, (size_t)mn, sig, (size_t)sn), ATKV_E_SIGNATURE,
			       "%s, one bit of the message changed: refused", json_string_value(json_object_get(c, "algorithm")));
		}
		atkv_sigkey_free(key);
	}
	json_decref(cases);
}

static void didkey_fixtures(const char *file, enum atkv_curve curve)
{
	json_t *cases = load(file);
	size_t i, good = 0;
	json_t *c;
	json_array_foreach(cases, i, c) {
		const char *did = json_string_value(json_object_get(c, "publicDidKey"));
		struct atkv_pubkey k;
		struct atkv_sigkey *key = NULL;
		char back[ATKV_DIDKEY_MAX];
		if (atkv_didkey_parse(did, strlen(did), &k) == 0 && k.curve == curve &&
		    atkv_didkey_format(&k, back, sizeof(back)) == (long)strlen(did) && !strcmp(back, did) &&
		    atkv_sigkey_load(&k, &key) == 0)
			good++;
		else
			tap_note("%s: not read, written back or loaded", did);
		atkv_sigkey_free(key);
	}
	tap_ok(good == json_array_size(cases) && good > 0, "%s: %zu of %zu did:keys read, written back and loaded", file,
	       good, json_array_size(cases));
	json_decref(cases);
}

static void refusals(void)
{
	const char *p256 = "did:key:zDnaembgSGUhZULN2Caob4HLJPaxBh92N7rtH21TErzqf8HQo";
	struct atkv_pubkey k;
	char bad[80];
	snprintf(bad, sizeof(bad), "%s", p256);
	bad[20] = '0'; /* not in the base58 alphabet */
	tap_eq(atkv_didkey_parse(bad, strlen(bad), &k), ATKV_E_SYNTAX, "a did:key with a character outside base58: refused");
	tap_eq(atkv_didkey_parse("did:key:f0123", 13, &k), ATKV_E_SYNTAX, "a multibase other than base58btc: refused");
	/* ed25519-pub (0xed 0x01): a key type atproto does not sign with. */
	tap_eq(atkv_didkey_parse("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK", 56, &k), ATKV_E_ARG,
	       "an Ed25519 did:key: refused as a curve atproto does not use");
	tap_ok(atkv_didkey_parse(p256, strlen(p256) - 3, &k) < 0, "a did:key three characters short: refused");
	tap_eq(atkv_didkey_parse(p256 + 8, strlen(p256) - 8, &k), 0, "a bare publicKeyMultibase (z...) reads too");
	/* An uncompressed secp256k1 key (as the reference PLC serves them) read, and the same with
	 * one byte of y changed: off the curve. */
	const char *good = "zRPMYYkJx9Zzgq5cyeK3Cie5hAiNuGboto24DdBGqcFyk5SwRB4Lh4kWyLNy1ziERNWMx4vAXgtwHH1LXwptZRCVb";
	const char *off_y = "zRPMYYkJx9Zzgq5cyeK3Cie5hAiNuGboto24DdBGqcFyk5SwRB4Lh4kXNfyx8HzwbqPBPD1Bx2DRQYny3Cmbo12ow";
	tap_eq(atkv_didkey_parse_method("EcdsaSecp256k1VerificationKey2019", good, strlen(good), &k), 0,
	       "an uncompressed secp256k1 key of the older suite: read");
	tap_eq(atkv_didkey_parse_method("EcdsaSecp256k1VerificationKey2019", off_y, strlen(off_y), &k), ATKV_E_SIGNATURE,
	       "the same with a byte of y changed (the point off the curve): refused");
	for (int curve = ATKV_CURVE_P256; curve <= ATKV_CURVE_K256; curve++) {
		struct atkv_pubkey off = {.curve = (enum atkv_curve)curve};
		memset(off.point, 0xff, sizeof(off.point)); /* x beyond the field's prime */
		off.point[0] = 0x02;
		struct atkv_sigkey *key = NULL;
		tap_eq(atkv_sigkey_load(&off, &key), ATKV_E_SIGNATURE, "%s: a point off the curve does not load",
		       curve == ATKV_CURVE_P256 ? "P-256" : "secp256k1");
		atkv_sigkey_free(key);
	}
}

int main(void)
{
	signature_fixtures();
	didkey_fixtures(FIXTURES "w3c_didkey_K256.json", ATKV_CURVE_K256);
	didkey_fixtures(FIXTURES "w3c_didkey_P256.json", ATKV_CURVE_P256);
	refusals();
	return tap_done();
}
