/* repowriter.c — conditional puts of backfilled records (see repowriter.h): one at a time, or
 * many in flight with the keys found taken settled afterwards. */
#include "repowriter.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A key changed between the look and the write this many times in a row is given up on as
 * an error: the firehose is then writing it, which takes precedence anyway. */
#define MAX_RACES 8

/* Whether what the key holds (its last message) stays: the same record (its CID: nothing to
 * rewrite, whatever revision wrote it), or a put or delete at a later rev. Another value at the
 * same rev gives way: the repository, signed at that rev, says what it is. Revisions are TIDs,
 * which sort as strings; a write without Atkv-Rev (by hand) counts as oldest. */
static bool keeps(natsMsg *last, const struct atkv_record_meta *meta)
{
	const char *stored = NULL, *cid = NULL, *op = NULL;
	if (natsMsgHeader_Get(last, "KV-Operation", &op) != NATS_OK && meta->cid &&
	    natsMsgHeader_Get(last, "Atkv-Cid", &cid) == NATS_OK && cid && strlen(cid) == meta->cid_n &&
	    !memcmp(cid, meta->cid, meta->cid_n))
		return true;
	if (natsMsgHeader_Get(last, "Atkv-Rev", &stored) != NATS_OK || !stored)
		return false;
	size_t sn = strlen(stored);
	int cmp = memcmp(stored, meta->rev, sn < meta->rev_n ? sn : meta->rev_n);
	return cmp > 0 || (cmp == 0 && sn > meta->rev_n);
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

/* The put, in as many rounds as writers racing on the key take. taken: the key is known to
 * hold something, so the first round looks before it writes. */
static int put(jsCtx *js, const char *key, const char *json, size_t n, const struct atkv_record_meta *meta, bool taken,
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
		if (race || !taken) {
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
		}
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
		bool kept = keeps(held, meta);
		last = natsMsg_GetSequence(held);
		natsMsg_Destroy(held);
		if (kept)
			return ATKV_REPOWRITE_KEPT;
	}
	snprintf(why, why_n, "%s changed %d times while being backfilled", key, MAX_RACES);
	return ATKV_E_NATS;
}

int atkv_repo_put(jsCtx *js, const char *key, const char *json, size_t n, const struct atkv_record_meta *meta,
                  char *why, size_t why_n)
{
	return put(js, key, json, n, meta, false, why, why_n);
}

struct atkv_repowriter {
	jsCtx *js;
	int64_t timeout_ms;
	pthread_mutex_t mu;       /* guards what the ack handler (a nats.c thread) changes: */
	natsMsg **taken;          /* puts that found their key holding something, to settle */
	size_t n_taken, cap_taken;
	uint64_t written;         /* acknowledged as new */
	int error;                /* the first failure since the last finish */
	char error_why[256];
};

static void fail_locked(struct atkv_repowriter *w, int error, const char *what, const char *text)
{
	if (w->error)
		return;
	w->error = error;
	snprintf(w->error_why, sizeof(w->error_why), "%s (%s)", what, text ? text : "");
}

/* On a nats.c thread: each put's acknowledgement, or why it failed. msg is ours. */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	(void)js;
	struct atkv_repowriter *w = closure;
	pthread_mutex_lock(&w->mu);
	if (pa) {
		w->written++;
	} else if (pae && pae->ErrCode == JSStreamWrongLastSequenceErr) {
		if (w->n_taken == w->cap_taken) {
			size_t cap = w->cap_taken ? w->cap_taken * 2 : 64;
			natsMsg **t = realloc(w->taken, cap * sizeof(*t));
			if (!t) {
				fail_locked(w, ATKV_E_NOMEM, "out of memory", "settling a taken key");
				goto out;
			}
			w->taken = t;
			w->cap_taken = cap;
		}
		w->taken[w->n_taken++] = msg;
		msg = NULL;
	} else if (pae) {
		fail_locked(w, ATKV_E_NATS, natsStatus_GetText(pae->Err), pae->ErrText);
	}
out:
	pthread_mutex_unlock(&w->mu);
	natsMsg_Destroy(msg);
}

int atkv_repowriter_new(natsConnection *nc, int max_pending, int64_t timeout_ms, struct atkv_repowriter **out,
                        char *why, size_t why_n)
{
	struct atkv_repowriter *w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(why, why_n, "out of memory");
		return ATKV_E_NOMEM;
	}
	pthread_mutex_init(&w->mu, NULL);
	w->timeout_ms = timeout_ms;
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = timeout_ms;
	jo.PublishAsync.MaxPending = max_pending;
	jo.PublishAsync.StallWait = timeout_ms;
	jo.PublishAsync.AckHandler = on_ack;
	jo.PublishAsync.AckHandlerClosure = w;
	natsStatus s = natsConnection_JetStream(&w->js, nc, &jo);
	if (s != NATS_OK) {
		nats_why(s, why, why_n);
		atkv_repowriter_free(w);
		return ATKV_E_NATS;
	}
	*out = w;
	return 0;
}

/* Waits up to timeout_ms for every put's acknowledgement. Puts still unacknowledged then
 * (nats.c gives an async publish no deadline of its own: one lost in a reconnect would stay
 * pending for good) are taken back and dropped, so no acknowledgement can arrive after this
 * returns. Returns the status of the wait. */
static natsStatus drain(struct atkv_repowriter *w)
{
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = w->timeout_ms;
	natsStatus s = js_PublishAsyncComplete(w->js, &po);
	if (s == NATS_TIMEOUT) {
		natsMsgList lost = {0};
		if (js_PublishAsyncGetPendingList(&lost, w->js) == NATS_OK)
			natsMsgList_Destroy(&lost);
		po.MaxWait = 1000; /* only handlers already running are left */
		js_PublishAsyncComplete(w->js, &po);
	}
	return s;
}

void atkv_repowriter_free(struct atkv_repowriter *w)
{
	if (!w)
		return;
	/* Acknowledgements still due would land in w: none may come after it is freed. */
	if (w->js) {
		drain(w);
		jsCtx_Destroy(w->js);
	}
	for (size_t i = 0; i < w->n_taken; i++)
		natsMsg_Destroy(w->taken[i]);
	free(w->taken);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

int atkv_repowriter_put(struct atkv_repowriter *w, const char *key, const char *json, size_t n,
                        const struct atkv_record_meta *meta, char *why, size_t why_n)
{
	if (!meta || !meta->rev || !meta->rev_n) {
		snprintf(why, why_n, "a backfilled record needs its commit's rev");
		return ATKV_E_ARG;
	}
	natsMsg *m = NULL;
	int rc = atkv_record_msg(&m, ATKV_BUCKET_RECORD, key, json, n, false, meta, NULL);
	if (rc) {
		snprintf(why, why_n, "%s", atkv_strerror(rc));
		return rc;
	}
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.ExpectNoMessage = true;
	natsStatus s = js_PublishMsgAsync(w->js, &m, &po);
	natsMsg_Destroy(m); /* NULL once nats.c took it */
	if (s == NATS_MAX_PAYLOAD) {
		snprintf(why, why_n, "%s: larger than the NATS max payload", key);
		return ATKV_E_TOO_LARGE;
	}
	return s == NATS_OK ? 0 : nats_why(s, why, why_n);
}

int atkv_repowriter_del(struct atkv_repowriter *w, const char *key, const struct atkv_record_meta *meta, char *why,
                        size_t why_n)
{
	natsMsg *m = NULL;
	int rc = atkv_record_msg(&m, ATKV_BUCKET_RECORD, key, NULL, 0, true, meta, NULL);
	if (rc) {
		snprintf(why, why_n, "%s", atkv_strerror(rc));
		return rc;
	}
	natsStatus s = js_PublishMsgAsync(w->js, &m, NULL);
	natsMsg_Destroy(m);
	return s == NATS_OK ? 0 : nats_why(s, why, why_n);
}

/* The put m found its key taken: decided again, on its own. */
static int settle(struct atkv_repowriter *w, natsMsg *m, struct atkv_repowrite_counts *counts, char *why,
                  size_t why_n)
{
	const char *subject = natsMsg_GetSubject(m), *cid = NULL, *rev = NULL, *time = NULL;
	const char *key = subject + strlen("$KV." ATKV_BUCKET_RECORD ".");
	natsMsgHeader_Get(m, "Atkv-Cid", &cid);
	natsMsgHeader_Get(m, "Atkv-Rev", &rev);
	natsMsgHeader_Get(m, "Atkv-Time", &time);
	struct atkv_record_meta meta = {.seq = -1, .cid = cid, .cid_n = cid ? strlen(cid) : 0, .rev = rev,
	                                .rev_n = rev ? strlen(rev) : 0, .time = time, .time_n = time ? strlen(time) : 0};
	int rc = put(w->js, key, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &meta, true, why, why_n);
	if (rc == ATKV_REPOWRITE_KEPT)
		counts->kept++;
	else if (rc > 0)
		counts->written++;
	return rc < 0 ? rc : 0;
}

int atkv_repowriter_finish(struct atkv_repowriter *w, struct atkv_repowrite_counts *counts, char *why, size_t why_n)
{
	natsStatus s = drain(w);
	pthread_mutex_lock(&w->mu);
	natsMsg **taken = w->taken;
	size_t n_taken = w->n_taken;
	int rc = w->error;
	if (rc)
		snprintf(why, why_n, "%s", w->error_why);
	counts->written += w->written;
	w->written = 0;
	w->error = 0;
	w->taken = NULL;
	w->n_taken = w->cap_taken = 0;
	pthread_mutex_unlock(&w->mu);
	if (!rc && s == NATS_TIMEOUT) {
		snprintf(why, why_n, "JetStream did not acknowledge the backfilled puts within %lld ms (they are sent again)",
		         (long long)w->timeout_ms);
		rc = ATKV_E_TIMEOUT;
	} else if (!rc && s != NATS_OK) {
		rc = nats_why(s, why, why_n);
	}
	for (size_t i = 0; i < n_taken; i++) {
		if (!rc)
			rc = settle(w, taken[i], counts, why, why_n);
		natsMsg_Destroy(taken[i]);
	}
	free(taken);
	return rc;
}
