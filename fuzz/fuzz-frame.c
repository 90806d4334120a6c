/* fuzz-frame.c — libFuzzer target: one subscribeRepos frame through the whole decoder,
 * including the CAR and the JSON of every record it names. */
#include "firehose.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct atkv_firehose *fh;
	if (!fh && !(fh = atkv_firehose_new()))
		abort();
	const struct atkv_event *ev;
	if (atkv_firehose_decode(fh, data, size, &ev, NULL) == 0) {
		for (size_t i = 0; i < ev->n_ops; i++) {
			const char *json;
			size_t len;
			atkv_firehose_record(fh, i, &json, &len, NULL);
		}
	}
	return 0;
}
