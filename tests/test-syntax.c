/* test-syntax.c — identifier syntax against the interop suite's lists: every line of
 * *_syntax_valid.txt accepted, every line of *_syntax_invalid.txt rejected. */
#include <atkv/syntax.h>
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool aturi(const char *s, size_t n) { return atkv_syntax_aturi(s, n, NULL); }

static const struct {
	const char *name;
	bool (*check)(const char *, size_t);
} kinds[] = {
	{"did", atkv_syntax_did},
	{"handle", atkv_syntax_handle},
	{"nsid", atkv_syntax_nsid},
	{"recordkey", atkv_syntax_rkey},
	{"tid", atkv_syntax_tid},
	{"aturi", aturi},
};

/* Runs check over one list; reports one result per line so a failure names the identifier. */
static void run_list(const char *kind, bool (*check)(const char *, size_t), bool valid)
{
	char rel[128];
	size_t len;
	snprintf(rel, sizeof(rel), "tests/fixtures/atproto-interop/syntax/%s_syntax_%s.txt", kind,
	         valid ? "valid" : "invalid");
	char *text = (char *)tap_read_file(tap_path(rel), &len);
	int lines = 0;
	for (char *line = text, *end; line < text + len; line = end + 1) {
		end = memchr(line, '\n', (size_t)(text + len - line));
		if (!end)
			end = text + len;
		size_t n = (size_t)(end - line);
		/* Comments and blank lines; trailing spaces are part of the identifier. */
		if (n == 0 || line[0] == '#')
			continue;
		lines++;
		tap_ok(check(line, n) == valid, "%s %s: %.*s", kind, valid ? "valid" : "invalid",
		       n > 80 ? 80 : (int)n, line);
	}
	tap_ok(lines > 0, "%s: %s list has entries", kind, valid ? "valid" : "invalid");
	free(text);
}

static void test_aturi_parts(void)
{
	const char *u = "at://did:plc:asdf123/app.bsky.feed.like/3jzfcijpj2z2a";
	struct atkv_aturi p;
	tap_ok(atkv_syntax_aturi(u, strlen(u), &p) && p.authority_n == 15 &&
	       strncmp(p.authority, "did:plc:asdf123", 15) == 0 && p.collection_n == 18 &&
	       strncmp(p.collection, "app.bsky.feed.like", 18) == 0 && p.rkey_n == 13 &&
	       strncmp(p.rkey, "3jzfcijpj2z2a", 13) == 0,
	       "AT-URI parts");
	tap_ok(atkv_syntax_aturi("at://alice.test", 15, &p) && p.collection_n == 0 && p.rkey_n == 0,
	       "AT-URI with a handle and no path");
}

int main(void)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		run_list(kinds[i].name, kinds[i].check, true);
		run_list(kinds[i].name, kinds[i].check, false);
	}
	test_aturi_parts();
	return tap_done();
}
