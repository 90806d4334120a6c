/* cli-status.c — atkv status: what the pipeline is doing, read from NATS alone: the builder's
 * cursor and its age, the last record written (how long ago, and how long after its event),
 * each bucket's size, and every durable consumer of bucket record with its backlog and rate. */
#define _DEFAULT_SOURCE /* timegm, usleep */
#include "buckets.h"
#include "cli.h"
#include "natsconn.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RECORD_STREAM "KV_" ATKV_BUCKET_RECORD

struct bucket {
	const char *name;
	bool exists;
	uint64_t entries, bytes, last_seq;
};

struct status {
	struct bucket buckets[3];
	bool has_cursor, has_last;
	int64_t cursor, cursor_stamp_ns;
	int64_t last_stored_ns, last_event_ns;   /* the last record written: stored, its event */
	jsConsumerInfoList *consumers;
	double *rates;                             /* per consumer, changes/s; NULL: not measured */
};

/* Fills b from its stream. Returns 0 (b->exists says whether it does) or 1 after saying why
 * NATS could not tell: a bucket is "missing" only when the server says so. */
static int read_bucket(jsCtx *js, struct bucket *b)
{
	char stream[64];
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	snprintf(stream, sizeof(stream), "KV_%s", b->name);
	natsStatus s = js_GetStreamInfo(&si, js, stream, NULL, &jerr);
	if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr)
		return 0;
	if (s != NATS_OK)
		return atkv_cli_fail(ATKV_CLI_FAILED, "cannot read bucket %s: %s", b->name, atkv_nats_why(s));
	b->exists = true;
	b->entries = si->State.Msgs;
	b->bytes = si->State.Bytes;
	b->last_seq = si->State.LastSeq;
	jsStreamInfo_Destroy(si);
	return 0;
}

/* "2026-11-27T09:55:00.123Z" (any fraction, or none) as Unix ns; -1 when not a UTC time. */
static int64_t parse_time(const char *s)
{
	struct tm tm = {0};
	int frac_at = 0;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
	                 &tm.tm_min, &tm.tm_sec, &frac_at) != 6)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	int64_t ns = (int64_t)timegm(&tm) * 1000000000, scale = 100000000;
	const char *p = s + frac_at;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
			ns += (*p - '0') * scale;
	return *p == 'Z' ? ns : -1;
}

static void read_cursor(jsCtx *js, struct status *st)
{
	kvStore *kv = NULL;
	kvEntry *e = NULL;
	if (js_KeyValue(&kv, js, ATKV_BUCKET_CURSOR) == NATS_OK && kvStore_Get(&e, kv, "firehose") == NATS_OK) {
		char *end = NULL;
		st->cursor = strtoll(kvEntry_ValueString(e), &end, 10);
		st->has_cursor = end && *end == '\0';
		st->cursor_stamp_ns = kvEntry_Created(e);
	}
	kvEntry_Destroy(e);
	kvStore_Destroy(kv);
}

static void read_last_record(jsCtx *js, struct status *st)
{
	natsMsg *m = NULL;
	const char *t = NULL;
	if (!st->buckets[0].last_seq ||
	    js_GetMsg(&m, js, RECORD_STREAM, st->buckets[0].last_seq, NULL, NULL) != NATS_OK)
		return;
	st->last_stored_ns = natsMsg_GetTime(m);
	natsMsgHeader_Get(m, "Atkv-Time", &t);
	st->last_event_ns = parse_time(t);
	st->has_last = true;
	natsMsg_Destroy(m);
}

static jsConsumerInfo *find_consumer(jsConsumerInfoList *l, const char *name)
{
	for (int i = 0; l && i < l->Count; i++)
		if (!strcmp(l->List[i]->Name, name))
			return l->List[i];
	return NULL;
}

static int by_name(const void *a, const void *b)
{
	return strcmp((*(jsConsumerInfo *const *)a)->Name, (*(jsConsumerInfo *const *)b)->Name);
}

/* Keeps the durable consumers: an ordered one (atkv watch's) is nobody's progress. */
static void drop_ephemeral(jsConsumerInfoList *l)
{
	int kept = 0;
	for (int i = 0; l && i < l->Count; i++) {
		jsConsumerInfo *ci = l->List[i];
		if (ci->Config && ci->Config->Durable && ci->Config->Durable[0])
			l->List[kept++] = ci;
		else
			jsConsumerInfo_Destroy(ci);
	}
	if (l)
		l->Count = kept;
}

/* Lists the consumers of bucket record twice, interval_ms apart, for their rates. */
static int read_consumers(jsCtx *js, struct status *st, int64_t interval_ms)
{
	jsErrCode jerr = 0;
	natsStatus s = js_Consumers(&st->consumers, js, RECORD_STREAM, NULL, &jerr);
	if (s == NATS_NOT_FOUND) /* none */
		return 0;
	drop_ephemeral(st->consumers);
	if (s != NATS_OK)
		return atkv_cli_fail(ATKV_CLI_FAILED, "cannot list the consumers of %s: %s", RECORD_STREAM,
		                     atkv_nats_why(s));
	if (!st->consumers || !st->consumers->Count)
		return 0;
	qsort(st->consumers->List, (size_t)st->consumers->Count, sizeof(*st->consumers->List), by_name);
	if (interval_ms <= 0)
		return 0;
	int64_t t0 = atkv_cli_now_ns();
	for (int64_t waited = 0; waited < interval_ms && !atkv_cli_stop; waited += 50)
		usleep(50000);
	jsConsumerInfoList *later = NULL;
	s = js_Consumers(&later, js, RECORD_STREAM, NULL, &jerr);
	if (s != NATS_OK && s != NATS_NOT_FOUND)
		return atkv_cli_fail(ATKV_CLI_FAILED, "cannot list the consumers of %s: %s", RECORD_STREAM,
		                     atkv_nats_why(s));
	double seconds = (double)(atkv_cli_now_ns() - t0) / 1e9;
	st->rates = calloc((size_t)st->consumers->Count, sizeof(double));
	for (int i = 0; st->rates && i < st->consumers->Count; i++) {
		jsConsumerInfo *a = st->consumers->List[i], *b = find_consumer(later, a->Name);
		/* The ack floor counts changes done; Delivered would count redeliveries too. */
		if (b && b->AckFloor.Consumer >= a->AckFloor.Consumer)
			st->rates[i] = (double)(b->AckFloor.Consumer - a->AckFloor.Consumer) / seconds;
	}
	jsConsumerInfoList_Destroy(later);
	return 0;
}

static void print_text(const struct status *st, int64_t now)
{
	char age[32], lag[32];
	if (st->has_cursor) {
		atkv_cli_age(age, sizeof(age), st->cursor_stamp_ns, now);
		printf("cursor    %lld (saved %s ago)\n", (long long)st->cursor, age);
	} else {
		printf("cursor    none: atkv-builder has not saved one\n");
	}
	if (st->has_last) {
		atkv_cli_age(age, sizeof(age), st->last_stored_ns, now);
		if (st->last_event_ns >= 0) {
			atkv_cli_age(lag, sizeof(lag), st->last_event_ns, st->last_stored_ns);
			printf("last write %s ago, %s after its event (the relay lag then)\n", age, lag);
		} else {
			printf("last write %s ago (no Atkv-Time header: written by another tool)\n", age);
		}
	}
	printf("\n%-10s %12s %14s\n", "bucket", "entries", "bytes");
	for (int i = 0; i < 3; i++) {
		const struct bucket *b = &st->buckets[i];
		if (b->exists)
			printf("%-10s %12llu %14llu\n", b->name, (unsigned long long)b->entries, (unsigned long long)b->bytes);
		else
			printf("%-10s %12s %14s\n", b->name, "missing", "-");
	}
	int n = st->consumers ? st->consumers->Count : 0;
	if (!n) {
		printf("\nno consumers of bucket record\n");
		return;
	}
	printf("\n%-24s %12s %12s %12s %10s\n", "consumer", "pending", "ack pending", "ack floor", "per s");
	for (int i = 0; i < n; i++) {
		const jsConsumerInfo *ci = st->consumers->List[i];
		char rate[32] = "-";
		if (st->rates)
			snprintf(rate, sizeof(rate), "%.0f", st->rates[i]);
		printf("%-24s %12llu %12lld %12llu %10s\n", ci->Name, (unsigned long long)ci->NumPending,
		       (long long)ci->NumAckPending, (unsigned long long)ci->AckFloor.Stream, rate);
	}
}

static int print_json(const struct status *st, int64_t now)
{
	json_t *j = json_object(), *buckets = json_object(), *consumers = json_array();
	if (st->has_cursor)
		json_object_set_new(j, "cursor", json_pack("{s:I, s:f}", "seq", (json_int_t)st->cursor, "age_s",
		                                           (double)(now - st->cursor_stamp_ns) / 1e9));
	else
		json_object_set_new(j, "cursor", json_null());
	if (st->has_last)
		json_object_set_new(j, "last_write",
		                    json_pack("{s:f, s:o}", "age_s", (double)(now - st->last_stored_ns) / 1e9, "lag_s",
		                              st->last_event_ns >= 0
		                                      ? json_real((double)(st->last_stored_ns - st->last_event_ns) / 1e9)
		                                      : json_null()));
	else
		json_object_set_new(j, "last_write", json_null());
	for (int i = 0; i < 3; i++) {
		const struct bucket *b = &st->buckets[i];
		json_object_set_new(buckets, b->name,
		                    b->exists ? json_pack("{s:I, s:I}", "entries", (json_int_t)b->entries, "bytes",
		                                          (json_int_t)b->bytes)
		                              : json_null());
	}
	for (int i = 0; st->consumers && i < st->consumers->Count; i++) {
		const jsConsumerInfo *ci = st->consumers->List[i];
		json_array_append_new(consumers,
		                      json_pack("{s:s, s:I, s:I, s:I, s:o}", "name", ci->Name, "pending",
		                                (json_int_t)ci->NumPending, "ack_pending", (json_int_t)ci->NumAckPending,
		                                "ack_floor", (json_int_t)ci->AckFloor.Stream, "per_s",
		                                st->rates ? json_real(st->rates[i]) : json_null()));
	}
	json_object_set_new(j, "buckets", buckets);
	json_object_set_new(j, "consumers", consumers);
	int rc = json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) ? ATKV_CLI_FAILED : 0;
	putchar('\n');
	json_decref(j);
	return rc;
}

int atkv_cli_status(struct atkv_cli *c)
{
	int rc = atkv_cli_connect(c);
	if (rc)
		return rc;
	struct status st = {.buckets = {{.name = ATKV_BUCKET_RECORD}, {.name = ATKV_BUCKET_CURSOR},
	                                {.name = ATKV_BUCKET_ACCOUNT}}};
	for (int i = 0; i < 3 && !rc; i++)
		rc = read_bucket(c->js, &st.buckets[i]);
	if (rc)
		return rc;
	read_cursor(c->js, &st);
	read_last_record(c->js, &st);
	if (st.buckets[0].exists)
		rc = read_consumers(c->js, &st, atkv_config_int(c->cfg, "interval"));
	if (!rc)
		rc = atkv_config_bool(c->cfg, "json") ? print_json(&st, atkv_cli_now_ns())
		                                       : (print_text(&st, atkv_cli_now_ns()), 0);
	jsConsumerInfoList_Destroy(st.consumers);
	free(st.rates);
	return rc;
}
