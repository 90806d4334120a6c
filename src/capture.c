/* capture.c — reading the firehose capture format (see capture.h) from memory. */
#include "capture.h"
#include "err.h"

#include <string.h>

long atkv_capture_start(const uint8_t *p, size_t n)
{
	if (n < ATKV_CAPTURE_MAGIC_LEN || memcmp(p, ATKV_CAPTURE_MAGIC, ATKV_CAPTURE_MAGIC_LEN) != 0)
		return ATKV_E_FRAME;
	return ATKV_CAPTURE_MAGIC_LEN;
}

int atkv_capture_next(const uint8_t *p, size_t n, size_t *off, const uint8_t **frame, size_t *len)
{
	size_t o = *off;
	if (o == n)
		return 0;
	if (n - o < 4)
		return ATKV_E_TRUNCATED;
	size_t l = (size_t)p[o] << 24 | (size_t)p[o + 1] << 16 | (size_t)p[o + 2] << 8 | p[o + 3];
	o += 4;
	if (n - o < l)
		return ATKV_E_TRUNCATED;
	*frame = p + o;
	*len = l;
	*off = o + l;
	return 1;
}
