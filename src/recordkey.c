/* recordkey.c — building and parsing record keys (see recordkey.h and DESIGN.md). */
#include <atkv/recordkey.h>
#include "err.h"
#include "murmur3.h"

#include <stdbool.h>
#include <string.h>

static const char hex_upper[] = "0123456789ABCDEF";

static bool is_plain(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '=' || c == '/' || c == '-';
}

char atkv_key_partition(const char *did, size_t n)
{
	uint32_t h = atkv_murmur3_32(did, n, 0);
	/* The original takes the first character of the hex form padded to two digits, so hashes
	 * below 16 (one hex digit) fall in partition 0. */
	if (h < 16)
		return '0';
	while (h >= 16)
		h >>= 4;
	return "0123456789abcdef"[h];
}

long atkv_key_escape(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_plain(c)) {
			if (o + 1 >= cap)
				return ATKV_E_BUFFER;
			out[o++] = (char)c;
		} else {
			if (o + 3 >= cap)
				return ATKV_E_BUFFER;
			out[o++] = '/';
			out[o++] = hex_upper[c >> 4];
			out[o++] = hex_upper[c & 15];
		}
	}
	if (o >= cap)
		return ATKV_E_BUFFER;
	out[o] = '\0';
	return (long)o;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long atkv_key_unescape(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '/') {
			int hi, lo;
			if (n - i < 3 || (hi = hex_value(s[i + 1])) < 0 || (lo = hex_value(s[i + 2])) < 0)
				return ATKV_E_KEY;
			c = (char)(hi << 4 | lo);
			/* One spelling per key: a byte that escaping leaves alone must not be escaped. */
			if (is_plain((unsigned char)c))
				return ATKV_E_KEY;
			i += 2;
		} else if (!is_plain((unsigned char)c)) {
			return ATKV_E_KEY;
		}
		if (o + 1 >= cap)
			return ATKV_E_BUFFER;
		out[o++] = c;
	}
	if (o >= cap)
		return ATKV_E_BUFFER;
	out[o] = '\0';
	return (long)o;
}

/* Appends '.' and the escaped s[0..n) at out + *o. */
static int put_part(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
	if (*o + 1 >= cap)
		return ATKV_E_BUFFER;
	out[(*o)++] = '.';
	long k = atkv_key_escape(s, n, out + *o, cap - *o);
	if (k < 0)
		return (int)k;
	*o += (size_t)k;
	return 0;
}

long atkv_key_build(char *out, size_t cap, const char *did, size_t did_n, const char *collection,
                    size_t collection_n, const char *rkey, size_t rkey_n)
{
	if (!atkv_syntax_did(did, did_n) || !atkv_syntax_nsid(collection, collection_n) ||
	    !atkv_syntax_rkey(rkey, rkey_n))
		return ATKV_E_SYNTAX;
	if (cap < 2)
		return ATKV_E_BUFFER;
	size_t o = 0;
	int rc;
	out[o++] = atkv_key_partition(did, did_n);
	/* The NSID keeps its dots: one subject token per segment, so servers filter by collection. */
	const char *seg = collection, *end = collection + collection_n;
	while (seg < end) {
		const char *dot = memchr(seg, '.', (size_t)(end - seg));
		const char *stop = dot ? dot : end;
		if ((rc = put_part(out, cap, &o, seg, (size_t)(stop - seg))))
			return rc;
		seg = stop + 1;
	}
	if ((rc = put_part(out, cap, &o, did, did_n)) || (rc = put_part(out, cap, &o, rkey, rkey_n)))
		return rc;
	return (long)o;
}

int atkv_key_parse(const char *s, size_t n, struct atkv_key *key)
{
	struct atkv_key k;
	/* Escaping turns every '.' inside a part into "/2E": the dots left are separators. */
	const char *end = s + n;
	if (n < 2 || s[1] != '.' || !((s[0] >= '0' && s[0] <= '9') || (s[0] >= 'a' && s[0] <= 'f')))
		return ATKV_E_KEY;
	k.partition = s[0];
	const char *rkey = end;
	while (rkey > s && rkey[-1] != '.')
		rkey--;
	const char *did = rkey - 1;
	while (did > s && did[-1] != '.')
		did--;
	const char *coll = s + 2;
	if (did - 1 <= coll || rkey - 1 <= did)
		return ATKV_E_KEY;

	long len;
	size_t o = 0;
	/* Collection tokens: unescape each segment and join with dots. */
	for (const char *seg = coll; seg < did;) {
		const char *dot = memchr(seg, '.', (size_t)(did - seg));
		if ((len = atkv_key_unescape(seg, (size_t)(dot - seg), k.collection + o,
		                             sizeof(k.collection) - o)) < 0)
			return ATKV_E_KEY;
		o += (size_t)len;
		seg = dot + 1;
		if (seg < did) {
			if (o + 1 >= sizeof(k.collection))
				return ATKV_E_KEY;
			k.collection[o++] = '.';
		}
	}
	k.collection[o] = '\0';
	k.collection_n = o;
	if ((len = atkv_key_unescape(did, (size_t)(rkey - 1 - did), k.did, sizeof(k.did))) < 0)
		return ATKV_E_KEY;
	k.did_n = (size_t)len;
	if ((len = atkv_key_unescape(rkey, (size_t)(end - rkey), k.rkey, sizeof(k.rkey))) < 0)
		return ATKV_E_KEY;
	k.rkey_n = (size_t)len;

	/* Only the spelling atkv_key_build writes is in the scheme (one key per record): this also
	 * catches the partition and an escaped '.' inside a collection token. */
	char canonical[ATKV_KEY_MAX + 1];
	len = atkv_key_build(canonical, sizeof(canonical), k.did, k.did_n, k.collection, k.collection_n,
	                     k.rkey, k.rkey_n);
	if (len < 0 || (size_t)len != n || memcmp(canonical, s, n) != 0)
		return ATKV_E_KEY;
	*key = k;
	return 0;
}
