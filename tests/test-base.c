/* test-base.c — the small building blocks: UTF-8 validation, base32, base64, varints, SHA-256. */
#include "base32.h"
#include "base64.h"
#include "err.h"
#include "sha256.h"
#include "siphash.h"
#include "tap.h"
#include "utf8.h"
#include "varint.h"

#include <stdlib.h>
#include <string.h>

static void test_utf8(void)
{
	static const struct {
		const char *hex;
		bool valid;
		const char *what;
	} cases[] = {
		{"", true, "empty"},
		{"68656c6c6f20776f726c6421212121", true, "ascii longer than a word"},
		{"c3a9", true, "two-byte"},
		{"e282ac", true, "three-byte"},
		{"f09f92a9", true, "four-byte (emoji)"},
		{"f48fbfbf", true, "U+10FFFF"},
		{"80", false, "lone continuation"},
		{"c3", false, "truncated two-byte"},
		{"e282", false, "truncated three-byte"},
		{"c0af", false, "overlong slash"},
		{"e080af", false, "overlong three-byte"},
		{"eda080", false, "surrogate U+D800"},
		{"f4908080", false, "beyond U+10FFFF"},
		{"f8888080", false, "five-byte form"},
		{"41414141414141c328", false, "bad byte after ascii run"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n;
		uint8_t *p = tap_hex(cases[i].hex, &n);
		tap_ok(atkv_utf8_valid(p, n) == cases[i].valid, "utf8 %s", cases[i].what);
		free(p);
	}
}

static void test_base32(void)
{
	/* RFC 4648 section 10, lowercased and unpadded. */
	static const char *vectors[][2] = {
		{"", ""}, {"f", "my"}, {"fo", "mzxq"}, {"foo", "mzxw6"}, {"foob", "mzxw6yq"},
		{"fooba", "mzxw6ytb"}, {"foobar", "mzxw6ytboi"},
	};
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		const char *raw = vectors[i][0], *enc = vectors[i][1];
		char out[32];
		uint8_t back[32];
		atkv_base32_encode((const uint8_t *)raw, strlen(raw), out);
		tap_ok(strcmp(out, enc) == 0, "base32 encode \"%s\" = \"%s\" (got \"%s\")", raw, enc, out);
		long n = atkv_base32_decode(enc, strlen(enc), back, sizeof(back));
		tap_ok(n == (long)strlen(raw) && memcmp(back, raw, strlen(raw)) == 0,
		       "base32 decode \"%s\"", enc);
	}
	uint8_t out[8];
	tap_eq(atkv_base32_decode("MZXW6", 5, out, sizeof(out)), ATKV_E_BASE32, "base32 rejects uppercase");
	tap_eq(atkv_base32_decode("mzxw1", 5, out, sizeof(out)), ATKV_E_BASE32, "base32 rejects '1'");
	tap_eq(atkv_base32_decode("m", 1, out, sizeof(out)), ATKV_E_BASE32, "base32 rejects impossible length");
	tap_eq(atkv_base32_decode("mz", 2, out, sizeof(out)), ATKV_E_BASE32, "base32 rejects non-zero padding bits");
	tap_eq(atkv_base32_decode("mzxw6ytboi", 10, out, 5), ATKV_E_BUFFER, "base32 respects the output size");
}

static void test_base64(void)
{
	static const char *vectors[][2] = {
		{"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"}, {"foob", "Zm9vYg"},
		{"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "+/8"},
	};
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		char out[32];
		size_t n = atkv_base64_encode((const uint8_t *)vectors[i][0], strlen(vectors[i][0]), out);
		out[n] = 0;
		tap_ok(strcmp(out, vectors[i][1]) == 0 && n == ATKV_BASE64_LEN(strlen(vectors[i][0])),
		       "base64 of %zu bytes = \"%s\" (got \"%s\")", strlen(vectors[i][0]), vectors[i][1], out);
	}
}

static void test_varint(void)
{
	static const struct {
		const char *hex;
		int rc;
		uint64_t value;
	} cases[] = {
		{"00", 1, 0}, {"7f", 1, 127}, {"8001", 2, 128}, {"ac02", 2, 300},
		{"ffffffffffffffff7f", 9, 0x7fffffffffffffffull},
		{"", ATKV_E_TRUNCATED, 0}, {"80", ATKV_E_TRUNCATED, 0}, {"ffff", ATKV_E_TRUNCATED, 0},
		{"8000", ATKV_E_VARINT, 0}, /* not minimal */
		{"ffffffffffffffffff01", ATKV_E_VARINT, 0}, /* ten bytes */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n;
		uint8_t *p = tap_hex(cases[i].hex, &n);
		uint64_t v = 12345;
		int rc = atkv_varint_read(p, n, &v);
		tap_ok(rc == cases[i].rc && (rc < 0 ? v == 12345 : v == cases[i].value),
		       "varint \"%s\" -> %d (got %d)", cases[i].hex, cases[i].rc, rc);
		free(p);
	}
}

static void test_sha256(void)
{
	struct atkv_sha256 *h = atkv_sha256_new();
	uint8_t d[32];
	size_t n;
	uint8_t *want = tap_hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", &n);
	tap_ok(h && atkv_sha256(h, "abc", 3, d) == 0 && memcmp(d, want, 32) == 0, "sha256(\"abc\")");
	/* The hasher is reused: a second digest must not depend on the first. */
	uint8_t *empty = tap_hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", &n);
	tap_ok(h && atkv_sha256(h, "", 0, d) == 0 && memcmp(d, empty, 32) == 0, "sha256(\"\") after reuse");
	free(want);
	free(empty);
	atkv_sha256_free(h);
	atkv_sha256_free(NULL);
}

static void test_base64_decode(void)
{
	uint8_t out[16];
	long n = atkv_base64_decode("Zm9vYmE", 7, out, sizeof(out));
	tap_ok(n == 5 && memcmp(out, "fooba", 5) == 0, "base64 decode unpadded");
	n = atkv_base64_decode("Zm9vYg==", 8, out, sizeof(out));
	tap_ok(n == 4 && memcmp(out, "foob", 4) == 0, "base64 decode accepts padding");
	n = atkv_base64_decode("+/8", 3, out, sizeof(out));
	tap_ok(n == 2 && out[0] == 0xfb && out[1] == 0xff, "base64 decode of + and /");
	tap_eq(atkv_base64_decode("Zm=v", 4, out, sizeof(out)), ATKV_E_BASE64, "base64 '=' inside");
	tap_eq(atkv_base64_decode("Zh", 2, out, sizeof(out)), ATKV_E_BASE64, "base64 non-zero leftover bits");
	tap_eq(atkv_base64_decode("Z", 1, out, sizeof(out)), ATKV_E_BASE64, "base64 impossible length");
	tap_eq(atkv_base64_decode("Zm-v", 4, out, sizeof(out)), ATKV_E_BASE64, "base64url character");
	tap_eq(atkv_base64_decode("Zm9vYmFy", 8, out, 5), ATKV_E_BUFFER, "base64 respects the output size");
}

static void test_siphash(void)
{
	/* The reference vectors of the SipHash paper: key 00..0f, messages 00..(n-1). */
	uint8_t key[16], msg[64];
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	tap_eq((long long)atkv_siphash(key, msg, 0), (long long)0x726fdb47dd0e0e31ull, "siphash of empty input");
	tap_eq((long long)atkv_siphash(key, msg, 15), (long long)0xa129ca6149be45e5ull, "siphash of 15 bytes");
	tap_eq((long long)atkv_siphash(key, msg, 8), (long long)0x93f5f5799a932462ull, "siphash of 8 bytes");
}

int main(void)
{
	test_utf8();
	test_base32();
	test_base64();
	test_varint();
	test_sha256();
	test_base64_decode();
	test_siphash();
	return tap_done();
}
