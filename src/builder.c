/* builder.c — atkv-builder: the firehose → KV service (DESIGN.md). Glue around ingest.c: the
 * relay connection and its reconnect policy, the cursor (read at start, saved every second and
 * at shutdown, never past the writer's watermark), backpressure, rewinds after failed
 * publishes, and what systemd hears. Everything runs on the libwebsockets loop's thread;
 * nats.c's threads only wake it. */
#include "accounts.h"
#include "clock.h"
#include "buckets.h"
#include "config.h"
#include "err.h"
#include "ingest.h"
#include "kvwriter.h"
#include "log.h"
#include "metrics.h"
#include "natsconn.h"
#include "relay.h"
#include "resync.h"
#include "resyncnote.h"
#include "tid.h"
#include "systemd.h"
#include "verifier.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROGRAM "atkv-builder"

static const struct atkv_option options[] = {
	ATKV_NATS_CONFIG_OPTIONS,
	{"relay", ATKV_OPT_WS_URL, "wss://bsky.network", "URL", "relay or PDS to read the firehose from", 0, 0, NULL, false},
	{"cursor", ATKV_OPT_INT, "-1", "SEQ", "start after this seq instead of the stored cursor (-1: stored; flag only)", -1, INT64_MAX, NULL, true},
	{"replicas", ATKV_OPT_INT, "1", "N", "replicas of the buckets when creating them", 1, 5, NULL, false},
	{"record-max-bytes", ATKV_OPT_INT, "-1", "BYTES", "size limit of bucket record (-1: none)", -1, INT64_MAX, NULL, false},
	{"record-max-age", ATKV_OPT_INT, "0", "SECONDS", "age limit of records (0: none)", 0, INT64_MAX, NULL, false},
	{"relay-ca", ATKV_OPT_PATH, NULL, "FILE", "CA bundle for a wss:// relay (default: the system's)", 0, 0, NULL, false},
	{"max-inflight", ATKV_OPT_INT, "20000", "N", "KV writes awaiting acknowledgement before reading pauses", 1, 10000000, NULL, false},
	{"max-inflight-bytes", ATKV_OPT_INT, "67108864", "BYTES", "bytes of those writes before reading pauses", 65536, INT64_MAX, NULL, false},
	{"ack-timeout", ATKV_OPT_INT, "10000", "MS", "a write unacknowledged this long is retried from the cursor", 100, 600000, NULL, false},
	{"relay-timeout", ATKV_OPT_INT, "60000", "MS", "a relay silent this long is dropped and reconnected (pinged at half; also the limit to connect)", 1000, 3600000, NULL, false},
	{"max-message", ATKV_OPT_INT, "16777216", "BYTES", "longest firehose message accepted", 65536, 1073741824, NULL, false},
	{"verify", ATKV_OPT_BOOL, "true", "", "check every commit's signature, tree and chain (atproto Sync 1.1) before writing it", 0, 0, NULL, false},
	{"verify-threads", ATKV_OPT_INT, "16", "N", "threads fetching signing keys and checking signatures (0: one per CPU); more than the CPUs keeps key fetches (a cold cache) from holding up the stream", 0, 256, NULL, false},
	{"verify-queue", ATKV_OPT_INT, "4096", "N", "events queued for checking before reading pauses", 16, 1000000, NULL, false},
	{"resync-threads", ATKV_OPT_INT, "2", "N", "repositories resynchronized from their PDS at once (after a failed check)", 1, 64, NULL, false},
	{"max-repo-bytes", ATKV_OPT_INT, "1073741824", "BYTES", "largest repository CAR fetched to resynchronize", 65536, INT64_MAX, NULL, false},
	{"plc", ATKV_OPT_STRING, "https://plc.directory", "URL", "PLC directory that resolves did:plc (signing keys)", 0, 0, NULL, false},
	{"http-timeout", ATKV_OPT_INT, "30000", "MS", "each network wait of a DID document fetch", 100, 600000, NULL, false},
	{"http-ca", ATKV_OPT_PATH, NULL, "FILE", "CA bundle for https (default: the system's)", 0, 0, NULL, false},
	{"key-cache", ATKV_OPT_INT, "100000", "N", "signing keys kept in memory", 1, 100000000, NULL, false},
	{"key-ttl", ATKV_OPT_INT, "3600", "SECONDS", "a signing key is used this long before its DID document is fetched again", 1, INT64_MAX, NULL, false},
	{"metrics", ATKV_OPT_HOSTPORT, NULL, "ADDR:PORT", "serve Prometheus metrics at http://ADDR:PORT/metrics", 0, 0, NULL, false},
	{"log-level", ATKV_OPT_LEVEL, "info", "LEVEL", "error, warning, info or debug", 0, 0, NULL, false},
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

static const char summary[] =
	"Reads com.atproto.sync.subscribeRepos from a relay and keeps the NATS key-value buckets\n"
	"record, account and cursor up to date. The cursor (bucket cursor, key firehose) only ever\n"
	"holds a seq whose events are all acknowledged by JetStream; a restart resumes there.\n"
	"Every commit is verified first (atproto Sync 1.1: its signature with the key of its DID\n"
	"document, its tree, its chain from the repository's head in bucket repo); a repository\n"
	"whose commit fails is fetched again from its PDS (--verify=false trusts the relay).\n"
	"Memory is bounded by --max-message plus --max-inflight-bytes plus nats.c's reconnect\n"
	"buffer (8 MB) and its timeout records (about 100 bytes for each write of the last\n"
	"--ack-timeout): when NATS is slow or away, reading from the relay pauses. Verifying adds\n"
	"as much again for frames waiting to be checked, about 30 MB of repository heads, some\n"
	"200 bytes per signing key kept, and each repository being resynchronized (at most\n"
	"--max-repo-bytes).";

/* Resynchronizations asked for and not done yet: pending until the event that asked is stored
 * (its writes, the head marked desynchronized first), then handed to the resync threads. */
#define RESYNC_ASKED_MAX 256
/* A resynchronization that failed for now (no answer, 429, 5xx, NATS) is tried again after a
 * wait doubling from 10 s to an hour; one that cannot be done as things are (no such
 * repository, a broken one, another signature) is given up, and asked again at the
 * repository's next event after an hour. */
#define RESYNC_RETRY_MIN_MS 10000
#define RESYNC_RETRY_MAX_MS 3600000

struct asked {
	struct atkv_resync_job job;  /* its held commits: those held since the last job went out */
	size_t cap_held, held_bytes;
	size_t inflight_bytes;       /* of the held commits the job out carries (still in memory) */
	bool held_overflow;          /* some were not kept: fetch again rather than apply */
	int64_t seq;                /* dispatched once the cursor reaches it */
	int64_t not_before_ms;      /* and this time */
	int64_t wait_ms;            /* before the next try, after a failure */
	bool pushed;
	bool purge_after;           /* the account was deleted while it was being fetched */
};

/* Held commits kept to apply after a resynchronization: at most this many bytes of frames for
 * one repository, and for all together; past that, the repository is fetched again instead. */
#define HELD_MAX_BYTES (16u << 20)
#define HELD_ALL_MAX_BYTES (64u << 20)

/* Set by the signal handler, read by the loop's tick. */
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

enum state { DISCONNECTED, CONNECTING, CONNECTED };

struct builder {
	struct atkv_config *cfg;
	natsConnection *nc;
	jsCtx *js;                  /* for the cursor (synchronous, short timeout) */
	kvStore *cursor_kv, *account_kv, *repo_kv;
	struct atkv_kvwriter *w;
	struct atkv_accounts *acc;
	struct atkv_repoheads *heads;   /* NULL when not verifying */
	struct atkv_verifier *verifier; /* NULL when not verifying */
	struct atkv_resync *resync;     /* NULL when not verifying */
	struct asked *asked;            /* resynchronizations asked for, RESYNC_ASKED_MAX */
	size_t n_asked;
	bool notes_left;                /* bucket cursor notes resynchronizations not in asked */
	int64_t last_notes_ms;
	uint64_t resyncs, resync_failures, purges, applied;
	size_t held_bytes;              /* of every asked's held commits, kept or in a job */
	struct atkv_ingest in;
	struct atkv_relay *relay;
	struct atkv_metrics *metrics;
	enum state state;
	int64_t next_connect_ms, connected_at_ms;
	int backoff_ms;
	int write_backoff_ms;       /* wait before replaying after failed writes; 0 once one lands */
	uint64_t acked_at_rewind;   /* writes acknowledged when the last replay started */
	int64_t write_failed_ms;    /* when writes last failed */
	bool cursor_unsaved;        /* saving the cursor fails (said once, until it works again) */
	int64_t saved_cursor;
	int64_t last_save_ms, last_status_ms, last_ack_ms;
	uint64_t last_acked, last_frames, reconnects;
	uint64_t watchdog_usec;
	int64_t last_watchdog_ms;
	bool rewinding, done;
};

/* Capped exponential backoff with jitter: 0.5 s doubling to 30 s, each ±25 %. */
static void schedule_reconnect(struct builder *b)
{
	int base = b->backoff_ms ? b->backoff_ms : 500;
	int jitter = base / 4 ? rand() % (base / 2 + 1) - base / 4 : 0;
	b->next_connect_ms = atkv_now_ms() + base + jitter;
	b->backoff_ms = base * 2 > 30000 ? 30000 : base * 2;
	b->state = DISCONNECTED;
}

/* From a nats.c thread: the writer has news for the loop. */
static void wake_loop(void *relay) { atkv_relay_wake(relay); }

static int load_cursor(struct builder *b, int64_t *cursor, char *why, size_t why_n)
{
	kvEntry *e = NULL;
	natsStatus s = kvStore_Get(&e, b->cursor_kv, "firehose");
	if (s == NATS_NOT_FOUND) {
		*cursor = -1;
		return 0;
	}
	if (s != NATS_OK) {
		snprintf(why, why_n, "cannot read the cursor: %s", natsStatus_GetText(s));
		return -1;
	}
	char *end;
	const char *v = kvEntry_ValueString(e);
	long long c = strtoll(v, &end, 10);
	if (end == v || *end || c < 0) {
		snprintf(why, why_n, "bucket cursor, key firehose holds \"%s\", not a seq; fix or delete it", v);
		kvEntry_Destroy(e);
		return -1;
	}
	kvEntry_Destroy(e);
	*cursor = c;
	return 0;
}

static void save_cursor(struct builder *b, int64_t now)
{
	int64_t wm = atkv_kvwriter_watermark(b->w);
	b->last_save_ms = now;
	if (wm <= b->saved_cursor || natsConnection_Status(b->nc) != NATS_CONN_STATUS_CONNECTED)
		return;
	char v[32];
	snprintf(v, sizeof(v), "%lld", (long long)wm);
	uint64_t rev;
	natsStatus s = kvStore_PutString(&rev, b->cursor_kv, "firehose", v);
	if (s == NATS_OK) {
		if (b->cursor_unsaved)
			atkv_log(ATKV_LOG_INFO, "cursor saved again (%s)", v);
		b->saved_cursor = wm;
		b->cursor_unsaved = false;
	} else if (!b->cursor_unsaved) {
		atkv_log(ATKV_LOG_WARNING, "cannot save the cursor %s: %s; retrying every second", v, atkv_nats_why(s));
		b->cursor_unsaved = true;
	}
}

/* What an operator can do about a write JetStream refused, from its reason. */
static const char *write_advice(const char *why)
{
	if (strstr(why, "insufficient resources"))
		return " (JetStream is out of storage: free disk space on the NATS server or raise its max_file_store "
		       "or the account's JetStream limits)";
	if (strstr(why, "maximum bytes exceeded") || strstr(why, "maximum messages exceeded"))
		return " (bucket record is full: raise --record-max-bytes and the bucket's limit)";
	if (strstr(why, "Timeout"))
		return " (NATS did not answer in time: overloaded, paused, or its disk full?)";
	return "";
}

/* Failed writes are replayed after a wait that doubles while nothing gets written (1 s to
 * 30 s), so a NATS that refuses every write is not hammered, nor the log filled. */
static int next_write_backoff(struct builder *b)
{
	b->write_backoff_ms = b->write_backoff_ms ? b->write_backoff_ms * 2 : 1000;
	if (b->write_backoff_ms > 30000)
		b->write_backoff_ms = 30000;
	return b->write_backoff_ms;
}

/* Whether reading from the relay must pause: the writer or the verifier has no room. */
static bool input_full(struct builder *b)
{
	return atkv_kvwriter_full(b->w) || (b->verifier && atkv_verifier_full(b->verifier));
}

/* Writes one frame. Returns 0, or 1 when the connection must close (a relay error frame, or a
 * failed write to replay from the cursor). */
static int ingest(struct builder *b, const uint8_t *p, size_t n, const struct atkv_verdict *vd)
{
	int rc = atkv_ingest_frame(&b->in, p, n, vd);
	if (rc == ATKV_INGEST_RELAY_ERRORED)
		return 1;
	if (rc < 0) {
		/* The writer failed: everything after the watermark is replayed once it settles. */
		atkv_log(ATKV_LOG_WARNING, "KV write failed (%s); replaying from seq %lld", atkv_strerror(rc),
		         (long long)atkv_kvwriter_watermark(b->w));
		return 1;
	}
	return 0;
}

/* Writes the frames the verifier is done with, in the order they came, while the writer has
 * room. Returns 1 when the connection must close. */
static int ingest_verified(struct builder *b)
{
	const uint8_t *p;
	size_t n;
	const struct atkv_verdict *vd;
	while (!b->rewinding && !atkv_kvwriter_full(b->w) && atkv_verifier_next(b->verifier, &p, &n, &vd)) {
		int rc = ingest(b, p, n, vd);
		atkv_verifier_pop(b->verifier);
		if (rc) {
			/* What is queued behind comes again from the cursor, or after the reconnect. */
			atkv_verifier_clear(b->verifier);
			return rc;
		}
	}
	return 0;
}

static int on_frame(void *arg, const uint8_t *p, size_t n)
{
	struct builder *b = arg;
	if (b->rewinding || stop_requested)
		return 1;
	if (b->verifier) {
		int rc = atkv_verifier_push(b->verifier, p, n);
		if (rc) {
			atkv_log(ATKV_LOG_WARNING, "cannot queue a frame for checking (%s); reconnecting", atkv_strerror(rc));
			atkv_verifier_clear(b->verifier);
			return 1;
		}
		if (ingest_verified(b))
			return 1;
	} else if (ingest(b, p, n, NULL)) {
		return 1;
	}
	if (input_full(b))
		atkv_relay_pause(b->relay, true);
	return 0;
}

static void on_connected(void *arg)
{
	struct builder *b = arg;
	b->state = CONNECTED;
	b->connected_at_ms = atkv_now_ms();
	atkv_relay_pause(b->relay, input_full(b));
	atkv_log(ATKV_LOG_INFO, "connected to %s", atkv_relay_url(b->relay));
}

static void on_closed(void *arg, const char *why)
{
	struct builder *b = arg;
	/* A connection that lived and delivered is no reason to back off further. */
	if (b->state == CONNECTED && atkv_now_ms() - b->connected_at_ms > 30000)
		b->backoff_ms = 0;
	if (!stop_requested)
		atkv_log(ATKV_LOG_WARNING, "%s", why);
	b->reconnects++;
	if (b->rewinding) {
		/* We closed it to replay after a failed write: NATS, not the relay, needs the time, and
		 * the replay waits for the writes to settle anyway. */
		b->state = DISCONNECTED;
		b->next_connect_ms = atkv_now_ms() + b->write_backoff_ms;
		return;
	}
	schedule_reconnect(b);
}

static double lag_seconds(const char *t)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (sscanf(t, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
	           &tm.tm_sec) != 6)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	/* Days since the epoch by the civil calendar, so no time zone is involved. */
	int y = tm.tm_year + 1900, m = tm.tm_mon + 1;
	y -= m <= 2;
	long era = (y >= 0 ? y : y - 399) / 400;
	long yoe = y - era * 400;
	long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + tm.tm_mday - 1;
	long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	long days = era * 146097 + doe - 719468;
	double then = (double)days * 86400 + tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
	return (double)time(NULL) - then;
}

static void report(struct builder *b, int64_t now)
{
	struct atkv_kvwriter_stats st;
	atkv_kvwriter_stats(b->w, &st);
	double secs = (double)(now - b->last_status_ms) / 1000.0;
	double rate = secs > 0 ? (double)(b->in.st.frames - b->last_frames) / secs : 0;
	b->last_frames = b->in.st.frames;
	b->last_status_ms = now;
	double lag = b->in.st.last_time[0] ? lag_seconds(b->in.st.last_time) : -1;
	atkv_systemd_status("%s; %.0f events/s; seq %lld; cursor %lld; lag %.0f s; in flight %zu",
	                    b->state == CONNECTED ? "streaming" : b->rewinding ? "replaying after a failed write"
	                                                                   : "waiting to reconnect",
	                    rate, (long long)b->in.st.last_seq, (long long)st.watermark, lag, st.inflight_msgs);
	/* The pipeline is wedged when writes stay in flight with no acknowledgement for longer than
	 * nats.c's own timeout could explain: then systemd must not hear from us. */
	if (st.acked != b->last_acked || st.inflight_msgs == 0) {
		b->last_acked = st.acked;
		b->last_ack_ms = now;
	}
	int64_t limit = 2 * atkv_config_int(b->cfg, "ack-timeout") + 5000;
	if (b->watchdog_usec && now - b->last_ack_ms < limit &&
	    (uint64_t)(now - b->last_watchdog_ms) * 1000 >= b->watchdog_usec) {
		atkv_systemd_watchdog();
		b->last_watchdog_ms = now;
	}
}

static void render_metrics(void *arg, struct atkv_buf *out)
{
	struct builder *b = arg;
	const struct atkv_ingest_stats *s = &b->in.st;
	struct atkv_kvwriter_stats w;
	char labels[64];
	atkv_kvwriter_stats(b->w, &w);
	atkv_metrics_add(out, "atkv_builder_frames_total", "counter", "Firehose messages received.", NULL, (double)s->frames);
	atkv_metrics_add(out, "atkv_builder_bytes_total", "counter", "Bytes of firehose messages received.", NULL, (double)s->bytes);
	static const char *const types[] = {"commit", "sync", "identity", "account", "info", "unknown"};
	const uint64_t counts[] = {s->commits, s->syncs, s->identities, s->accounts, s->infos, s->unknown};
	for (size_t i = 0; i < 6; i++) {
		snprintf(labels, sizeof(labels), "type=\"%s\"", types[i]);
		atkv_metrics_add(out, "atkv_builder_events_total", "counter", i ? NULL : "Events received, by type.",
		                 labels, (double)counts[i]);
	}
	static const char *const actions[] = {"create", "update", "delete"};
	const uint64_t ops[] = {s->creates, s->updates, s->deletes};
	for (size_t i = 0; i < 3; i++) {
		snprintf(labels, sizeof(labels), "action=\"%s\"", actions[i]);
		atkv_metrics_add(out, "atkv_builder_ops_total", "counter", i ? NULL : "Record operations written, by action.",
		                 labels, (double)ops[i]);
	}
	for (size_t i = 0; i < ATKV_INGEST_KINDS; i++) {
		snprintf(labels, sizeof(labels), "kind=\"%s\"", atkv_ingest_error_names[i]);
		atkv_metrics_add(out, "atkv_builder_errors_total", "counter", i ? NULL : "Input skipped, by kind.", labels,
		                 (double)s->errors[i]);
	}
	atkv_metrics_add(out, "atkv_builder_writes_in_flight", "gauge", "KV writes awaiting acknowledgement.", NULL,
	                 (double)w.inflight_msgs);
	atkv_metrics_add(out, "atkv_builder_writes_total", "counter", "KV writes published.", NULL, (double)w.published);
	atkv_metrics_add(out, "atkv_builder_write_failures_total", "counter", "KV writes failed (then replayed).", NULL,
	                 (double)w.failed);
	atkv_metrics_add(out, "atkv_builder_seq", "gauge", "Seq of the last event received.", NULL, (double)s->last_seq);
	atkv_metrics_add(out, "atkv_builder_cursor", "gauge", "Seq up to which every write is acknowledged.", NULL,
	                 (double)w.watermark);
	atkv_metrics_add(out, "atkv_builder_lag_seconds", "gauge", "Age of the last event received.", NULL,
	                 s->last_time[0] ? lag_seconds(s->last_time) : 0);
	atkv_metrics_add(out, "atkv_builder_reconnects_total", "counter", "Connections to the relay that ended.", NULL,
	                 (double)b->reconnects);
	if (b->verifier) {
		struct atkv_verifier_stats v;
		atkv_verifier_stats(b->verifier, &v);
		atkv_metrics_add(out, "atkv_builder_commits_verified_total", "counter",
		                 "Commits whose signature and tree checked (before the chain check).", NULL, (double)v.verified);
		atkv_metrics_add(out, "atkv_builder_commits_unverified_total", "counter",
		                 "Commits whose signature, key or tree did not check.", NULL, (double)v.failed);
		atkv_metrics_add(out, "atkv_builder_key_fetches_total", "counter", "DID documents fetched for signing keys.",
		                 NULL, (double)v.key_fetches);
		atkv_metrics_add(out, "atkv_builder_verify_queue", "gauge", "Events queued for checking.", NULL,
		                 (double)v.queued);
		atkv_metrics_add(out, "atkv_builder_desynchronized_total", "counter",
		                 "Repositories marked desynchronized (a failed check, a #sync).", NULL, (double)s->desyncs);
		atkv_metrics_add(out, "atkv_builder_resyncs_total", "counter", "Repositories resynchronized from their PDS.",
		                 NULL, (double)b->resyncs);
		atkv_metrics_add(out, "atkv_builder_resync_failures_total", "counter",
		                 "Resynchronizations that failed (tried again later).", NULL, (double)b->resync_failures);
		atkv_metrics_add(out, "atkv_builder_held_applied_total", "counter",
		                 "Commits held during a resynchronization, applied after its snapshot.", NULL,
		                 (double)b->applied);
		atkv_metrics_add(out, "atkv_builder_accounts_purged_total", "counter",
		                 "Deleted accounts whose records were removed.", NULL, (double)b->purges);
		atkv_metrics_add(out, "atkv_builder_resyncs_waiting", "gauge", "Resynchronizations asked for and not done.",
		                 NULL, (double)b->n_asked);
	}
}

static void shutdown_now(struct builder *b)
{
	atkv_systemd_stopping();
	atkv_log(ATKV_LOG_INFO, "stopping: draining writes in flight");
	atkv_relay_close(b->relay);
	if (!atkv_kvwriter_drain(b->w, 10000))
		atkv_log(ATKV_LOG_WARNING, "writes still unacknowledged after 10 s; the cursor stays before them");
	save_cursor(b, atkv_now_ms());
	atkv_log(ATKV_LOG_INFO, "stopped at cursor %lld", (long long)b->saved_cursor);
	b->done = true;
}

static struct asked *find_asked(struct builder *b, const char *did, size_t n)
{
	for (size_t i = 0; i < b->n_asked; i++)
		if (strlen(b->asked[i].job.did) == n && !memcmp(b->asked[i].job.did, did, n))
			return &b->asked[i];
	return NULL;
}

/* ingest's request for a resynchronization (ingest.h). */
static void clear_held(struct builder *b, struct asked *a)
{
	b->held_bytes -= a->held_bytes;
	a->held_bytes = a->cap_held = 0;
	atkv_resync_job_clear(&a->job);
}

/* a's job is back: the held commits it carried are freed. */
static void job_back(struct builder *b, struct asked *a)
{
	b->held_bytes -= a->inflight_bytes;
	a->inflight_bytes = 0;
}

/* Forgets a, and its held commits. */
static void drop_asked(struct builder *b, struct asked *a)
{
	clear_held(b, a);
	job_back(b, a);
	*a = b->asked[--b->n_asked];
}

/* ingest's held commit (ingest.h): kept with its repository's resynchronization, if there is
 * room. */
static void keep_held(void *arg, const char *did, size_t n, const uint8_t *frame, size_t frame_n, const uint8_t *data,
                      size_t data_n)
{
	struct builder *b = arg;
	struct asked *a = find_asked(b, did, n);
	if (!a || a->job.kind == ATKV_RESYNC_PURGE)
		return;
	if (a->held_overflow || a->held_bytes + frame_n > HELD_MAX_BYTES || b->held_bytes + frame_n > HELD_ALL_MAX_BYTES ||
	    data_n > ATKV_CID_MAX_BYTES) {
		a->held_overflow = true;
		return;
	}
	if (a->job.n_held == a->cap_held) {
		size_t cap = a->cap_held ? 2 * a->cap_held : 8;
		struct atkv_held_commit *h = realloc(a->job.held, cap * sizeof(*h));
		if (!h) {
			a->held_overflow = true;
			return;
		}
		a->job.held = h;
		a->cap_held = cap;
	}
	struct atkv_held_commit *h = &a->job.held[a->job.n_held];
	*h = (struct atkv_held_commit){.frame = ATKV_BUF_INIT, .data_n = data_n};
	if (atkv_buf_append(&h->frame, frame, frame_n)) {
		a->held_overflow = true;
		return;
	}
	memcpy(h->data, data, data_n);
	a->job.n_held++;
	a->held_bytes += frame_n;
	b->held_bytes += frame_n;
}

/* Makes room for a purge, which no later event would ask for again: a fetch not handed out yet
 * gives way, its repository's head told so (its next event asks again). */
static bool room_for_purge(struct builder *b)
{
	for (size_t i = 0; i < b->n_asked; i++) {
		struct asked *a = &b->asked[i];
		struct atkv_repohead head;
		if (a->pushed || a->job.kind == ATKV_RESYNC_PURGE)
			continue;
		if (!atkv_repoheads_get(b->heads, a->job.did, strlen(a->job.did), NULL, &head)) {
			head.resyncing = false;
			atkv_repoheads_put(b->heads, a->job.did, strlen(a->job.did), &head);
		}
		drop_asked(b, a);
		b->notes_left = true;
		return true;
	}
	return false;
}

static bool ask_resync(void *arg, const char *did, size_t n, const struct atkv_repohead *head, bool purge, int64_t seq)
{
	struct builder *b = arg;
	struct asked *a = find_asked(b, did, n);
	if (a) {
		if (purge && !a->pushed) {
			a->job.kind = ATKV_RESYNC_PURGE;
			/* Not before the event that asked is stored: its head write comes first. */
			a->seq = seq > a->seq ? seq : a->seq;
		} else if (purge) {
			a->purge_after = true;
		}
		return true;
	}
	if (n > ATKV_DID_MAX)
		return false;
	if (b->n_asked == RESYNC_ASKED_MAX && !(purge && room_for_purge(b))) {
		b->notes_left = true; /* its note is read again once there is room */
		return false;
	}
	a = &b->asked[b->n_asked++];
	memset(a, 0, sizeof(*a));
	memcpy(a->job.did, did, n);
	a->job.kind = purge ? ATKV_RESYNC_PURGE : ATKV_RESYNC_FETCH;
	memcpy(a->job.collections, head->collections, sizeof(a->job.collections));
	a->job.partial = head->partial;
	a->seq = seq;
	return true;
}

/* Hands the resynchronizations whose event is stored to the threads. */
static void dispatch_resyncs(struct builder *b)
{
	int64_t wm = atkv_kvwriter_watermark(b->w);
	for (size_t i = 0; i < b->n_asked; i++) {
		struct asked *a = &b->asked[i];
		if (a->pushed || a->seq > wm || atkv_now_ms() < a->not_before_ms)
			continue;
		/* Commits not all kept cannot be applied: the repository is fetched again. */
		if (a->held_overflow && a->job.kind == ATKV_RESYNC_APPLY)
			a->job.kind = ATKV_RESYNC_FETCH;
		if (a->job.kind != ATKV_RESYNC_APPLY)
			a->held_overflow = false;
		if (atkv_resync_push(b->resync, &a->job))
			break;
		/* The job took the held commits (their bytes count till it is back). */
		a->inflight_bytes = a->held_bytes;
		a->held_bytes = a->cap_held = 0;
		a->job.held = NULL;
		a->job.n_held = 0;
		a->pushed = true;
		if (a->job.kind != ATKV_RESYNC_APPLY)
			atkv_log(ATKV_LOG_INFO, "%s %s",
			         a->job.kind == ATKV_RESYNC_PURGE ? "removing the records of deleted account"
			                                          : "resynchronizing repository",
			         a->job.did);
	}
}

/* Writes did's head now, outside any event (a resynchronization's outcome). Returns whether
 * it is stored. */
static bool put_head(struct builder *b, const char *did, const struct atkv_repohead *head, const char *reason)
{
	const char *key, *json;
	size_t len;
	uint64_t rev;
	if (atkv_repoheads_set(b->heads, did, strlen(did), head, reason, &key, &json, &len) ||
	    kvStore_Put(&rev, b->repo_kv, key, json, (int)len) != NATS_OK) {
		/* The bucket keeps it desynchronized, and the note stays: done again after a restart. */
		atkv_log(ATKV_LOG_WARNING, "cannot write the head of %s into bucket repo", did);
		return false;
	}
	return true;
}

/* did's resynchronization (purge: its account's purge) is no longer owed: done, or given up
 * until its next event. */
static void forget_note(struct builder *b, const char *did, bool purge)
{
	if (atkv_resyncnote_remove(b->js, did, purge))
		/* Harmless: the next start finds the repository in sync, or asks once more. */
		atkv_log(ATKV_LOG_WARNING, "cannot remove the note of %s's %s from bucket cursor", did,
		         purge ? "purge" : "resynchronization");
}

/* Asks a's repository again after a wait that doubles from min_ms (a repository that keeps
 * changing, or keeps failing, is not fetched in a loop). */
static void ask_again(struct asked *a, enum atkv_resync_kind kind, int64_t min_ms)
{
	a->pushed = false;
	a->purge_after = false;
	a->job.kind = kind;
	a->seq = -1;
	a->wait_ms = a->wait_ms ? a->wait_ms * 2 : min_ms;
	if (a->wait_ms > RESYNC_RETRY_MAX_MS)
		a->wait_ms = RESYNC_RETRY_MAX_MS;
	a->not_before_ms = atkv_now_ms() + a->wait_ms;
}

/* A failed resynchronization: tried again later (asked stays), or given up. */
static void resync_failed(struct builder *b, struct asked *a, const struct atkv_resync_result *r)
{
	const char *did = r->job.did;
	const char *what = r->job.kind == ATKV_RESYNC_PURGE ? "removing the records of" : "resynchronizing";
	b->resync_failures++;
	bool again = r->rc == ATKV_E_TIMEOUT || r->rc == ATKV_E_NATS;
	if (a && (again || a->purge_after)) {
		/* A deleted account's fetch fails as the account is gone: its records go all the same. */
		/* An APPLY's commits went with it: fetch instead. */
		ask_again(a, a->purge_after ? ATKV_RESYNC_PURGE
		                            : a->job.kind == ATKV_RESYNC_APPLY ? ATKV_RESYNC_FETCH : a->job.kind,
		          RESYNC_RETRY_MIN_MS);
		atkv_log(ATKV_LOG_WARNING, "%s %s failed (%s); %s in %lld s", what, did, r->why,
		         a->job.kind == ATKV_RESYNC_PURGE ? "removing its records" : "trying again",
		         (long long)a->wait_ms / 1000);
		return;
	}
	atkv_log(ATKV_LOG_ERROR, "%s %s failed (%s); it stays desynchronized (its commits are not written) until "
	         "its first event an hour from now or later", what, did, r->why);
	if (a)
		drop_asked(b, a);
	/* A purge that fails for good (its keys cannot be listed as they are) stays noted: tried
	 * again at the next start. */
	if (r->job.kind != ATKV_RESYNC_PURGE)
		forget_note(b, did, false);
	struct atkv_repohead head;
	if (!atkv_repoheads_get(b->heads, did, strlen(did), NULL, &head)) {
		head.resyncing = false;
		head.retry_ms = atkv_now_ms() + RESYNC_RETRY_MAX_MS;
		atkv_repoheads_put(b->heads, did, strlen(did), &head);
	}
}

/* What a finished resynchronization makes of its repository's head. */
static void resync_done(struct builder *b, const struct atkv_resync_result *r)
{
	const char *did = r->job.did;
	struct asked *a = find_asked(b, did, strlen(did));
	if (a)
		job_back(b, a);
	if (!r->rc && r->job.kind != ATKV_RESYNC_PURGE && !atkv_tid_plausible(r->res.rev, strlen(r->res.rev))) {
		/* A snapshot from the future would freeze the repository: every commit then looks stale. */
		struct atkv_resync_result bad = *r;
		bad.rc = ATKV_E_TIMEOUT;
		snprintf(bad.why, sizeof(bad.why), "its rev %s is in the future", r->res.rev);
		resync_failed(b, a, &bad);
		return;
	}
	if (r->rc) {
		resync_failed(b, a, r);
		return;
	}
	struct atkv_repohead head;
	if (atkv_repoheads_get(b->heads, did, strlen(did), NULL, &head)) {
		atkv_log(ATKV_LOG_WARNING, "cannot read the head of %s: its resynchronization is asked again", did);
		if (a)
			drop_asked(b, a);
		b->notes_left = true;
		return;
	}
	if (r->job.kind == ATKV_RESYNC_PURGE) {
		if (a)
			drop_asked(b, a);
		b->purges++;
		atkv_log(ATKV_LOG_INFO, "deleted account %s: %llu records removed (%.1f s)", did,
		         (unsigned long long)r->res.deleted, r->seconds);
		/* Nothing of it is left. Its commits, should it come back (or the deletion have been a
		 * relay's lie), bring it back whole: each is held and asks for a resynchronization. */
		struct atkv_repohead gone = {.seq = -1, .desync = true};
		if (put_head(b, did, &gone, "account deleted")) {
			/* A fetch owed too is moot: there is nothing left to fetch. */
			forget_note(b, did, true);
			forget_note(b, did, false);
		}
		return;
	}
	/* What the snapshot left in the store: exactly its collections (a partial job searched the
	 * whole partition), and those the held commits create in. */
	struct atkv_repohead merged = {.partial = r->partial};
	memcpy(merged.collections, r->collections, sizeof(merged.collections));
	for (const char *at = head.collections, *nl; (nl = strchr(at, '\n')); at = nl + 1)
		atkv_repohead_add_collection(&merged, at, (size_t)(nl - at));
	memcpy(head.collections, merged.collections, sizeof(head.collections));
	head.partial = merged.partial;
	if (a && a->purge_after) {
		clear_held(b, a);
		ask_again(a, ATKV_RESYNC_PURGE, 0);
		memcpy(a->job.collections, head.collections, sizeof(a->job.collections));
		a->job.partial = head.partial;
		atkv_repoheads_put(b->heads, did, strlen(did), &head);
		return;
	}
	b->applied += r->res.applied;
	if (r->job.kind == ATKV_RESYNC_FETCH)
		atkv_log(ATKV_LOG_INFO,
		         "repository %s fetched at rev %s: %llu records written, %llu kept, %llu deleted; %llu held commits "
		         "applied after (%.1f s)",
		         did, r->res.rev, (unsigned long long)r->res.written, (unsigned long long)r->res.kept,
		         (unsigned long long)r->res.deleted, (unsigned long long)r->res.applied, r->seconds);
	else
		atkv_log(ATKV_LOG_DEBUG, "repository %s: %llu more held commits applied, up to rev %s", did,
		         (unsigned long long)r->res.applied, r->res.rev);
	enum atkv_resync_kind next_kind = ATKV_RESYNC_FETCH;
	bool again = true;
	if (r->gap) {
		/* A held commit does not follow what was written: a commit was missed; fetch again. */
		if (a)
			clear_held(b, a);
	} else if (a && a->job.n_held && !a->held_overflow) {
		/* Held while the job ran: applied next, right away. */
		next_kind = ATKV_RESYNC_APPLY;
		a->wait_ms = 0;
	} else {
		/* Held but not kept, or nothing remembered of what was held (the head left the cache). */
		again = (a && a->held_overflow) || !head.resyncing ||
		        (head.held_rev[0] && strcmp(head.held_rev, r->res.rev) > 0);
	}
	if (again) {
		if (a) {
			if (next_kind == ATKV_RESYNC_APPLY) {
				a->pushed = false;
				a->seq = -1;
				a->not_before_ms = 0;
				a->job.kind = ATKV_RESYNC_APPLY;
			} else {
				ask_again(a, ATKV_RESYNC_FETCH, 1000);
			}
			memcpy(a->job.rev, r->res.rev, sizeof(a->job.rev));
			memcpy(a->job.data, r->res.data, r->res.data_n);
			a->job.data_n = r->res.data_n;
			memcpy(a->job.collections, head.collections, sizeof(a->job.collections));
			a->job.partial = head.partial;
			head.resyncing = true;
		} else {
			head.resyncing = ask_resync(b, did, strlen(did), &head, false, -1);
		}
		atkv_repoheads_put(b->heads, did, strlen(did), &head);
		return;
	}
	if (a)
		drop_asked(b, a);
	struct atkv_repohead next = {.known = true, .seq = -1, .data_n = r->res.data_n, .partial = head.partial};
	memcpy(next.rev, r->res.rev, sizeof(next.rev));
	memcpy(next.data, r->res.data, r->res.data_n);
	memcpy(next.collections, head.collections, sizeof(next.collections));
	if (put_head(b, did, &next, NULL))
		forget_note(b, did, false);
	b->resyncs++;
	atkv_log(ATKV_LOG_INFO, "repository %s resynchronized at rev %s: its commits are written again", did, r->res.rev);
}

/* A note of bucket cursor (resyncnote.h) asked for again: after a restart, or once the table
 * of requests has room. One whose repository is in sync now (done, the note left by a crash)
 * is deleted. Returns false when the table is full. */
static bool take_note(void *arg, const char *did, bool purge)
{
	struct builder *b = arg;
	size_t n = strlen(did);
	struct atkv_repohead head;
	if (atkv_repoheads_get(b->heads, did, n, NULL, &head)) {
		b->notes_left = true; /* listed again in a minute */
		return false;
	}
	/* Asked already: a purge noted still makes it one. */
	if (find_asked(b, did, n)) {
		if (purge)
			ask_resync(b, did, n, &head, true, -1);
		return true;
	}
	if (head.known && !head.desync) {
		forget_note(b, did, purge);
		return true;
	}
	head.desync = true;
	if (!ask_resync(b, did, n, &head, purge, -1))
		return false;
	head.resyncing = true;
	atkv_repoheads_put(b->heads, did, n, &head);
	atkv_log(ATKV_LOG_INFO, "%s %s, as bucket cursor notes", purge ? "removing the records of deleted account" :
	         "resynchronizing repository", did);
	return true;
}

/* Reads the notes again when some may not be in the table: at the start, and at most once a
 * minute after a request found it full. */
static void read_notes(struct builder *b, int64_t now)
{
	if (!b->notes_left || b->n_asked > RESYNC_ASKED_MAX / 2 || now - b->last_notes_ms < 60000)
		return;
	char why[256];
	b->notes_left = false;
	b->last_notes_ms = now;
	if (atkv_resyncnote_list(b->cursor_kv, take_note, b, why, sizeof(why))) {
		atkv_log(ATKV_LOG_WARNING, "%s; trying again in a minute", why);
		b->notes_left = true;
	}
}

static void service_resyncs(struct builder *b)
{
	struct atkv_resync_result r;
	while (atkv_resync_next(b->resync, &r))
		resync_done(b, &r);
	dispatch_resyncs(b);
}

static void on_tick(void *arg)
{
	struct builder *b = arg;
	int64_t now = atkv_now_ms();
	if (b->done)
		return;
	if (stop_requested) {
		shutdown_now(b);
		return;
	}
	char why[256];
	/* Writes have landed again for as long as the longest wait: the next failure is news. */
	if (b->write_backoff_ms && !b->rewinding && now - b->write_failed_ms > 30000) {
		struct atkv_kvwriter_stats ws;
		atkv_kvwriter_stats(b->w, &ws);
		if (ws.acked > b->acked_at_rewind)
			b->write_backoff_ms = 0;
	}
	if (atkv_kvwriter_failed(b->w, why, sizeof(why))) {
		if (!b->rewinding) {
			int wait = next_write_backoff(b);
			atkv_log(ATKV_LOG_WARNING, "%s%s; pausing the firehose to replay from seq %lld in %d s", why,
			         write_advice(why), (long long)atkv_kvwriter_watermark(b->w), wait / 1000);
			b->write_failed_ms = now;
			/* The relay may have closed already (a publish refused at once): the wait applies
			 * all the same. */
			if (b->next_connect_ms < now + wait)
				b->next_connect_ms = now + wait;
		}
		b->rewinding = true;
		atkv_relay_close(b->relay);
		if (b->verifier)
			atkv_verifier_clear(b->verifier);
	}
	if (b->rewinding && !atkv_relay_is_open(b->relay) && atkv_kvwriter_drain(b->w, 0) &&
	    (!b->verifier || atkv_verifier_idle(b->verifier))) {
		int64_t from = atkv_kvwriter_rewind(b->w);
		b->in.st.last_seq = from;
		struct atkv_kvwriter_stats ws;
		atkv_kvwriter_stats(b->w, &ws);
		b->acked_at_rewind = ws.acked;
		b->rewinding = false;
		atkv_log(ATKV_LOG_INFO, "writes settled; resuming after seq %lld", (long long)from);
	}
	if (b->verifier && ingest_verified(b))
		atkv_relay_close(b->relay);
	if (b->resync) {
		read_notes(b, now);
		service_resyncs(b);
	}
	if (atkv_relay_is_open(b->relay))
		atkv_relay_pause(b->relay, input_full(b));
	else if (!b->rewinding && b->state == DISCONNECTED && now >= b->next_connect_ms && !input_full(b) &&
	         natsConnection_Status(b->nc) == NATS_CONN_STATUS_CONNECTED) {
		int64_t cursor = atkv_kvwriter_watermark(b->w);
		b->state = CONNECTING;
		atkv_log(ATKV_LOG_INFO, "connecting to %s from cursor %lld", atkv_relay_url(b->relay), (long long)cursor);
		atkv_relay_connect(b->relay, cursor);
	}
	if (now - b->last_save_ms >= 1000)
		save_cursor(b, now);
	if (now - b->last_status_ms >= 1000)
		report(b, now);
}

/* Account writes cached: more than can be in flight, so a merge never reads a stale value. */
static size_t account_cache(size_t max_events)
{
	return max_events * 2 > 65536 ? max_events * 2 : 65536;
}

static int setup(struct builder *b, char *why, size_t why_n)
{
	const struct atkv_config *c = b->cfg;
	struct atkv_nats_options no = atkv_nats_options_from_config(c, PROGRAM);
	no.log_events = true;
	if (atkv_nats_connect(&no, 10000, &b->nc, why, why_n))
		return 1;
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = 5000; /* bucket creation writes JetStream meta data: slow on a busy or clustered server */
	if (natsConnection_JetStream(&b->js, b->nc, &jo) != NATS_OK) {
		char shown[512];
		atkv_nats_urls_shown(no.urls, shown, sizeof(shown));
		snprintf(why, why_n, "cannot use JetStream on %s", shown);
		return 1;
	}
	struct atkv_bucket_limits limits = {
		.replicas = (int)atkv_config_int(c, "replicas"),
		.record_max_bytes = atkv_config_int(c, "record-max-bytes"),
		.record_max_age_s = atkv_config_int(c, "record-max-age"),
	};
	int rc;
	while ((rc = atkv_buckets_ensure(b->js, &limits, why, why_n)) == ATKV_BUCKETS_ERROR && !stop_requested) {
		/* JetStream slow to answer, still starting, or a cluster electing a leader: wait for it
		 * (systemd's start timeout bounds the wait) rather than exit and be restarted. */
		atkv_log(ATKV_LOG_WARNING, "%s; trying again in 2 s", why);
		atkv_systemd_status("waiting for JetStream: %s", why);
		for (int i = 0; i < 20 && !stop_requested; i++)
			nats_Sleep(100);
	}
	if (rc == ATKV_BUCKETS_MISMATCH)
		return 2;
	if (rc)
		return 1;
	if (js_KeyValue(&b->cursor_kv, b->js, ATKV_BUCKET_CURSOR) != NATS_OK ||
	    js_KeyValue(&b->account_kv, b->js, ATKV_BUCKET_ACCOUNT) != NATS_OK ||
	    js_KeyValue(&b->repo_kv, b->js, ATKV_BUCKET_REPO) != NATS_OK) {
		snprintf(why, why_n, "cannot open the buckets cursor, account and repo");
		return 1;
	}
	int64_t cursor = atkv_config_int(c, "cursor");
	if (cursor < 0 && load_cursor(b, &cursor, why, why_n))
		return 1;
	b->saved_cursor = cursor;
	/* The relay first: the writer wakes its loop. */
	struct atkv_relay_options ro = {
		.url = atkv_config_str(c, "relay"), .max_message = (size_t)atkv_config_int(c, "max-message"),
		.tick_ms = 100, .ca_file = atkv_config_str(c, "relay-ca"),
		.timeout_ms = atkv_config_int(c, "relay-timeout"),
	};
	struct atkv_relay_handler h = {on_frame, on_connected, on_closed, on_tick, b};
	if (atkv_relay_new(&ro, &h, &b->relay, why, why_n))
		return 2;
	struct atkv_kvwriter_options wo = {
		.max_events = (size_t)atkv_config_int(c, "max-inflight"),
		.max_msgs = (size_t)atkv_config_int(c, "max-inflight"),
		.max_bytes = (size_t)atkv_config_int(c, "max-inflight-bytes"),
		.ack_timeout_ms = atkv_config_int(c, "ack-timeout"),
	};
	bool verify = atkv_config_bool(c, "verify");
	size_t queue = (size_t)atkv_config_int(c, "verify-queue");
	if (atkv_kvwriter_new(b->nc, &wo, cursor, wake_loop, b->relay, &b->w) ||
	    atkv_accounts_new(b->account_kv, account_cache(wo.max_events), &b->acc) ||
	    (verify && atkv_repoheads_new(b->repo_kv, account_cache(wo.max_events + queue), &b->heads)) ||
	    atkv_ingest_init(&b->in, b->w, b->acc, b->heads)) {
		snprintf(why, why_n, "out of memory");
		return 1;
	}
	if (verify) {
		struct atkv_verifier_options vo = {
			.threads = (unsigned)atkv_config_int(c, "verify-threads"),
			.slots = queue,
			.max_bytes = (size_t)atkv_config_int(c, "max-inflight-bytes"),
			.plc = atkv_config_str(c, "plc"),
			.ca_file = atkv_config_str(c, "http-ca"),
			.timeout_ms = (int)atkv_config_int(c, "http-timeout"),
			.keys = (size_t)atkv_config_int(c, "key-cache"),
			.key_ttl_s = atkv_config_int(c, "key-ttl"),
			.heads = b->heads,
			.repo_kv = b->repo_kv,
		};
		if (atkv_verifier_new(&vo, wake_loop, b->relay, &b->verifier, why, why_n))
			return 1;
		struct atkv_resync_options so = {
			.threads = (unsigned)atkv_config_int(c, "resync-threads"),
			.queue = RESYNC_ASKED_MAX,
			.fetch = {
				.plc = vo.plc, .ca_file = vo.ca_file, .timeout_ms = vo.timeout_ms,
				.max_car = (size_t)atkv_config_int(c, "max-repo-bytes"),
				.max_value = atkv_kvwriter_max_value(b->w), .verify = true,
			},
		};
		if (!(b->asked = calloc(RESYNC_ASKED_MAX, sizeof(*b->asked))) ||
		    atkv_resync_new(b->nc, &so, wake_loop, b->relay, &b->resync, why, why_n))
			return 1;
		b->in.resync = ask_resync;
		b->in.held = keep_held;
		b->in.resync_arg = b;
		/* What the last run owed is read at the first tick. */
		b->notes_left = true;
		b->last_notes_ms = INT64_MIN / 2;
	}
	b->in.st.last_seq = cursor;
	const char *metrics = atkv_config_str(c, "metrics");
	if (metrics && atkv_metrics_start(atkv_relay_context(b->relay), metrics, render_metrics, b, &b->metrics, why, why_n))
		return 2;
	return 0;
}

int main(int argc, char **argv)
{
	struct builder b = {.saved_cursor = -1};
	char why[1024];
	int rc = atkv_config_start(PROGRAM, PROGRAM " [OPTION...]", summary, options, N_OPTIONS, 0, argc, argv, &b.cfg);
	if (rc >= 0)
		return rc;
	atkv_log_init(PROGRAM, (enum atkv_log_level)atkv_log_level_parse(atkv_config_str(b.cfg, "log-level")),
	              atkv_journal_send);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int code = setup(&b, why, sizeof(why));
	if (code)
		atkv_log(ATKV_LOG_ERROR, "%s", why);
	else {
		b.watchdog_usec = atkv_systemd_watchdog_usec();
		b.last_ack_ms = b.last_status_ms = b.last_save_ms = atkv_now_ms();
		char shown[512];
		atkv_nats_urls_shown(atkv_config_str(b.cfg, "nats"), shown, sizeof(shown));
		atkv_log(ATKV_LOG_INFO, "NATS %s ready; buckets verified; cursor %lld", shown, (long long)b.saved_cursor);
		atkv_systemd_ready();
		while (!b.done && atkv_relay_service(b.relay) >= 0)
			;
		if (!b.done) {
			atkv_log(ATKV_LOG_ERROR, "the event loop failed");
			code = 1;
		}
	}
	/* Late acknowledgements must find neither a freed loop nor a freed writer: the writer stops
	 * waking the loop, the loop goes, NATS closes and its threads end, then the writer goes. */
	if (b.w)
		atkv_kvwriter_set_wakeup(b.w, NULL, NULL);
	/* The workers stop before the loop they wake goes. */
	atkv_verifier_free(b.verifier);
	atkv_resync_free(b.resync);
	while (b.n_asked)
		drop_asked(&b, &b.asked[b.n_asked - 1]);
	free(b.asked);
	atkv_relay_free(b.relay);
	atkv_metrics_free(b.metrics);
	atkv_ingest_destroy(&b.in);
	atkv_accounts_free(b.acc);
	atkv_repoheads_free(b.heads);
	kvStore_Destroy(b.cursor_kv);
	kvStore_Destroy(b.repo_kv);
	kvStore_Destroy(b.account_kv);
	jsCtx_Destroy(b.js);
	if (b.w)
		atkv_kvwriter_close(b.w);
	if (b.nc)
		natsConnection_Close(b.nc);
	natsConnection_Destroy(b.nc);
	nats_CloseAndWait(5000);
	atkv_kvwriter_free(b.w);
	atkv_config_free(b.cfg);
	return code;
}
