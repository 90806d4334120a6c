/* murmur3.c — MurmurHash3 x86_32, written from the algorithm's description: 4-byte little-endian
 * blocks mixed into the state, the 1-3 tail bytes, then the finalisation avalanche. */
#include "murmur3.h"

static uint32_t rotl(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

uint32_t atkv_murmur3_32(const void *p, size_t n, uint32_t seed)
{
	const uint8_t *b = p;
	const uint32_t c1 = 0xcc9e2d51, c2 = 0x1b873593;
	uint32_t h = seed, k;
	size_t i = 0;

	for (; i + 4 <= n; i += 4) {
		k = (uint32_t)b[i] | (uint32_t)b[i + 1] << 8 | (uint32_t)b[i + 2] << 16 |
		    (uint32_t)b[i + 3] << 24;
		k *= c1;
		k = rotl(k, 15);
		k *= c2;
		h ^= k;
		h = rotl(h, 13);
		h = h * 5 + 0xe6546b64;
	}
	k = 0;
	switch (n & 3) {
	case 3: k ^= (uint32_t)b[i + 2] << 16; /* fall through */
	case 2: k ^= (uint32_t)b[i + 1] << 8;  /* fall through */
	case 1:
		k ^= b[i];
		k *= c1;
		k = rotl(k, 15);
		k *= c2;
		h ^= k;
	}
	h ^= (uint32_t)n;
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}
