/* consumer.c — durable consumers of the record KV (see atkv/consumer.h). One handle reads any
 * number of NATS consumers into one queue: pull consumers are asked for batches with the
 * JetStream pull protocol (a request to $JS.API.CONSUMER.MSG.NEXT with an inbox of the handle
 * as reply, all of them under one wildcard subscription), push consumers deliver to an inbox
 * each (nats-server 2.9 does not count a wildcard subscription as interest in a push
 * consumer), and acknowledgements go to each message's reply subject. The queue is what lets
 * one wait cover every consumer. */
#include "clock.h"
#include <atkv/consumer.h>
#include <atkv/record.h>
#include <atkv/recordkey.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_BATCH 256
#define DEFAULT_ACK_WAIT_MS 30000
#define DEFAULT_MAX_ACK_PENDING 10000
/* A pull request waits this long on the server for changes; a short wait also bounds what a
 * closed handle's last request can still take (delivered again after ack_wait). */
#define PULL_EXPIRES_MS 5000
/* A request that neither finished nor timed out by then is taken for lost (a server restart). */
#define PULL_LOST_MS (PULL_EXPIRES_MS + 5000)

/* One NATS consumer of the handle. */
struct source {
	char *durable;
	char *filter;
	char *next_subject;      /* pull: where batches are asked for */
	char *inbox;             /* where its messages and status replies arrive */
	int outstanding;         /* pull: changes the requests in flight may still bring */
	int64_t requested_ms;    /* the last request, or the last change or status since */
	int64_t retry_at_ms;     /* after a refusal: not before then */
	int64_t backoff_ms;
	int64_t checked_ms;      /* the last look for a stuck consumer */
	uint64_t floor_seen;     /* its ack floor then */
	int64_t floor_moved_ms;  /* when that floor was last seen to move (or nothing was pending) */
	int64_t stuck_after_ms;  /* a floor still this long is taken for stuck */
};

/* Messages from nats.c's delivery threads to the caller's, oldest first. */
struct queue {
	pthread_mutex_t mu;
	pthread_cond_t arrived;
	natsMsg **items;         /* a ring, grown when full: what arrives is bounded by the batches
	                          * asked for (pull) or max_ack_pending (push) */
	size_t head, count, cap;
	size_t live_subs;        /* subscriptions whose handler may still run */
};

struct atkv_consumer {
	natsConnection *nc;
	jsCtx *js;
	struct queue q;
	natsSubscription **subs;
	size_t n_subs;
	natsInbox *inbox;
	char stream[80];
	char bucket_prefix[72];  /* "$KV.<bucket>." */
	char did[ATKV_DID_MAX + 1]; /* filtered here when the server cannot (no collections) */
	bool did_here;
	bool ack_none, push;
	char gone[256];          /* set when a NATS consumer no longer exists: next() fails */
	int batch;
	int64_t ack_wait_ms;
	struct source *src;
	size_t n_src;
};

/* The change and the text it points to, in one allocation. */
struct change {
	struct atkv_change pub;
	natsConnection *nc;
	bool ack_none;
	char text[];
};

void atkv_consumer_options_init(struct atkv_consumer_options *o)
{
	memset(o, 0, sizeof(*o));
	o->deliver = ATKV_DELIVER_ALL;
	o->batch = DEFAULT_BATCH;
	o->ack_wait_ms = DEFAULT_ACK_WAIT_MS;
	o->max_ack_pending = DEFAULT_MAX_ACK_PENDING;
	o->bucket = ATKV_BUCKET_RECORD;
}

static int bad(char *why, size_t why_n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int bad(char *why, size_t why_n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, why_n, fmt, ap);
	va_end(ap);
	return ATKV_E_ARG;
}

/* NSID segments (or a namespace's leading ones): letters, digits and '-', dot-separated. */
static bool namespace_ok(const char *s)
{
	size_t seg = 0;
	for (const char *p = s;; p++) {
		if (*p == '.' || !*p) {
			if (!seg)
				return false;
			if (!*p)
				return true;
			seg = 0;
		} else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-') {
			seg++;
		} else {
			return false;
		}
	}
}

static bool name_ok(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9') ||
		      s[n] == '-' || s[n] == '_'))
			return false;
	return n > 0 && n <= 200;
}

static int check_options(const struct atkv_consumer_options *o, size_t *n_coll, char *why, size_t why_n)
{
	if (!o->name || !name_ok(o->name))
		return bad(why, why_n, "consumer name \"%s\": use 1 to 200 letters, digits, '-' or '_'",
		           o->name ? o->name : "");
	if (!o->bucket || !name_ok(o->bucket))
		return bad(why, why_n, "bucket \"%s\": not a KV bucket name", o->bucket ? o->bucket : "");
	*n_coll = 0;
	for (size_t i = 0; o->collections && o->collections[i]; i++, (*n_coll)++) {
		const char *c = o->collections[i];
		if (o->did ? !atkv_syntax_nsid(c, strlen(c)) : !namespace_ok(c))
			return bad(why, why_n,
			           o->did ? "collection \"%s\": with a DID, collections must be full NSIDs"
			                  : "collection \"%s\": expected an NSID or a namespace such as blue.flashes",
			           c);
	}
	if (o->did && !atkv_syntax_did(o->did, strlen(o->did)))
		return bad(why, why_n, "\"%s\" is not a DID", o->did);
	if (o->deliver == ATKV_DELIVER_TIME && o->start_time_ms <= 0)
		return bad(why, why_n, "%s needs start_time_ms (Unix time in milliseconds)", "ATKV_DELIVER_TIME");
	if (o->batch <= 0 || o->ack_wait_ms <= 0 || o->max_ack_pending <= 0)
		return bad(why, why_n, "%s must be positive", "batch, ack_wait_ms and max_ack_pending");
	return 0;
}

static char *str_dup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	return d ? memcpy(d, s, n) : NULL;
}

static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *str_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (s) {
		va_start(ap, fmt);
		vsnprintf(s, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	return s;
}

static void free_sources(struct source *src, size_t n)
{
	for (size_t i = 0; src && i < n; i++) {
		free(src[i].durable);
		free(src[i].filter);
		free(src[i].next_subject);
		free(src[i].inbox);
	}
	free(src);
}

/* The (partition, collection) pairs o asks for, as NATS consumers: names and filters. */
static int plan_sources(const struct atkv_consumer_options *o, size_t n_coll, struct source **out, size_t *n_out)
{
	char parts[17], escaped_did[3 * ATKV_DID_MAX + 1] = "";
	size_t n_parts = 0;
	if (o->did) {
		parts[n_parts++] = atkv_key_partition(o->did, strlen(o->did));
		if (atkv_key_escape(o->did, strlen(o->did), escaped_did, sizeof(escaped_did)) < 0)
			return ATKV_E_ARG;
	} else if (o->partitions == 0 || o->partitions == 0xffff) {
		parts[n_parts++] = '*';
	} else {
		for (int p = 0; p < 16; p++)
			if (o->partitions & (1u << p))
				parts[n_parts++] = "0123456789abcdef"[p];
	}
	size_t n_c = n_coll ? n_coll : 1, n = n_parts * n_c;
	struct source *src = calloc(n, sizeof(*src));
	if (!src)
		return ATKV_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		char part[4] = {parts[i / n_c], '\0'}, coll_name[ATKV_NSID_MAX + 1] = "all";
		const char *coll = n_coll ? o->collections[i % n_c] : NULL;
		if (coll) {
			snprintf(coll_name, sizeof(coll_name), "%s", coll);
			for (char *p = coll_name; *p; p++)
				if (*p == '.')
					*p = '_';
		}
		/* With a DID the collection is a full NSID: exactly the DID's keys under it. */
		char tail[3 * ATKV_DID_MAX + ATKV_NSID_MAX + 8];
		if (coll && o->did)
			snprintf(tail, sizeof(tail), "%s.%s.*", coll, escaped_did);
		else
			snprintf(tail, sizeof(tail), "%s%s>", coll ? coll : "", coll ? "." : "");
		char bucket[80];
		snprintf(bucket, sizeof(bucket), "$KV.%s", o->bucket);
		src[i].filter = str_printf("%s.%s.%s", bucket, part, tail);
		src[i].durable = n == 1 ? str_dup(o->name)
		                        : str_printf("%s_%s_%s", o->name, part[0] == '*' ? "all" : part, coll_name);
		if (!src[i].filter || !src[i].durable) {
			free_sources(src, n);
			return ATKV_E_NOMEM;
		}
	}
	*out = src;
	*n_out = n;
	return 0;
}

static void config_for(const struct atkv_consumer_options *o, const struct source *s, jsConsumerConfig *cc)
{
	jsConsumerConfig_Init(cc);
	cc->Durable = s->durable;
	cc->FilterSubject = s->filter;
	cc->AckPolicy = o->ack_none ? js_AckNone : js_AckExplicit;
	cc->AckWait = o->ack_wait_ms * 1000000;
	cc->MaxAckPending = o->max_ack_pending;
	cc->DeliverSubject = o->push ? s->inbox : NULL;
	cc->DeliverPolicy = o->deliver == ATKV_DELIVER_NEW    ? js_DeliverNew
	                    : o->deliver == ATKV_DELIVER_TIME ? js_DeliverByStartTime
	                                                      : js_DeliverAll;
	if (o->deliver == ATKV_DELIVER_TIME)
		cc->OptStartTime = o->start_time_ms * 1000000;
}

static int nats_failed(char *why, size_t why_n, const char *what, const char *name, natsStatus s, jsErrCode jerr)
{
	snprintf(why, why_n, "%s %s: %s (JetStream error %d)", what, name, natsStatus_GetText(s), (int)jerr);
	return ATKV_E_NATS;
}

/* Creates the source's NATS consumer, or checks the one that exists against o. */
static int ensure_source(struct atkv_consumer *c, const struct atkv_consumer_options *o, struct source *s,
                         char *why, size_t why_n)
{
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	jsConsumerConfig cc;
	config_for(o, s, &cc);
	natsStatus st = js_GetConsumerInfo(&ci, c->js, c->stream, s->durable, NULL, &jerr);
	if (st == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr) {
		st = js_AddConsumer(&ci, c->js, c->stream, &cc, NULL, &jerr);
		jsConsumerInfo_Destroy(ci);
		return st == NATS_OK ? 0 : nats_failed(why, why_n, "cannot create consumer", s->durable, st, jerr);
	}
	if (st != NATS_OK)
		return nats_failed(why, why_n, "cannot look up consumer", s->durable, st, jerr);
	const jsConsumerConfig *have = ci->Config;
	int rc = 0;
	if (!have->FilterSubject || strcmp(have->FilterSubject, s->filter))
		snprintf(why, why_n, "consumer %s exists with filter %s, not %s: delete it or choose another name",
		         s->durable, have->FilterSubject ? have->FilterSubject : "(none)", s->filter), rc = ATKV_E_ARG;
	else if (have->AckPolicy != cc.AckPolicy)
		snprintf(why, why_n, "consumer %s exists with another ack policy: delete it or choose another name",
		         s->durable), rc = ATKV_E_ARG;
	else if (!have->DeliverSubject != !o->push)
		snprintf(why, why_n, "consumer %s exists as a %s consumer: delete it or choose another name", s->durable,
		         have->DeliverSubject ? "push" : "pull"), rc = ATKV_E_ARG;
	if (rc || !o->push) {
		jsConsumerInfo_Destroy(ci);
		return rc;
	}
	/* A push consumer delivers to the inbox of whoever opened it last; the rest of its
	 * configuration (where it started, its limits) stays as the server has it. */
	jsConsumerConfig keep = *have;
	keep.DeliverSubject = s->inbox;
	jsConsumerInfo *updated = NULL;
	st = js_UpdateConsumer(&updated, c->js, c->stream, &keep, NULL, &jerr);
	jsConsumerInfo_Destroy(updated);
	jsConsumerInfo_Destroy(ci);
	return st == NATS_OK ? 0 : nats_failed(why, why_n, "cannot update consumer", s->durable, st, jerr);
}

static void request_batch(struct atkv_consumer *c, struct source *s)
{
	char body[96];
	snprintf(body, sizeof(body), "{\"batch\":%d,\"expires\":%lld}", c->batch,
	         (long long)PULL_EXPIRES_MS * 1000000LL);
	if (natsConnection_PublishRequestString(c->nc, s->next_subject, s->inbox, body) == NATS_OK) {
		s->outstanding += c->batch;
		s->requested_ms = atkv_now_ms();
	}
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
	struct queue *q = closure;
	(void)nc;
	(void)sub;
	pthread_mutex_lock(&q->mu);
	if (q->count == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 256;
		natsMsg **items = malloc(cap * sizeof(*items));
		if (!items) {
			/* Dropped: a pull change comes again after ack_wait, like any lost delivery. */
			pthread_mutex_unlock(&q->mu);
			natsMsg_Destroy(m);
			return;
		}
		for (size_t i = 0; i < q->count; i++)
			items[i] = q->items[(q->head + i) % q->cap];
		free(q->items);
		q->items = items;
		q->head = 0;
		q->cap = cap;
	}
	q->items[(q->head + q->count++) % q->cap] = m;
	pthread_cond_signal(&q->arrived);
	pthread_mutex_unlock(&q->mu);
}

static void on_sub_done(void *closure)
{
	struct queue *q = closure;
	pthread_mutex_lock(&q->mu);
	q->live_subs--;
	pthread_cond_broadcast(&q->arrived);
	pthread_mutex_unlock(&q->mu);
}

static int subscribe(struct atkv_consumer *c, const char *subject, char *why, size_t why_n)
{
	natsSubscription *sub = NULL;
	natsStatus st = natsConnection_Subscribe(&sub, c->nc, subject, on_msg, &c->q);
	if (st == NATS_OK) {
		natsSubscription_SetOnCompleteCB(sub, on_sub_done, &c->q);
		/* Bounded by what is asked for (pull) or max_ack_pending (push), not by these limits. */
		natsSubscription_SetPendingLimits(sub, -1, -1);
		pthread_mutex_lock(&c->q.mu);
		c->subs[c->n_subs++] = sub;
		c->q.live_subs++;
		pthread_mutex_unlock(&c->q.mu);
		return 0;
	}
	natsSubscription_Destroy(sub);
	return nats_failed(why, why_n, "cannot subscribe to", subject, st, 0);
}

int atkv_consumer_open(natsConnection *nc, const struct atkv_consumer_options *o, struct atkv_consumer **out,
                       char *why, size_t why_n)
{
	size_t n_coll;
	int rc = check_options(o, &n_coll, why, why_n);
	if (rc)
		return rc;
	struct atkv_consumer *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(why, why_n, "out of memory");
		return ATKV_E_NOMEM;
	}
	c->nc = nc;
	pthread_mutex_init(&c->q.mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->q.arrived, &ca);
	pthread_condattr_destroy(&ca);
	c->ack_none = o->ack_none;
	c->push = o->push;
	c->batch = o->batch;
	c->ack_wait_ms = o->ack_wait_ms;
	snprintf(c->stream, sizeof(c->stream), "KV_%s", o->bucket);
	snprintf(c->bucket_prefix, sizeof(c->bucket_prefix), "$KV.%s.", o->bucket);
	if (o->did && !n_coll) {
		snprintf(c->did, sizeof(c->did), "%s", o->did);
		c->did_here = true;
	}
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus st;
	char inbox_all[128];
	if ((rc = plan_sources(o, n_coll, &c->src, &c->n_src))) {
		snprintf(why, why_n, "%s", atkv_strerror(rc));
		goto fail;
	}
	if ((st = natsConnection_JetStream(&c->js, nc, NULL)) != NATS_OK) {
		rc = nats_failed(why, why_n, "no JetStream context for", o->name, st, 0);
		goto fail;
	}
	if ((st = js_GetStreamInfo(&si, c->js, c->stream, NULL, &jerr)) != NATS_OK) {
		if (st == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr)
			snprintf(why, why_n, "bucket %s does not exist (atkv-builder creates it)", o->bucket);
		else
			nats_failed(why, why_n, "cannot read stream", c->stream, st, jerr);
		rc = ATKV_E_NATS;
		goto fail;
	}
	jsStreamInfo_Destroy(si);
	if (natsInbox_Create(&c->inbox) != NATS_OK) {
		rc = ATKV_E_NOMEM;
		goto fail;
	}
	for (size_t i = 0; i < c->n_src; i++) {
		c->src[i].inbox = str_printf("%s.%zu", c->inbox, i);
		c->src[i].next_subject = str_printf("$JS.API.CONSUMER.MSG.NEXT.%s.%s", c->stream, c->src[i].durable);
		c->src[i].floor_moved_ms = c->src[i].checked_ms = atkv_now_ms();
		c->src[i].stuck_after_ms = 2 * o->ack_wait_ms;
		if (!c->src[i].inbox || !c->src[i].next_subject) {
			rc = ATKV_E_NOMEM;
			goto fail;
		}
	}
	/* Subscribed before any consumer can deliver, so nothing is missed. */
	if (!(c->subs = calloc(c->n_src, sizeof(*c->subs)))) {
		rc = ATKV_E_NOMEM;
		goto fail;
	}
	snprintf(inbox_all, sizeof(inbox_all), "%s.*", c->inbox);
	for (size_t i = 0; i < (c->push ? c->n_src : 1); i++)
		if ((rc = subscribe(c, c->push ? c->src[i].inbox : inbox_all, why, why_n)))
			goto fail;
	for (size_t i = 0; i < c->n_src; i++)
		if ((rc = ensure_source(c, o, &c->src[i], why, why_n)))
			goto fail;
	*out = c;
	return 0;
fail:
	atkv_consumer_close(c);
	return rc;
}

static struct source *source_by_durable(struct atkv_consumer *c, const char *name, size_t n)
{
	for (size_t i = 0; i < c->n_src; i++)
		if (strlen(c->src[i].durable) == n && !memcmp(c->src[i].durable, name, n))
			return &c->src[i];
	return NULL;
}

static struct source *source_by_inbox(struct atkv_consumer *c, const char *subject)
{
	for (size_t i = 0; i < c->n_src; i++)
		if (!strcmp(c->src[i].inbox, subject))
			return &c->src[i];
	return NULL;
}

/* The JetStream metadata in an ack subject: $JS.ACK.<stream>.<consumer>.<delivered>.<stream
 * seq>.<consumer seq>.<time>.<pending>, or the newer form with a domain and an account hash
 * after ACK and a random token at the end. Returns the consumer token or NULL. */
static const char *ack_metadata(const char *reply, size_t *name_n, struct atkv_change *ch)
{
	const char *tok[16];
	size_t len[16], n = 0;
	for (const char *p = reply; n < 16;) {
		const char *dot = strchr(p, '.');
		tok[n] = p;
		len[n++] = dot ? (size_t)(dot - p) : strlen(p);
		if (!dot)
			break;
		p = dot + 1;
	}
	if (n < 9 || len[0] != 3 || memcmp(tok[0], "$JS", 3) || len[1] != 3 || memcmp(tok[1], "ACK", 3))
		return NULL;
	size_t b = n == 9 ? 2 : 4; /* the stream's token */
	if (n != 9 && n < 11)
		return NULL;
	ch->delivered = strtoull(tok[b + 2], NULL, 10);
	ch->stream_seq = strtoull(tok[b + 3], NULL, 10);
	ch->stored_ns = strtoll(tok[b + 5], NULL, 10);
	ch->pending = strtoull(tok[b + 6], NULL, 10);
	*name_n = len[b + 1];
	return tok[b + 1];
}

static const char *header(natsMsg *m, const char *name)
{
	const char *v = NULL;
	return natsMsgHeader_Get(m, name, &v) == NATS_OK ? v : NULL;
}

/* Turns a delivered message into a change, and finds the source it came from (NULL when its
 * ack subject names none of ours); takes the message. NULL when out of memory. */
static struct atkv_change *make_change(struct atkv_consumer *c, natsMsg *m, struct source **from)
{
	struct atkv_key key;
	const char *subject = natsMsg_GetSubject(m);
	size_t prefix = strlen(c->bucket_prefix);
	bool parsed = !strncmp(subject, c->bucket_prefix, prefix) &&
	              atkv_key_parse(subject + prefix, strlen(subject + prefix), &key) == 0;
	size_t uri_n = parsed ? 5 + key.did_n + 1 + key.collection_n + 1 + key.rkey_n + 1 : 0;
	size_t text = parsed ? key.did_n + 1 + key.collection_n + 1 + key.rkey_n + 1 + uri_n : 0;
	struct change *ch = calloc(1, sizeof(*ch) + text);
	if (!ch) {
		natsMsg_Destroy(m);
		return NULL;
	}
	struct atkv_change *pub = &ch->pub;
	ch->nc = c->nc;
	ch->ack_none = c->ack_none;
	pub->msg = m;
	pub->subject = subject;
	pub->seq = -1;
	size_t name_n = 0;
	const char *reply = natsMsg_GetReply(m);
	const char *name = reply ? ack_metadata(reply, &name_n, pub) : NULL;
	*from = name ? source_by_durable(c, name, name_n) : NULL;
	if (!parsed) {
		pub->kind = ATKV_CHANGE_BAD_KEY;
		return pub;
	}
	char *t = ch->text;
	pub->did = memcpy(t, key.did, key.did_n + 1);
	t += key.did_n + 1;
	pub->collection = memcpy(t, key.collection, key.collection_n + 1);
	t += key.collection_n + 1;
	pub->rkey = memcpy(t, key.rkey, key.rkey_n + 1);
	t += key.rkey_n + 1;
	pub->uri = t;
	atkv_record_uri_build(t, uri_n, pub->did, pub->collection, pub->rkey);
	const char *op = header(m, "KV-Operation");
	bool deleted = op && (!strcmp(op, "DEL") || !strcmp(op, "PURGE"));
	pub->kind = deleted ? ATKV_CHANGE_DELETE : ATKV_CHANGE_PUT;
	if (!deleted) {
		pub->value = natsMsg_GetData(m);
		pub->value_len = (size_t)natsMsg_GetDataLength(m);
	}
	pub->cid = header(m, "Atkv-Cid");
	pub->rev = header(m, "Atkv-Rev");
	pub->time = header(m, "Atkv-Time");
	const char *seq = header(m, "Atkv-Seq");
	if (seq)
		pub->seq = strtoll(seq, NULL, 10);
	return pub;
}

/* A status message from the server (to one of our inboxes, no $JS.ACK reply, a Status header)
 * ends or refuses a pull request. */
static bool handle_status(struct atkv_consumer *c, natsMsg *m)
{
	const char *status = header(m, "Status"), *reply = natsMsg_GetReply(m);
	struct source *s = source_by_inbox(c, natsMsg_GetSubject(m));
	if (!status || (reply && !strncmp(reply, "$JS.ACK.", 8)))
		return false;
	/* 100 is a heartbeat, or flow control that wants an answer. */
	if (!strcmp(status, "100")) {
		if (reply)
			natsConnection_Publish(c->nc, reply, NULL, 0);
		return true;
	}
	if (!s)
		return true;
	s->outstanding = 0;
	/* 404 (nothing now) and 408 (the request expired) only end a request: ask again. */
	if (!strcmp(status, "404") || !strcmp(status, "408")) {
		s->backoff_ms = 0;
		return true;
	}
	const char *what = header(m, "Description");
	/* 503: nobody answers the pull API for this consumer; 409 Consumer Deleted: gone. */
	if (!strcmp(status, "503") || (what && strstr(what, "Consumer Deleted")))
		snprintf(c->gone, sizeof(c->gone), "consumer %s is gone (%s %s): open it again", s->durable, status,
		         what ? what : "no responders");
	/* Any other refusal (a batch over the consumer's limit, too many waiting) is asked again
	 * after a pause that doubles, not in a loop. */
	s->backoff_ms = s->backoff_ms ? (s->backoff_ms * 2 > 30000 ? 30000 : s->backoff_ms * 2) : 1000;
	s->retry_at_ms = atkv_now_ms() + s->backoff_ms;
	return true;
}

/* nats-server before 2.10.25 can leave a replicated consumer unable to redeliver after a change
 * of leader (nats-server#6387): a delivery whose acknowledgement was lost then stays pending
 * for good and the ack floor never passes it, however many later changes are acknowledged. A
 * consumer whose floor has stood still below unacknowledged changes for two ack waits is asked
 * to elect another leader, which redelivers them. An application that holds a change that long
 * (or delays it with a NAK) costs an election now and then, no data: the wait doubles after
 * each request, up to 32 ack waits, until the floor moves. */
static void unstick(struct atkv_consumer *c, struct source *s, int64_t now)
{
	int64_t every = c->ack_wait_ms / 2 > 5000 ? c->ack_wait_ms / 2 : 5000;
	if (c->ack_none || now - s->checked_ms < every || natsConnection_Status(c->nc) != NATS_CONN_STATUS_CONNECTED)
		return;
	s->checked_ms = now;
	jsConsumerInfo *ci = NULL;
	if (js_GetConsumerInfo(&ci, c->js, c->stream, s->durable, NULL, NULL) != NATS_OK)
		return;
	bool replicated = ci->Cluster && ci->Cluster->ReplicasLen > 0;
	if (ci->AckFloor.Stream != s->floor_seen || ci->NumAckPending <= 0) {
		s->floor_seen = ci->AckFloor.Stream;
		s->floor_moved_ms = now;
		s->stuck_after_ms = 2 * c->ack_wait_ms;
	}
	jsConsumerInfo_Destroy(ci);
	if (!replicated || now - s->floor_moved_ms < s->stuck_after_ms)
		return;
	char subject[256];
	natsMsg *reply = NULL;
	snprintf(subject, sizeof(subject), "$JS.API.CONSUMER.LEADER.STEPDOWN.%s.%s", c->stream, s->durable);
	natsConnection_Request(&reply, c->nc, subject, NULL, 0, 2000);
	natsMsg_Destroy(reply);
	s->floor_moved_ms = now;
	if (s->stuck_after_ms < 32 * c->ack_wait_ms)
		s->stuck_after_ms *= 2;
}

static void refill(struct atkv_consumer *c)
{
	int64_t now = atkv_now_ms();
	for (size_t i = 0; i < c->n_src; i++)
		unstick(c, &c->src[i], now);
	if (c->push)
		return;
	for (size_t i = 0; i < c->n_src; i++) {
		if (now < c->src[i].retry_at_ms)
			continue;
		/* The next batch is asked for while half of this one is still on its way, so a
		 * backlog flows without a round trip's pause between batches. */
		if (c->src[i].outstanding <= c->batch / 2 || now - c->src[i].requested_ms > PULL_LOST_MS) {
			if (now - c->src[i].requested_ms > PULL_LOST_MS)
				c->src[i].outstanding = 0;
			request_batch(c, &c->src[i]);
		}
	}
}

/* Takes the oldest queued message, waiting until deadline (CLOCK_MONOTONIC ms). */
static natsMsg *dequeue(struct queue *q, int64_t deadline)
{
	struct timespec until = {.tv_sec = deadline / 1000, .tv_nsec = (deadline % 1000) * 1000000};
	natsMsg *m = NULL;
	pthread_mutex_lock(&q->mu);
	while (!q->count && atkv_now_ms() < deadline)
		if (pthread_cond_timedwait(&q->arrived, &q->mu, &until))
			break;
	if (q->count) {
		m = q->items[q->head];
		q->head = (q->head + 1) % q->cap;
		q->count--;
	}
	pthread_mutex_unlock(&q->mu);
	return m;
}

int atkv_consumer_next(struct atkv_consumer *c, int64_t timeout_ms, struct atkv_change **out)
{
	int64_t deadline = atkv_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	for (;;) {
		if (natsConnection_IsClosed(c->nc) || c->gone[0])
			return ATKV_E_NATS;
		refill(c);
		natsMsg *m = dequeue(&c->q, deadline);
		if (!m)
			return 0;
		if (handle_status(c, m)) {
			natsMsg_Destroy(m);
			continue;
		}
		struct source *s = NULL;
		struct atkv_change *ch = make_change(c, m, &s);
		if (!ch)
			return ATKV_E_NOMEM;
		if (s && s->outstanding > 0) {
			s->outstanding--;
			s->requested_ms = atkv_now_ms();
		}
		/* Another account's change in the DID's partition: not for this handle. */
		if (c->did_here && ch->kind != ATKV_CHANGE_BAD_KEY && strcmp(ch->did, c->did)) {
			atkv_change_ack(ch);
			atkv_change_free(ch);
			continue;
		}
		*out = ch;
		return 1;
	}
}

static int respond(struct atkv_change *pub, const char *body)
{
	struct change *ch = (struct change *)pub;
	const char *reply = natsMsg_GetReply(pub->msg);
	if (ch->ack_none || !reply)
		return 0;
	return natsConnection_PublishString(ch->nc, reply, body) == NATS_OK ? 0 : ATKV_E_NATS;
}

int atkv_change_ack(struct atkv_change *ch) { return respond(ch, "+ACK"); }
int atkv_change_term(struct atkv_change *ch) { return respond(ch, "+TERM"); }

int atkv_change_nak(struct atkv_change *ch, int64_t delay_ms)
{
	char body[64];
	if (delay_ms <= 0)
		return respond(ch, "-NAK");
	snprintf(body, sizeof(body), "-NAK {\"delay\":%lld}", (long long)delay_ms * 1000000LL);
	return respond(ch, body);
}

void atkv_change_free(struct atkv_change *ch)
{
	if (!ch)
		return;
	natsMsg_Destroy(ch->msg);
	free(ch);
}

int atkv_consumer_pending(struct atkv_consumer *c, uint64_t *pending, uint64_t *ack_pending)
{
	uint64_t p = 0, a = 0;
	for (size_t i = 0; i < c->n_src; i++) {
		jsConsumerInfo *ci = NULL;
		if (js_GetConsumerInfo(&ci, c->js, c->stream, c->src[i].durable, NULL, NULL) != NATS_OK)
			return ATKV_E_NATS;
		p += ci->NumPending;
		a += ci->NumAckPending > 0 ? (uint64_t)ci->NumAckPending : 0;
		jsConsumerInfo_Destroy(ci);
	}
	*pending = p;
	*ack_pending = a;
	return 0;
}

void atkv_consumer_close(struct atkv_consumer *c)
{
	if (!c)
		return;
	/* Acknowledgements are buffered by nats.c: send them before going. */
	if (c->n_subs)
		natsConnection_FlushTimeout(c->nc, 2000);
	for (size_t i = 0; i < c->n_subs; i++)
		natsSubscription_Unsubscribe(c->subs[i]);
	/* The handlers write to the queue until each subscription says it is done. Should nats.c
	 * never say so, the handle is left allocated rather than freed under a running handler. */
	int64_t give_up = atkv_now_ms() + 5000;
	pthread_mutex_lock(&c->q.mu);
	while (c->q.live_subs && atkv_now_ms() < give_up) {
		struct timespec t = {.tv_sec = (atkv_now_ms() + 100) / 1000, .tv_nsec = ((atkv_now_ms() + 100) % 1000) * 1000000};
		pthread_cond_timedwait(&c->q.arrived, &c->q.mu, &t);
	}
	bool stuck = c->q.live_subs > 0;
	pthread_mutex_unlock(&c->q.mu);
	if (stuck)
		return;
	for (size_t i = 0; i < c->n_subs; i++)
		natsSubscription_Destroy(c->subs[i]);
	free(c->subs);
	for (natsMsg *m; (m = dequeue(&c->q, 0));)
		natsMsg_Destroy(m);
	free(c->q.items);
	pthread_mutex_destroy(&c->q.mu);
	pthread_cond_destroy(&c->q.arrived);
	natsInbox_Destroy(c->inbox);
	jsCtx_Destroy(c->js);
	free_sources(c->src, c->n_src);
	free(c);
}

int atkv_consumer_delete(natsConnection *nc, const struct atkv_consumer_options *o, char *why, size_t why_n)
{
	size_t n_coll, n = 0;
	struct source *src = NULL;
	jsCtx *js = NULL;
	int rc = check_options(o, &n_coll, why, why_n);
	if (rc)
		return rc;
	if ((rc = plan_sources(o, n_coll, &src, &n)))
		return rc;
	char stream[80];
	snprintf(stream, sizeof(stream), "KV_%s", o->bucket);
	natsStatus st = natsConnection_JetStream(&js, nc, NULL);
	for (size_t i = 0; st == NATS_OK && !rc && i < n; i++) {
		jsErrCode jerr = 0;
		natsStatus d = js_DeleteConsumer(js, stream, src[i].durable, NULL, &jerr);
		if (d != NATS_OK && d != NATS_NOT_FOUND && jerr != JSConsumerNotFoundErr && jerr != JSStreamNotFoundErr)
			rc = nats_failed(why, why_n, "cannot delete consumer", src[i].durable, d, jerr);
	}
	if (st != NATS_OK)
		rc = nats_failed(why, why_n, "no JetStream context for", o->name, st, 0);
	jsCtx_Destroy(js);
	free_sources(src, n);
	return rc;
}
