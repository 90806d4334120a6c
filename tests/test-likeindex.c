/* test-likeindex.c — the like index on a real SQLite file: puts, moves, deletes, replays of the
 * same change, bad values, the queries' order and limits, read-only opening, and a count that
 * stays exact through all of it. */
#define _DEFAULT_SOURCE
#include "likeindex.h"
#include "tap.h"

#include <atkv/error.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define A "did:plc:aaaa"
#define B "did:plc:bbbb"
#define C "did:plc:cccc"
#define D "did:plc:dddd"
#define P1 "at://did:plc:post/app.bsky.feed.post/1"
#define P2 "at://did:plc:post/app.bsky.feed.post/2"

static struct atkv_likeindex *ix;
static char why[256];

static int put_at(uint64_t seq, const char *did, const char *rkey, const char *subject, const char *created)
{
	char json[512];
	snprintf(json, sizeof(json),
	         "{\"$type\":\"app.bsky.feed.like\",\"subject\":{\"uri\":\"%s\",\"cid\":\"bafyrei%s\"},\"createdAt\":\"%s\"}",
	         subject, rkey, created);
	return atkv_likeindex_put(ix, seq, did, rkey, json, strlen(json), why, sizeof(why));
}

static int put(const char *did, const char *rkey, const char *subject, const char *created)
{
	return put_at(0, did, rkey, subject, created);
}

static int64_t count(const char *subject)
{
	int64_t n = -1;
	atkv_likeindex_count(ix, subject, &n);
	return n;
}

/* Rows collected by a query, as "did rkey subject" lines. */
struct rows {
	char text[2048];
	int n;
};

static int collect(void *arg, const struct atkv_like_row *row)
{
	struct rows *r = arg;
	size_t len = strlen(r->text);
	snprintf(r->text + len, sizeof(r->text) - len, "%s%s %s %s", r->n ? "|" : "", row->did, row->rkey, row->subject_uri);
	r->n++;
	return 0;
}

/* The invariant: the counts add up to the likes. */
static bool consistent(void)
{
	int64_t likes = -1, subjects = -1;
	atkv_likeindex_totals(ix, &likes, &subjects);
	return count(P1) + count(P2) == likes;
}

/* Says stop at its third call: in the middle of the build. */
static int stop_soon(void *arg)
{
	return ++*(int *)arg >= 3;
}

/* A bulk load of changes in stream order, one of them delivered twice: the last change of each
 * like wins, the counts come out exact, and the index then goes on one like at a time. */
static void bulk_load(const char *path)
{
	tap_ok(atkv_likeindex_open(path, false, &ix, why, sizeof(why)) == 0 && !atkv_likeindex_loading(ix), "a new index");
	tap_ok(atkv_likeindex_load_start(ix) == 0 && atkv_likeindex_loading(ix), "a bulk load starts on it");
	atkv_likeindex_begin(ix);
	int rc = put_at(1, A, "l1", P1, "t1") | put_at(2, A, "l2", P1, "t2") | put_at(3, B, "l1", P1, "t3") |
	         put_at(4, A, "l1", P2, "t4") |                               /* moved */
	         atkv_likeindex_delete(ix, 5, A, "l2") |                      /* unliked */
	         put_at(3, B, "l1", P1, "t3") |                               /* delivered again */
	         put_at(6, C, "l1", P2, "t6") | atkv_likeindex_delete(ix, 7, C, "l1") | put_at(8, C, "l1", P1, "t8");
	tap_ok(rc == 0 && atkv_likeindex_put(ix, 9, B, "l2", "{}", 2, why, sizeof(why)) == ATKV_E_SYNTAX &&
	           atkv_likeindex_delete(ix, 9, B, "l2") == 0 && atkv_likeindex_commit(ix) == 0,
	       "changes appended, a bad value as a delete");
	tap_ok(count(P1) == 0 && count(P2) == 0, "nothing is indexed before the load finishes");
	atkv_likeindex_close(ix);
	struct atkv_likeindex *ro = NULL;
	tap_ok(atkv_likeindex_open(path, false, &ix, why, sizeof(why)) == 0 && atkv_likeindex_loading(ix) &&
	           atkv_likeindex_open(path, true, &ro, why, sizeof(why)) == 0 && atkv_likeindex_loading(ro),
	       "reopened, the load is still under way, and a reader sees it is");
	atkv_likeindex_close(ro);
	int ticks = 0;
	tap_eq(atkv_likeindex_load_finish(ix, stop_soon, &ticks), ATKV_E_STOPPED, "a tick that says stop stops the build");
	atkv_likeindex_begin(ix);
	tap_ok(atkv_likeindex_loading(ix) && put_at(10, B, "l3", P2, "t10") == 0 && atkv_likeindex_commit(ix) == 0 &&
	           count(P2) == 0,
	       "and the load goes on as before");
	char load_file[200];
	snprintf(load_file, sizeof(load_file), "%s-load", path);
	tap_ok(access(load_file, F_OK) == 0, "the changes wait in %s", load_file);
	tap_ok(atkv_likeindex_load_finish(ix, NULL, NULL) == 0 && !atkv_likeindex_loading(ix) && access(load_file, F_OK) != 0,
	       "the load finishes, and its file goes");
	struct rows r = {"", 0};
	atkv_likeindex_by_liker(ix, A, 0, collect, &r);
	int64_t likes = -1, subjects = -1;
	atkv_likeindex_totals(ix, &likes, &subjects);
	tap_ok(count(P1) == 2 && count(P2) == 2 && likes == 4 && subjects == 2 && !strcmp(r.text, A " l1 " P2),
	       "the last change of each like won: %lld likes, P1 %lld, P2 %lld, A: %s", (long long)likes,
	       (long long)count(P1), (long long)count(P2), r.text);
	tap_eq(atkv_likeindex_load_start(ix), ATKV_E_ARG, "no bulk load on an index with likes");
	atkv_likeindex_begin(ix);
	tap_ok(put(D, "l1", P1, "t11") == 0 && atkv_likeindex_delete(ix, 0, C, "l1") == 0 && atkv_likeindex_commit(ix) == 0 &&
	           count(P1) == 2 && consistent(),
	       "then changes apply one by one");
	atkv_likeindex_close(ix);
	ix = NULL;
}

int main(void)
{
	char dir[] = "/tmp/atkv-test-likeindex.XXXXXX", path[128];
	if (!mkdtemp(dir)) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/likes.sqlite", dir);

	struct atkv_likeindex *ro = NULL;
	tap_eq(atkv_likeindex_open(path, true, &ro, why, sizeof(why)), ATKV_E_DB, "a missing index opened read-only: %s", why);
	tap_ok(atkv_likeindex_open(path, false, &ix, why, sizeof(why)) == 0, "created for writing");

	tap_ok(atkv_likeindex_begin(ix) == 0, "begin");
	tap_ok(put(A, "l1", P1, "2026-01-01T00:00:01Z") == 0 && put(B, "l1", P1, "2026-01-01T00:00:02Z") == 0 &&
	           put(A, "l2", P2, "2026-01-01T00:00:03Z") == 0,
	       "three likes");
	tap_ok(atkv_likeindex_commit(ix) == 0, "commit");
	tap_ok(count(P1) == 2 && count(P2) == 1 && consistent(), "counts 2 and 1");

	/* The same change again: nothing moves. */
	tap_ok(put(A, "l1", P1, "2026-01-01T00:00:01Z") == 0 && count(P1) == 2 && consistent(), "a put applied twice counts once");
	/* The like moves to another subject. */
	tap_ok(put(B, "l1", P2, "2026-01-01T00:00:04Z") == 0 && count(P1) == 1 && count(P2) == 2 && consistent(),
	       "a put that changes the subject moves the like");
	tap_ok(put(B, "l1", P2, "2026-01-01T00:00:04Z") == 0 && count(P2) == 2 && consistent(), "and applying it again changes nothing");
	/* Deletes, twice. */
	tap_ok(atkv_likeindex_delete(ix, 0, A, "l1") == 0 && count(P1) == 0 && consistent(), "a delete uncounts it");
	tap_ok(atkv_likeindex_delete(ix, 0, A, "l1") == 0 && count(P1) == 0 && consistent(), "a delete applied twice changes nothing");
	tap_ok(atkv_likeindex_delete(ix, 0, C, "never") == 0 && consistent(), "deleting an unknown like changes nothing");
	int64_t likes = -1, subjects = -1;
	atkv_likeindex_totals(ix, &likes, &subjects);
	tap_ok(likes == 2 && subjects == 1, "a subject without likes is gone from the counts (%lld likes, %lld subjects)",
	       (long long)likes, (long long)subjects);

	/* Bad values change nothing and say why. */
	tap_ok(atkv_likeindex_put(ix, 0, C, "x", "not json", 8, why, sizeof(why)) == ATKV_E_SYNTAX && strstr(why, "not JSON"),
	       "a value that is not JSON: %s", why);
	tap_ok(atkv_likeindex_put(ix, 0, C, "x", "{\"subject\":{}}", 14, why, sizeof(why)) == ATKV_E_SYNTAX &&
	           strstr(why, "subject.uri"),
	       "a like without subject.uri: %s", why);
	tap_ok(atkv_likeindex_put(ix, 0, C, "x", "[1]", 3, why, sizeof(why)) == ATKV_E_SYNTAX, "an array");
	atkv_likeindex_totals(ix, &likes, &subjects);
	tap_eq(likes, 2, "and none of them is indexed");

	/* Queries: newest first, limits. */
	put(C, "l3", P2, "2026-01-01T00:00:09Z");
	put(A, "l4", P1, "2026-01-01T00:00:08Z");
	struct rows r = {"", 0};
	atkv_likeindex_by_subject(ix, P2, 0, collect, &r);
	tap_ok(r.n == 3 && !strcmp(r.text, C " l3 " P2 "|" A " l2 " P2 "|" B " l1 " P2),
	       "likers of a subject, newest like (record key) first: %s", r.text);
	struct rows r2 = {"", 0};
	atkv_likeindex_by_liker(ix, A, 0, collect, &r2);
	tap_ok(r2.n == 2 && !strcmp(r2.text, A " l4 " P1 "|" A " l2 " P2), "likes of an account, newest like (record key) first: %s", r2.text);
	struct rows r3 = {"", 0};
	atkv_likeindex_by_liker(ix, A, 1, collect, &r3);
	tap_ok(r3.n == 1 && !strcmp(r3.text, A " l4 " P1), "with a limit of 1");
	struct rows r4 = {"", 0};
	atkv_likeindex_by_liker(ix, "did:plc:nobody", 0, collect, &r4);
	tap_eq(r4.n, 0, "an account with no likes: no rows");

	/* A rolled back batch leaves nothing. */
	atkv_likeindex_begin(ix);
	put(C, "l9", P1, "2026-01-01T00:00:10Z");
	atkv_likeindex_rollback(ix);
	tap_ok(count(P1) == 1 && consistent(), "a rolled back batch leaves no trace");

	/* Readers see the committed state, and cannot write. */
	tap_ok(atkv_likeindex_open(path, true, &ro, why, sizeof(why)) == 0, "opened read-only beside the writer");
	int64_t n = -1;
	atkv_likeindex_count(ro, P2, &n);
	tap_eq(n, 3, "the reader sees the writer's commits");
	const char *v = "{\"subject\":{\"uri\":\"at://x/y/z\"}}";
	tap_ok(atkv_likeindex_put(ro, 0, C, "w", v, strlen(v), why, sizeof(why)) == ATKV_E_DB,
	       "and a read-only index refuses writes: %s", why);
	atkv_likeindex_close(ro);
	atkv_likeindex_close(ix);

	/* Not a like index. */
	char other[160];
	snprintf(other, sizeof(other), "%s/other.sqlite", dir);
	FILE *f = fopen(other, "w");
	if (f)
		fclose(f);
	tap_eq(atkv_likeindex_open(other, true, &ro, why, sizeof(why)), ATKV_E_DB, "an empty file is not a like index: %s", why);

	snprintf(other, sizeof(other), "%s/bulk.sqlite", dir);
	bulk_load(other);

	tap_remove_dir(dir);
	return tap_done();
}
