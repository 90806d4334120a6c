/* utf8.h — strict UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF),
 * as the atproto data model requires of every CBOR text string. */
#ifndef ATKV_UTF8_H
#define ATKV_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when p[0..n) is valid UTF-8. Cannot fail otherwise. */
bool atkv_utf8_valid(const uint8_t *p, size_t n);

#endif
