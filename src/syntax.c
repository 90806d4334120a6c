/* syntax.c — atproto identifier syntax (specs: DID, Handle, NSID, Record Key, TID, AT URI).
 * Hand-written scanners rather than regular expressions: each rule of the spec is one test. */
#include <atkv/syntax.h>

#include <string.h>

static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }

bool atkv_syntax_did(const char *s, size_t n)
{
	if (n > ATKV_DID_MAX || n < 7 || memcmp(s, "did:", 4) != 0)
		return false;
	size_t i = 4;
	while (i < n && s[i] >= 'a' && s[i] <= 'z')
		i++;
	if (i == 4 || i >= n || s[i] != ':')
		return false;
	if (++i == n)
		return false;
	for (; i < n; i++) {
		char c = s[i];
		if (!is_alnum(c) && c != '.' && c != '_' && c != ':' && c != '%' && c != '-')
			return false;
	}
	/* The method-specific identifier may not end in ':' or '%'. */
	return s[n - 1] != ':' && s[n - 1] != '%';
}

/* A DNS-style label: 1-63 letters, digits and hyphens, not starting or ending with a hyphen. */
static bool label_ok(const char *s, size_t n)
{
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

bool atkv_syntax_handle(const char *s, size_t n)
{
	if (n == 0 || n > ATKV_HANDLE_MAX)
		return false;
	size_t start = 0, labels = 0, last = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		if (!label_ok(s + start, i - start))
			return false;
		last = start;
		labels++;
		start = i + 1;
	}
	/* The top-level domain starts with a letter. */
	return labels >= 2 && is_alpha(s[last]);
}

bool atkv_syntax_nsid(const char *s, size_t n)
{
	if (n == 0 || n > ATKV_NSID_MAX)
		return false;
	size_t authority_n = n;
	while (authority_n > 0 && s[authority_n - 1] != '.')
		authority_n--;
	if (authority_n == 0)
		return false;
	authority_n--;
	const char *name = s + authority_n + 1;
	size_t name_n = n - authority_n - 1;
	/* The name: a letter, then letters and digits. */
	if (name_n == 0 || name_n > 63 || !is_alpha(name[0]))
		return false;
	for (size_t i = 1; i < name_n; i++)
		if (!is_alnum(name[i]))
			return false;
	/* The authority: two or more labels in reversed domain order, the first (the top-level
	 * domain) starting with a letter. No 253-character limit of its own: the interop lists
	 * accept a 283-character authority within the 317 of the whole NSID. */
	if (!is_alpha(s[0]))
		return false;
	size_t start = 0, labels = 0;
	for (size_t i = 0; i <= authority_n; i++) {
		if (i < authority_n && s[i] != '.')
			continue;
		if (!label_ok(s + start, i - start))
			return false;
		labels++;
		start = i + 1;
	}
	return labels >= 2;
}

bool atkv_syntax_rkey(const char *s, size_t n)
{
	if (n == 0 || n > ATKV_RKEY_MAX)
		return false;
	if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!is_alnum(c) && c != '.' && c != '-' && c != '_' && c != ':' && c != '~')
			return false;
	}
	return true;
}

bool atkv_syntax_tid(const char *s, size_t n)
{
	/* base32-sortable; the first character keeps the top bit of the 64-bit value zero. */
	static const char first[] = "234567abcdefghij";
	static const char rest[] = "234567abcdefghijklmnopqrstuvwxyz";
	if (n != ATKV_TID_LEN || !s[0] || !memchr(first, s[0], sizeof(first) - 1))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!s[i] || !memchr(rest, s[i], sizeof(rest) - 1))
			return false;
	return true;
}

bool atkv_syntax_aturi(const char *s, size_t n, struct atkv_aturi *parts)
{
	struct atkv_aturi p = {0};
	if (n > ATKV_ATURI_MAX || n < 5 || memcmp(s, "at://", 5) != 0)
		return false;
	const char *end = s + n, *a = s + 5;
	const char *slash = memchr(a, '/', (size_t)(end - a));
	p.authority = a;
	p.authority_n = (size_t)((slash ? slash : end) - a);
	if (!atkv_syntax_did(p.authority, p.authority_n) &&
	    !atkv_syntax_handle(p.authority, p.authority_n))
		return false;
	if (slash) {
		const char *c = slash + 1;
		const char *slash2 = memchr(c, '/', (size_t)(end - c));
		p.collection = c;
		p.collection_n = (size_t)((slash2 ? slash2 : end) - c);
		if (!atkv_syntax_nsid(p.collection, p.collection_n))
			return false;
		if (slash2) {
			p.rkey = slash2 + 1;
			p.rkey_n = (size_t)(end - p.rkey);
			if (!atkv_syntax_rkey(p.rkey, p.rkey_n))
				return false;
		}
	}
	if (parts)
		*parts = p;
	return true;
}
