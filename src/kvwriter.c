/* kvwriter.c — acknowledged asynchronous KV writes and the watermark (see kvwriter.h).
 * Events sit in a ring in seq order with a count of unacknowledged publishes each; an
 * acknowledgement finds its event by the Atkv-Seq header it carries, and the watermark moves
 * past every completed event at the head of the ring. */
#include "kvwriter.h"
#include <atkv/record.h>
#include "buf.h"
#include "err.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What a message costs beyond its value: subject, headers and protocol framing, roughly. */
#define MSG_OVERHEAD 256

struct event {
	int64_t seq;
	uint32_t pending;   /* publishes not yet acknowledged */
	bool open;          /* end() not called yet */
	bool failed;
};

struct atkv_kvwriter {
	jsCtx *js;
	struct atkv_kvwriter_options o;
	int64_t max_payload;
	jsPubOptions pub;
	void (*wakeup)(void *);
	void *wakeup_arg;

	pthread_mutex_t mu;         /* guards everything below */
	pthread_cond_t settled;     /* signalled when inflight_msgs reaches 0 */
	struct event *ring;
	size_t ring_cap;            /* max_events plus room for what arrives after a pause */
	size_t head, count;
	int64_t last_seq;           /* the last seq begun */
	int64_t watermark;
	size_t inflight_msgs, inflight_bytes;
	uint64_t published, acked, failures;
	bool failed;
	char why[256];
};

static struct event *at(struct atkv_kvwriter *w, size_t i)
{
	return &w->ring[(w->head + i) % w->ring_cap];
}

static struct event *find(struct atkv_kvwriter *w, int64_t seq)
{
	size_t lo = 0, hi = w->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (at(w, mid)->seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < w->count && at(w, lo)->seq == seq ? at(w, lo) : NULL;
}

/* Pops completed events off the head; true when the watermark moved. Called locked. */
static bool advance(struct atkv_kvwriter *w)
{
	bool moved = false;
	while (w->count > 0) {
		struct event *e = at(w, 0);
		if (e->open || e->pending || e->failed)
			break;
		w->watermark = e->seq;
		w->head = (w->head + 1) % w->ring_cap;
		w->count--;
		moved = true;
	}
	return moved;
}

static bool is_full(const struct atkv_kvwriter *w)
{
	return w->count >= w->o.max_events || w->inflight_msgs >= w->o.max_msgs ||
	       w->inflight_bytes >= w->o.max_bytes;
}

static void fail_locked(struct atkv_kvwriter *w, const char *what, const char *detail)
{
	if (!w->failed)
		snprintf(w->why, sizeof(w->why), "%s: %s", what, detail);
	w->failed = true;
	w->failures++;
}

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct atkv_kvwriter *w = closure;
	const char *seq_text = NULL;
	(void)js;
	natsMsgHeader_Get(msg, "Atkv-Seq", &seq_text);
	int64_t seq = seq_text ? strtoll(seq_text, NULL, 10) : -1;
	size_t cost = (size_t)natsMsg_GetDataLength(msg) + MSG_OVERHEAD;

	pthread_mutex_lock(&w->mu);
	bool was_full = is_full(w);
	/* After a rewind the event may be gone: then only the counters change. */
	struct event *e = find(w, seq);
	if (e && e->pending)
		e->pending--;
	w->inflight_msgs--;
	w->inflight_bytes -= cost;
	if (pa) {
		w->acked++;
	} else {
		if (e)
			e->failed = true;
		fail_locked(w, "publish not acknowledged",
		            pae && pae->ErrText ? pae->ErrText : pae ? natsStatus_GetText(pae->Err) : "unknown");
	}
	/* Wake the writer's thread only when it must act now: room to read again, or a failure.
	 * A moved watermark waits for its periodic tick; waking it per acknowledgement would cost
	 * a pipe write and a context switch for every record. */
	advance(w);
	bool wake = !pa || (was_full && !is_full(w));
	void (*wakeup)(void *) = w->wakeup;
	void *wakeup_arg = w->wakeup_arg;
	if (w->inflight_msgs == 0)
		pthread_cond_broadcast(&w->settled);
	pthread_mutex_unlock(&w->mu);
	natsMsg_Destroy(msg);
	if (wake && wakeup)
		wakeup(wakeup_arg);
}

int atkv_kvwriter_new(natsConnection *nc, const struct atkv_kvwriter_options *o, int64_t watermark,
                      void (*wakeup)(void *), void *arg, struct atkv_kvwriter **out)
{
	struct atkv_kvwriter *w = calloc(1, sizeof(*w));
	if (!w)
		return ATKV_E_NOMEM;
	w->o = *o;
	w->max_payload = natsConnection_GetMaxPayload(nc);
	if (w->o.max_events == 0)
		w->o.max_events = 1;
	w->wakeup = wakeup;
	w->wakeup_arg = arg;
	w->watermark = watermark;
	w->last_seq = watermark;
	/* Reading pauses at max_events, but messages the socket layer already holds still come:
	 * the ring takes them instead of failing. */
	w->ring_cap = w->o.max_events + w->o.max_events / 4 + 64;
	w->ring = calloc(w->ring_cap, sizeof(*w->ring));
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (!w->ring || pthread_mutex_init(&w->mu, NULL) || pthread_cond_init(&w->settled, &ca)) {
		pthread_condattr_destroy(&ca);
		free(w->ring);
		free(w);
		return ATKV_E_NOMEM;
	}
	pthread_condattr_destroy(&ca);
	jsPubOptions_Init(&w->pub);
	w->pub.MaxWait = o->ack_timeout_ms;

	jsOptions jo;
	jsOptions_Init(&jo);
	jo.PublishAsync.AckHandler = on_ack;
	jo.PublishAsync.AckHandlerClosure = w;
	/* Our own bound (full()) keeps publishes well under this; nats.c must never stall us. */
	jo.PublishAsync.MaxPending = (int64_t)(w->o.max_msgs * 4 + 100000);
	if (natsConnection_JetStream(&w->js, nc, &jo) != NATS_OK) {
		atkv_kvwriter_free(w);
		return ATKV_E_NATS;
	}
	*out = w;
	return 0;
}

void atkv_kvwriter_free(struct atkv_kvwriter *w)
{
	if (!w)
		return;
	jsCtx_Destroy(w->js);  /* NULL after atkv_kvwriter_close */
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->settled);
	free(w->ring);
	free(w);
}

int atkv_kvwriter_begin(struct atkv_kvwriter *w, int64_t seq)
{
	int rc = 0;
	pthread_mutex_lock(&w->mu);
	if (w->count == w->ring_cap)
		rc = ATKV_E_BUFFER;
	else if (seq <= w->last_seq)
		rc = ATKV_E_FRAME;
	else {
		/* Without a stored cursor the first event defines one: a reconnect before its
		 * acknowledgement must ask for it again, not for the live tail. */
		if (w->watermark < 0)
			w->watermark = seq - 1;
		*at(w, w->count) = (struct event){.seq = seq, .open = true};
		w->count++;
		w->last_seq = seq;
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}

void atkv_kvwriter_end(struct atkv_kvwriter *w)
{
	pthread_mutex_lock(&w->mu);
	if (w->count > 0)
		at(w, w->count - 1)->open = false;
	advance(w);
	pthread_mutex_unlock(&w->mu);
}

static int publish(struct atkv_kvwriter *w, const char *bucket, const char *key, const void *value,
                   size_t n, const struct atkv_write_meta *meta, bool del)
{
	size_t cost = n + MSG_OVERHEAD, headers = 0;
	if ((int64_t)n > w->max_payload)
		return ATKV_E_TOO_LARGE;
	struct atkv_record_meta rm = {
		.seq = meta->seq,
		.cid = meta->cid.p, .cid_n = meta->cid.n,
		.rev = meta->rev.p, .rev_n = meta->rev.n,
		.time = meta->time.p, .time_n = meta->time.n,
	};
	natsMsg *m = NULL;
	int rc = atkv_record_msg(&m, bucket, key, value, n, del, &rm, &headers);
	if (rc)
		return rc;
	/* The server refuses a message whose headers and value exceed its max payload: refuse it
	 * here, where it can be skipped, instead of failing (and replaying) forever. */
	if ((int64_t)(headers + n) > w->max_payload) {
		natsMsg_Destroy(m);
		return ATKV_E_TOO_LARGE;
	}

	/* Counted before sending: the acknowledgement may arrive before js_PublishMsgAsync returns. */
	pthread_mutex_lock(&w->mu);
	struct event *e = w->count ? at(w, w->count - 1) : NULL;
	if (e)
		e->pending++;
	w->inflight_msgs++;
	w->inflight_bytes += cost;
	w->published++;
	pthread_mutex_unlock(&w->mu);

	natsStatus s = js_PublishMsgAsync(w->js, &m, &w->pub);
	if (s != NATS_OK) {
		pthread_mutex_lock(&w->mu);
		if (e && e->pending) {
			e->pending--;
			e->failed = true;
		}
		w->inflight_msgs--;
		w->inflight_bytes -= cost;
		fail_locked(w, "publish refused", natsStatus_GetText(s));
		if (w->inflight_msgs == 0)
			pthread_cond_broadcast(&w->settled);
		pthread_mutex_unlock(&w->mu);
		natsMsg_Destroy(m);
		return ATKV_E_NATS;
	}
	return 0;
}

int atkv_kvwriter_put(struct atkv_kvwriter *w, const char *bucket, const char *key,
                      const void *value, size_t n, const struct atkv_write_meta *meta)
{
	return publish(w, bucket, key, value, n, meta, false);
}

int atkv_kvwriter_del(struct atkv_kvwriter *w, const char *bucket, const char *key,
                      const struct atkv_write_meta *meta)
{
	return publish(w, bucket, key, NULL, 0, meta, true);
}

void atkv_kvwriter_fail(struct atkv_kvwriter *w, const char *why)
{
	pthread_mutex_lock(&w->mu);
	if (w->count > 0)
		at(w, w->count - 1)->failed = true;
	fail_locked(w, "event not written", why);
	pthread_mutex_unlock(&w->mu);
}

void atkv_kvwriter_set_wakeup(struct atkv_kvwriter *w, void (*wakeup)(void *), void *arg)
{
	pthread_mutex_lock(&w->mu);
	w->wakeup = wakeup;
	w->wakeup_arg = arg;
	pthread_mutex_unlock(&w->mu);
}

void atkv_kvwriter_close(struct atkv_kvwriter *w)
{
	jsCtx_Destroy(w->js);
	w->js = NULL;
}

bool atkv_kvwriter_full(struct atkv_kvwriter *w)
{
	pthread_mutex_lock(&w->mu);
	bool full = is_full(w);
	pthread_mutex_unlock(&w->mu);
	return full;
}

bool atkv_kvwriter_failed(struct atkv_kvwriter *w, char *why, size_t why_n)
{
	pthread_mutex_lock(&w->mu);
	bool failed = w->failed;
	if (failed && why && why_n)
		snprintf(why, why_n, "%s", w->why);
	pthread_mutex_unlock(&w->mu);
	return failed;
}

int64_t atkv_kvwriter_watermark(struct atkv_kvwriter *w)
{
	pthread_mutex_lock(&w->mu);
	int64_t wm = w->watermark;
	pthread_mutex_unlock(&w->mu);
	return wm;
}

size_t atkv_kvwriter_max_value(const struct atkv_kvwriter *w)
{
	return w->max_payload > 0 ? (size_t)w->max_payload : 0;
}

void atkv_kvwriter_stats(struct atkv_kvwriter *w, struct atkv_kvwriter_stats *st)
{
	pthread_mutex_lock(&w->mu);
	*st = (struct atkv_kvwriter_stats){
		.published = w->published, .acked = w->acked, .failed = w->failures,
		.inflight_msgs = w->inflight_msgs, .inflight_bytes = w->inflight_bytes,
		.events = w->count, .watermark = w->watermark,
	};
	pthread_mutex_unlock(&w->mu);
}

bool atkv_kvwriter_drain(struct atkv_kvwriter *w, int64_t timeout_ms)
{
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->mu);
	while (w->inflight_msgs > 0)
		if (pthread_cond_timedwait(&w->settled, &w->mu, &deadline))
			break;
	bool drained = w->inflight_msgs == 0;
	pthread_mutex_unlock(&w->mu);
	return drained;
}

int64_t atkv_kvwriter_rewind(struct atkv_kvwriter *w)
{
	pthread_mutex_lock(&w->mu);
	advance(w);
	w->count = 0;
	w->failed = false;
	w->why[0] = '\0';
	w->last_seq = w->watermark;
	int64_t wm = w->watermark;
	pthread_mutex_unlock(&w->mu);
	return wm;
}
