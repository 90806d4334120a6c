/* test-car.c — the CAR v1 reader: header and roots, block lookup, hash checks, and inputs that
 * are cut short, lie about lengths or carry a bad header. */
#include "buf.h"
#include "car.h"
#include "cbuild.h"
#include "cid.h"
#include "err.h"
#include "sha256.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBLOCKS 3

struct fixture {
	uint8_t cids[NBLOCKS][ATKV_CID_SHA256_BYTES];
	struct atkv_buf blocks[NBLOCKS];
	struct atkv_buf car;
	size_t header_end;         /* where the first section starts */
	size_t block_off[NBLOCKS]; /* where each block's data starts in the CAR */
};

static void header(struct atkv_buf *car, const uint8_t *root, int version)
{
	struct atkv_buf h = ATKV_BUF_INIT;
	cb_head(&h, 5, 2);
	cb_text(&h, "roots");
	cb_head(&h, 4, 1);
	cb_link(&h, root, ATKV_CID_SHA256_BYTES);
	cb_text(&h, "version");
	cb_uint(&h, (uint64_t)version);
	cb_varint(car, h.len);
	cb_raw(car, h.data, h.len);
	atkv_buf_free(&h);
}

static size_t section(struct atkv_buf *car, const uint8_t *cid, size_t cid_n, const void *data, size_t n)
{
	cb_varint(car, cid_n + n);
	cb_raw(car, cid, cid_n);
	size_t at = car->len;
	cb_raw(car, data, n);
	return at;
}

static void build(struct fixture *f, struct atkv_sha256 *h)
{
	memset(f, 0, sizeof(*f));
	for (int i = 0; i < NBLOCKS; i++) {
		char text[32];
		snprintf(text, sizeof(text), "block number %d", i);
		cb_head(&f->blocks[i], 5, 1);
		cb_text(&f->blocks[i], "text");
		cb_text(&f->blocks[i], text);
		atkv_cid_compute(h, ATKV_CODEC_DAG_CBOR, (uint8_t *)f->blocks[i].data, f->blocks[i].len, f->cids[i]);
	}
	header(&f->car, f->cids[0], 1);
	f->header_end = f->car.len;
	for (int i = 0; i < NBLOCKS; i++)
		f->block_off[i] = section(&f->car, f->cids[i], ATKV_CID_SHA256_BYTES, f->blocks[i].data, f->blocks[i].len);
}

static void release(struct fixture *f)
{
	for (int i = 0; i < NBLOCKS; i++)
		atkv_buf_free(&f->blocks[i]);
	atkv_buf_free(&f->car);
}

static void test_valid(struct atkv_car *car, struct fixture *f)
{
	struct atkv_err err = {0};
	int rc = atkv_car_load(car, (uint8_t *)f->car.data, f->car.len, &err);
	tap_eq(rc, 0, "a valid CAR loads");
	tap_eq((long long)atkv_car_root_count(car), 1, "one root");
	tap_ok(atkv_car_root(car, 0)->len == ATKV_CID_SHA256_BYTES &&
	       memcmp(atkv_car_root(car, 0)->bytes, f->cids[0], ATKV_CID_SHA256_BYTES) == 0, "the root is block 0");
	tap_eq((long long)atkv_car_block_count(car), NBLOCKS, "every block indexed");
	for (int i = 0; i < NBLOCKS; i++) {
		const uint8_t *data;
		size_t len;
		rc = atkv_car_get(car, f->cids[i], ATKV_CID_SHA256_BYTES, &data, &len);
		tap_ok(rc == 0 && len == f->blocks[i].len && memcmp(data, f->blocks[i].data, len) == 0 &&
		       data == (uint8_t *)f->car.data + f->block_off[i],
		       "block %d found, pointing into the input", i);
	}
	uint8_t other[ATKV_CID_SHA256_BYTES];
	memcpy(other, f->cids[0], sizeof(other));
	other[10] ^= 1;
	const uint8_t *data;
	size_t len;
	tap_eq(atkv_car_get(car, other, sizeof(other), &data, &len), ATKV_E_BLOCK_MISSING, "an absent CID is missing");
}

static void test_tampered(struct atkv_car *car, struct fixture *f)
{
	struct atkv_buf copy = ATKV_BUF_INIT;
	cb_raw(&copy, f->car.data, f->car.len);
	copy.data[f->block_off[1] + 8] ^= 0x20;
	const uint8_t *data;
	size_t len;
	tap_eq(atkv_car_load(car, (uint8_t *)copy.data, copy.len, NULL), 0, "a CAR with one altered block still loads");
	tap_eq((long long)atkv_car_bad_count(car), 0, "blocks are not hashed until fetched");
	tap_eq(atkv_car_get(car, f->cids[1], ATKV_CID_SHA256_BYTES, &data, &len), ATKV_E_CID_MISMATCH,
	       "fetching the altered block reports the mismatch");
	tap_eq(atkv_car_get(car, f->cids[1], ATKV_CID_SHA256_BYTES, &data, &len), ATKV_E_CID_MISMATCH,
	       "and again on a second fetch");
	tap_eq((long long)atkv_car_bad_count(car), 1, "the altered block is counted once");
	tap_eq(atkv_car_get(car, f->cids[2], ATKV_CID_SHA256_BYTES, &data, &len), 0, "the other blocks are fine");
	atkv_buf_free(&copy);
}

static void test_prefixes(struct atkv_car *car, struct fixture *f)
{
	/* A cut at a section boundary is a shorter valid CAR; anywhere else it is truncation. */
	int bad = 0;
	for (size_t k = 0; k < f->car.len; k++) {
		uint8_t *cut = malloc(k ? k : 1);
		memcpy(cut, f->car.data, k);
		int rc = atkv_car_load(car, cut, k, NULL);
		/* The end of the header is a boundary too: a CAR of no blocks. */
		bool boundary = k == f->header_end;
		for (int i = 0; i < NBLOCKS; i++)
			boundary |= k == f->block_off[i] + f->blocks[i].len;
		if (boundary ? rc != 0 : rc != ATKV_E_TRUNCATED) {
			tap_note("prefix of %zu bytes: rc %d", k, rc);
			bad++;
		}
		free(cut);
	}
	tap_eq(bad, 0, "every prefix of the CAR is either valid or reported truncated");
}

static void test_bad(struct atkv_car *car, struct fixture *f)
{
	struct atkv_buf b = ATKV_BUF_INIT;
	struct atkv_err err = {0};

	header(&b, f->cids[0], 2);
	tap_eq(atkv_car_load(car, (uint8_t *)b.data, b.len, &err), ATKV_E_CAR_HEADER, "CAR version 2");
	atkv_buf_reset(&b);

	struct atkv_buf h = ATKV_BUF_INIT;
	cb_head(&h, 5, 1);
	cb_text(&h, "version");
	cb_uint(&h, 1);
	cb_varint(&b, h.len);
	cb_raw(&b, h.data, h.len);
	tap_eq(atkv_car_load(car, (uint8_t *)b.data, b.len, &err), ATKV_E_CAR_HEADER, "header without roots");
	atkv_buf_reset(&b);
	atkv_buf_reset(&h);

	cb_head(&h, 4, 0);
	cb_varint(&b, h.len);
	cb_raw(&b, h.data, h.len);
	tap_eq(atkv_car_load(car, (uint8_t *)b.data, b.len, &err), ATKV_E_CAR_HEADER, "header that is not a map");
	atkv_buf_reset(&b);

	cb_varint(&b, 0);
	tap_eq(atkv_car_load(car, (uint8_t *)b.data, b.len, &err), ATKV_E_CAR_HEADER, "empty header");
	atkv_buf_reset(&b);

	cb_varint(&b, 1u << 30);
	cb_raw(&b, "\xa0", 1);
	tap_eq(atkv_car_load(car, (uint8_t *)b.data, b.len, &err), ATKV_E_TRUNCATED, "header length claiming 1 GiB");
	atkv_buf_reset(&b);

	header(&b, f->cids[0], 1);
	cb_raw(&b, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);
	tap_eq(atkv_car_load(car, (uint8_t *)b.data, b.len, &err), ATKV_E_VARINT, "section length varint overflow");
	atkv_buf_reset(&b);

	header(&b, f->cids[0], 1);
	size_t at = b.len;
	cb_varint(&b, 1ull << 40);
	cb_raw(&b, f->cids[0], ATKV_CID_SHA256_BYTES);
	tap_ok(atkv_car_load(car, (uint8_t *)b.data, b.len, &err) == ATKV_E_TRUNCATED && err.offset == at,
	       "section claiming 1 TiB, reported at its offset");
	atkv_buf_reset(&b);

	header(&b, f->cids[0], 1);
	uint8_t sha512[4 + 64] = {0x01, 0x71, 0x13, 0x40};
	section(&b, sha512, sizeof(sha512), "\xa0", 1);
	tap_eq(atkv_car_load(car, (uint8_t *)b.data, b.len, &err), ATKV_E_CID, "a block under a hash other than sha2-256");
	atkv_buf_reset(&b);

	header(&b, f->cids[0], 1);
	section(&b, f->cids[0], ATKV_CID_SHA256_BYTES, f->blocks[0].data, f->blocks[0].len);
	section(&b, f->cids[0], 10, "", 0);
	tap_eq(atkv_car_load(car, (uint8_t *)b.data, b.len, &err), ATKV_E_TRUNCATED, "section shorter than its CID");
	tap_eq((long long)atkv_car_block_count(car), 0, "a failed load leaves no blocks, not even the good one before");
	atkv_buf_reset(&b);
	atkv_buf_reset(&h);

	cb_head(&h, 5, 3);
	cb_text(&h, "roots");
	cb_head(&h, 4, 0);
	cb_text(&h, "version");
	cb_uint(&h, 1);
	cb_text(&h, "version");
	cb_uint(&h, 1);
	cb_varint(&b, h.len);
	cb_raw(&b, h.data, h.len);
	tap_eq(atkv_car_load(car, (uint8_t *)b.data, b.len, &err), ATKV_E_CAR_HEADER, "header with version twice");

	atkv_buf_free(&b);
	atkv_buf_free(&h);
}

static void test_many(struct atkv_car *car, struct atkv_sha256 *sha)
{
	enum { N = 2000 };
	static uint8_t cids[N][ATKV_CID_SHA256_BYTES];
	static struct atkv_buf blk[N];
	struct atkv_buf b = ATKV_BUF_INIT;
	for (int i = 0; i < N; i++) {
		cb_head(&blk[i], 5, 1);
		cb_text(&blk[i], "n");
		cb_uint(&blk[i], (uint64_t)i);
		atkv_cid_compute(sha, ATKV_CODEC_DAG_CBOR, (uint8_t *)blk[i].data, blk[i].len, cids[i]);
	}
	header(&b, cids[0], 1);
	for (int i = 0; i < N; i++)
		section(&b, cids[i], ATKV_CID_SHA256_BYTES, blk[i].data, blk[i].len);
	int rc = atkv_car_load(car, (uint8_t *)b.data, b.len, NULL);
	int found = 0;
	for (int i = 0; i < N; i++) {
		const uint8_t *data;
		size_t len;
		if (atkv_car_get(car, cids[i], ATKV_CID_SHA256_BYTES, &data, &len) == 0)
			found++;
	}
	tap_ok(rc == 0 && found == N, "a CAR of %d blocks: all %d found", N, found);
	/* The reader is reused: a small CAR after a large one sees only its own blocks. */
	struct fixture f;
	build(&f, sha);
	const uint8_t *data;
	size_t len;
	tap_ok(atkv_car_load(car, (uint8_t *)f.car.data, f.car.len, NULL) == 0 &&
	       atkv_car_get(car, cids[5], ATKV_CID_SHA256_BYTES, &data, &len) == ATKV_E_BLOCK_MISSING,
	       "reuse forgets the previous CAR's blocks");
	release(&f);
	atkv_buf_free(&b);
	for (int i = 0; i < N; i++)
		atkv_buf_free(&blk[i]);
}

/* A CID twice, its first block altered: the good copy is the one fetched, in a small CAR (a
 * scan) and in a large one (the table). */
static void test_duplicate(struct atkv_car *car, struct atkv_sha256 *sha)
{
	for (int big = 0; big <= 1; big++) {
		struct atkv_buf blk = ATKV_BUF_INIT, bad = ATKV_BUF_INIT, b = ATKV_BUF_INIT;
		uint8_t cid[ATKV_CID_SHA256_BYTES], filler[ATKV_CID_SHA256_BYTES];
		cb_head(&blk, 5, 1);
		cb_text(&blk, "v");
		cb_uint(&blk, 7);
		atkv_cid_compute(sha, ATKV_CODEC_DAG_CBOR, (uint8_t *)blk.data, blk.len, cid);
		cb_raw(&bad, blk.data, blk.len);
		bad.data[bad.len - 1] ^= 1;
		header(&b, cid, 1);
		section(&b, cid, sizeof(cid), bad.data, bad.len);
		for (int i = 0; big && i < 40; i++) {
			struct atkv_buf f = ATKV_BUF_INIT;
			cb_uint(&f, (uint64_t)i);
			atkv_cid_compute(sha, ATKV_CODEC_DAG_CBOR, (uint8_t *)f.data, f.len, filler);
			section(&b, filler, sizeof(filler), f.data, f.len);
			atkv_buf_free(&f);
		}
		section(&b, cid, sizeof(cid), blk.data, blk.len);
		const uint8_t *data = NULL;
		size_t len = 0;
		int rc = atkv_car_load(car, (uint8_t *)b.data, b.len, NULL);
		tap_ok(rc == 0 && atkv_car_get(car, cid, sizeof(cid), &data, &len) == 0 && len == blk.len &&
		       memcmp(data, blk.data, len) == 0,
		       "a CID twice, the first copy altered: the good copy is fetched (%s CAR)", big ? "large" : "small");
		atkv_buf_free(&blk);
		atkv_buf_free(&bad);
		atkv_buf_free(&b);
	}
}

int main(void)
{
	struct atkv_sha256 *sha = atkv_sha256_new();
	struct atkv_car *car = atkv_car_new();
	struct fixture f;
	if (!sha || !car) {
		printf("Bail out! out of memory\n");
		return 1;
	}
	build(&f, sha);
	test_valid(car, &f);
	test_tampered(car, &f);
	test_prefixes(car, &f);
	test_bad(car, &f);
	test_many(car, sha);
	test_duplicate(car, sha);
	release(&f);
	atkv_car_free(car);
	atkv_car_free(NULL);
	atkv_sha256_free(sha);
	return tap_done();
}
