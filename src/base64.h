/* base64.h — RFC 4648 standard base64, written without padding: the atproto JSON form of bytes
 * ({"$bytes": "..."}, data model spec). */
#ifndef ATKV_BASE64_H
#define ATKV_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Characters atkv_base64_encode writes for n input bytes (without the NUL). */
#define ATKV_BASE64_LEN(n) (((n) / 3) * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))

/* Encodes p[0..n) into out, which must hold ATKV_BASE64_LEN(n) bytes; writes no NUL.
 * Returns the number of characters written. Cannot fail. */
size_t atkv_base64_encode(const uint8_t *p, size_t n, char *out);

/* Decodes s[0..n) into out (capacity cap). Accepts the unpadded form and, for interoperability,
 * trailing '=' padding; rejects other characters and non-zero leftover bits. Returns the number
 * of bytes, or ATKV_E_BASE64, or ATKV_E_BUFFER when out is too small. */
long atkv_base64_decode(const char *s, size_t n, uint8_t *out, size_t cap);

#endif
