/* varint.h — unsigned varints as multiformats uses them (CIDs, CAR lengths): LEB128, at most
 * nine bytes (63 bits), minimally encoded (multiformats unsigned-varint spec). */
#ifndef ATKV_VARINT_H
#define ATKV_VARINT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Reads a varint from p[0..n) into *value. Returns the bytes consumed (1..9), or ATKV_E_TRUNCATED
 * when the input ends inside it, or ATKV_E_VARINT when it is longer than nine bytes or not
 * minimal. *value is set only on success. */
static inline int atkv_varint_read(const uint8_t *p, size_t n, uint64_t *value)
{
	uint64_t v = 0;
	for (size_t i = 0; i < 9; i++) {
		if (i >= n)
			return ATKV_E_TRUNCATED;
		uint8_t b = p[i];
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			if (b == 0 && i > 0)
				return ATKV_E_VARINT;
			*value = v;
			return (int)i + 1;
		}
	}
	return ATKV_E_VARINT;
}

#endif
