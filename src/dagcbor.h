/* dagcbor.h — DAG-CBOR to atproto JSON (atproto data model spec): links become
 * {"$link": "b..."}, bytes {"$bytes": "..."} (base64, unpadded); output is compact UTF-8 with keys
 * in the CBOR's canonical order. This is the value format of every record in the KV store. */
#ifndef ATKV_DAGCBOR_H
#define ATKV_DAGCBOR_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

/* Converts the single DAG-CBOR value p[0..n) to JSON, appended to out. Every rule of cborscan.h is
 * enforced, plus text-only map keys in canonical order without repeats, at most
 * ATKV_CBOR_MAX_DEPTH levels, and no bytes after the value. Returns 0 or a negative ATKV_E_*
 * code with err set; on failure out holds a partial value that the caller must discard. */
int atkv_dagcbor_to_json(const uint8_t *p, size_t n, struct atkv_buf *out, struct atkv_err *err);

/* The same, appending at most max bytes: a longer JSON form gives ATKV_E_TOO_LARGE, found before
 * the text or bytes that would pass the limit are written. JSON can be six times the CBOR (text
 * of control characters, each \u00XX), so a caller that cannot use a value over some size (a
 * NATS message) passes that size rather than allocate six times its input to find out. */
int atkv_dagcbor_to_json_max(const uint8_t *p, size_t n, struct atkv_buf *out, size_t max,
                             struct atkv_err *err);

#endif
