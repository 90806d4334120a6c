/* test-likerecord.c — reading a like record's fields from its JSON: the fields, escapes, keys
 * given twice, what is not JSON (by the RFC 8259 grammar), and a differential run against
 * jansson over many mutated records. */
#include "likeoracle.h"
#include "likerecord.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct atkv_like_fields f;
static char buf[4096];

static enum atkv_like_parse_result parse(const char *json) { return atkv_like_parse(json, strlen(json), buf, &f); }

static bool is(const char *a, const char *b) { return a && !strcmp(a, b); }

static void fields(void)
{
	tap_ok(parse("{\"$type\":\"app.bsky.feed.like\",\"subject\":{\"uri\":\"at://did:plc:a/app.bsky.feed.post/1\","
	             "\"cid\":\"bafyx\"},\"createdAt\":\"2026-11-27T00:00:00Z\"}") == ATKV_LIKE_OK &&
	           is(f.subject_uri, "at://did:plc:a/app.bsky.feed.post/1") && is(f.subject_cid, "bafyx") &&
	           is(f.created_at, "2026-11-27T00:00:00Z"),
	       "a like: its three fields");
	tap_ok(parse(" \n{ \"subject\" : { \"uri\" : \"at://x\" } }\t\r\n") == ATKV_LIKE_OK && is(f.subject_uri, "at://x") &&
	           !f.subject_cid && !f.created_at,
	       "whitespace anywhere it may be; absent fields are NULL");
	tap_ok(parse("{\"subject\":{\"uri\":\"at:\\/\\/a\\u0062\\\"\\\\\\n\\u00e9\\u20ac\\ud83d\\ude00\"}}") == ATKV_LIKE_OK &&
	           is(f.subject_uri, "at://ab\"\\\n\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"),
	       "escapes unescaped, \\u to UTF-8, a surrogate pair to one character");
	tap_ok(parse("{\"subject\":{\"\\u0075ri\":\"at://escaped-key\"}}") == ATKV_LIKE_OK && is(f.subject_uri, "at://escaped-key"),
	       "keys are compared unescaped");
	tap_ok(parse("{\"subject\":{\"uri\":\"at://1\",\"uri\":\"at://2\"},\"createdAt\":\"a\",\"createdAt\":\"b\"}") == ATKV_LIKE_OK &&
	           is(f.subject_uri, "at://2") && is(f.created_at, "b"),
	       "a key given twice keeps its last value");
	tap_ok(parse("{\"subject\":{\"uri\":\"at://1\",\"cid\":\"c\"},\"subject\":{\"uri\":\"at://2\"}}") == ATKV_LIKE_OK &&
	           is(f.subject_uri, "at://2") && !f.subject_cid,
	       "a later subject replaces the earlier one whole");
	tap_ok(parse("{\"subject\":{\"uri\":\"at://1\"},\"subject\":{}}") == ATKV_LIKE_NO_SUBJECT && !f.subject_uri,
	       "... also when it has no uri");
	tap_ok(parse("{\"subject\":{\"uri\":\"at://1\",\"uri\":7}}") == ATKV_LIKE_NO_SUBJECT, "a uri that ends up a number");
	tap_ok(parse("{\"subject\":{\"uri\":\"at://1\",\"cid\":null},\"createdAt\":[\"x\"]}") == ATKV_LIKE_OK && !f.subject_cid &&
	           !f.created_at,
	       "a cid or createdAt that is not a string is NULL");
	tap_ok(parse("{\"x\":{\"subject\":{\"uri\":\"at://deep\"}},\"uri\":\"at://top\"}") == ATKV_LIKE_NO_SUBJECT,
	       "only the record's own subject and the subject's own uri count");
	tap_ok(parse("{\"subject\":{\"uri\":\"\"}}") == ATKV_LIKE_NO_SUBJECT, "an empty uri");
	tap_ok(parse("{\"subject\":\"at://x\"}") == ATKV_LIKE_NO_SUBJECT, "a subject that is a string");
	tap_ok(parse("[{\"subject\":{\"uri\":\"at://x\"}}]") == ATKV_LIKE_NO_SUBJECT, "an array");
	tap_ok(parse("\"at://x\"") == ATKV_LIKE_NO_SUBJECT && parse("12") == ATKV_LIKE_NO_SUBJECT &&
	           parse("null") == ATKV_LIKE_NO_SUBJECT,
	       "a string, a number, null: JSON, but no like");
	tap_ok(parse("{\"n\":[-0,0.5,1e9,-2.5E-3,1e+2,123456789012345678901234567890],\"t\":true,\"f\":false,\"z\":null,"
	             "\"o\":{},\"a\":[],\"subject\":{\"uri\":\"at://x\"}}") == ATKV_LIKE_OK,
	       "every kind of value around it");
}

static void not_json(void)
{
	static const char *const bad[] = {
		"", " ", "{", "}", "{\"subject\":{\"uri\":\"at://x\"}", "{\"subject\":{\"uri\":\"at://x\"}}}",
		"{\"subject\":{\"uri\":\"at://x\"}} x", "{\"a\":1,}", "[1,]", "{,}", "{\"a\" 1}", "{\"a\":}", "{'a':1}",
		"{a:1}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":-}", "{\"a\":+1}", "{\"a\":1e}", "{\"a\":NaN}",
		"{\"a\":Infinity}", "{\"a\":tru}", "{\"a\":nulll}", "{\"a\":\"x}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}",
		"{\"a\":\"\\u12G4\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\"}", "{\"a\":\"\\ud800\\u0041\"}",
		"{\"a\":\"\\u0000\"}", "{\"a\":\"tab\there\"}", "{\"a\":\"\xc3\x28\"}", "{\"a\":\"\xed\xa0\x80\"}",
		"{\"a\":\"\xc0\xaf\"}", "\xef\xbb\xbf{}", "{\"a\":1}\x00",
	};
	int agree = 0;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = strlen(bad[i]) + (i == sizeof(bad) / sizeof(bad[0]) - 1);
		enum atkv_like_parse_result r = atkv_like_parse(bad[i], n, buf, &f);
		if (r == ATKV_LIKE_NOT_JSON && !f.subject_uri)
			agree++;
		else
			tap_note("taken as JSON: %s", bad[i]);
	}
	tap_ok(agree == (int)(sizeof(bad) / sizeof(bad[0])), "%d texts that are not JSON refused", agree);

	char deep[2 * ATKV_LIKERECORD_MAX_DEPTH + 8];
	int d = ATKV_LIKERECORD_MAX_DEPTH;
	memset(deep, '[', (size_t)d);
	memset(deep + d, ']', (size_t)d);
	tap_ok(atkv_like_parse(deep, 2 * (size_t)d, buf, &f) == ATKV_LIKE_NO_SUBJECT, "nesting %d deep is JSON", d);
	memset(deep, '[', (size_t)d + 1);
	memset(deep + d + 1, ']', (size_t)d + 1);
	tap_ok(atkv_like_parse(deep, 2 * (size_t)d + 2, buf, &f) == ATKV_LIKE_NOT_JSON, "one more is refused, not recursed into");
}

/* xorshift: the same mutations on every run. */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void differential(void)
{
	static const char *const seeds[] = {
		"{\"$type\":\"app.bsky.feed.like\",\"subject\":{\"uri\":\"at://did:plc:a/app.bsky.feed.post/1\",\"cid\":"
		"\"bafyx\"},\"createdAt\":\"2026-11-27T00:00:00Z\"}",
		"{\"subject\":{\"cid\":\"c\",\"uri\":\"at://\\u00e9\\ud83d\\ude00\\\"\"},\"via\":[1,-2.5e3,true,null,{}]}",
		"{\"subject\":{\"uri\":\"at://1\"},\"subject\":{\"uri\":\"at://2\",\"uri\":\"at://3\"},\"createdAt\":\"x\"}",
	};
	/* Bytes that matter to the grammar, so mutations reach its corners rather than only its
	 * first error. */
	static const char alphabet[] = "{}[]\":,\\/ubfnrt0123456789-+.eE \t\nx\x80\xc3\xa9\xed\x00";
	int runs = 0, failed = 0;
	char text[512], why[512];
	for (int i = 0; i < 200000; i++) {
		const char *seed = seeds[i % 3];
		size_t n = strlen(seed);
		memcpy(text, seed, n);
		for (int m = 1 + (int)(next_rand() % 3); m > 0; m--) {
			size_t at = (size_t)(next_rand() % (n + 1));
			char c = alphabet[next_rand() % (sizeof(alphabet) - 1)];
			switch (next_rand() % 4) {
			case 0: if (at < n) text[at] = c; break;                                               /* replace */
			case 1: if (n < sizeof(text) - 1) { memmove(text + at + 1, text + at, n - at); text[at] = c; n++; } break;
			case 2: if (at < n) { memmove(text + at, text + at + 1, n - at - 1); n--; } break;      /* delete */
			default: n = at; break;                                                                 /* cut */
			}
		}
		runs++;
		if (!like_oracle_agrees(text, n, why, sizeof(why)) && failed++ < 5)
			tap_note("%s: %.*s", why, (int)n, text);
	}
	tap_ok(!failed, "%d mutated records: atkv_like_parse and jansson agree on all (%d differ)", runs, failed);
}

int main(void)
{
	fields();
	not_json();
	differential();
	return tap_done();
}
