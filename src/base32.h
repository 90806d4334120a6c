/* base32.h — RFC 4648 base32, lowercase, without padding: the multibase "b" form of CIDs. */
#ifndef ATKV_BASE32_H
#define ATKV_BASE32_H

#include <stddef.h>
#include <stdint.h>

/* Characters atkv_base32_encode writes for n input bytes (without the NUL). */
#define ATKV_BASE32_LEN(n) (((n) * 8 + 4) / 5)

/* Encodes p[0..n) into out, which must hold ATKV_BASE32_LEN(n) + 1 bytes; NUL-terminates.
 * Returns the number of characters written. Cannot fail. */
size_t atkv_base32_encode(const uint8_t *p, size_t n, char *out);

/* Decodes s[0..n) into out (capacity cap). Rejects characters outside the lowercase alphabet,
 * impossible lengths and non-zero padding bits. Returns the number of bytes, or ATKV_E_BASE32,
 * or ATKV_E_BUFFER when out is too small. */
long atkv_base32_decode(const char *s, size_t n, uint8_t *out, size_t cap);

#endif
