/* siphash.h — SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit hash for tables whose
 * keys come from the network, so that nobody who lacks the key can aim many keys at one slot. */
#ifndef ATKV_SIPHASH_H
#define ATKV_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* The SipHash-2-4 of p[0..n) under the 16-byte key. Cannot fail. */
uint64_t atkv_siphash(const uint8_t key[16], const void *p, size_t n);

#endif
