/* fuzz-likerecord.c — libFuzzer target: a like record's fields read from hostile JSON
 * (likerecord.c), checked against jansson on every input: both must agree on whether it is JSON
 * and on the fields (tests/likeoracle.c says where jansson cannot judge). */
#include "../tests/likeoracle.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[512];
	if (!like_oracle_agrees((const char *)data, size, why, sizeof(why))) {
		fprintf(stderr, "fuzz-likerecord: %s\n", why);
		abort();
	}
	return 0;
}
