/* nkey.h — the public key of a NATS user NKey, from its seed file (the `nkey` option): nats.c
 * signs with the seed but wants the public key named beside it; and the checksum every NKey
 * text carries (the tests' JWT maker writes NKeys with it). */
#ifndef ATKV_NKEY_H
#define ATKV_NKEY_H
#include <stddef.h>
#include <stdint.h>

/* A user's public key: "U" and 55 more characters. */
#define ATKV_NKEY_PUBLIC_LEN 56

/* Reads the user seed ("SU...", 58 characters; surrounding whitespace and a trailing newline are
 * fine) from path and writes its public key into pub (ATKV_NKEY_PUBLIC_LEN + 1 bytes). Returns 0,
 * or -1 with one line in why (never any part of the seed). */
int atkv_nkey_public_from_seed_file(const char *path, char *pub, char *why, size_t why_n);

/* The checksum NKey texts end with: CRC-16/XMODEM of p[0..n) (stored little-endian). */
uint16_t atkv_nkey_crc16(const uint8_t *p, size_t n);

/* The same from the seed text itself (seed[0..n)). */
int atkv_nkey_public_from_seed(const char *seed, size_t n, char *pub, char *why, size_t why_n);
#endif
