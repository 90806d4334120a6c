/* bench-publish.c — the baseline of the builder benchmark: the writes of a capture (writes.h),
 * LOOPS times over, published to JetStream with plain nats.c async publishes (same subjects,
 * values and headers, same bound on publishes in flight), then waits for every acknowledgement.
 *   bench-publish NATS_URL CAPTURE LOOPS MAX_PENDING */
#include "writes.h"

#include <inttypes.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: bench-publish NATS_URL CAPTURE LOOPS MAX_PENDING\n");
		return 2;
	}
	struct bench_write *w;
	size_t n, events;
	long loops = atol(argv[3]);
	if (bench_writes_load(argv[2], &w, &n, &events))
		return 1;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = atol(argv[4]);
	if (natsConnection_ConnectTo(&nc, argv[1]) != NATS_OK || natsConnection_JetStream(&js, nc, &jo) != NATS_OK) {
		fprintf(stderr, "bench-publish: cannot connect to %s\n", argv[1]);
		return 1;
	}
	for (long l = 0; l < loops; l++) {
		for (size_t i = 0; i < n; i++) {
			natsMsg *m = NULL;
			char seq[24];
			snprintf(seq, sizeof(seq), "%" PRId64, w[i].seq + (int64_t)l * 1000000);
			natsMsg_Create(&m, w[i].subject, NULL, w[i].value, (int)w[i].len);
			natsMsgHeader_Set(m, "Atkv-Seq", seq);
			if (w[i].value) {
				natsMsgHeader_Set(m, "Atkv-Cid", w[i].cid);
			} else {
				natsMsgHeader_Set(m, "KV-Operation", "DEL");
			}
			if (w[i].rev[0])
				natsMsgHeader_Set(m, "Atkv-Rev", w[i].rev);
			natsMsgHeader_Set(m, "Atkv-Time", w[i].time);
			if (js_PublishMsgAsync(js, &m, NULL) != NATS_OK)
				fprintf(stderr, "bench-publish: publish failed\n");
			natsMsg_Destroy(m);
		}
	}
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = 60000;
	natsStatus s = js_PublishAsyncComplete(js, &po);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	bench_writes_free(w, n);
	return s == NATS_OK ? 0 : 1;
}
