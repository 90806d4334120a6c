/* replayloop.c — a replay's loops writing new records: the TIDs of a frame's op paths, found
 * and shifted (see replayloop.h). A TID is a 63-bit integer (53 bits of microseconds, 10 of
 * clock id) written as 13 base32-sortable characters, so shifting time is an addition. */
#include "replayloop.h"

#include <atkv/syntax.h>

#include <string.h>

#include "cborscan.h"

#define TID_SHIFT_BITS 46 /* 2^36 µs, above the 10 bits of clock id */

static const char alphabet[] = "234567abcdefghijklmnopqrstuvwxyz";

static int digit(char c)
{
	const char *p = c ? strchr(alphabet, c) : NULL;
	return p ? (int)(p - alphabet) : -1;
}

static bool tid_decode(const char *tid, uint64_t *v)
{
	if (!atkv_syntax_tid(tid, ATKV_TID_LEN))
		return false;
	*v = 0;
	for (int i = 0; i < ATKV_TID_LEN; i++)
		*v = *v << 5 | (uint64_t)digit(tid[i]);
	/* The syntax admits first characters up to 'j' (bit 64 clear); a TID also keeps bit 63
	 * clear, and only such a value has room to move. */
	return *v <= (uint64_t)INT64_MAX;
}

static void tid_encode(uint64_t v, char *tid)
{
	for (int i = ATKV_TID_LEN - 1; i >= 0; i--, v >>= 5)
		tid[i] = alphabet[v & 31];
}

uint64_t atkv_loop_max(const char *tid)
{
	uint64_t v;
	if (!tid_decode(tid, &v))
		return 0;
	return ((UINT64_C(1) << 63) - 1 - v) >> TID_SHIFT_BITS;
}

bool atkv_loop_tid_shift(char *tid, uint64_t loop)
{
	uint64_t v;
	if (!tid_decode(tid, &v) || loop > atkv_loop_max(tid))
		return false;
	tid_encode(v + (loop << TID_SHIFT_BITS), tid);
	return true;
}

/* In the op map the reader is at, the path's record key when it is a TID. */
static int op_rkey(struct atkv_cbor *r, const uint8_t *frame, uint32_t *at, size_t cap, size_t *found)
{
	struct atkv_cbor_item op, key, val;
	int rc = atkv_cbor_next(r, &op, NULL);
	if (rc)
		return rc;
	if (op.kind != ATKV_CBOR_MAP) { /* not an op: step over what it holds */
		for (uint64_t i = 0; !rc && op.kind == ATKV_CBOR_ARRAY && i < op.count; i++)
			rc = atkv_cbor_skip(r, NULL);
		return rc;
	}
	for (uint64_t i = 0; i < op.count; i++) {
		if ((rc = atkv_cbor_next(r, &key, NULL)))
			return rc;
		if (!atkv_cbor_text_is(&key, "path")) {
			if ((rc = atkv_cbor_skip(r, NULL)))
				return rc;
			continue;
		}
		if ((rc = atkv_cbor_next(r, &val, NULL)))
			return rc;
		const uint8_t *slash = val.kind == ATKV_CBOR_TEXT ? memchr(val.p, '/', val.n) : NULL;
		if (slash && val.p + val.n - (slash + 1) == ATKV_TID_LEN &&
		    atkv_syntax_tid((const char *)slash + 1, ATKV_TID_LEN)) {
			if (*found < cap)
				at[*found] = (uint32_t)(slash + 1 - frame);
			(*found)++;
		}
	}
	return 0;
}

int atkv_loop_rkeys_locate(const uint8_t *frame, size_t n, uint32_t *at, size_t cap, size_t *found)
{
	struct atkv_cbor r;
	struct atkv_cbor_item body, key, ops;
	*found = 0;
	atkv_cbor_init(&r, frame, n);
	int rc = atkv_cbor_skip(&r, NULL); /* the header {op, t} */
	if (!rc)
		rc = atkv_cbor_next(&r, &body, NULL);
	if (rc || body.kind != ATKV_CBOR_MAP)
		return rc;
	for (uint64_t i = 0; i < body.count; i++) {
		if ((rc = atkv_cbor_next(&r, &key, NULL)))
			return rc;
		if (!atkv_cbor_text_is(&key, "ops")) {
			if ((rc = atkv_cbor_skip(&r, NULL)))
				return rc;
			continue;
		}
		if ((rc = atkv_cbor_next(&r, &ops, NULL)))
			return rc;
		if (ops.kind != ATKV_CBOR_ARRAY)
			return 0;
		for (uint64_t k = 0; k < ops.count; k++)
			if ((rc = op_rkey(&r, frame, at, cap, found)))
				return rc;
		return 0;
	}
	return 0;
}
