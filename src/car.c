/* car.c — the CAR v1 reader (see car.h). A firehose commit carries a handful of blocks, which
 * a linear scan finds fastest; larger CARs get an open-addressing table, rebuilt for every CAR
 * in memory the reader keeps. Slots come from a keyed hash (SipHash, a
 * random key per reader) of the whole CID: digests are chosen by whoever wrote the CAR, and a
 * table keyed by them could be flooded into one long probe chain. */
#include "car.h"
#include "cborscan.h"
#include "sha256.h"
#include "siphash.h"
#include "varint.h"

#include <openssl/rand.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Up to this many blocks, lookups scan the block array instead of building the table. */
#define SCAN_MAX 16

enum check { UNCHECKED, GOOD, BAD };

struct block {
	struct atkv_cid cid;
	const uint8_t *data;
	size_t len;
	enum check check;       /* against the CID, done when the block is first fetched */
};

struct atkv_car {
	struct atkv_sha256 *sha;
	uint8_t hash_key[16];
	struct atkv_cid roots[ATKV_CAR_MAX_ROOTS];
	size_t n_roots;
	struct block *blocks;
	size_t n_blocks, cap_blocks, n_bad;  /* n_bad: blocks found bad so far */
	uint32_t *slots;        /* index + 1 into blocks; 0 is empty */
	size_t n_slots;         /* a power of two, at least twice n_blocks */
};

struct atkv_car *atkv_car_new(void)
{
	struct atkv_car *car = calloc(1, sizeof(*car));
	if (!car)
		return NULL;
	if (!(car->sha = atkv_sha256_new()) || RAND_bytes(car->hash_key, sizeof(car->hash_key)) != 1) {
		atkv_car_free(car);
		return NULL;
	}
	return car;
}

void atkv_car_free(struct atkv_car *car)
{
	if (!car)
		return;
	atkv_sha256_free(car->sha);
	free(car->blocks);
	free(car->slots);
	free(car);
}

size_t atkv_car_root_count(const struct atkv_car *car) { return car->n_roots; }
const struct atkv_cid *atkv_car_root(const struct atkv_car *car, size_t i) { return &car->roots[i]; }
size_t atkv_car_block_count(const struct atkv_car *car) { return car->n_blocks; }
size_t atkv_car_bad_count(const struct atkv_car *car) { return car->n_bad; }

static size_t slot_of(const struct atkv_car *car, const uint8_t *cid, size_t len)
{
	return (size_t)atkv_siphash(car->hash_key, cid, len) & (car->n_slots - 1);
}

/* Parses the header DAG-CBOR map; offsets in err are made relative to the CAR by the caller. */
static int parse_header(struct atkv_car *car, const uint8_t *p, size_t n, struct atkv_err *err)
{
	struct atkv_cbor r;
	struct atkv_cbor_item it;
	bool have_version = false, have_roots = false;
	int rc;

	atkv_cbor_init(&r, p, n);
	if ((rc = atkv_cbor_next(&r, &it, err)))
		return rc;
	if (it.kind != ATKV_CBOR_MAP)
		return atkv_fail(err, ATKV_E_CAR_HEADER, it.offset, "car header");
	for (uint64_t k = it.count; k > 0; k--) {
		struct atkv_cbor_item key;
		if ((rc = atkv_cbor_next(&r, &key, err)))
			return rc;
		if (atkv_cbor_text_is(&key, "version")) {
			if ((rc = atkv_cbor_next(&r, &it, err)))
				return rc;
			if (have_version || it.kind != ATKV_CBOR_INT || it.i != 1)
				return atkv_fail(err, ATKV_E_CAR_HEADER, it.offset, "car version");
			have_version = true;
		} else if (atkv_cbor_text_is(&key, "roots")) {
			if ((rc = atkv_cbor_next(&r, &it, err)))
				return rc;
			if (have_roots || it.kind != ATKV_CBOR_ARRAY || it.count > ATKV_CAR_MAX_ROOTS)
				return atkv_fail(err, ATKV_E_CAR_HEADER, it.offset, "car roots");
			for (uint64_t i = 0; i < it.count; i++) {
				struct atkv_cbor_item link;
				if ((rc = atkv_cbor_next(&r, &link, err)))
					return rc;
				if (link.kind != ATKV_CBOR_LINK)
					return atkv_fail(err, ATKV_E_CAR_HEADER, link.offset, "car roots");
				car->roots[i] = link.cid;
			}
			car->n_roots = (size_t)it.count;
			have_roots = true;
		} else if (key.kind != ATKV_CBOR_TEXT) {
			return atkv_fail(err, ATKV_E_CBOR_KEY_TYPE, key.offset, "car header");
		} else if ((rc = atkv_cbor_skip(&r, err))) {
			return rc;
		}
	}
	if (!have_version || !have_roots)
		return atkv_fail(err, ATKV_E_CAR_HEADER, 0, "car header");
	if (r.off != n)
		return atkv_fail(err, ATKV_E_TRAILING, r.off, "car header");
	return 0;
}

static int add_block(struct atkv_car *car, const struct block *b)
{
	if (car->n_blocks == car->cap_blocks) {
		size_t cap = car->cap_blocks ? car->cap_blocks * 2 : 16;
		if (cap > UINT32_MAX / 2)
			return ATKV_E_TOO_LARGE;
		struct block *nb = realloc(car->blocks, cap * sizeof(*nb));
		if (!nb)
			return ATKV_E_NOMEM;
		car->blocks = nb;
		car->cap_blocks = cap;
	}
	car->blocks[car->n_blocks++] = *b;
	return 0;
}

/* Hashes the block the first time it is asked for. Returns 0, ATKV_E_CID_MISMATCH, or a
 * hashing failure (which leaves it unchecked). */
static int check(struct atkv_car *car, struct block *b)
{
	if (b->check == UNCHECKED) {
		int rc = atkv_cid_verify(car->sha, &b->cid, b->data, b->len);
		if (rc && rc != ATKV_E_CID_MISMATCH)
			return rc;
		b->check = rc ? BAD : GOOD;
		car->n_bad += b->check == BAD;
	}
	return b->check == GOOD ? 0 : ATKV_E_CID_MISMATCH;
}

static int build_index(struct atkv_car *car)
{
	if (car->n_blocks <= SCAN_MAX)
		return 0;
	size_t want = 16;
	while (want < car->n_blocks * 2)
		want *= 2;
	if (want > car->n_slots) {
		uint32_t *s = realloc(car->slots, want * sizeof(*s));
		if (!s)
			return ATKV_E_NOMEM;
		car->slots = s;
		car->n_slots = want;
	}
	memset(car->slots, 0, car->n_slots * sizeof(*car->slots));
	size_t mask = car->n_slots - 1;
	for (size_t i = 0; i < car->n_blocks; i++) {
		const struct atkv_cid *cid = &car->blocks[i].cid;
		size_t s = slot_of(car, cid->bytes, cid->len);
		/* A CID met twice keeps its first good block: only then are blocks hashed here. */
		while (car->slots[s]) {
			struct block *o = &car->blocks[car->slots[s] - 1];
			if (o->cid.len == cid->len && memcmp(o->cid.bytes, cid->bytes, cid->len) == 0)
				break;
			s = (s + 1) & mask;
		}
		if (!car->slots[s])
			car->slots[s] = (uint32_t)i + 1;
		else if (check(car, &car->blocks[car->slots[s] - 1]) == ATKV_E_CID_MISMATCH &&
		         check(car, &car->blocks[i]) == 0)
			car->slots[s] = (uint32_t)i + 1;
	}
	return 0;
}

int atkv_car_load(struct atkv_car *car, const uint8_t *p, size_t n, struct atkv_err *err)
{
	uint64_t len;
	size_t off = 0;
	int rc, k;

	car->n_roots = 0;
	car->n_blocks = 0;
	car->n_bad = 0;
	if ((k = atkv_varint_read(p, n, &len)) < 0)
		return atkv_fail(err, k, 0, "car header length");
	off = (size_t)k;
	if (len == 0 || len > n - off)
		return atkv_fail(err, len ? ATKV_E_TRUNCATED : ATKV_E_CAR_HEADER, off, "car header");
	if ((rc = parse_header(car, p + off, (size_t)len, err))) {
		if (err)
			err->offset += off;
		car->n_roots = 0;
		return rc;
	}
	off += (size_t)len;

	while (off < n) {
		size_t start = off;
		struct block b;
		size_t used;
		if ((k = atkv_varint_read(p + off, n - off, &len)) < 0) {
			rc = atkv_fail(err, k, off, "car section length");
			goto fail;
		}
		off += (size_t)k;
		if (len > n - off) {
			rc = atkv_fail(err, ATKV_E_TRUNCATED, start, "car section");
			goto fail;
		}
		if ((rc = atkv_cid_parse(p + off, (size_t)len, &b.cid, &used, err))) {
			if (err)
				err->offset += off;
			goto fail;
		}
		b.data = p + off + used;
		b.len = (size_t)len - used;
		b.check = UNCHECKED;
		/* Hashed when fetched, so blocks nobody reads (MST nodes, for the firehose) cost
		 * nothing; the hash function is checked now. */
		if (b.cid.hash != ATKV_MULTIHASH_SHA256 || b.cid.digest_len != 32) {
			rc = atkv_fail(err, ATKV_E_CID, start, "car block");
			goto fail;
		}
		if ((rc = add_block(car, &b))) {
			rc = atkv_fail(err, rc, start, "car block");
			goto fail;
		}
		off += (size_t)len;
	}
	if ((rc = build_index(car))) {
		rc = atkv_fail(err, rc, off, "car index");
		goto fail;
	}
	return 0;
fail:
	car->n_roots = 0;
	car->n_blocks = 0;
	car->n_bad = 0;
	return rc;
}

int atkv_car_get(struct atkv_car *car, const uint8_t *cid, size_t cid_len, const uint8_t **data, size_t *len)
{
	struct block *found = NULL;
	int rc = ATKV_E_BLOCK_MISSING;
	if (car->n_blocks <= SCAN_MAX) {
		/* Same rule as the table: the first good block of a CID wins. */
		for (size_t i = 0; i < car->n_blocks && !found; i++) {
			struct block *b = &car->blocks[i];
			if (b->cid.len == cid_len && memcmp(b->cid.bytes, cid, cid_len) == 0 && (rc = check(car, b)) == 0)
				found = b;
		}
	} else {
		size_t mask = car->n_slots - 1;
		for (size_t s = slot_of(car, cid, cid_len); car->slots[s] && !found; s = (s + 1) & mask) {
			struct block *b = &car->blocks[car->slots[s] - 1];
			if (b->cid.len == cid_len && memcmp(b->cid.bytes, cid, cid_len) == 0) {
				if ((rc = check(car, b)))
					return rc;
				found = b;
			}
		}
	}
	if (!found)
		return rc;
	*data = found->data;
	*len = found->len;
	return 0;
}
