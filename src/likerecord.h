/* likerecord.h — the fields the like index keeps, read from a like record's JSON in one pass
 * without building a tree: the whole text is checked to be JSON (RFC 8259, UTF-8), and
 * subject.uri, subject.cid and createdAt are copied out unescaped. */
#ifndef ATKV_LIKERECORD_H
#define ATKV_LIKERECORD_H

#include <stddef.h>

/* Nesting deeper than this is refused as not JSON (a bound on the scanner's recursion). */
#define ATKV_LIKERECORD_MAX_DEPTH 512

struct atkv_like_fields {
	const char *subject_uri;  /* NUL-terminated, in the caller's buffer; NULL when absent */
	const char *subject_cid;  /* NULL when absent or not a string */
	const char *created_at;   /* NULL when absent or not a string */
};

enum atkv_like_parse_result {
	ATKV_LIKE_OK = 0,
	ATKV_LIKE_NOT_JSON = 1,     /* not a JSON text */
	ATKV_LIKE_NO_SUBJECT = 2,   /* JSON, but not an object with a non-empty string subject.uri */
};

/* Parses json[0..n). The strings go to buf, which must hold n + 1 bytes (unescaping never
 * lengthens them). As with a JSON object's usual reading, a key given twice keeps its last
 * value. Numbers are checked against the grammar only, not for range. */
enum atkv_like_parse_result atkv_like_parse(const char *json, size_t n, char *buf, struct atkv_like_fields *out);

#endif
