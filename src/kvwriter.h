/* kvwriter.h — asynchronous, acknowledged writes of firehose events into JetStream KV buckets,
 * and the cursor they make safe. Events are written in seq order; each may carry any number of
 * puts and deletes. The watermark is the highest seq such that it and every earlier event have
 * all their writes acknowledged by JetStream: the only seq a cursor may hold.
 *
 * Flow: begin(seq), put/del..., end(); check full() before begin() and stop reading input while
 * it is true. A publish that fails sets failed(): the caller stops input, waits for drain(),
 * calls rewind() and replays from the watermark, which keeps per-key order (replays are
 * idempotent). All calls but the wakeup come from one thread; acknowledgements arrive on
 * nats.c's threads. */
#ifndef ATKV_KVWRITER_H
#define ATKV_KVWRITER_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "firehose.h"

struct atkv_kvwriter_options {
	size_t max_events;      /* events begun but not yet acknowledged, at most */
	size_t max_msgs;        /* publishes in flight before full() */
	size_t max_bytes;       /* payload bytes in flight before full() */
	int64_t ack_timeout_ms; /* a publish unacknowledged this long fails */
};

/* What every write carries as Atkv-* headers (DESIGN.md). Absent fields have p == NULL. */
struct atkv_write_meta {
	int64_t seq;
	struct atkv_str cid, rev, time;
};

struct atkv_kvwriter_stats {
	uint64_t published, acked, failed;
	size_t inflight_msgs, inflight_bytes, events;
	int64_t watermark;
};

struct atkv_kvwriter;

/* A writer publishing on nc through a JetStream context of its own, starting from watermark
 * (the stored cursor). wakeup(arg) is called from a nats.c thread when room frees up after
 * full() or a publish fails; it must be safe to call from any thread (e.g.
 * lws_cancel_service). Returns 0, ATKV_E_NOMEM or ATKV_E_NATS. Free *out with
 * atkv_kvwriter_free once nothing is in flight (drain) or the connection is closed. */
int atkv_kvwriter_new(natsConnection *nc, const struct atkv_kvwriter_options *o, int64_t watermark,
                      void (*wakeup)(void *), void *arg, struct atkv_kvwriter **out);
void atkv_kvwriter_free(struct atkv_kvwriter *w);

/* Opens event seq (greater than any before). Returns 0, ATKV_E_BUFFER when the ring is full
 * (reading should have paused at full(); the ring holds a quarter more for messages already on
 * their way), or ATKV_E_FRAME when seq does not increase. */
int atkv_kvwriter_begin(struct atkv_kvwriter *w, int64_t seq);

/* Publishes a put of value[0..n) (or, for del, a KV delete) at $KV.<bucket>.<key> as part of
 * the open event. Returns 0; ATKV_E_TOO_LARGE when the message would exceed the server's max
 * payload (nothing is sent); ATKV_E_NOMEM; or ATKV_E_NATS when NATS refused the publish
 * outright (the writer is then failed()). */
int atkv_kvwriter_put(struct atkv_kvwriter *w, const char *bucket, const char *key,
                      const void *value, size_t n, const struct atkv_write_meta *meta);
int atkv_kvwriter_del(struct atkv_kvwriter *w, const char *bucket, const char *key,
                      const struct atkv_write_meta *meta);

/* Closes the open event: once its writes are acknowledged it can count toward the watermark. */
void atkv_kvwriter_end(struct atkv_kvwriter *w);

/* Marks the open event as not written and the writer as failed(): for errors of the caller's
 * own that must not let the watermark pass the event (e.g. a value that could not be read). */
void atkv_kvwriter_fail(struct atkv_kvwriter *w, const char *why);

/* Replaces the wakeup (NULL: none). Call with NULL before the wakeup's target goes away. */
void atkv_kvwriter_set_wakeup(struct atkv_kvwriter *w, void (*wakeup)(void *), void *arg);

/* Releases the JetStream context; call before closing the NATS connection, and free the writer
 * only after nats_CloseAndWait, when no acknowledgement can still arrive. */
void atkv_kvwriter_close(struct atkv_kvwriter *w);

bool atkv_kvwriter_full(struct atkv_kvwriter *w);
bool atkv_kvwriter_failed(struct atkv_kvwriter *w, char *why, size_t why_n);
int64_t atkv_kvwriter_watermark(struct atkv_kvwriter *w);
/* The longest value a put can carry: the server's max payload when the writer was made (its
 * headers take some of it too). Cannot fail. */
size_t atkv_kvwriter_max_value(const struct atkv_kvwriter *w);
void atkv_kvwriter_stats(struct atkv_kvwriter *w, struct atkv_kvwriter_stats *st);

/* Waits until no publish is in flight, for at most timeout_ms. Returns true when drained. */
bool atkv_kvwriter_drain(struct atkv_kvwriter *w, int64_t timeout_ms);

/* After a failure and a drain: forgets every event past the watermark and clears failed(), so
 * input can resume from the watermark. Returns the watermark. */
int64_t atkv_kvwriter_rewind(struct atkv_kvwriter *w);

#endif
