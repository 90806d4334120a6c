/* recordjson.c — a record block from a CAR as JSON (see recordjson.h). */
#include "recordjson.h"
#include "dagcbor.h"

int atkv_record_json(struct atkv_car *car, const struct atkv_cid *cid, size_t max, struct atkv_buf *out,
                     struct atkv_err *err)
{
	const uint8_t *block;
	size_t block_len;
	int rc = atkv_car_get(car, cid->bytes, cid->len, &block, &block_len);
	if (rc)
		return atkv_fail(err, rc, 0, "record");
	/* A record is a map (data model spec); its first byte says so (major type 5). */
	if (block_len == 0 || (block[0] >> 5) != 5)
		return atkv_fail(err, ATKV_E_FRAME, 0, "record");
	atkv_buf_reset(out);
	return atkv_dagcbor_to_json_max(block, block_len, out, max, err);
}
