/* dump-capture.c — prints what atkv-builder would store for each event of a firehose capture:
 * for every record op, "action at-uri key json" (key is the KV key in bucket `record`), and one
 * line for every other event. A development tool and, until the full pipeline lands, the demo.
 *   dump-capture CAPTURE */
#include "capture.h"
#include "err.h"
#include "firehose.h"
#include <atkv/recordkey.h>

#include <stdio.h>
#include <stdlib.h>

static const char *type_name(enum atkv_event_type t)
{
	switch (t) {
	case ATKV_EVENT_COMMIT: return "#commit";
	case ATKV_EVENT_SYNC: return "#sync";
	case ATKV_EVENT_IDENTITY: return "#identity";
	case ATKV_EVENT_ACCOUNT: return "#account";
	case ATKV_EVENT_INFO: return "#info";
	case ATKV_EVENT_ERROR: return "error";
	case ATKV_EVENT_UNKNOWN: break;
	}
	return "unknown";
}

static void print_ops(struct atkv_firehose *fh, const struct atkv_event *ev)
{
	char key[ATKV_KEY_MAX + 1], e[160];
	for (size_t i = 0; i < ev->n_ops; i++) {
		const struct atkv_op *op = &ev->ops[i];
		long kn = atkv_key_build(key, sizeof(key), ev->did.p, ev->did.n, op->collection.p,
		                         op->collection.n, op->rkey.p, op->rkey.n);
		printf("%s at://%.*s/%.*s %s ", atkv_action_name(op->action), (int)ev->did.n, ev->did.p,
		       (int)op->path.n, op->path.p, kn > 0 ? key : "-");
		const char *json;
		size_t len;
		struct atkv_err err = {0};
		if (op->action == ATKV_ACTION_DELETE)
			puts("-");
		else if (atkv_firehose_record(fh, i, &json, &len, &err) == 0)
			printf("%.*s\n", (int)len, json);
		else
			printf("error: %s\n", atkv_err_format(&err, e, sizeof(e)));
	}
}

int main(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: dump-capture CAPTURE\n"
		                "Prints every record of a firehose capture as \"action at-uri key json\".\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "rb");
	size_t cap_size = 0, n = 0, got;
	uint8_t *cap = NULL;
	while (f) {
		if (n == cap_size) {
			uint8_t *nc = realloc(cap, cap_size = cap_size ? cap_size * 2 : 1 << 20);
			if (!nc)
				break;
			cap = nc;
		}
		if ((got = fread(cap + n, 1, cap_size - n, f)) == 0)
			break;
		n += got;
	}
	long start = cap ? atkv_capture_start(cap, n) : -1;
	if (!f || start < 0) {
		fprintf(stderr, "dump-capture: %s is not a readable capture (atkvcap1)\n", argv[1]);
		return 1;
	}
	fclose(f);
	struct atkv_firehose *fh = atkv_firehose_new();
	size_t off = (size_t)start, len, index = 0;
	const uint8_t *frame;
	int rc;
	while (fh && (rc = atkv_capture_next(cap, n, &off, &frame, &len)) == 1) {
		const struct atkv_event *ev;
		struct atkv_err err = {0};
		char e[160];
		if (atkv_firehose_decode(fh, frame, len, &ev, &err)) {
			printf("# frame %zu: %s\n", index++, atkv_err_format(&err, e, sizeof(e)));
			continue;
		}
		index++;
		if (ev->type == ATKV_EVENT_COMMIT)
			print_ops(fh, ev);
		else
			printf("# %s seq=%lld %.*s\n", type_name(ev->type), (long long)ev->seq,
			       (int)(ev->did.p ? ev->did.n : ev->name.n), ev->did.p ? ev->did.p : ev->name.p ? ev->name.p : "");
	}
	atkv_firehose_free(fh);
	free(cap);
	return 0;
}
