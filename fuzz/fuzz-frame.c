/* fuzz-frame.c — libFuzzer target: one subscribeRepos frame through the whole decoder,
 * including the CAR and the JSON of every record it names, and for a #commit the Sync 1.1
 * checks (its ops undone on the tree its blocks carry). */
#include "commitcheck.h"
#include "firehose.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct atkv_firehose *fh;
	static struct atkv_commitcheck *cc;
	if ((!fh && !(fh = atkv_firehose_new())) || (!cc && !(cc = atkv_commitcheck_new())))
		abort();
	const struct atkv_event *ev;
	struct atkv_err err = {0};
	if (atkv_firehose_decode(fh, data, size, &ev, &err) == 0) {
		for (size_t i = 0; i < ev->n_ops; i++) {
			const char *json;
			size_t len;
			atkv_firehose_record(fh, i, &json, &len, NULL);
		}
		struct atkv_commit commit;
		if (ev->type == ATKV_EVENT_COMMIT)
			atkv_commitcheck_run(cc, fh, ev, NULL, NULL, &commit, &err);
	}
	return 0;
}
