/* base32.c — lowercase unpadded RFC 4648 base32 (multibase prefix "b"), both directions. */
#include "base32.h"
#include "err.h"

static const char alphabet[32] = "abcdefghijklmnopqrstuvwxyz234567";

size_t atkv_base32_encode(const uint8_t *p, size_t n, char *out)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | p[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			out[o++] = alphabet[(acc >> bits) & 31];
		}
	}
	if (bits > 0)
		out[o++] = alphabet[(acc << (5 - bits)) & 31];
	out[o] = '\0';
	return o;
}

static int value_of(char c)
{
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= '2' && c <= '7')
		return c - '2' + 26;
	return -1;
}

long atkv_base32_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
	/* Lengths whose leftover bits could not come from whole bytes. */
	size_t tail = n % 8;
	if (tail == 1 || tail == 3 || tail == 6)
		return ATKV_E_BASE32;
	if (n / 8 * 5 + (tail * 5) / 8 > cap)
		return ATKV_E_BUFFER;
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = value_of(s[i]);
		if (v < 0)
			return ATKV_E_BASE32;
		acc = (acc << 5) | (uint32_t)v;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	if (acc & ((1u << bits) - 1))
		return ATKV_E_BASE32;
	return (long)o;
}
