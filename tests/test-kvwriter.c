/* test-kvwriter.c — bucket setup and acknowledged asynchronous KV writes against a real
 * nats-server started by the test: values and headers land, deletes are KV deletes, the
 * watermark only covers acknowledged events, a stalled server fails publishes and a rewind
 * recovers, and existing buckets with other settings are reported. */
#include "buckets.h"
#include "err.h"
#include "kvwriter.h"
#include "natsconn.h"
#include "natsserver.h"
#include "tap.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct nats_server server;

static struct atkv_str S(const char *s) { return (struct atkv_str){s, strlen(s)}; }

static bool header_is(natsMsg *m, const char *name, const char *want)
{
	const char *v = NULL;
	return m && natsMsgHeader_Get(m, name, &v) == NATS_OK && v && strcmp(v, want) == 0;
}

static void test_buckets(jsCtx *js)
{
	struct atkv_bucket_limits limits = {.replicas = 1, .record_max_bytes = -1, .record_max_age_s = 0};
	char why[512];
	tap_eq(atkv_buckets_ensure(js, &limits, why, sizeof(why)), ATKV_BUCKETS_OK, "buckets created (%s)", why);
	tap_eq(atkv_buckets_ensure(js, &limits, why, sizeof(why)), ATKV_BUCKETS_OK, "existing buckets accepted");

	struct atkv_bucket_limits aged = limits;
	aged.record_max_age_s = 3600;
	int rc = atkv_buckets_ensure(js, &aged, why, sizeof(why));
	tap_ok(rc == ATKV_BUCKETS_MISMATCH && strstr(why, "bucket record: max age (seconds) is 0, atkv is configured for 3600"),
	       "a different max age is reported exactly: %s", why);
}

static void test_history_mismatch(jsCtx *js)
{
	/* A bucket someone made with history 5 where atkv needs 1. */
	kvConfig c;
	kvStore *kv = NULL;
	kvConfig_Init(&c);
	c.Bucket = "account";
	c.History = 5;
	js_DeleteKeyValue(js, "account");
	tap_ok(js_CreateKeyValue(&kv, js, &c) == NATS_OK, "create a bucket with history 5");
	kvStore_Destroy(kv);
	struct atkv_bucket_limits limits = {.replicas = 1, .record_max_bytes = -1, .record_max_age_s = 0};
	char why[512];
	int rc = atkv_buckets_ensure(js, &limits, why, sizeof(why));
	tap_ok(rc == ATKV_BUCKETS_MISMATCH && strstr(why, "bucket account: history is 5, atkv is configured for 1"),
	       "history mismatch named: %s", why);
	js_DeleteKeyValue(js, "account");
	tap_eq(atkv_buckets_ensure(js, &limits, why, sizeof(why)), ATKV_BUCKETS_OK, "recreated after deletion");
}

static void on_wakeup(void *arg) { (void)arg; }

static struct atkv_kvwriter *make_writer(natsConnection *nc, size_t max_msgs, int64_t timeout_ms)
{
	struct atkv_kvwriter_options o = {
		.max_events = 1000, .max_msgs = max_msgs, .max_bytes = 1 << 24, .ack_timeout_ms = timeout_ms,
	};
	struct atkv_kvwriter *w = NULL;
	return atkv_kvwriter_new(nc, &o, 0, on_wakeup, NULL, &w) == 0 ? w : NULL;
}

static void test_writes(natsConnection *nc)
{
	jsCtx *js = NULL;
	struct atkv_kvwriter *w = make_writer(nc, 10000, 5000);
	if (!tap_ok(w != NULL, "writer created"))
		return;
	natsConnection_JetStream(&js, nc, NULL);
	const char *json = "{\"$type\":\"app.bsky.feed.like\",\"subject\":{\"uri\":\"at://x\"}}";
	struct atkv_write_meta m1 = {.seq = 1, .cid = S("bafyreia"), .rev = S("3k2a"), .time = S("2024-01-01T00:00:00Z")};
	struct atkv_write_meta m2 = {.seq = 2, .rev = S("3k2b"), .time = S("2024-01-01T00:00:01Z")};

	tap_eq(atkv_kvwriter_begin(w, 1), 0, "begin event 1");
	tap_eq(atkv_kvwriter_put(w, "record", "1.app.bsky.feed.like.did/3Aplc/3Aa.k1", json, strlen(json), &m1), 0, "put k1");
	tap_eq(atkv_kvwriter_put(w, "record", "1.app.bsky.feed.like.did/3Aplc/3Aa.k2", json, strlen(json), &m1), 0, "put k2");
	atkv_kvwriter_end(w);
	tap_eq(atkv_kvwriter_begin(w, 2), 0, "begin event 2");
	tap_eq(atkv_kvwriter_del(w, "record", "1.app.bsky.feed.like.did/3Aplc/3Aa.k1", &m2), 0, "delete k1");
	atkv_kvwriter_end(w);
	tap_eq(atkv_kvwriter_begin(w, 3), 0, "begin event 3 (no writes)");
	atkv_kvwriter_end(w);
	tap_eq(atkv_kvwriter_begin(w, 3), ATKV_E_FRAME, "a seq that does not increase is refused");

	tap_ok(atkv_kvwriter_drain(w, 5000), "all writes acknowledged");
	tap_eq(atkv_kvwriter_watermark(w), 3, "watermark at the last event");

	natsMsg *k2 = kv_last_msg(js, "record", "1.app.bsky.feed.like.did/3Aplc/3Aa.k2");
	tap_ok(k2 && natsMsg_GetDataLength(k2) == (int)strlen(json) && memcmp(natsMsg_GetData(k2), json, strlen(json)) == 0,
	       "k2 holds the record JSON");
	tap_ok(header_is(k2, "Atkv-Cid", "bafyreia") && header_is(k2, "Atkv-Rev", "3k2a") &&
	       header_is(k2, "Atkv-Seq", "1") && header_is(k2, "Atkv-Time", "2024-01-01T00:00:00Z"),
	       "k2 carries the Atkv-* headers");
	natsMsg_Destroy(k2);
	natsMsg *k1 = kv_last_msg(js, "record", "1.app.bsky.feed.like.did/3Aplc/3Aa.k1");
	tap_ok(k1 && natsMsg_GetDataLength(k1) == 0 && header_is(k1, "KV-Operation", "DEL") && header_is(k1, "Atkv-Seq", "2"),
	       "k1 is a KV delete");
	natsMsg_Destroy(k1);

	/* Larger than the server's max payload: refused before sending. */
	size_t big = (size_t)natsConnection_GetMaxPayload(nc) + 1;
	char *blob = calloc(1, big);
	tap_eq(atkv_kvwriter_begin(w, 4), 0, "begin event 4");
	tap_eq(atkv_kvwriter_put(w, "record", "1.a.b.c.did/3Aplc/3Aa.big", blob, big, &m1), ATKV_E_TOO_LARGE,
	       "a value over the max payload is refused");
	free(blob);
	atkv_kvwriter_end(w);
	tap_ok(!atkv_kvwriter_failed(w, NULL, 0), "a refused value does not fail the writer");

	/* Just under the max payload with the value alone, over it once the headers count. */
	size_t near = (size_t)natsConnection_GetMaxPayload(nc) - 40;
	blob = calloc(1, near);
	tap_eq(atkv_kvwriter_put(w, "record", "1.a.b.c.did/3Aplc/3Aa.near", blob, near, &m1), ATKV_E_TOO_LARGE,
	       "the headers count toward the max payload");
	free(blob);

	/* Many events: the watermark reaches the last, every publish acknowledged. */
	int64_t seq = 4;
	for (int i = 0; i < 20000; i++) {
		char key[64];
		if (i % 10 == 0) {
			if (i)
				atkv_kvwriter_end(w);
			atkv_kvwriter_begin(w, ++seq);
		}
		snprintf(key, sizeof(key), "2.app.bsky.feed.like.did/3Aplc/3Ab.r%d", i);
		struct atkv_write_meta m = {.seq = seq};
		atkv_kvwriter_put(w, "record", key, json, strlen(json), &m);
		while (atkv_kvwriter_full(w))
			nats_Sleep(1);
	}
	atkv_kvwriter_end(w);
	struct atkv_kvwriter_stats st;
	tap_ok(atkv_kvwriter_drain(w, 20000), "20000 writes acknowledged");
	atkv_kvwriter_stats(w, &st);
	tap_eq(atkv_kvwriter_watermark(w), seq, "watermark at the last of 2000 events");
	tap_ok(st.acked == st.published && st.failed == 0 && st.inflight_msgs == 0 && st.inflight_bytes == 0,
	       "every publish acknowledged, counters settle at 0");
	atkv_kvwriter_free(w);
	jsCtx_Destroy(js);
}

static void test_first_event_and_fail(natsConnection *nc)
{
	struct atkv_kvwriter_options o = {.max_events = 100, .max_msgs = 100, .max_bytes = 1 << 20, .ack_timeout_ms = 5000};
	struct atkv_kvwriter *w = NULL;
	if (!tap_ok(atkv_kvwriter_new(nc, &o, -1, on_wakeup, NULL, &w) == 0, "a writer without a stored cursor"))
		return;
	tap_eq(atkv_kvwriter_begin(w, 500), 0, "first event 500");
	tap_eq(atkv_kvwriter_watermark(w), 499, "the first event sets the watermark just before it");
	atkv_kvwriter_fail(w, "could not read a value to merge");
	atkv_kvwriter_end(w);
	tap_eq(atkv_kvwriter_begin(w, 501), 0, "event 501");
	atkv_kvwriter_end(w);
	char why[256];
	tap_ok(atkv_kvwriter_drain(w, 1000) && atkv_kvwriter_watermark(w) == 499 && atkv_kvwriter_failed(w, why, sizeof(why)),
	       "an event failed by the caller holds the watermark: %s", why);
	tap_eq(atkv_kvwriter_rewind(w), 499, "and the rewind goes back before it");
	atkv_kvwriter_free(w);
}

static void test_stall(natsConnection *nc)
{
	jsCtx *js = NULL;
	/* Short enough to fail while the server is stopped, long enough for a loaded machine. */
	struct atkv_kvwriter *w = make_writer(nc, 5, 1500);
	if (!tap_ok(w != NULL, "writer with a short ack timeout"))
		return;
	natsConnection_JetStream(&js, nc, NULL);
	const char *v = "{}";
	atkv_kvwriter_begin(w, 10);
	struct atkv_write_meta m = {.seq = 10};
	atkv_kvwriter_put(w, "record", "3.a.b.c.did/3Aplc/3Ac.ok", v, 2, &m);
	atkv_kvwriter_end(w);
	tap_ok(atkv_kvwriter_drain(w, 5000) && atkv_kvwriter_watermark(w) == 10, "event 10 stored before the stall");

	nats_server_signal(&server, SIGSTOP);
	for (int i = 0; i < 6; i++) {
		char key[64];
		snprintf(key, sizeof(key), "3.a.b.c.did/3Aplc/3Ac.s%d", i);
		atkv_kvwriter_begin(w, 11 + i);
		m.seq = 11 + i;
		atkv_kvwriter_put(w, "record", key, v, 2, &m);
		atkv_kvwriter_end(w);
	}
	tap_ok(atkv_kvwriter_full(w), "six unacknowledged publishes fill a writer bounded at five");
	tap_ok(atkv_kvwriter_drain(w, 5000), "publishes settle (by timeout) while the server is stopped");
	char why[256] = "";
	tap_ok(atkv_kvwriter_failed(w, why, sizeof(why)), "the writer reports the failure: %s", why);
	tap_eq(atkv_kvwriter_watermark(w), 10, "the watermark did not pass the unacknowledged events");
	nats_server_signal(&server, SIGCONT);
	/* The server answers again (it works through the stale publishes first). */
	for (int t = 0; t < 10000 && natsConnection_FlushTimeout(nc, 1000) != NATS_OK; t += 1000)
		;

	int64_t from = atkv_kvwriter_rewind(w);
	tap_ok(from == 10 && !atkv_kvwriter_failed(w, NULL, 0) && !atkv_kvwriter_full(w), "rewind to 10 clears the failure");
	/* Replay from the watermark, as the builder does. */
	for (int i = 0; i < 6; i++) {
		char key[64];
		snprintf(key, sizeof(key), "3.a.b.c.did/3Aplc/3Ac.s%d", i);
		atkv_kvwriter_begin(w, 11 + i);
		m.seq = 11 + i;
		atkv_kvwriter_put(w, "record", key, v, 2, &m);
		atkv_kvwriter_end(w);
		while (atkv_kvwriter_full(w))
			nats_Sleep(1);
	}
	tap_ok(atkv_kvwriter_drain(w, 10000) && atkv_kvwriter_watermark(w) == 16 && !atkv_kvwriter_failed(w, NULL, 0),
	       "the replay lands: watermark 16");
	natsMsg *s5 = kv_last_msg(js, "record", "3.a.b.c.did/3Aplc/3Ac.s5");
	tap_ok(s5 != NULL, "the last replayed key is stored");
	natsMsg_Destroy(s5);
	atkv_kvwriter_free(w);
	jsCtx_Destroy(js);
}

int main(void)
{
	if (nats_server_start(&server, 0)) {
		printf("Bail out! cannot start nats-server\n");
		return 1;
	}
	natsConnection *nc = NULL;
	char why[512];
	struct atkv_nats_options o = {.urls = server.url, .name = "test-kvwriter"};
	if (!tap_ok(atkv_nats_connect(&o, 5000, &nc, why, sizeof(why)) == 0, "connect to %s (%s)", server.url, why)) {
		nats_server_destroy(&server);
		return tap_done();
	}
	struct atkv_nats_options bad = {.urls = "nats://127.0.0.1:1", .name = "test"};
	natsConnection *none = NULL;
	tap_ok(atkv_nats_connect(&bad, 0, &none, why, sizeof(why)) == -1 && strstr(why, "nats://127.0.0.1:1"),
	       "an unreachable server is named: %s", why);

	jsCtx *js = NULL;
	natsConnection_JetStream(&js, nc, NULL);
	test_buckets(js);
	test_history_mismatch(js);
	jsCtx_Destroy(js);
	test_writes(nc);
	test_first_event_and_fail(nc);
	test_stall(nc);

	natsConnection_Destroy(nc);
	nats_server_destroy(&server);
	nats_Close();
	return tap_done();
}
