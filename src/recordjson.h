/* recordjson.h — a record's value as atkv stores it: its block, fetched from a CAR (and so
 * checked against its CID), as atproto JSON. The firehose and the repository backfill both use
 * it, so the same record is stored as the same bytes whichever way it came. */
#ifndef ATKV_RECORDJSON_H
#define ATKV_RECORDJSON_H

#include <stddef.h>

#include "buf.h"
#include "car.h"
#include "cid.h"
#include "err.h"

/* Replaces out's content with the JSON of the record cid names in car. Returns 0;
 * ATKV_E_BLOCK_MISSING or ATKV_E_CID_MISMATCH; ATKV_E_FRAME when the block is not a map (a
 * record always is); ATKV_E_TOO_LARGE when the JSON would be longer than max bytes (refused
 * before it is built); or a DAG-CBOR error. */
int atkv_record_json(struct atkv_car *car, const struct atkv_cid *cid, size_t max, struct atkv_buf *out,
                     struct atkv_err *err);

#endif
