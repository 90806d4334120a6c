/* car.h — CAR v1 reader (IPLD CARv1 spec; atproto repository spec "CAR file serialization"):
 * a varint-prefixed DAG-CBOR header {version: 1, roots: [links]}, then varint-prefixed sections
 * of CID + block. Loading indexes the blocks by CID; the index points into the caller's bytes,
 * nothing is copied. A block is checked against its CID when it is first fetched, so blocks no
 * one reads cost no hashing; one whose hash differs does not fail the load: fetching it reports
 * the mismatch, so one corrupt record costs that record only. */
#ifndef ATKV_CAR_H
#define ATKV_CAR_H

#include <stddef.h>
#include <stdint.h>

#include "cid.h"
#include "err.h"

#define ATKV_CAR_MAX_ROOTS 8

struct atkv_car;

/* A reader reused for many CARs (its index memory is kept). NULL when memory is short.
 * Free with atkv_car_free (which accepts NULL). */
struct atkv_car *atkv_car_new(void);
void atkv_car_free(struct atkv_car *car);

/* Parses p[0..n), which must stay valid and unchanged while the reader's results are used.
 * Returns 0, or ATKV_E_TRUNCATED, ATKV_E_VARINT, ATKV_E_TOO_LARGE, ATKV_E_CAR_HEADER,
 * ATKV_E_CID (including a hash function other than sha2-256), ATKV_E_NOMEM, or any DAG-CBOR
 * error from the header; err->offset
 * is relative to p. After a failure the reader holds no blocks. */
int atkv_car_load(struct atkv_car *car, const uint8_t *p, size_t n, struct atkv_err *err);

size_t atkv_car_root_count(const struct atkv_car *car);
/* The i-th root (i < atkv_car_root_count). */
const struct atkv_cid *atkv_car_root(const struct atkv_car *car, size_t i);
size_t atkv_car_block_count(const struct atkv_car *car);
/* Blocks of the last load found, so far, not to match their CID. */
size_t atkv_car_bad_count(const struct atkv_car *car);

/* Finds the block whose binary CID is cid[0..cid_len), and checks it the first time. Returns 0
 * with *data and *len set, ATKV_E_BLOCK_MISSING, or ATKV_E_CID_MISMATCH when the block is there
 * but fails its hash. */
int atkv_car_get(struct atkv_car *car, const uint8_t *cid, size_t cid_len, const uint8_t **data, size_t *len);

#endif
