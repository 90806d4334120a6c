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

/* `depth` arrays of one element each, around a 0: deep nesting in few bytes. */
void cb_nest(struct atkv_buf *b, size_t depth);

/* CAR v1 (car.h): the header naming one root, then one section per block. cb_car_section
 * returns the offset in b where the block's data starts (to tamper with it). */
void cb_car_header(struct atkv_buf *b, const uint8_t *root, size_t root_n);
size_t cb_car_section(struct atkv_buf *b, const uint8_t *cid, size_t cid_n, const void *data, size_t n);

#endif
