/* fuzz-dagcbor.c — libFuzzer target: DAG-CBOR → atproto JSON. Whatever it accepts must be
 * JSON that jansson parses (jansson refuses \u0000 in object keys, valid JSON that it cannot
 * represent, so such output is left unchecked). */
#include "buf.h"
#include "dagcbor.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct atkv_buf out;
	atkv_buf_reset(&out);
	if (atkv_dagcbor_to_json(data, size, &out, NULL) == 0 && !strstr(out.data, "\\u0000")) {
		json_error_t err;
		json_t *v = json_loadb(out.data, out.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
		if (!v) {
			fprintf(stderr, "not JSON: %s at %d: %.*s\n", err.text, err.position, (int)out.len, out.data);
			abort();
		}
		json_decref(v);
	}
	return 0;
}
