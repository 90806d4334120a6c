/* fuzz-http.c — libFuzzer target: an HTTP/1.1 response as a server might send it, fed in two
 * pieces split where the first byte says, with a small body limit. */
#include "http.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	size_t split = data[0] % size;
	data++;
	size--;
	if (split > size)
		split = size;
	struct atkv_http_response r = {0};
	struct atkv_buf body = ATKV_BUF_INIT;
	atkv_http_response_init(&r, 1764201600);
	size_t used = 0;
	if (atkv_http_feed(&r, data, split, &body, 65536, &used, NULL) == 0 && used == split)
		atkv_http_feed(&r, data + split, size - split, &body, 65536, &used, NULL);
	atkv_http_closed(&r);
	atkv_http_response_free(&r);
	atkv_buf_free(&body);
	return 0;
}
