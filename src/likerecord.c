/* likerecord.c — a like record's subject.uri, subject.cid and createdAt, read from its JSON in
 * one pass (see likerecord.h). A general JSON parser builds a tree of allocations only to have
 * three strings read out of it: on the indexer's hot path that was half of its work. */
#include "likerecord.h"
#include "utf8.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* What the object being read is: the record itself, its subject, or anything else. */
enum place { OTHER, RECORD, SUBJECT };

struct scan {
	const char *p, *end;
	char *out;  /* where the next kept string goes */
	int depth;
	struct atkv_like_fields *f;
};

static void skip_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int hex4(const char *p)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return -1;
		v = v << 4 | d;
	}
	return v;
}

static char *put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xc0 | cp >> 6);
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xe0 | cp >> 12);
		*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (char)(0xf0 | cp >> 18);
		*o++ = (char)(0x80 | (cp >> 12 & 0x3f));
		*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	}
	return o;
}

/* A \u escape at s->p (after the backslash and 'u'), with its low surrogate when it is a high
 * one. U+0000 is refused: it would cut the string short. */
static bool unicode_escape(struct scan *s, uint32_t *cp)
{
	int hi = s->end - s->p >= 4 ? hex4(s->p) : -1;
	if (hi <= 0 || (hi >= 0xdc00 && hi <= 0xdfff))
		return false;
	s->p += 4;
	if (hi < 0xd800 || hi > 0xdbff) {
		*cp = (uint32_t)hi;
		return true;
	}
	int lo = s->end - s->p >= 6 && s->p[0] == '\\' && s->p[1] == 'u' ? hex4(s->p + 2) : -1;
	if (lo < 0xdc00 || lo > 0xdfff)
		return false;
	s->p += 6;
	*cp = 0x10000 + ((uint32_t)(hi - 0xd800) << 10) + (uint32_t)(lo - 0xdc00);
	return true;
}

/* The string at s->p (its opening quote). Kept (unescaped, NUL-terminated at s->out, *kept set
 * and s->out moved past it) when kept is not NULL; only checked otherwise. */
static bool string(struct scan *s, const char **kept)
{
	char *o = s->out;
	s->p++;
	for (;;) {
		/* The text is valid UTF-8 already: only quotes, escapes and control characters matter. */
		const char *run = s->p;
		while (s->p < s->end && *s->p != '"' && *s->p != '\\' && (unsigned char)*s->p >= 0x20)
			s->p++;
		if (kept) {
			memcpy(o, run, (size_t)(s->p - run));
			o += s->p - run;
		}
		if (s->p >= s->end || (unsigned char)*s->p < 0x20)
			return false;
		if (*s->p++ == '"')
			break;
		if (s->p >= s->end)
			return false;
		char c = *s->p++, e;
		uint32_t cp;
		switch (c) {
		case '"': case '\\': case '/': e = c; break;
		case 'b': e = '\b'; break;
		case 'f': e = '\f'; break;
		case 'n': e = '\n'; break;
		case 'r': e = '\r'; break;
		case 't': e = '\t'; break;
		case 'u':
			if (!unicode_escape(s, &cp))
				return false;
			if (kept)
				o = put_utf8(o, cp);
			continue;
		default: return false;
		}
		if (kept)
			*o++ = e;
	}
	if (kept) {
		*o++ = '\0';
		*kept = s->out;
		s->out = o;
	}
	return true;
}

static bool digits(struct scan *s)
{
	const char *start = s->p;
	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	return s->p > start;
}

static bool number(struct scan *s)
{
	if (*s->p == '-')
		s->p++;
	if (s->p < s->end && *s->p == '0')
		s->p++;
	else if (!digits(s))
		return false;
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (!digits(s))
			return false;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (!digits(s))
			return false;
	}
	return true;
}

static bool literal(struct scan *s, const char *word, size_t n)
{
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n))
		return false;
	s->p += n;
	return true;
}

static bool value(struct scan *s, enum place place, const char **kept);

/* Where a member's value goes: a kept string's slot, or NULL. Sets *inner to what an object
 * value would be. Keys are compared unescaped, as any JSON reader would. */
static const char **slot(struct scan *s, enum place place, const char *key, enum place *inner)
{
	*inner = OTHER;
	if (place == RECORD && !strcmp(key, "subject")) {
		/* A later subject replaces an earlier one whole. */
		s->f->subject_uri = s->f->subject_cid = NULL;
		*inner = SUBJECT;
	} else if (place == RECORD && !strcmp(key, "createdAt")) {
		s->f->created_at = NULL;
		return &s->f->created_at;
	} else if (place == SUBJECT && !strcmp(key, "uri")) {
		s->f->subject_uri = NULL;
		return &s->f->subject_uri;
	} else if (place == SUBJECT && !strcmp(key, "cid")) {
		s->f->subject_cid = NULL;
		return &s->f->subject_cid;
	}
	return NULL;
}

static bool members(struct scan *s, enum place place)
{
	skip_ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return true;
	}
	for (;;) {
		/* The key is unescaped where the kept strings go, and the space is taken back. */
		char *mark = s->out;
		const char *key = NULL;
		if (s->p >= s->end || *s->p != '"' || !string(s, place == OTHER ? NULL : &key))
			return false;
		s->out = mark;
		enum place inner = OTHER;
		const char **kept = place == OTHER ? NULL : slot(s, place, key, &inner);
		skip_ws(s);
		if (s->p >= s->end || *s->p++ != ':')
			return false;
		skip_ws(s);
		if (!value(s, inner, kept))
			return false;
		skip_ws(s);
		if (s->p >= s->end)
			return false;
		if (*s->p == '}') {
			s->p++;
			return true;
		}
		if (*s->p++ != ',')
			return false;
		skip_ws(s);
	}
}

static bool elements(struct scan *s)
{
	skip_ws(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		return true;
	}
	for (;;) {
		if (!value(s, OTHER, NULL))
			return false;
		skip_ws(s);
		if (s->p >= s->end)
			return false;
		if (*s->p == ']') {
			s->p++;
			return true;
		}
		if (*s->p++ != ',')
			return false;
		skip_ws(s);
	}
}

/* The value at s->p. place says what it is when an object; kept, where it goes when a string. */
static bool value(struct scan *s, enum place place, const char **kept)
{
	if (s->p >= s->end)
		return false;
	switch (*s->p) {
	case '{':
	case '[': {
		if (++s->depth > ATKV_LIKERECORD_MAX_DEPTH)
			return false;
		bool ok = *s->p++ == '{' ? members(s, place) : elements(s);
		s->depth--;
		return ok;
	}
	case '"': return string(s, kept);
	case 't': return literal(s, "true", 4);
	case 'f': return literal(s, "false", 5);
	case 'n': return literal(s, "null", 4);
	default: return (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) && number(s);
	}
}

enum atkv_like_parse_result atkv_like_parse(const char *json, size_t n, char *buf, struct atkv_like_fields *out)
{
	memset(out, 0, sizeof(*out));
	struct scan s = {.p = json, .end = json + n, .out = buf, .f = out};
	if (!atkv_utf8_valid((const uint8_t *)json, n))
		return ATKV_LIKE_NOT_JSON;
	skip_ws(&s);
	bool record = s.p < s.end && *s.p == '{';
	if (!value(&s, RECORD, NULL))
		goto not_json;
	skip_ws(&s);
	if (s.p != s.end)
		goto not_json;
	if (!record || !out->subject_uri || !*out->subject_uri) {
		memset(out, 0, sizeof(*out));
		return ATKV_LIKE_NO_SUBJECT;
	}
	return ATKV_LIKE_OK;
not_json:
	memset(out, 0, sizeof(*out));
	return ATKV_LIKE_NOT_JSON;
}
