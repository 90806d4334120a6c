/* likeoracle.c — see likeoracle.h. */
#include "likeoracle.h"
#include "likerecord.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *string_at(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool same(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

static int depth_of(const char *json, size_t n)
{
	int depth = 0, max = 0;
	bool in_string = false;
	for (size_t i = 0; i < n; i++) {
		if (in_string) {
			if (json[i] == '\\')
				i++;
			else if (json[i] == '"')
				in_string = false;
		} else if (json[i] == '"') {
			in_string = true;
		} else if (json[i] == '{' || json[i] == '[') {
			max = ++depth > max ? depth : max;
		} else if (json[i] == '}' || json[i] == ']') {
			depth--;
		}
	}
	return max;
}

bool like_oracle_agrees(const char *json, size_t n, char *why, size_t why_n)
{
	char *buf = malloc(n + 1);
	if (!buf) {
		snprintf(why, why_n, "out of memory");
		return false;
	}
	struct atkv_like_fields f;
	enum atkv_like_parse_result got = atkv_like_parse(json, n, buf, &f);
	json_error_t err;
	/* jansson stops reading at a NUL byte: a NUL is never in JSON text (outside a string it is
	 * not whitespace, inside one it is a control character). */
	json_t *v = memchr(json, 0, n) ? NULL : json_loadb(json, n, JSON_DECODE_ANY, &err);
	if (!v && memchr(json, 0, n))
		snprintf(err.text, sizeof(err.text), "a NUL byte");
	bool ok = true;
	if (!v) {
		/* jansson refuses what JSON allows: integers past 64 bits, reals past a double. */
		bool judge = !strstr(err.text, "too big") && !strstr(err.text, "overflow") &&
		             depth_of(json, n) <= ATKV_LIKERECORD_MAX_DEPTH;
		if (judge && got != ATKV_LIKE_NOT_JSON) {
			snprintf(why, why_n, "jansson refuses it (%s), atkv_like_parse took it", err.text);
			ok = false;
		}
	} else if (got == ATKV_LIKE_NOT_JSON) {
		if (depth_of(json, n) <= ATKV_LIKERECORD_MAX_DEPTH) {
			snprintf(why, why_n, "jansson takes it, atkv_like_parse says not JSON");
			ok = false;
		}
	} else {
		json_t *subject = json_is_object(v) ? json_object_get(v, "subject") : NULL;
		const char *uri = json_is_object(subject) ? string_at(subject, "uri") : NULL;
		/* jansson takes \u0000 only when asked; without it such a text never gets here. */
		bool has = uri && *uri;
		if (has != (got == ATKV_LIKE_OK)) {
			snprintf(why, why_n, "subject.uri: jansson %s, atkv_like_parse %s", has ? uri : "(none)",
			         got == ATKV_LIKE_OK ? f.subject_uri : "(none)");
			ok = false;
		} else if (has && (!same(uri, f.subject_uri) || !same(string_at(subject, "cid"), f.subject_cid) ||
		                   !same(string_at(v, "createdAt"), f.created_at))) {
			snprintf(why, why_n, "fields differ: uri %s / %s", uri, f.subject_uri);
			ok = false;
		}
	}
	json_decref(v);
	free(buf);
	return ok;
}
