/* test-cbor.c — DAG-CBOR → atproto JSON: the interop data-model fixtures (JSON and CID), and
 * hand-written cases for every rule the data model adds to CBOR, each with its own error. */
#include "base64.h"
#include "buf.h"
#include "cborscan.h"
#include "cid.h"
#include "dagcbor.h"
#include "err.h"
#include "sha256.h"
#include "tap.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_fixtures(void)
{
	json_error_t jerr;
	json_t *cases = json_load_file(tap_path("tests/fixtures/atproto-interop/data-model/data-model-fixtures.json"), 0, &jerr);
	if (!tap_ok(json_is_array(cases) && json_array_size(cases) > 0, "data-model fixtures load"))
		return;
	struct atkv_sha256 *sha = atkv_sha256_new();
	struct atkv_buf out = ATKV_BUF_INIT;
	size_t i;
	json_t *c;
	json_array_foreach(cases, i, c) {
		const char *b64 = json_string_value(json_object_get(c, "cbor_base64"));
		const char *want_cid = json_string_value(json_object_get(c, "cid"));
		uint8_t cbor[65536];
		long n = atkv_base64_decode(b64, strlen(b64), cbor, sizeof(cbor));
		struct atkv_err err = {0};
		atkv_buf_reset(&out);
		int rc = n < 0 ? (int)n : atkv_dagcbor_to_json(cbor, (size_t)n, &out, &err);
		json_t *got = rc ? NULL : json_loads(out.data, 0, &jerr);
		tap_ok(rc == 0 && got && json_equal(got, json_object_get(c, "json")),
		       "fixture %zu decodes to its JSON (rc %d: %s)", i, rc, atkv_strerror(rc));
		json_decref(got);

		uint8_t cid_bytes[ATKV_CID_SHA256_BYTES];
		char cid_str[ATKV_CID_STR_MAX] = "";
		struct atkv_cid cid;
		size_t used;
		if (n >= 0 && atkv_cid_compute(sha, ATKV_CODEC_DAG_CBOR, cbor, (size_t)n, cid_bytes) == 0 &&
		    atkv_cid_parse(cid_bytes, sizeof(cid_bytes), &cid, &used, NULL) == 0)
			atkv_cid_format(&cid, cid_str);
		tap_ok(strcmp(cid_str, want_cid) == 0, "fixture %zu CID %s (got %s)", i, want_cid, cid_str);
	}
	atkv_buf_free(&out);
	atkv_sha256_free(sha);
	json_decref(cases);
}

/* A CBOR value as hex, and either the exact JSON it converts to or the error it must give. */
static const struct {
	const char *hex;
	const char *json;
	int rc;
	const char *what;
} cases[] = {
	{"a0", "{}", 0, "empty map"},
	{"80", "[]", 0, "empty array"},
	{"a1616101", "{\"a\":1}", 0, "one pair"},
	{"a2616201626161820203", "{\"b\":1,\"aa\":[2,3]}", 0, "shorter key first"},
	{"1b7fffffffffffffff", "9223372036854775807", 0, "largest int64"},
	{"3b7fffffffffffffff", "-9223372036854775808", 0, "smallest int64"},
	{"20", "-1", 0, "minus one"},
	{"1818", "24", 0, "24 in one extra byte"},
	{"f4", "false", 0, "false"},
	{"f5", "true", 0, "true"},
	{"f6", "null", 0, "null"},
	{"43010203", "{\"$bytes\":\"AQID\"}", 0, "bytes as unpadded base64"},
	{"40", "{\"$bytes\":\"\"}", 0, "empty bytes"},
	{"6822090a5c2f01c3a9", "\"\\\"\\t\\n\\\\/\\u0001\xc3\xa9\"", 0, "string escapes, UTF-8 kept"},
	{"1b8000000000000000", NULL, ATKV_E_CBOR_INT_RANGE, "uint64 beyond int64"},
	{"3b8000000000000000", NULL, ATKV_E_CBOR_INT_RANGE, "negative beyond int64"},
	{"1817", NULL, ATKV_E_CBOR_NONMINIMAL, "23 in two bytes"},
	{"1900ff", NULL, ATKV_E_CBOR_NONMINIMAL, "255 in three bytes"},
	{"1a0000ffff", NULL, ATKV_E_CBOR_NONMINIMAL, "65535 in five bytes"},
	{"1b00000000ffffffff", NULL, ATKV_E_CBOR_NONMINIMAL, "uint32 max in nine bytes"},
	{"780161", NULL, ATKV_E_CBOR_NONMINIMAL, "text length not minimal"},
	{"980100", NULL, ATKV_E_CBOR_NONMINIMAL, "array length not minimal"},
	{"f93c00", NULL, ATKV_E_CBOR_FLOAT, "half float"},
	{"fa3f800000", NULL, ATKV_E_CBOR_FLOAT, "single float"},
	{"fb3ff0000000000000", NULL, ATKV_E_CBOR_FLOAT, "double float"},
	{"a16161fb3ff0000000000000", NULL, ATKV_E_CBOR_FLOAT, "float inside a map"},
	{"9fff", NULL, ATKV_E_CBOR_INDEFINITE, "indefinite array"},
	{"bfff", NULL, ATKV_E_CBOR_INDEFINITE, "indefinite map"},
	{"5f4101ff", NULL, ATKV_E_CBOR_INDEFINITE, "indefinite bytes"},
	{"7f6161ff", NULL, ATKV_E_CBOR_INDEFINITE, "indefinite text"},
	{"ff", NULL, ATKV_E_CBOR_INDEFINITE, "lone break"},
	{"a10102", NULL, ATKV_E_CBOR_KEY_TYPE, "integer key"},
	{"a1410102", NULL, ATKV_E_CBOR_KEY_TYPE, "bytes key"},
	{"a2616101616102", NULL, ATKV_E_CBOR_KEY_DUP, "repeated key"},
	{"a2616201616102", NULL, ATKV_E_CBOR_KEY_ORDER, "b before a"},
	{"a2626161016162", NULL, ATKV_E_CBOR_KEY_ORDER, "longer key first"},
	{"c100", NULL, ATKV_E_CBOR_TAG, "tag 1"},
	{"d8204100", NULL, ATKV_E_CBOR_TAG, "tag 32"},
	{"c600", NULL, ATKV_E_CBOR_TAG, "tag 6 (libcbor rejects it itself)"},
	{"d4f6", NULL, ATKV_E_CBOR_TAG, "tag 20"},
	{"d9002a4100", NULL, ATKV_E_CBOR_NONMINIMAL, "tag 42 in three bytes"},
	{"d82a5823001220b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9", NULL, ATKV_E_CID,
	 "CIDv0 link (atproto links are CIDv1)"},
	{"d82a4100", NULL, ATKV_E_CID, "link with only the prefix"},
	{"d82a4101", NULL, ATKV_E_CID, "link without the 0x00 prefix"},
	{"d82a6100", NULL, ATKV_E_CID, "link over text"},
	{"f7", NULL, ATKV_E_CBOR_SIMPLE, "undefined"},
	{"f0", NULL, ATKV_E_CBOR_SIMPLE, "simple value 16"},
	{"f820", NULL, ATKV_E_CBOR_SIMPLE, "simple value 32"},
	{"fc", NULL, ATKV_E_CBOR_MALFORMED, "reserved 0xfc"},
	{"1c", NULL, ATKV_E_CBOR_MALFORMED, "reserved additional info"},
	{"61ff", NULL, ATKV_E_UTF8, "invalid UTF-8 text"},
	{"62eda080", NULL, ATKV_E_UTF8, "surrogate in text"},
	{"", NULL, ATKV_E_TRUNCATED, "no input"},
	{"6261", NULL, ATKV_E_TRUNCATED, "text cut short"},
	{"a16161", NULL, ATKV_E_TRUNCATED, "map without its value"},
	{"19ff", NULL, ATKV_E_TRUNCATED, "integer cut short"},
	{"5bffffffffffffffff", NULL, ATKV_E_TRUNCATED, "bytes claiming 2^64-1"},
	{"9bffffffffffffffff", NULL, ATKV_E_TRUNCATED, "array claiming 2^64-1 elements"},
	{"ba7fffffff00", NULL, ATKV_E_TRUNCATED, "map claiming 2^31 pairs"},
	{"0000", NULL, ATKV_E_TRAILING, "two values"},
};

static void test_cases(void)
{
	struct atkv_buf out = ATKV_BUF_INIT;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n;
		uint8_t *p = tap_hex(cases[i].hex, &n);
		struct atkv_err err = {0};
		atkv_buf_reset(&out);
		int rc = atkv_dagcbor_to_json(p, n, &out, &err);
		if (cases[i].json)
			tap_ok(rc == 0 && strcmp(out.data, cases[i].json) == 0, "%s: %s (rc %d, got %s)",
			       cases[i].what, cases[i].json, rc, rc ? "" : out.data);
		else
			tap_ok(rc == cases[i].rc && err.code == rc, "%s: %s (got %s)", cases[i].what,
			       atkv_strerror(cases[i].rc), atkv_strerror(rc));
		free(p);
	}
	atkv_buf_free(&out);
}

static void test_link(void)
{
	const char *s = "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a";
	uint8_t cid[ATKV_CID_MAX_BYTES], cbor[64] = {0xa1, 0x61, 'l', 0xd8, 0x2a, 0x58, 0};
	long n = atkv_cid_from_string(s, strlen(s), cid);
	tap_eq(n, 36, "CID string decodes to 36 bytes");
	cbor[6] = (uint8_t)(n + 1);
	cbor[7] = 0;
	memcpy(cbor + 8, cid, (size_t)n);
	struct atkv_buf out = ATKV_BUF_INIT;
	char want[128];
	snprintf(want, sizeof(want), "{\"l\":{\"$link\":\"%s\"}}", s);
	int rc = atkv_dagcbor_to_json(cbor, 8 + (size_t)n, &out, NULL);
	tap_ok(rc == 0 && strcmp(out.data, want) == 0, "link becomes {\"$link\": ...}");
	/* One byte short of the CID: the link's byte string no longer holds a whole CID. */
	cbor[6] = (uint8_t)n;
	atkv_buf_reset(&out);
	tap_eq(atkv_dagcbor_to_json(cbor, 7 + (size_t)n, &out, NULL), ATKV_E_CID, "truncated CID in a link");
	atkv_buf_free(&out);
}

static void test_depth(void)
{
	uint8_t p[ATKV_CBOR_MAX_DEPTH + 2];
	struct atkv_buf out = ATKV_BUF_INIT;
	struct atkv_err err = {0};
	memset(p, 0x81, sizeof(p));
	p[ATKV_CBOR_MAX_DEPTH] = 0x00;
	tap_eq(atkv_dagcbor_to_json(p, ATKV_CBOR_MAX_DEPTH + 1, &out, &err), 0, "nesting at the limit is accepted");
	p[ATKV_CBOR_MAX_DEPTH] = 0x81;
	p[ATKV_CBOR_MAX_DEPTH + 1] = 0x00;
	atkv_buf_reset(&out);
	tap_eq(atkv_dagcbor_to_json(p, sizeof(p), &out, &err), ATKV_E_CBOR_DEPTH, "nesting past the limit is rejected");
	tap_eq((long long)err.offset, ATKV_CBOR_MAX_DEPTH, "the error names the offset of the item too deep");

	struct atkv_cbor r;
	atkv_cbor_init(&r, p, sizeof(p));
	tap_eq(atkv_cbor_skip(&r, NULL), ATKV_E_CBOR_DEPTH, "skipping also enforces the depth limit");
	atkv_buf_free(&out);
}

/* Every prefix of a valid value must fail cleanly (never read past the end). */
static void test_prefixes(void)
{
	size_t n;
	uint8_t *p = tap_hex("a3616101626262824301020363616263636363 63a1616bf5", &n);
	struct atkv_buf out = ATKV_BUF_INIT;
	bool all = true;
	atkv_buf_reset(&out);
	tap_eq(atkv_dagcbor_to_json(p, n, &out, NULL), 0, "whole value decodes");
	for (size_t k = 0; k < n; k++) {
		uint8_t *cut = malloc(k ? k : 1);
		memcpy(cut, p, k);
		atkv_buf_reset(&out);
		if (atkv_dagcbor_to_json(cut, k, &out, NULL) != ATKV_E_TRUNCATED)
			all = false;
		free(cut);
	}
	tap_ok(all, "every proper prefix reports truncation");
	free(p);
	atkv_buf_free(&out);
}

/* A limit on the JSON's length: met exactly it passes, one byte short it is refused; escaped
 * text, six times its CBOR as JSON, is refused before that much is allocated. */
static void test_max(void)
{
	static const char *const values[] = {
		"a3616101626262824301020363616263636363 63a1616bf5",
		"a1616245 0102030405",                                /* {"b": bytes} */
		"a16174 6c 0102030405060708090a225c",                 /* {"t": text to escape} */
		"a16174 83 1b7fffffffffffffff 3b7fffffffffffffff f6", /* {"t": [INT64_MAX, INT64_MIN, null]} */
	};
	struct atkv_buf out = ATKV_BUF_INIT, lim = ATKV_BUF_INIT;
	bool all = true;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		size_t n;
		uint8_t *p = tap_hex(values[i], &n);
		atkv_buf_reset(&out);
		atkv_buf_reset(&lim);
		int rc = atkv_dagcbor_to_json(p, n, &out, NULL);
		if (rc || atkv_dagcbor_to_json_max(p, n, &lim, out.len, NULL) || strcmp(out.data, lim.data))
			all = false;
		atkv_buf_reset(&lim);
		if (atkv_dagcbor_to_json_max(p, n, &lim, out.len - 1, NULL) != ATKV_E_TOO_LARGE)
			all = false;
		free(p);
	}
	tap_ok(all, "a JSON limit met exactly passes, one byte short is refused");

	size_t text_n = 1 << 20;
	uint8_t *big = malloc(8 + text_n);
	memcpy(big, "\xa1\x61t\x7a\x00\x10\x00\x00", 8); /* {"t": text of 1 MiB} */
	memset(big + 8, 0x01, text_n);
	atkv_buf_reset(&lim);
	tap_eq(atkv_dagcbor_to_json_max(big, 8 + text_n, &lim, 65536, NULL), ATKV_E_TOO_LARGE,
	       "1 MiB of control characters (6 MiB as JSON) refused under a 64 KiB limit");
	tap_ok(lim.cap <= 65536, "without reserving room for it (%zu bytes held)", lim.cap);
	free(big);
	atkv_buf_free(&out);
	atkv_buf_free(&lim);
}

int main(void)
{
	test_fixtures();
	test_cases();
	test_link();
	test_depth();
	test_prefixes();
	test_max();
	return tap_done();
}
