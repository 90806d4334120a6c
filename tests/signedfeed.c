/* signedfeed.c — see signedfeed.h. One clock makes every TID (record keys and revs), so revs
 * rise per repository and across the feed. */
#include "signedfeed.h"
#include "capture.h"
#include "cbuild.h"
#include "repobuild.h"
#include "testkey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PATH_LEN (sizeof("app.bsky.feed.like/") - 1 + 13)

struct account {
	char did[40];
	struct testkey key;
	char (*paths)[PATH_LEN + 1];
	const char **keys;           /* paths[i], for the tree builder */
	struct atkv_buf *records;
	uint8_t (*cids)[ATKV_CID_SHA256_BYTES];
	size_t n, cap;
	char rev[14];                /* "" before its first commit */
	uint8_t data[ATKV_CID_SHA256_BYTES];
};

struct signedfeed {
	struct account *a;
	size_t n, next;
	int64_t seq;
	uint64_t clock_us;
	struct atkv_sha256 *h;
};

static const char b32sort[] = "234567abcdefghijklmnopqrstuvwxyz";

static void tid_at(uint64_t us, char out[14])
{
	uint64_t v = us << 10;
	for (int i = 12; i >= 0; i--, v >>= 5)
		out[i] = b32sort[v & 31];
	out[13] = '\0';
}

static void next_tid(struct signedfeed *f, char out[14])
{
	tid_at(++f->clock_us, out);
}

struct signedfeed *sf_new(size_t accounts, int64_t first_seq)
{
	struct signedfeed *f = calloc(1, sizeof(*f));
	if (!f || !(f->a = calloc(accounts, sizeof(*f->a))) || !(f->h = atkv_sha256_new()))
		abort();
	f->n = accounts;
	f->seq = first_seq;
	/* A day ago: revs in the past, as a relay's are. */
	f->clock_us = ((uint64_t)time(NULL) - 86400) * 1000000;
	for (size_t i = 0; i < accounts; i++) {
		struct account *a = &f->a[i];
		char id[20];
		size_t v = i;
		for (int k = 18; k >= 0; k--, v >>= 5)
			id[k] = "abcdefghijklmnopqrstuvwxyz234567"[v & 31];
		id[19] = '\0';
		snprintf(a->did, sizeof(a->did), "did:plc:sfeed%s", id);
		testkey_new(&a->key);
	}
	return f;
}

void sf_free(struct signedfeed *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++) {
		struct account *a = &f->a[i];
		for (size_t k = 0; k < a->n; k++)
			atkv_buf_free(&a->records[k]);
		free(a->paths);
		free(a->keys);
		free(a->records);
		free(a->cids);
		testkey_free(&a->key);
	}
	free(f->a);
	atkv_sha256_free(f->h);
	free(f);
}

size_t sf_accounts(const struct signedfeed *f) { return f->n; }
const char *sf_did(const struct signedfeed *f, size_t i) { return f->a[i].did; }

long sf_find(const struct signedfeed *f, const char *did)
{
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->a[i].did, did))
			return (long)i;
	return -1;
}

static void grow(struct account *a)
{
	if (a->n < a->cap)
		return;
	a->cap = a->cap ? 2 * a->cap : 16;
	a->paths = realloc(a->paths, a->cap * sizeof(*a->paths));
	a->keys = realloc(a->keys, a->cap * sizeof(*a->keys));
	a->records = realloc(a->records, a->cap * sizeof(*a->records));
	a->cids = realloc(a->cids, a->cap * sizeof(*a->cids));
	if (!a->paths || !a->keys || !a->records || !a->cids)
		abort();
	for (size_t k = 0; k < a->n; k++)
		a->keys[k] = a->paths[k];
}

/* A like of the feed's first post (any subject will do), as DAG-CBOR. */
static void like_record(struct atkv_buf *r, const char *did)
{
	static const uint8_t subject_cid[ATKV_CID_SHA256_BYTES] = {0x01, 0x71, 0x12, 0x20, 1, 2, 3};
	char uri[96];
	snprintf(uri, sizeof(uri), "at://%s/app.bsky.feed.post/3kaaaaaaaaaa2", did);
	atkv_buf_reset(r);
	cb_head(r, 5, 3);
	cb_text(r, "$type");
	cb_text(r, "app.bsky.feed.like");
	cb_text(r, "subject");
	cb_head(r, 5, 2);
	cb_text(r, "cid");
	cb_link(r, subject_cid, sizeof(subject_cid));
	cb_text(r, "uri");
	cb_text(r, uri);
	cb_text(r, "createdAt");
	cb_text(r, "2026-11-27T00:00:00.000Z");
}

int64_t sf_commit(struct signedfeed *f, struct atkv_buf *out)
{
	struct account *a = &f->a[f->next++ % f->n];
	char tid[14], rev[14];
	next_tid(f, tid);
	next_tid(f, rev);
	grow(a);
	size_t k = a->n++;
	snprintf(a->paths[k], sizeof(a->paths[k]), "app.bsky.feed.like/%s", tid);
	a->keys[k] = a->paths[k];
	a->records[k] = (struct atkv_buf)ATKV_BUF_INIT;
	like_record(&a->records[k], f->a[0].did);

	struct rb_blocks b = {0};
	size_t record = rb_put(&b, f->h, a->records[k].data, a->records[k].len, NULL);
	memcpy(a->cids[k], b.cid[record], ATKV_CID_SHA256_BYTES);
	struct rb_tree t = {.keys = a->keys, .n = a->n, .values = (const uint8_t (*)[ATKV_CID_SHA256_BYTES])a->cids,
	                    .h = f->h, .b = &b};
	size_t data = rb_tree_build(&t);
	size_t commit = rb_commit(&b, f->h, a->did, rev, data, &a->key);
	struct atkv_buf car = ATKV_BUF_INIT;
	rb_car(&b, commit, -1, &car);

	/* The body's keys in DAG-CBOR order: shorter first, then bytewise. */
	bool first = !a->rev[0];
	atkv_buf_reset(out);
	cb_head(out, 5, 2);
	cb_text(out, "t");
	cb_text(out, "#commit");
	cb_text(out, "op");
	cb_uint(out, 1);
	cb_head(out, 5, first ? 11 : 12);
	cb_text(out, "ops");
	cb_head(out, 4, 1);
	cb_head(out, 5, 3);
	cb_text(out, "cid");
	cb_link(out, a->cids[k], ATKV_CID_SHA256_BYTES);
	cb_text(out, "path");
	cb_text(out, a->paths[k]);
	cb_text(out, "action");
	cb_text(out, "create");
	cb_text(out, "rev");
	cb_text(out, rev);
	cb_text(out, "seq");
	cb_uint(out, (uint64_t)++f->seq);
	cb_text(out, "repo");
	cb_text(out, a->did);
	cb_text(out, "time");
	cb_text(out, "2026-11-27T00:00:00.000Z");
	cb_text(out, "blobs");
	cb_head(out, 4, 0);
	cb_text(out, "since");
	if (first)
		cb_null(out);
	else
		cb_text(out, a->rev);
	cb_text(out, "blocks");
	cb_bytes(out, car.data, car.len);
	cb_text(out, "commit");
	cb_link(out, b.cid[commit], ATKV_CID_SHA256_BYTES);
	cb_text(out, "rebase");
	cb_bool(out, false);
	cb_text(out, "tooBig");
	cb_bool(out, false);
	if (!first) {
		cb_text(out, "prevData");
		cb_link(out, a->data, ATKV_CID_SHA256_BYTES);
	}
	memcpy(a->rev, rev, sizeof(a->rev));
	memcpy(a->data, b.cid[data], ATKV_CID_SHA256_BYTES);
	atkv_buf_free(&car);
	rb_blocks_free(&b);
	return f->seq;
}

int64_t sf_sync(struct signedfeed *f, size_t i, struct atkv_buf *out)
{
	struct account *a = &f->a[i];
	struct atkv_buf car = ATKV_BUF_INIT;
	rb_repo_car_signed(f->h, a->did, a->rev, a->keys, a->records, a->n, &a->key, &car);
	atkv_buf_reset(out);
	cb_head(out, 5, 2);
	cb_text(out, "t");
	cb_text(out, "#sync");
	cb_text(out, "op");
	cb_uint(out, 1);
	cb_head(out, 5, 5);
	cb_text(out, "did");
	cb_text(out, a->did);
	cb_text(out, "rev");
	cb_text(out, a->rev);
	cb_text(out, "seq");
	cb_uint(out, (uint64_t)++f->seq);
	cb_text(out, "time");
	cb_text(out, "2026-11-27T00:00:00.000Z");
	cb_text(out, "blocks");
	cb_bytes(out, car.data, car.len);
	atkv_buf_free(&car);
	return f->seq;
}

void sf_did_doc(const struct signedfeed *f, size_t i, const char *pds, struct atkv_buf *out)
{
	const struct account *a = &f->a[i];
	char doc[1024];
	int n = snprintf(doc, sizeof(doc),
	                 "{\"id\":\"%s\",\"alsoKnownAs\":[\"at://account%zu.test\"],\"verificationMethod\":[{\"id\":\"%s#atproto\","
	                 "\"type\":\"Multikey\",\"controller\":\"%s\",\"publicKeyMultibase\":\"%s\"}],\"service\":[{\"id\":"
	                 "\"#atproto_pds\",\"type\":\"AtprotoPersonalDataServer\",\"serviceEndpoint\":\"%s\"}]}",
	                 a->did, i, a->did, a->did, a->key.multibase, pds);
	atkv_buf_reset(out);
	atkv_buf_append(out, doc, (size_t)n);
}

void sf_repo_car(struct signedfeed *f, size_t i, struct atkv_buf *out)
{
	struct account *a = &f->a[i];
	atkv_buf_reset(out);
	rb_repo_car_signed(f->h, a->did, a->rev[0] ? a->rev : "2222222222222", a->keys, a->records, a->n, &a->key, out);
}

void sf_repo_car_at(struct signedfeed *f, size_t i, int64_t at_us, struct atkv_buf *out)
{
	struct account *a = &f->a[i];
	char rev[14];
	tid_at((uint64_t)at_us, rev);
	atkv_buf_reset(out);
	rb_repo_car_signed(f->h, a->did, rev, a->keys, a->records, a->n, &a->key, out);
}

int sf_write_capture(const char *path, const struct atkv_buf *frames, size_t n)
{
	FILE *fp = fopen(path, "wb");
	if (!fp)
		return -1;
	fwrite(ATKV_CAPTURE_MAGIC, 1, ATKV_CAPTURE_MAGIC_LEN, fp);
	for (size_t i = 0; i < n; i++) {
		uint8_t be[4] = {(uint8_t)(frames[i].len >> 24), (uint8_t)(frames[i].len >> 16), (uint8_t)(frames[i].len >> 8),
		                 (uint8_t)frames[i].len};
		fwrite(be, 1, 4, fp);
		fwrite(frames[i].data, 1, frames[i].len, fp);
	}
	return fclose(fp) ? -1 : 0;
}
