/* cbuild.h — a tiny CBOR writer for building test inputs (frames, CARs, bad encodings).
 * It writes what it is told, canonical or not: the tests decide. */
#ifndef ATKV_CBUILD_H
#define ATKV_CBUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

void cb_head(struct atkv_buf *b, unsigned major, uint64_t v);
void cb_uint(struct atkv_buf *b, uint64_t v);
void cb_int(struct atkv_buf *b, int64_t v);
void cb_text(struct atkv_buf *b, const char *s);
void cb_bytes(struct atkv_buf *b, const void *p, size_t n);
void cb_link(struct atkv_buf *b, const uint8_t *cid, size_t n);
void cb_bool(struct atkv_buf *b, bool v);
void cb_null(struct atkv_buf *b);
void cb_raw(struct atkv_buf *b, const void *p, size_t n);
void cb_varint(struct atkv_buf *b, uint64_t v);

#endif
