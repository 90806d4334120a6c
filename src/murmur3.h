/* murmur3.h — MurmurHash3 x86_32 (Austin Appleby's public-domain algorithm), the hash behind the
 * record key's partition character (DESIGN.md "Bucket record"). */
#ifndef ATKV_MURMUR3_H
#define ATKV_MURMUR3_H

#include <stddef.h>
#include <stdint.h>

/* The 32-bit MurmurHash3 of p[0..n) with the given seed. Cannot fail. */
uint32_t atkv_murmur3_32(const void *p, size_t n, uint32_t seed);

#endif
