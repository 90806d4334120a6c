/* dagcbor.c — DAG-CBOR → atproto JSON in one pass, with an explicit stack (no recursion, so
 * hostile nesting cannot exhaust the C stack) writing straight into a reusable buffer. */
#include "dagcbor.h"
#include "base64.h"
#include "cborscan.h"
#include "cid.h"

#include <stdbool.h>

/* One open array or map. */
struct level {
	uint64_t left;          /* members (array elements, map pairs) still to read */
	bool map;
	bool first;
	const uint8_t *key;     /* previous key, for the canonical-order check */
	size_t key_len;
};

/* JSON string escapes for the bytes that need one; 'u' means \u00XX. */
static const char escape[256] = {
	['"'] = '"', ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r',
	['\t'] = 't', [0x00] = 'u', [0x01] = 'u', [0x02] = 'u', [0x03] = 'u', [0x04] = 'u',
	[0x05] = 'u', [0x06] = 'u', [0x07] = 'u', [0x0b] = 'u', [0x0e] = 'u', [0x0f] = 'u',
	[0x10] = 'u', [0x11] = 'u', [0x12] = 'u', [0x13] = 'u', [0x14] = 'u', [0x15] = 'u',
	[0x16] = 'u', [0x17] = 'u', [0x18] = 'u', [0x19] = 'u', [0x1a] = 'u', [0x1b] = 'u',
	[0x1c] = 'u', [0x1d] = 'u', [0x1e] = 'u', [0x1f] = 'u',
};

/* The length of s[0..n) as a JSON string literal, quotes included. */
static size_t string_len(const uint8_t *s, size_t n)
{
	size_t len = n + 2;
	for (size_t i = 0; i < n; i++)
		len += escape[s[i]] == 'u' ? 5 : escape[s[i]] ? 1 : 0;
	return len;
}

/* What may still be appended to out under the limit `end` (a length of out). */
static size_t room(const struct atkv_buf *out, size_t end)
{
	return end > out->len ? end - out->len : 0;
}

/* Writes s[0..n) (valid UTF-8) as a JSON string literal, unless it would take out past end. */
static int put_string(struct atkv_buf *out, const uint8_t *s, size_t n, size_t end)
{
	/* Worst case every byte becomes \u00XX (six times the text: a hostile record of control
	 * characters); only a string that might not fit is measured exactly. */
	if (n > (SIZE_MAX - 2) / 6)
		return ATKV_E_TOO_LARGE;
	size_t need = n * 6 + 2;
	if (need > room(out, end) && (need = string_len(s, n)) > room(out, end))
		return ATKV_E_TOO_LARGE;
	int rc = atkv_buf_reserve(out, need);
	if (rc)
		return rc;
	char *o = out->data + out->len;
	*o++ = '"';
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		char e = escape[s[i]];
		if (!e)
			continue;
		memcpy(o, s + run, i - run);
		o += i - run;
		run = i + 1;
		*o++ = '\\';
		if (e == 'u') {
			static const char hex[] = "0123456789abcdef";
			memcpy(o, "u00", 3);
			o[3] = hex[s[i] >> 4];
			o[4] = hex[s[i] & 15];
			o += 5;
		} else {
			*o++ = e;
		}
	}
	memcpy(o, s + run, n - run);
	o += n - run;
	*o++ = '"';
	*o = '\0';
	out->len = (size_t)(o - out->data);
	return 0;
}

static int put_int(struct atkv_buf *out, int64_t v)
{
	char tmp[24], *e = tmp + sizeof(tmp), *d = e;
	/* Work with the magnitude as unsigned so INT64_MIN does not overflow. */
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	do {
		*--d = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--d = '-';
	return atkv_buf_append(out, d, (size_t)(e - d));
}

static int put_link(struct atkv_buf *out, const struct atkv_cid *cid)
{
	int rc = atkv_buf_reserve(out, ATKV_CID_STR_MAX + 12);
	if (rc)
		return rc;
	atkv_buf_puts(out, "{\"$link\":\"");
	out->len += atkv_cid_format(cid, out->data + out->len);
	return atkv_buf_puts(out, "\"}");
}

static int put_bytes(struct atkv_buf *out, const uint8_t *p, size_t n, size_t end)
{
	if (ATKV_BASE64_LEN(n) + 14 > room(out, end))
		return ATKV_E_TOO_LARGE;
	int rc = atkv_buf_reserve(out, ATKV_BASE64_LEN(n) + 14);
	if (rc)
		return rc;
	atkv_buf_puts(out, "{\"$bytes\":\"");
	out->len += atkv_base64_encode(p, n, out->data + out->len);
	return atkv_buf_puts(out, "\"}");
}

/* Writes a scalar item (anything but an array or map). Text and bytes, whose JSON grows with
 * the input, are refused before they take out past end; the rest may pass it by a few bytes. */
static int put_scalar(struct atkv_buf *out, const struct atkv_cbor_item *it, size_t end)
{
	switch (it->kind) {
	case ATKV_CBOR_INT: return put_int(out, it->i);
	case ATKV_CBOR_TEXT: return put_string(out, it->p, it->n, end);
	case ATKV_CBOR_BYTES: return put_bytes(out, it->p, it->n, end);
	case ATKV_CBOR_LINK: return put_link(out, &it->cid);
	case ATKV_CBOR_BOOL: return it->i ? atkv_buf_puts(out, "true") : atkv_buf_puts(out, "false");
	case ATKV_CBOR_NULL: return atkv_buf_puts(out, "null");
	case ATKV_CBOR_ARRAY:
	case ATKV_CBOR_MAP: break;
	}
	return ATKV_E_CBOR_MALFORMED;
}

/* Reads the next key of the map at lv, checks its type and order, and writes `"key":`. */
static int put_key(struct atkv_cbor *r, struct level *lv, struct atkv_buf *out, size_t end,
                   struct atkv_err *err)
{
	struct atkv_cbor_item key;
	int rc = atkv_cbor_next(r, &key, err);
	if (rc)
		return rc;
	if (key.kind != ATKV_CBOR_TEXT)
		return atkv_fail(err, ATKV_E_CBOR_KEY_TYPE, key.offset, "cbor map key");
	if (!lv->first) {
		int c = atkv_cbor_key_cmp(lv->key, lv->key_len, key.p, key.n);
		if (c == 0)
			return atkv_fail(err, ATKV_E_CBOR_KEY_DUP, key.offset, "cbor map key");
		if (c > 0)
			return atkv_fail(err, ATKV_E_CBOR_KEY_ORDER, key.offset, "cbor map key");
	}
	lv->key = key.p;
	lv->key_len = key.n;
	if ((rc = put_string(out, key.p, key.n, end)) || (rc = atkv_buf_putc(out, ':')))
		return atkv_fail(err, rc, key.offset, "json output");
	return 0;
}

int atkv_dagcbor_to_json(const uint8_t *p, size_t n, struct atkv_buf *out, struct atkv_err *err)
{
	return atkv_dagcbor_to_json_max(p, n, out, SIZE_MAX, err);
}

int atkv_dagcbor_to_json_max(const uint8_t *p, size_t n, struct atkv_buf *out, size_t max,
                             struct atkv_err *err)
{
	struct level stack[ATKV_CBOR_MAX_DEPTH];
	int depth = 0;
	struct atkv_cbor r;
	size_t end = max > SIZE_MAX - out->len ? SIZE_MAX : out->len + max;
	atkv_cbor_init(&r, p, n);

	for (;;) {
		struct level *lv = depth ? &stack[depth - 1] : NULL;
		int rc;
		/* Small items may overshoot end by a few bytes each: stop at the first that did. */
		if (out->len > end)
			return atkv_fail(err, ATKV_E_TOO_LARGE, r.off, "json output");
		if (lv && lv->left == 0) {
			if ((rc = atkv_buf_putc(out, lv->map ? '}' : ']')))
				return atkv_fail(err, rc, r.off, "json output");
			if (--depth == 0)
				break;
			continue;
		}
		if (lv) {
			if (!lv->first && (rc = atkv_buf_putc(out, ',')))
				return atkv_fail(err, rc, r.off, "json output");
			if (lv->map && (rc = put_key(&r, lv, out, end, err)))
				return rc;
			lv->first = false;
			lv->left--;
		}

		struct atkv_cbor_item it;
		if ((rc = atkv_cbor_next(&r, &it, err)))
			return rc;
		if (it.kind == ATKV_CBOR_ARRAY || it.kind == ATKV_CBOR_MAP) {
			if (depth == ATKV_CBOR_MAX_DEPTH)
				return atkv_fail(err, ATKV_E_CBOR_DEPTH, it.offset, "cbor collection");
			bool map = it.kind == ATKV_CBOR_MAP;
			if ((rc = atkv_buf_putc(out, map ? '{' : '[')))
				return atkv_fail(err, rc, it.offset, "json output");
			stack[depth++] = (struct level){.left = it.count, .map = map, .first = true};
			continue;
		}
		if ((rc = put_scalar(out, &it, end)))
			return atkv_fail(err, rc, it.offset, "json output");
		if (depth == 0)
			break;
	}
	if (out->len > end)
		return atkv_fail(err, ATKV_E_TOO_LARGE, r.off, "json output");
	if (r.off != n)
		return atkv_fail(err, ATKV_E_TRAILING, r.off, "cbor value");
	return 0;
}
