/* get-likes-by.c — atkv-get-likes-by: queries of the like index that atkv-like-indexer keeps.
 * What an account likes (newest like first), or who likes a post and how many do. The index is
 * opened read-only; every problem is one line on stderr and a non-zero exit. */
#include "config.h"
#include "likeindex.h"

#include <atkv/syntax.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROGRAM "atkv-get-likes-by"

static const struct atkv_option options[] = {
	{"db", ATKV_OPT_PATH, "/var/lib/atkv/like-index.sqlite", "FILE", "the like index atkv-like-indexer keeps", 0, 0, NULL, false},
	{"json", ATKV_OPT_BOOL, "false", NULL, "one JSON object per like instead of one AT-URI per line", 0, 0, NULL, true},
	{"limit", ATKV_OPT_INT, "0", "N", "at most N likes (0: all)", 0, INT64_MAX, NULL, true},
	{"subject", ATKV_OPT_STRING, NULL, "AT-URI", "list the likers of this post (or any subject) instead", 0, 0, NULL, true},
	{"count", ATKV_OPT_BOOL, "false", NULL, "with --subject: print only the number of likes", 0, 0, NULL, true},
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

static const char summary[] =
	"Prints the AT-URIs of the posts (or other subjects) DID likes, newest like first, one per\n"
	"line; the DID is the argument, or one per line on standard input\n"
	"(echo did:plc:... | atkv-get-likes-by). With --subject AT-URI it prints the DIDs of the\n"
	"subject's likers instead, and with --count only how many there are. A DID with no likes\n"
	"prints nothing. Exit status: 0, 1 when the index cannot be read, 2 for bad arguments.";

struct out {
	bool json;
	bool by_subject;
};

static int print_row(void *arg, const struct atkv_like_row *row)
{
	const struct out *o = arg;
	if (!o->json) {
		puts(o->by_subject ? row->did : row->subject_uri);
		return 0;
	}
	char like[16 + ATKV_DID_MAX + ATKV_RKEY_MAX + sizeof("app.bsky.feed.like")];
	snprintf(like, sizeof(like), "at://%s/app.bsky.feed.like/%s", row->did, row->rkey);
	json_t *j = json_pack("{s:s, s:s, s:s?, s:s?, s:s}", "subject", row->subject_uri, "like", like, "subjectCid",
	                      row->subject_cid, "createdAt", row->created_at, "did", row->did);
	char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	if (text)
		puts(text);
	free(text);
	json_decref(j);
	return 0;
}

/* The likes of one DID; 0, 1 (index) or 2 (not a DID). */
static int likes_of(struct atkv_likeindex *ix, const char *did, int64_t limit, struct out *o)
{
	if (!atkv_syntax_did(did, strlen(did))) {
		fprintf(stderr, PROGRAM ": \"%s\" is not a DID (expected did:plc:... or did:web:...)\n", did);
		return 2;
	}
	if (atkv_likeindex_by_liker(ix, did, limit, print_row, o)) {
		fprintf(stderr, PROGRAM ": cannot read the like index: %s\n", atkv_likeindex_error(ix));
		return 1;
	}
	return 0;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

int main(int argc, char **argv)
{
	struct atkv_config *cfg = NULL;
	char why[1024];
	int rc = atkv_config_start(PROGRAM, PROGRAM " [OPTION...] [DID]\n   or: " PROGRAM " --subject AT-URI [--count]",
	                           summary, options, N_OPTIONS, 1, argc, argv, &cfg);
	if (rc >= 0)
		return rc;
	const char *subject = atkv_config_str(cfg, "subject");
	int64_t limit = atkv_config_int(cfg, "limit");
	struct out o = {.json = atkv_config_bool(cfg, "json"), .by_subject = subject != NULL};
	int code = 0;
	if (subject && atkv_config_positional_count(cfg)) {
		fprintf(stderr, PROGRAM ": give a DID or --subject, not both (see --help)\n");
		code = 2;
	} else if (subject && !atkv_syntax_aturi(subject, strlen(subject), NULL)) {
		fprintf(stderr, PROGRAM ": --subject: \"%s\" is not an AT-URI (at://DID/COLLECTION/RKEY)\n", subject);
		code = 2;
	} else if (atkv_config_bool(cfg, "count") && !subject) {
		fprintf(stderr, PROGRAM ": --count goes with --subject (see --help)\n");
		code = 2;
	} else if (!subject && !atkv_config_positional_count(cfg) && isatty(STDIN_FILENO)) {
		fprintf(stderr, PROGRAM ": which DID? Give it as the argument or on standard input (see --help)\n");
		code = 2;
	}
	struct atkv_likeindex *ix = NULL;
	if (!code && atkv_likeindex_open(atkv_config_str(cfg, "db"), true, &ix, why, sizeof(why))) {
		fprintf(stderr, PROGRAM ": %s\n", why);
		code = 1;
	} else if (!code && atkv_likeindex_loading(ix)) {
		/* An empty answer would look like "no likes". */
		fprintf(stderr, PROGRAM ": the like index is still being filled by its bulk load; it answers once "
		                "atkv-like-indexer has read the whole store (see its log)\n");
		code = 1;
	}
	if (!code && subject && atkv_config_bool(cfg, "count")) {
		int64_t n = 0;
		if (atkv_likeindex_count(ix, subject, &n)) {
			fprintf(stderr, PROGRAM ": cannot read the like index: %s\n", atkv_likeindex_error(ix));
			code = 1;
		} else {
			printf("%lld\n", (long long)n);
		}
	} else if (!code && subject) {
		if (atkv_likeindex_by_subject(ix, subject, limit, print_row, &o)) {
			fprintf(stderr, PROGRAM ": cannot read the like index: %s\n", atkv_likeindex_error(ix));
			code = 1;
		}
	} else if (!code && atkv_config_positional_count(cfg)) {
		code = likes_of(ix, atkv_config_positional(cfg, 0), limit, &o);
	} else if (!code) {
		char line[ATKV_DID_MAX + 64];
		while (!code && fgets(line, sizeof(line), stdin)) {
			char *did = trim(line);
			if (*did)
				code = likes_of(ix, did, limit, &o);
		}
	}
	if (fflush(stdout) && !code) {
		fprintf(stderr, PROGRAM ": cannot write the output\n");
		code = 1;
	}
	atkv_likeindex_close(ix);
	atkv_config_free(cfg);
	return code;
}
