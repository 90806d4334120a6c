/* test-consumer.c — libatkv's consumers and record writes against a real nats-server: one
 * collection, a namespace, one account, partition subsets that split the work, acks, naks,
 * redelivery and termination, acks off, resuming a durable, starting from now or from a time,
 * push delivery, and keys outside the scheme. Only the public API (<atkv/atkv.h>) is used. */
#define _DEFAULT_SOURCE
#include "natsserver.h"
#include "tap.h"

#include <atkv/atkv.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Partitions a and 1 (DESIGN.md's vectors). */
#define ALICE "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
#define BOB "did:plc:l3rouwludahu3ui3bt66mfvj"
/* Also in partition a: the library, not the server, tells her records from Alice's. */
#define CAROL "did:plc:carol8"
#define LIKE "app.bsky.feed.like"

static natsConnection *nc;
static jsCtx *js;

static void sleep_ms(int ms) { usleep((useconds_t)ms * 1000); }

static int64_t wall_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void put(const char *uri, const char *json, const char *cid)
{
	char why[256];
	struct atkv_record_meta meta = {.seq = 7, .cid = cid, .cid_n = cid ? strlen(cid) : 0,
	                                .rev = "3kabcdefghij2", .rev_n = 13,
	                                .time = "2026-11-27T00:00:00.000Z", .time_n = 24};
	if (atkv_record_put(js, uri, json, strlen(json), &meta, why, sizeof(why)))
		tap_note("put %s failed: %s", uri, why);
}

static void del(const char *uri)
{
	char why[256];
	if (atkv_record_delete(js, uri, NULL, why, sizeof(why)))
		tap_note("delete %s failed: %s", uri, why);
}

/* What a drain saw: the URIs (or subjects) in order, with a mark for deletes. */
struct seen {
	char items[64][200];
	uint64_t seqs[64];
	int64_t stored_ns[64];
	int n;
};

static bool seen_has(const struct seen *s, const char *item)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->items[i], item))
			return true;
	return false;
}

/* Takes changes until none comes for quiet_ms (the first may take 3 s: a loaded machine);
 * acks each when ack is true. */
static void drain(struct atkv_consumer *c, int quiet_ms, bool ack, struct seen *s)
{
	struct atkv_change *ch;
	s->n = 0;
	while (atkv_consumer_next(c, s->n ? quiet_ms : 3000, &ch) > 0) {
		if (s->n < 64) {
			snprintf(s->items[s->n], sizeof(s->items[0]), "%s%s",
			         ch->kind == ATKV_CHANGE_DELETE ? "-" : "", ch->uri ? ch->uri : ch->subject);
			s->seqs[s->n] = ch->stream_seq;
			s->stored_ns[s->n] = ch->stored_ns;
			s->n++;
		}
		if (ack)
			atkv_change_ack(ch);
		atkv_change_free(ch);
	}
}

static struct atkv_consumer *open_with(struct atkv_consumer_options *o)
{
	struct atkv_consumer *c = NULL;
	char why[512];
	if (atkv_consumer_open(nc, o, &c, why, sizeof(why))) {
		tap_note("open %s: %s", o->name, why);
		return NULL;
	}
	return c;
}

static const char *likes[] = {LIKE, NULL};

static void test_one_collection(void)
{
	struct atkv_consumer_options o;
	atkv_consumer_options_init(&o);
	o.name = "likes";
	o.collections = likes;
	struct atkv_consumer *c = open_with(&o);
	tap_ok(c != NULL, "a pull consumer on %s opens", LIKE);
	if (!c)
		return;
	/* The first change, field by field. */
	struct atkv_change *ch = NULL;
	int got = atkv_consumer_next(c, 5000, &ch);
	tap_ok(got == 1 && ch->kind == ATKV_CHANGE_PUT && !strcmp(ch->did, ALICE) && !strcmp(ch->collection, LIKE) &&
	           !strcmp(ch->rkey, "3l1") && !strcmp(ch->uri, "at://" ALICE "/" LIKE "/3l1"),
	       "the first change: put of at://alice/%s/3l1", LIKE);
	tap_ok(got == 1 && ch->value_len == strlen("{\"$type\":\"" LIKE "\",\"n\":1}") &&
	           !memcmp(ch->value, "{\"$type\":\"" LIKE "\",\"n\":1}", ch->value_len),
	       "its value is the record JSON");
	tap_ok(got == 1 && ch->cid && !strcmp(ch->cid, "bafyreia") && ch->rev && !strcmp(ch->rev, "3kabcdefghij2") &&
	           ch->seq == 7 && ch->time && !strcmp(ch->time, "2026-11-27T00:00:00.000Z"),
	       "its Atkv-Cid, -Rev, -Seq and -Time headers");
	tap_ok(got == 1 && ch->stream_seq > 0 && ch->delivered == 1 && ch->stored_ns > 0,
	       "its stream seq %llu, delivered once", got == 1 ? (unsigned long long)ch->stream_seq : 0ULL);
	if (got == 1) {
		atkv_change_ack(ch);
		atkv_change_free(ch);
	}
	struct seen s;
	drain(c, 1000, true, &s);
	tap_eq(s.n, 3, "then the other likes, and only likes");
	tap_ok(seen_has(&s, "at://" BOB "/" LIKE "/3l2") && seen_has(&s, "-at://" ALICE "/" LIKE "/3l3") &&
	           seen_has(&s, "at://" BOB "/" LIKE "/3l4"),
	       "a deleted like arrives as a delete");
	uint64_t pending = 1, ack_pending = 1;
	natsConnection_Flush(nc);
	/* The server takes acknowledgements a moment after they are flushed. */
	int prc = -1;
	for (int t = 0; t < 10000; t += 100) {
		prc = atkv_consumer_pending(c, &pending, &ack_pending);
		if (prc == 0 && pending == 0 && ack_pending == 0)
			break;
		sleep_ms(100);
	}
	tap_ok(prc == 0 && pending == 0 && ack_pending == 0,
	       "nothing pending once all is acked (%llu, %llu)", (unsigned long long)pending,
	       (unsigned long long)ack_pending);
	atkv_consumer_close(c);

	/* The durable resumes where it stopped. */
	put("at://" BOB "/" LIKE "/3l5", "{\"$type\":\"" LIKE "\",\"n\":5}", "bafyreie");
	c = open_with(&o);
	drain(c, 1000, true, &s);
	tap_ok(s.n == 1 && seen_has(&s, "at://" BOB "/" LIKE "/3l5"), "reopened, it resumes after what was acked");
	atkv_consumer_close(c);
}

static void test_namespace_and_did(void)
{
	static const char *ns[] = {"blue.flashes", NULL};
	struct atkv_consumer_options o;
	atkv_consumer_options_init(&o);
	o.name = "flashes";
	o.collections = ns;
	struct atkv_consumer *c = open_with(&o);
	struct seen s = {.n = 0};
	if (c)
		drain(c, 1000, true, &s);
	tap_ok(s.n == 2 && seen_has(&s, "at://" ALICE "/blue.flashes.post/p1") &&
	           seen_has(&s, "at://" BOB "/blue.flashes.actor.profile/self"),
	       "a namespace: every collection under blue.flashes, nothing else (%d)", s.n);
	atkv_consumer_close(c);

	atkv_consumer_options_init(&o);
	o.name = "alice-likes";
	o.collections = likes;
	o.did = ALICE;
	c = open_with(&o);
	s.n = 0;
	if (c)
		drain(c, 1000, true, &s);
	tap_ok(s.n == 2 && seen_has(&s, "at://" ALICE "/" LIKE "/3l1") && seen_has(&s, "-at://" ALICE "/" LIKE "/3l3"),
	       "one account's likes (%d)", s.n);
	atkv_consumer_close(c);

	atkv_consumer_options_init(&o);
	o.name = "alice-all";
	o.did = ALICE;
	c = open_with(&o);
	s.n = 0;
	if (c)
		drain(c, 1000, true, &s);
	bool only_alice = s.n > 0;
	for (int i = 0; i < s.n; i++)
		only_alice &= strstr(s.items[i], ALICE) != NULL;
	tap_ok(only_alice && s.n == 4,
	       "one account in every collection: its 4 records, not those of another in its partition (%d)", s.n);
	atkv_consumer_close(c);
}

static void test_partitions(void)
{
	struct atkv_consumer_options a, b;
	atkv_consumer_options_init(&a);
	atkv_consumer_options_init(&b);
	a.name = "split";
	b.name = "split";
	a.collections = b.collections = likes;
	/* Partition 1 (Bob) and seven more in one process, the other eight in the other. */
	a.partitions = 0x00ff;
	b.partitions = 0xff00;
	struct atkv_consumer *ca = open_with(&a), *cb = open_with(&b);
	struct seen sa = {.n = 0}, sb = {.n = 0};
	if (ca)
		drain(ca, 1000, true, &sa);
	if (cb)
		drain(cb, 1000, true, &sb);
	int overlap = 0;
	for (int i = 0; i < sa.n; i++)
		overlap += seen_has(&sb, sa.items[i]);
	tap_ok(ca && cb && sa.n == 3 && sb.n == 2 && overlap == 0,
	       "two handles splitting the 16 partitions see every like exactly once together (%d + %d)", sa.n, sb.n);
	tap_ok(seen_has(&sa, "at://" BOB "/" LIKE "/3l2") && seen_has(&sb, "at://" ALICE "/" LIKE "/3l1"),
	       "each sees its own partitions' accounts");
	atkv_consumer_close(ca);
	atkv_consumer_close(cb);
	/* Each partition is a NATS consumer of its own, named after it. */
	jsConsumerInfo *ci = NULL;
	tap_ok(js_GetConsumerInfo(&ci, js, "KV_record", "split_1_app_bsky_feed_like", NULL, NULL) == NATS_OK &&
	           !strcmp(ci->Config->FilterSubject, "$KV.record.1.app.bsky.feed.like.>"),
	       "consumer split_1_app_bsky_feed_like filters partition 1");
	jsConsumerInfo_Destroy(ci);
	char why[256];
	tap_ok(atkv_consumer_delete(nc, &a, why, sizeof(why)) == 0 &&
	           js_GetConsumerInfo(&ci, js, "KV_record", "split_1_app_bsky_feed_like", NULL, NULL) == NATS_NOT_FOUND,
	       "atkv_consumer_delete removes them");
}

static void test_acks(void)
{
	struct atkv_consumer_options o;
	atkv_consumer_options_init(&o);
	o.name = "acks";
	o.collections = likes;
	o.ack_wait_ms = 1000;
	struct atkv_consumer *c = open_with(&o);
	if (!c)
		return;
	struct atkv_change *ch = NULL, *again = NULL;
	atkv_consumer_next(c, 5000, &ch);
	uint64_t first = ch ? ch->stream_seq : 0;
	tap_ok(ch && atkv_change_nak(ch, 0) == 0, "nak");
	atkv_change_free(ch);
	bool redelivered = false;
	for (int i = 0; i < 10 && !redelivered && atkv_consumer_next(c, 3000, &again) > 0; i++) {
		if (again->stream_seq == first)
			redelivered = again->delivered == 2;
		/* Leave the others unacknowledged: they come again after ack_wait. */
		if (again->stream_seq == first)
			atkv_change_term(again);
		atkv_change_free(again);
	}
	tap_ok(redelivered, "a nak'd change is delivered again, delivered = 2");
	/* The unacknowledged ones come back after ack_wait; the terminated one never does. */
	sleep_ms(1500);
	struct seen s;
	drain(c, 1500, true, &s);
	bool term_gone = true;
	for (int i = 0; i < s.n; i++)
		term_gone &= s.seqs[i] != first;
	tap_ok(s.n >= 3 && term_gone, "unacknowledged changes are redelivered after ack_wait (%d), the terminated one is not",
	       s.n);
	atkv_consumer_close(c);
}

static void test_ack_none_and_push(void)
{
	struct atkv_consumer_options o;
	atkv_consumer_options_init(&o);
	o.name = "fire-and-forget";
	o.collections = likes;
	o.ack_none = true;
	struct atkv_consumer *c = open_with(&o);
	struct seen s = {.n = 0};
	if (c)
		drain(c, 1000, false, &s);
	tap_eq(s.n, 5, "acks off: every like once");
	atkv_consumer_close(c);
	c = open_with(&o);
	s.n = -1;
	if (c)
		drain(c, 1000, false, &s);
	tap_eq(s.n, 0, "and never again");
	atkv_consumer_close(c);

	atkv_consumer_options_init(&o);
	o.name = "pushed";
	o.collections = likes;
	o.push = true;
	c = open_with(&o);
	s.n = 0;
	if (c)
		drain(c, 1000, true, &s);
	tap_eq(s.n, 5, "a push consumer delivers every like");
	atkv_consumer_close(c);
}

static void test_start(void)
{
	struct atkv_consumer_options o;
	atkv_consumer_options_init(&o);
	o.name = "from-now";
	o.collections = likes;
	o.deliver = ATKV_DELIVER_NEW;
	struct atkv_consumer *c = open_with(&o);
	put("at://" ALICE "/" LIKE "/3l6", "{\"$type\":\"" LIKE "\",\"n\":6}", "bafyreif");
	struct seen s = {.n = 0};
	if (c)
		drain(c, 1000, true, &s);
	tap_ok(s.n == 1 && seen_has(&s, "at://" ALICE "/" LIKE "/3l6"), "from now: only what comes after (%d)", s.n);
	atkv_consumer_close(c);

	/* The start: just after the last change, by the server's clock (which stamps the changes),
	 * not this process's, so that no clock adjustment between the two can move it. */
	int64_t t = s.n ? s.stored_ns[0] / 1000000 + 1 : wall_ms();
	sleep_ms(50);
	put("at://" BOB "/" LIKE "/3l7", "{\"$type\":\"" LIKE "\",\"n\":7}", "bafyreig");
	atkv_consumer_options_init(&o);
	o.name = "from-time";
	o.collections = likes;
	o.deliver = ATKV_DELIVER_TIME;
	o.start_time_ms = t;
	c = open_with(&o);
	s.n = 0;
	if (c)
		drain(c, 1000, true, &s);
	tap_ok(s.n == 1 && seen_has(&s, "at://" BOB "/" LIKE "/3l7"), "from a time: only what was stored since (%d)", s.n);
	atkv_consumer_close(c);
}

static void test_errors(void)
{
	struct atkv_consumer_options o;
	struct atkv_consumer *c = NULL;
	char why[512] = "";
	atkv_consumer_options_init(&o);
	o.name = "bad name!";
	tap_ok(atkv_consumer_open(nc, &o, &c, why, sizeof(why)) == ATKV_E_ARG && strstr(why, "bad name!"),
	       "a bad name is refused: %s", why);
	atkv_consumer_options_init(&o);
	o.name = "x";
	static const char *bad_coll[] = {"app..like", NULL};
	o.collections = bad_coll;
	tap_ok(atkv_consumer_open(nc, &o, &c, why, sizeof(why)) == ATKV_E_ARG && strstr(why, "app..like"),
	       "a bad collection is refused: %s", why);
	/* "likes" exists with the likes filter. */
	static const char *posts[] = {"app.bsky.feed.post", NULL};
	atkv_consumer_options_init(&o);
	o.name = "likes";
	o.collections = posts;
	tap_ok(atkv_consumer_open(nc, &o, &c, why, sizeof(why)) == ATKV_E_ARG && strstr(why, "exists with filter"),
	       "an existing consumer with another filter is reported: %s", why);
	atkv_consumer_options_init(&o);
	o.name = "nobucket";
	o.bucket = "nosuch";
	tap_ok(atkv_consumer_open(nc, &o, &c, why, sizeof(why)) == ATKV_E_NATS && strstr(why, "does not exist"),
	       "a missing bucket is reported: %s", why);

	/* A key outside the scheme reaches a consumer of everything as BAD_KEY. */
	natsConnection_PublishString(nc, "$KV.record.z.not.a.key", "{}");
	natsConnection_Flush(nc);
	sleep_ms(200);
	atkv_consumer_options_init(&o);
	o.name = "everything";
	c = open_with(&o);
	struct atkv_change *ch;
	int bad_keys = 0, total = 0;
	while (c && atkv_consumer_next(c, 1000, &ch) > 0) {
		total++;
		bad_keys += ch->kind == ATKV_CHANGE_BAD_KEY && !strcmp(ch->subject, "$KV.record.z.not.a.key") && !ch->uri;
		atkv_change_ack(ch);
		atkv_change_free(ch);
	}
	tap_ok(bad_keys == 1 && total > 5, "a key outside the scheme arrives as ATKV_CHANGE_BAD_KEY (%d of %d)", bad_keys,
	       total);
	atkv_consumer_close(c);
}

int main(void)
{
	struct nats_server server = {0};
	if (nats_server_start(&server, 0)) {
		printf("Bail out! cannot start nats-server\n");
		return 1;
	}
	natsConnection_ConnectTo(&nc, server.url);
	natsConnection_JetStream(&js, nc, NULL);
	tap_ok(kv_bucket_create(js, "record") == 0, "bucket record created");

	char why[256];
	tap_ok(atkv_record_put(js, "at://alice.example/" LIKE "/3l1", "{}", 2, NULL, why, sizeof(why)) == ATKV_E_SYNTAX,
	       "a put by handle is refused: %s", why);
	put("at://" ALICE "/" LIKE "/3l1", "{\"$type\":\"" LIKE "\",\"n\":1}", "bafyreia");
	put("at://" BOB "/" LIKE "/3l2", "{\"$type\":\"" LIKE "\",\"n\":2}", "bafyreib");
	put("at://" ALICE "/" LIKE "/3l3", "{\"$type\":\"" LIKE "\",\"n\":3}", "bafyreic");
	del("at://" ALICE "/" LIKE "/3l3");
	put("at://" BOB "/" LIKE "/3l4", "{\"$type\":\"" LIKE "\",\"n\":4}", "bafyreid");
	put("at://" ALICE "/app.bsky.feed.post/p1", "{\"$type\":\"app.bsky.feed.post\"}", "bafyreip");
	put("at://" CAROL "/app.bsky.feed.post/c1", "{\"$type\":\"app.bsky.feed.post\"}", "bafyreis");
	put("at://" ALICE "/blue.flashes.post/p1", "{\"$type\":\"blue.flashes.post\"}", "bafyreiq");
	put("at://" BOB "/blue.flashes.actor.profile/self", "{\"$type\":\"blue.flashes.actor.profile\"}", "bafyreir");
	natsMsg *m = kv_last_msg(js, "record", "1.app.bsky.feed.like.did/3Aplc/3Al3rouwludahu3ui3bt66mfvj.3l2");
	const char *cid = NULL;
	tap_ok(m && natsMsgHeader_Get(m, "Atkv-Cid", &cid) == NATS_OK && !strcmp(cid, "bafyreib"),
	       "atkv_record_put writes the key and headers of the scheme");
	natsMsg_Destroy(m);

	test_one_collection();
	test_namespace_and_did();
	test_partitions();
	test_acks();
	test_ack_none_and_push();
	test_start();
	test_errors();

	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_server_destroy(&server);
	nats_Close();
	return tap_done();
}
