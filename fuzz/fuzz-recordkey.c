/* fuzz-recordkey.c — libFuzzer target: the record key scheme and identifier syntax. Any bytes
 * parsed as a key either fail or rebuild to themselves; escaping bytes without a '/' unescapes
 * back to them; text that unescapes escapes back to itself (one spelling per key); AT-URIs and every
 * identifier checker take anything without a crash. */
#include <atkv/recordkey.h>
#include <atkv/syntax.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct atkv_key k;
	if (atkv_key_parse(s, size, &k) == 0) {
		char again[ATKV_KEY_MAX + 1];
		long n = atkv_key_build(again, sizeof(again), k.did, k.did_n, k.collection, k.collection_n, k.rkey, k.rkey_n);
		if (n < 0 || (size_t)n != size || memcmp(again, s, size))
			abort();
		if (k.partition != atkv_key_partition(k.did, k.did_n))
			abort();
	}
	static char esc[3 * 4096 + 1], back[4096 + 1];
	/* The contract's escaping (DESIGN.md) leaves '/' plain, so text holding one need not come
	 * back the same; no DID, NSID or record key holds one. */
	if (size <= 4096 && !memchr(s, '/', size)) {
		long e = atkv_key_escape(s, size, esc, sizeof(esc));
		long b = e < 0 ? -1 : atkv_key_unescape(esc, (size_t)e, back, sizeof(back));
		if (e < 0 || b != (long)size || memcmp(back, s, size))
			abort();
		long u = atkv_key_unescape(s, size, back, sizeof(back));
		if (u >= 0) {
			long r = atkv_key_escape(back, (size_t)u, esc, sizeof(esc));
			if (r != (long)size || memcmp(esc, s, size))
				abort();
		}
	}
	struct atkv_aturi parts;
	atkv_syntax_aturi(s, size, &parts);
	atkv_syntax_did(s, size);
	atkv_syntax_handle(s, size);
	atkv_syntax_nsid(s, size);
	atkv_syntax_rkey(s, size);
	atkv_syntax_tid(s, size);
	return 0;
}
