/* atkv/consumer.h — durable consumers of the record KV: the changes to the records of some
 * collections (or whole NSID namespaces), optionally of one account or of some of the 16
 * partitions, delivered in stream order with explicit acknowledgement. A new consumer starts
 * at the beginning of the stream and goes on live: there is no separate backfill.
 *
 *   struct atkv_consumer_options o;
 *   atkv_consumer_options_init(&o);
 *   o.name = "like-counter";
 *   o.collections = (const char *[]){"app.bsky.feed.like", NULL};
 *   struct atkv_consumer *c;
 *   if (atkv_consumer_open(nc, &o, &c, why, sizeof(why)) == 0)
 *       for (struct atkv_change *ch; atkv_consumer_next(c, 5000, &ch) > 0; atkv_change_free(ch)) {
 *           ...use ch...
 *           atkv_change_ack(ch);
 *       }
 *
 * NATS 2.9 gives a consumer one filter subject, so each (collection, partition) pair asked for
 * is a NATS consumer of its own, all read through this one handle: one collection in all
 * partitions is one NATS consumer named o.name; otherwise each is named
 * NAME_PARTITION_COLLECTION (partition "all" or its hex digit, the collection's dots as '_').
 * Functions are not thread-safe on one handle; changes may be acked from another thread. */
#ifndef ATKV_CONSUMER_H
#define ATKV_CONSUMER_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <atkv/error.h>

#ifdef __cplusplus
extern "C" {
#endif

enum atkv_deliver {
	ATKV_DELIVER_ALL,     /* from the first record in the stream (the default) */
	ATKV_DELIVER_NEW,     /* only changes made after the consumer is created */
	ATKV_DELIVER_TIME,    /* changes stored at or after start_time_ms */
};

struct atkv_consumer_options {
	const char *name;               /* durable name: letters, digits, '-' and '_'; required */
	const char *const *collections; /* NULL-terminated NSIDs or namespaces: "app.bsky.feed.like",
	                                 * "blue.flashes" (every collection under it); NULL: all */
	const char *did;                /* only this account's records; NULL: every account */
	uint16_t partitions;            /* bit p: partition p (0..15); 0: all. Ignored with did */
	bool ack_none;                  /* no acknowledgements: each change is delivered once */
	bool push;                      /* a push consumer instead of pull (batches) */
	enum atkv_deliver deliver;      /* where a new consumer starts; an existing one keeps its place */
	int64_t start_time_ms;          /* ATKV_DELIVER_TIME: Unix time in milliseconds */
	int batch;                      /* pull: changes asked for at once (default 256) */
	int64_t ack_wait_ms;            /* an unacknowledged change is delivered again after this
	                                 * (default 30000) */
	int max_ack_pending;            /* changes delivered and not acknowledged at most (default 10000) */
	const char *bucket;             /* default "record" */
};

/* Fills o with the defaults above (name and collections NULL). */
void atkv_consumer_options_init(struct atkv_consumer_options *o);

enum atkv_change_kind {
	ATKV_CHANGE_PUT = 1,        /* the record was created or updated: value holds it */
	ATKV_CHANGE_DELETE = 2,     /* the record was deleted (KV DEL or PURGE) */
	ATKV_CHANGE_BAD_KEY = 3,    /* a key outside the record key scheme: only subject is set */
};

/* One change, owned by the caller until atkv_change_free. Text fields are NUL-terminated. */
struct atkv_change {
	enum atkv_change_kind kind;
	const char *did, *collection, *rkey;  /* unescaped from the key */
	const char *uri;                      /* at://did/collection/rkey */
	const char *value;                    /* the record's JSON on a put; NULL otherwise */
	size_t value_len;
	const char *cid, *rev, *time;         /* headers Atkv-Cid/-Rev/-Time; NULL when absent */
	int64_t seq;                          /* header Atkv-Seq; -1 when absent */
	const char *subject;                  /* the NATS subject, for logs */
	uint64_t stream_seq;                  /* position in the bucket's stream */
	uint64_t delivered;                   /* 1 the first time, more after a nak or timeout */
	uint64_t pending;                     /* changes after this one not delivered yet */
	int64_t stored_ns;                    /* when the change was stored (Unix ns) */
	natsMsg *msg;                         /* the message itself, for what the fields omit */
};

struct atkv_consumer;

/* Creates the consumer's NATS consumers where missing (checking existing ones against o) and
 * starts receiving. Returns 0, ATKV_E_ARG (a bad option) or ATKV_E_NATS, with one line in why
 * naming the problem. Close with atkv_consumer_close. */
int atkv_consumer_open(natsConnection *nc, const struct atkv_consumer_options *o, struct atkv_consumer **out,
                       char *why, size_t why_n);

/* The next change, waiting up to timeout_ms (0: only what has arrived). Returns 1 with *out set,
 * 0 when none came in time, or ATKV_E_NATS when the connection is closed or a NATS consumer of
 * the handle is gone (deleted, or its bucket re-created): close the handle and open it again.
 * Changes come in stream order; with a bucket of history 1 (atkv's `record`) an older value of
 * a key is never delivered after a newer one. With more history, a redelivered older value can
 * follow a newer one: keep stream_seq per key and ignore what is older.
 * On a NATS cluster it also looks, every ack_wait/2 (at least 5 s), whether a consumer's ack
 * floor has stood still below unacknowledged changes for two ack waits, and then asks for a new
 * consumer leader (nats-server before 2.10.25 can stop redelivering after a leader change); that
 * look is a JetStream request on the caller's thread, so such a call can take a few seconds
 * longer than timeout_ms while NATS is slow. */
int atkv_consumer_next(struct atkv_consumer *c, int64_t timeout_ms, struct atkv_change **out);

/* Acknowledge (done), negatively acknowledge (deliver again, after delay_ms), or terminate
 * (never deliver again). No-ops for ack_none consumers. Return 0 or ATKV_E_NATS. */
int atkv_change_ack(struct atkv_change *ch);
int atkv_change_nak(struct atkv_change *ch, int64_t delay_ms);
int atkv_change_term(struct atkv_change *ch);
void atkv_change_free(struct atkv_change *ch);

/* Changes not yet delivered and changes delivered but not acknowledged, summed over the
 * handle's NATS consumers. Returns 0 or ATKV_E_NATS. */
int atkv_consumer_pending(struct atkv_consumer *c, uint64_t *pending, uint64_t *ack_pending);

/* Sends the acknowledgements still buffered and stops receiving; the consumers stay on the
 * server, so a later open with the same name resumes where this one stopped. Changes not yet
 * freed may still be freed (acking them is too late to count). */
void atkv_consumer_close(struct atkv_consumer *c);

/* Removes the NATS consumers that o names from the server. Returns 0 (also when there were
 * none), ATKV_E_ARG or ATKV_E_NATS with why. */
int atkv_consumer_delete(natsConnection *nc, const struct atkv_consumer_options *o, char *why, size_t why_n);

#ifdef __cplusplus
}
#endif

#endif
