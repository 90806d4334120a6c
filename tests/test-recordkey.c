/* test-recordkey.c — the record key scheme of DESIGN.md: MurmurHash3, partitions, escaping,
 * building and parsing keys, against the vectors DESIGN.md gives. */
#include "err.h"
#include "murmur3.h"
#include <atkv/recordkey.h>
#include "tap.h"

#include <stdio.h>
#include <string.h>

static const struct {
	const char *did;
	uint32_t murmur;
	char partition;
	const char *escaped;
} vectors[] = {
	{"did:plc:ewvi7nxzyoun6zhxrhs64oiz", 0xa6e8179e, 'a', "did/3Aplc/3Aewvi7nxzyoun6zhxrhs64oiz"},
	{"did:plc:l3rouwludahu3ui3bt66mfvj", 0x1043a857, '1', "did/3Aplc/3Al3rouwludahu3ui3bt66mfvj"},
	{"did:web:example.com", 0x597866d5, '5', "did/3Aweb/3Aexample/2Ecom"},
	{"did:plc:test11", 0x0878ab8d, '8', "did/3Aplc/3Atest11"},
	{"", 0x00000000, '0', ""},
	{"did:plc:6hpirtaa", 0x00000007, '0', "did/3Aplc/3A6hpirtaa"}, /* "7".padStart(2, "0") */
};

static void test_vectors(void)
{
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		const char *did = vectors[i].did;
		char esc[128], back[128];
		tap_eq(atkv_murmur3_32(did, strlen(did), 0), vectors[i].murmur, "murmur3(\"%s\")", did);
		tap_eq(atkv_key_partition(did, strlen(did)), vectors[i].partition, "partition of \"%s\"", did);
		long n = atkv_key_escape(did, strlen(did), esc, sizeof(esc));
		tap_ok(n >= 0 && strcmp(esc, vectors[i].escaped) == 0, "escape \"%s\" = \"%s\" (got \"%s\")", did,
		       vectors[i].escaped, n >= 0 ? esc : "error");
		n = atkv_key_unescape(esc, strlen(esc), back, sizeof(back));
		tap_ok(n >= 0 && strcmp(back, did) == 0, "unescape gives \"%s\" back", did);
	}
	char esc[64];
	atkv_key_escape("3k:ab~c.d", 9, esc, sizeof(esc));
	tap_ok(strcmp(esc, "3k/3Aab/7Ec/2Ed") == 0, "rkey 3k:ab~c.d escapes to 3k/3Aab/7Ec/2Ed (got %s)", esc);
	atkv_key_escape("Az09_=/-", 8, esc, sizeof(esc));
	tap_ok(strcmp(esc, "Az09_=/-") == 0, "the plain set passes unchanged");
	atkv_key_escape("\x01\xff ", 3, esc, sizeof(esc));
	tap_ok(strcmp(esc, "/01/FF/20") == 0, "control, high and space bytes escape in uppercase hex");
	/* murmur3 tail handling: lengths 1, 2 and 3 past a block (public reference values). */
	tap_eq(atkv_murmur3_32("a", 1, 0), 0x3c2569b2, "murmur3(\"a\")");
	tap_eq(atkv_murmur3_32("ab", 2, 0), 0x9bbfd75f, "murmur3(\"ab\")");
	tap_eq(atkv_murmur3_32("abc", 3, 0), 0xb3dd93fa, "murmur3(\"abc\")");
	tap_eq(atkv_murmur3_32("abcd", 4, 0), 0x43ed676a, "murmur3(\"abcd\")");
	tap_eq(atkv_murmur3_32("", 0, 1), 0x514e28b7, "murmur3(\"\", seed 1)");
}

static void test_build_parse(void)
{
	const char *did = "did:plc:l3rouwludahu3ui3bt66mfvj";
	char key[ATKV_KEY_MAX + 1];
	long n = atkv_key_build(key, sizeof(key), did, strlen(did), "app.bsky.feed.like", 18, "3k:ab~c.d", 9);
	const char *want = "1.app.bsky.feed.like.did/3Aplc/3Al3rouwludahu3ui3bt66mfvj.3k/3Aab/7Ec/2Ed";
	tap_ok(n == (long)strlen(want) && strcmp(key, want) == 0, "build %s (got %s)", want, n > 0 ? key : "error");

	struct atkv_key k;
	tap_ok(atkv_key_parse(key, (size_t)n, &k) == 0 && k.partition == '1' && strcmp(k.did, did) == 0 &&
	       strcmp(k.collection, "app.bsky.feed.like") == 0 && strcmp(k.rkey, "3k:ab~c.d") == 0 &&
	       k.did_n == strlen(did) && k.collection_n == 18 && k.rkey_n == 9,
	       "parse gives the parts back");

	n = atkv_key_build(key, sizeof(key), "did:web:example.com", 19, "blue.flashes.actor.profile", 26, "self", 4);
	tap_ok(n > 0 && strcmp(key, "5.blue.flashes.actor.profile.did/3Aweb/3Aexample/2Ecom.self") == 0,
	       "a four-segment NSID and a did:web");
	tap_ok(atkv_key_parse(key, (size_t)n, &k) == 0 && strcmp(k.did, "did:web:example.com") == 0 &&
	       strcmp(k.collection, "blue.flashes.actor.profile") == 0, "and parses back");

	tap_eq(atkv_key_build(key, sizeof(key), "did:plc", 7, "app.bsky.feed.like", 18, "x", 1), ATKV_E_SYNTAX, "bad DID");
	tap_eq(atkv_key_build(key, sizeof(key), did, strlen(did), "app.bsky", 8, "x", 1), ATKV_E_SYNTAX, "bad NSID");
	tap_eq(atkv_key_build(key, sizeof(key), did, strlen(did), "app.bsky.feed.like", 18, "..", 2), ATKV_E_SYNTAX, "bad rkey");
	tap_eq(atkv_key_build(key, 20, did, strlen(did), "app.bsky.feed.like", 18, "x", 1), ATKV_E_BUFFER, "small buffer");

	static const char *bad[] = {
		"",
		"1",
		"x.app.bsky.feed.like.did/3Aplc/3Al3rouwludahu3ui3bt66mfvj.3k",       /* not a hex partition */
		"A.app.bsky.feed.like.did/3Aplc/3Al3rouwludahu3ui3bt66mfvj.3k",       /* uppercase partition */
		"2.app.bsky.feed.like.did/3Aplc/3Al3rouwludahu3ui3bt66mfvj.3k",       /* the DID's is 1 */
		"1.app.bsky.feed.like.did:plc:l3rouwludahu3ui3bt66mfvj.3k",           /* unescaped ':' */
		"1.app.bsky.feed.like.did/3aplc/3al3rouwludahu3ui3bt66mfvj.3k",       /* lowercase escape */
		"1.app.bsky.feed.like.did/3Aplc/3Al3rouwludahu3ui3bt66mfvj.3k/3",     /* cut escape */
		"1.app.bsky.did/3Aplc/3Al3rouwludahu3ui3bt66mfvj.3k",                 /* two-segment NSID */
		"1.did/3Aplc/3Al3rouwludahu3ui3bt66mfvj.3k",                          /* no collection */
		"1.app.bsky.feed.like.did/3Aplc/3Al3rouwludahu3ui3bt66mfvj.",         /* empty rkey */
		"1.app..feed.like.did/3Aplc/3Al3rouwludahu3ui3bt66mfvj.3k",           /* empty segment */
		"1.app.bsky.feed.like.did/3Aplc/3Al3rouwludahu3ui3bt66mfvj./2E/2E",   /* rkey ".." */
		"1.app/2Ebsky.feed.like.did/3Aplc/3Al3rouwludahu3ui3bt66mfvj.3k",     /* escaped dot in a token */
		"1.app.bsky.feed.like.did/3Aplc/3Al3rouwludahu3ui3bt66mfvj./33k",     /* escaped plain byte */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		tap_eq(atkv_key_parse(bad[i], strlen(bad[i]), &k), ATKV_E_KEY, "reject key \"%s\"", bad[i]);
}

int main(void)
{
	test_vectors();
	test_build_parse();
	return tap_done();
}
