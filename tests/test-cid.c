/* test-cid.c — binary CID parsing (v1 and v0), string forms, sha2-256 compute and verify. */
#include "cid.h"
#include "err.h"
#include "sha256.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

static const char *known = "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a";

static void test_parse_v1(void)
{
	uint8_t bin[ATKV_CID_MAX_BYTES];
	long n = atkv_cid_from_string(known, strlen(known), bin);
	struct atkv_cid cid;
	size_t used = 0;
	char s[ATKV_CID_STR_MAX];
	tap_eq(n, 36, "CIDv1 string decodes to 36 bytes");
	tap_ok(atkv_cid_parse(bin, (size_t)n, &cid, &used, NULL) == 0 && used == 36 && cid.version == 1 &&
	       cid.codec == ATKV_CODEC_DAG_CBOR && cid.hash == ATKV_MULTIHASH_SHA256 &&
	       cid.digest_len == 32 && cid.digest == bin + 4,
	       "CIDv1 dag-cbor sha2-256 parses into its parts");
	atkv_cid_format(&cid, s);
	tap_ok(strcmp(s, known) == 0, "CIDv1 formats back to its string");

	/* Parsing stops at the CID's end: a CID followed by more bytes reports its own length. */
	uint8_t longer[64];
	memcpy(longer, bin, 36);
	memset(longer + 36, 0xaa, 8);
	tap_ok(atkv_cid_parse(longer, 44, &cid, &used, NULL) == 0 && used == 36, "parse reports the CID's length");

	struct atkv_err err = {0};
	for (size_t k = 0; k < 36; k++) {
		int rc = atkv_cid_parse(bin, k, &cid, &used, &err);
		if (rc != ATKV_E_TRUNCATED) {
			tap_ok(false, "truncated CID at %zu bytes (got %d)", k, rc);
			return;
		}
	}
	tap_ok(true, "every truncation of a CID is reported");

	uint8_t v2[36];
	memcpy(v2, bin, 36);
	v2[0] = 2;
	tap_eq(atkv_cid_parse(v2, 36, &cid, &used, NULL), ATKV_E_CID, "CID version 2 is rejected");
	memcpy(v2, bin, 36);
	v2[3] = 31;
	tap_eq(atkv_cid_parse(v2, 36, &cid, &used, NULL), ATKV_E_CID, "sha2-256 with a 31-byte digest is rejected");
	uint8_t overflow[] = {0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	tap_eq(atkv_cid_parse(overflow, sizeof(overflow), &cid, &used, NULL), ATKV_E_VARINT, "codec varint overflow");
}

static void test_parse_v0(void)
{
	/* CIDv0 of "hello world" in dag-pb terms: the bare multihash; base58btc "Qm..." form. */
	size_t n;
	uint8_t *bin = tap_hex("1220b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9", &n);
	struct atkv_cid cid;
	size_t used;
	char s[ATKV_CID_STR_MAX];
	tap_ok(atkv_cid_parse(bin, n, &cid, &used, NULL) == 0 && used == 34 && cid.version == 0 &&
	       cid.codec == ATKV_CODEC_DAG_PB, "CIDv0 parses");
	atkv_cid_format(&cid, s);
	tap_ok(strcmp(s, "QmaozNR7DZHQK1ZcU9p7QdrshMvXqWK6gpu5rmrkPdT3L4") == 0,
	       "CIDv0 formats as base58btc (got %s)", s);
	tap_eq(atkv_cid_parse(bin, 20, &cid, &used, NULL), ATKV_E_TRUNCATED, "truncated CIDv0");
	free(bin);
}

static void test_strings(void)
{
	uint8_t bin[ATKV_CID_MAX_BYTES];
	tap_ok(atkv_cid_from_string("Bafy", 4, bin) < 0, "uppercase multibase prefix is rejected");
	tap_ok(atkv_cid_from_string("zQm", 3, bin) < 0, "base58 multibase is not accepted for CIDv1");
	tap_ok(atkv_cid_from_string("bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2", 58, bin) < 0,
	       "a truncated CID string is rejected");
	tap_ok(atkv_cid_from_string("b", 1, bin) < 0, "a bare prefix is rejected");
}

static void test_verify(void)
{
	struct atkv_sha256 *h = atkv_sha256_new();
	const uint8_t block[] = {0xa1, 0x61, 0x61, 0x01};
	uint8_t bin[ATKV_CID_SHA256_BYTES];
	struct atkv_cid cid;
	size_t used;
	tap_ok(atkv_cid_compute(h, ATKV_CODEC_DAG_CBOR, block, sizeof(block), bin) == 0 &&
	       atkv_cid_parse(bin, sizeof(bin), &cid, &used, NULL) == 0, "compute a CID");
	tap_eq(atkv_cid_verify(h, &cid, block, sizeof(block)), 0, "the block verifies against its CID");
	uint8_t changed[sizeof(block)];
	memcpy(changed, block, sizeof(block));
	changed[3] = 2;
	tap_eq(atkv_cid_verify(h, &cid, changed, sizeof(changed)), ATKV_E_CID_MISMATCH, "a changed block does not");
	tap_eq(atkv_cid_verify(h, &cid, block, 3), ATKV_E_CID_MISMATCH, "a shortened block does not");
	uint8_t sha512[2 + 2 + 64] = {0x01, 0x71, 0x13, 0x40};
	tap_ok(atkv_cid_parse(sha512, sizeof(sha512), &cid, &used, NULL) == 0 &&
	       atkv_cid_verify(h, &cid, block, sizeof(block)) == ATKV_E_CID,
	       "a sha2-512 CID parses but cannot be verified");
	atkv_sha256_free(h);
}

int main(void)
{
	test_parse_v1();
	test_parse_v0();
	test_strings();
	test_verify();
	return tap_done();
}
