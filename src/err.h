/* err.h — the one error convention of the decoding core: the public codes (<atkv/error.h>)
 * and, when a function is given a struct atkv_err, where (byte offset into its input) and in
 * what (a static label) the failure was found. */
#ifndef ATKV_ERR_H
#define ATKV_ERR_H

#include <stddef.h>

#include <atkv/error.h>


struct atkv_err {
	int code;           /* an ATKV_E* value */
	size_t offset;      /* byte offset into the input where the failure was found */
	const char *where;  /* static label of the part being decoded, e.g. "car section" */
};

/* Records a failure in err (which may be NULL) and returns code, so callers can write
 * `return atkv_fail(err, ATKV_E_TRUNCATED, off, "car header");`. */
int atkv_fail(struct atkv_err *err, int code, size_t offset, const char *where);

/* Formats err as "what at offset N in WHERE" into buf (always NUL-terminated). Returns buf. */
char *atkv_err_format(const struct atkv_err *err, char *buf, size_t size);

#endif
