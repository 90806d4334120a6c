/* repowriter.c — conditional puts of backfilled records (see repowriter.h). */
#include "repowriter.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* A key changed between the look and the write this many times in a row is given up on as
 * an error: the firehose is then writing it, which takes precedence anyway. */
#define MAX_RACES 8

/* Whether what the key holds (its last message) stays: a revision at or past rev. Revisions
 * are TIDs, which sort as strings; a write without Atkv-Rev (by hand) counts as oldest. */
static bool keeps(natsMsg *last, const char *rev, size_t rev_n)
{
	const char *stored = NULL;
	if (natsMsgHeader_Get(last, "Atkv-Rev", &stored) != NATS_OK || !stored)
		return false;
	size_t sn = strlen(stored);
	int cmp = memcmp(stored, rev, sn < rev_n ? sn : rev_n);
	return cmp > 0 || (cmp == 0 && sn >= rev_n);
}

static int nats_why(natsStatus s, char *why, size_t why_n)
{
	snprintf(why, why_n, "%s (%s)", natsStatus_GetText(s), nats_GetLastError(NULL));
	return ATKV_E_NATS;
}

/* Publishes m expecting the subject's last sequence to be last (0: no message). Returns 0, 1
 * when another write came first, or ATKV_E_NATS. */
static int publish_if(jsCtx *js, natsMsg *m, uint64_t last, char *why, size_t why_n)
{
	jsPubOptions po;
	jsPubOptions_Init(&po);
	if (last)
		po.ExpectLastSubjectSeq = last;
	else
		po.ExpectNoMessage = true;
	jsPubAck *pa = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_PublishMsg(&pa, js, m, &po, &jerr);
	jsPubAck_Destroy(pa);
	if (s == NATS_OK)
		return 0;
	if (jerr == JSStreamWrongLastSequenceErr)
		return 1;
	return nats_why(s, why, why_n);
}

int atkv_repo_put(jsCtx *js, const char *key, const char *json, size_t n, const struct atkv_record_meta *meta,
                  char *why, size_t why_n)
{
	if (!meta || !meta->rev || !meta->rev_n) {
		snprintf(why, why_n, "a backfilled record needs its commit's rev");
		return ATKV_E_ARG;
	}
	char subject[ATKV_KEY_MAX + 16];
	snprintf(subject, sizeof(subject), "$KV." ATKV_BUCKET_RECORD ".%s", key);
	uint64_t last = 0;
	for (int race = 0; race < MAX_RACES; race++) {
		natsMsg *m = NULL;
		int rc = atkv_record_msg(&m, ATKV_BUCKET_RECORD, key, json, n, false, meta, NULL);
		if (rc) {
			snprintf(why, why_n, "%s", atkv_strerror(rc));
			return rc;
		}
		rc = publish_if(js, m, last, why, why_n);
		natsMsg_Destroy(m);
		if (rc <= 0)
			return rc < 0 ? rc : last ? ATKV_REPOWRITE_OVER : ATKV_REPOWRITE_NEW;
		/* Something is there: look at it, and write over it only if it is older. */
		natsMsg *held = NULL;
		jsErrCode jerr = 0;
		natsStatus s = js_GetLastMsg(&held, js, "KV_" ATKV_BUCKET_RECORD, subject, NULL, &jerr);
		if (s == NATS_NOT_FOUND) {
			last = 0; /* purged meanwhile */
			continue;
		}
		if (s != NATS_OK)
			return nats_why(s, why, why_n);
		bool kept = keeps(held, meta->rev, meta->rev_n);
		last = natsMsg_GetSequence(held);
		natsMsg_Destroy(held);
		if (kept)
			return ATKV_REPOWRITE_KEPT;
	}
	snprintf(why, why_n, "%s changed %d times while being backfilled", key, MAX_RACES);
	return ATKV_E_NATS;
}
