/* nkey.c — NATS NKeys (see nkey.h): base32 (RFC 4648, upper case, no padding) of a prefix, the
 * 32 key bytes and a CRC-16/XMODEM, little-endian. A user seed's prefix is two bytes, 'S' and
 * 'U' packed together; the public key is Ed25519's of the seed, with prefix 'U'. Buffers that
 * held the seed are cleared before returning. */
#include "nkey.h"
#include "base32.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define PREFIX_SEED (18u << 3) /* 'S' */
#define PREFIX_USER (20u << 3) /* 'U' */
#define SEED_LEN 58            /* characters: 2 + 32 + 2 bytes */

uint16_t atkv_nkey_crc16(const uint8_t *p, size_t n)
{
	uint16_t crc = 0;
	for (size_t i = 0; i < n; i++) {
		crc ^= (uint16_t)(p[i] << 8);
		for (int b = 0; b < 8; b++)
			crc = crc & 0x8000 ? (uint16_t)(crc << 1 ^ 0x1021) : (uint16_t)(crc << 1);
	}
	return crc;
}

int atkv_nkey_public_from_seed(const char *seed, size_t n, char *pub, char *why, size_t why_n)
{
	char lower[SEED_LEN];
	uint8_t raw[36], key[35], pk[32];
	size_t pk_n = sizeof(pk);
	int rc = -1;
	while (n && isspace((unsigned char)seed[n - 1]))
		n--;
	while (n && isspace((unsigned char)*seed))
		seed++, n--;
	if (n != SEED_LEN || seed[0] != 'S' || seed[1] != 'U') {
		snprintf(why, why_n, "not a NATS user NKey seed (58 characters starting with SU)");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		lower[i] = (char)tolower((unsigned char)seed[i]);
	if (atkv_base32_decode(lower, n, raw, sizeof(raw)) != (long)sizeof(raw) ||
	    raw[0] != (PREFIX_SEED | PREFIX_USER >> 5) || raw[1] != (uint8_t)((PREFIX_USER & 31) << 3) ||
	    atkv_nkey_crc16(raw, 34) != (uint16_t)(raw[34] | raw[35] << 8)) {
		snprintf(why, why_n, "not a NATS user NKey seed (bad base32 or checksum)");
		goto out;
	}
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw + 2, 32);
	if (!k || EVP_PKEY_get_raw_public_key(k, pk, &pk_n) != 1 || pk_n != sizeof(pk)) {
		snprintf(why, why_n, "OpenSSL cannot derive the NKey's public key");
		EVP_PKEY_free(k);
		goto out;
	}
	EVP_PKEY_free(k);
	key[0] = PREFIX_USER;
	memcpy(key + 1, pk, 32);
	uint16_t c = atkv_nkey_crc16(key, 33);
	key[33] = (uint8_t)c;
	key[34] = (uint8_t)(c >> 8);
	atkv_base32_encode(key, sizeof(key), pub);
	for (char *p = pub; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	rc = 0;
out:
	OPENSSL_cleanse(lower, sizeof(lower));
	OPENSSL_cleanse(raw, sizeof(raw));
	return rc;
}

int atkv_nkey_public_from_seed_file(const char *path, char *pub, char *why, size_t why_n)
{
	char text[128];
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(why, why_n, "cannot read the NKey seed file %s: %s", path, strerror(errno));
		return -1;
	}
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	char line[160];
	int rc = atkv_nkey_public_from_seed(text, n, pub, line, sizeof(line));
	if (rc)
		snprintf(why, why_n, "%s: %s", path, line);
	OPENSSL_cleanse(text, sizeof(text));
	return rc;
}
