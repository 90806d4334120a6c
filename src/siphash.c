/* siphash.c — SipHash-2-4 from the paper's description: a 256-bit state of four words, two
 * compression rounds per 8-byte little-endian word, four finalisation rounds. */
#include "siphash.h"

static uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

static uint64_t load64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);                          \
		v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;                                             \
		v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;                                             \
		v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);                          \
	} while (0)

uint64_t atkv_siphash(const uint8_t key[16], const void *p, size_t n)
{
	const uint8_t *in = p;
	uint64_t k0 = load64(key), k1 = load64(key + 8);
	uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t m = load64(in + i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	/* The last word: the remaining bytes, and the length's low byte on top. */
	uint64_t b = (uint64_t)n << 56;
	for (size_t k = 0; i + k < n; k++)
		b |= (uint64_t)in[i + k] << (8 * k);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}
