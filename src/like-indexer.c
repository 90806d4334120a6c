/* like-indexer.c — atkv-like-indexer: the durable consumer `like-indexer` of the likes in the
 * record KV (DESIGN.md), kept in the SQLite like index (likeindex.c). Changes come in batches;
 * a batch is applied in one transaction, committed, and only then acknowledged, so a crash at
 * any point loses nothing and counts nothing twice. Written on libatkv's public consumer API. */
#include "config.h"
#include "clock.h"
#include "likeindex.h"
#include "log.h"
#include "natsconn.h"
#include "systemd.h"

#include <atkv/atkv.h>

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define PROGRAM "atkv-like-indexer"
#define LIKE "app.bsky.feed.like"
/* How long a batch waits for its first change; also how soon a stop is noticed when idle. */
#define WAIT_MS 1000
#define GATHER_MS 100
#define GATHER_STEP_MS 10
#define RETRY_OPEN_MS 5000

static const struct atkv_option options[] = {
	ATKV_NATS_CONFIG_OPTIONS,
	{"db", ATKV_OPT_PATH, "/var/lib/atkv/like-index.sqlite", "FILE", "the SQLite like index", 0, 0, NULL, false},
	{"consumer", ATKV_OPT_STRING, "like-indexer", "NAME", "durable consumer name on KV_record", 0, 0, NULL, false},
	{"batch", ATKV_OPT_INT, "5000", "N", "changes applied per transaction, at most", 1, 100000, NULL, false},
	{"bulk-load", ATKV_OPT_INT, "10000", "N",
	 "an empty index with N or more likes waiting is filled by a bulk load (0: never)", 0, INT32_MAX, NULL, false},
	{"log-level", ATKV_OPT_LEVEL, "info", "LEVEL", "error, warning, info or debug", 0, 0, NULL, false},
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

static const char summary[] =
	"Keeps a SQLite index of the likes in the atkv record store: for each like its subject, for\n"
	"each subject its likers and an exact like count. It is the durable NATS consumer\n"
	"`like-indexer` on $KV.record.*.app.bsky.feed.like.>: from an empty index it reads the whole\n"
	"store, then goes on live. A batch is committed before it is acknowledged, so stopping or\n"
	"crashing at any point loses nothing. Query the index with atkv-get-likes-by.\n"
	"\n"
	"An empty index facing a large store is filled by a bulk load: the changes are stored as they\n"
	"come, then turned into the index at once when none are left to read (by sorting: several\n"
	"times faster than indexing each like). Queries answer once it is done; a restart resumes it.";

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

struct indexer {
	struct atkv_config *cfg;
	natsConnection *nc;
	struct atkv_likeindex *ix;
	struct atkv_consumer *c;
	struct atkv_change **batch;
	int batch_max;
	uint64_t puts, deletes, bad_values, bad_keys, other;
	uint64_t last_reported;
	int64_t last_status_ms, last_watchdog_ms, next_open_ms;
	uint64_t pending;        /* changes not yet delivered, as the last one delivered said */
	bool waiting_logged;
	bool drained;            /* the last batch emptied the consumer */
	int64_t load_started_ms; /* a bulk load runs since then; 0: none */
	bool load_checked;       /* whether to bulk load was decided (at the first batch) */
};

/* A bulk load runs when one was under way before a restart, or when the index is empty and
 * at least --bulk-load likes wait: backlog, as the first batch counts it (its changes and those
 * its last one says are left; asking the server would have it count through the stream).
 * Returns 0, or -1 when the index failed. */
static int start_load(struct indexer *x, uint64_t backlog)
{
	int64_t min = atkv_config_int(x->cfg, "bulk-load");
	x->load_checked = true;
	if (atkv_likeindex_loading(x->ix)) {
		atkv_log(ATKV_LOG_INFO, "resuming the bulk load: queries answer once it has read the whole store");
	} else {
		if (!min || backlog < (uint64_t)min)
			return 0;
		int rc = atkv_likeindex_load_start(x->ix);
		if (rc == ATKV_E_ARG)
			return 0; /* not empty: the likes are indexed one by one */
		if (rc) {
			atkv_log(ATKV_LOG_ERROR, "the like index failed: %s", atkv_likeindex_error(x->ix));
			return -1;
		}
		atkv_log(ATKV_LOG_INFO, "bulk load of %llu changes into the empty index: queries answer once it is done",
		         (unsigned long long)backlog);
	}
	x->load_started_ms = atkv_now_ms();
	return 0;
}

/* Opens the consumer; returns 0, 1 to retry later (the bucket is not there yet), or 2 for a
 * configuration the server refuses (e.g. a consumer of that name with another filter). */
static int open_consumer(struct indexer *x)
{
	static const char *likes[] = {LIKE, NULL};
	struct atkv_consumer_options o;
	char why[512];
	atkv_consumer_options_init(&o);
	o.name = atkv_config_str(x->cfg, "consumer");
	o.collections = likes;
	o.batch = x->batch_max;
	/* The server stops delivering at max_ack_pending: a batch waiting for its commit must fit. */
	o.max_ack_pending = 4 * x->batch_max > 10000 ? 4 * x->batch_max : 10000;
	int rc = atkv_consumer_open(x->nc, &o, &x->c, why, sizeof(why));
	if (rc == 0) {
		atkv_log(ATKV_LOG_INFO, "consuming %s as %s", LIKE, o.name);
		return 0;
	}
	if (rc == ATKV_E_ARG) {
		atkv_log(ATKV_LOG_ERROR, "%s", why);
		return 2;
	}
	if (!x->waiting_logged)
		atkv_log(ATKV_LOG_WARNING, "%s; retrying every %d s", why, RETRY_OPEN_MS / 1000);
	x->waiting_logged = true;
	atkv_systemd_status("waiting: %s", why);
	return 1;
}

/* Called by SQLite while a bulk load is being turned into the index, which may take minutes:
 * keeps the watchdog fed, and stops (to resume at the next start) when asked to. */
static int load_tick(void *arg)
{
	struct indexer *x = arg;
	int64_t now = atkv_now_ms();
	uint64_t wd = atkv_systemd_watchdog_usec();
	if (wd && (uint64_t)(now - x->last_watchdog_ms) * 1000 >= wd) {
		atkv_systemd_watchdog();
		x->last_watchdog_ms = now;
	}
	return stop_requested;
}

static int finish_load(struct indexer *x)
{
	int64_t t0 = atkv_now_ms();
	atkv_log(ATKV_LOG_INFO, "every change is read (%.1f s): building the index", (double)(t0 - x->load_started_ms) / 1000);
	atkv_systemd_status("building the index from the bulk load");
	int rc = atkv_likeindex_load_finish(x->ix, load_tick, x);
	if (rc == ATKV_E_STOPPED) {
		atkv_log(ATKV_LOG_INFO, "stopped while building the index: the bulk load resumes at the next start");
		return 0;
	}
	if (rc) {
		atkv_log(ATKV_LOG_ERROR, "the like index failed: %s", atkv_likeindex_error(x->ix));
		return -1;
	}
	/* Counted by this run, not by the index: a count(*) would walk every page of it. */
	atkv_log(ATKV_LOG_INFO, "bulk load done (%llu puts, %llu deletes since start): index built in %.1f s",
	         (unsigned long long)x->puts, (unsigned long long)x->deletes, (double)(atkv_now_ms() - t0) / 1000);
	x->load_started_ms = 0;
	return 0;
}

/* Logs a change skipped as bad, with its place in the stream. */
static void log_skipped(const struct atkv_change *ch, const char *kind, const char *what, const char *detail)
{
	char path[ATKV_NSID_MAX + ATKV_RKEY_MAX + 2] = "";
	if (ch->collection)
		snprintf(path, sizeof(path), "%s/%s", ch->collection, ch->rkey);
	struct atkv_log_at at = {.seq = ch->seq, .did = ch->did, .did_n = ch->did ? (int)strlen(ch->did) : 0,
	                         .path = path, .path_n = (int)strlen(path), .kind = kind};
	atkv_log_event(ATKV_LOG_WARNING, &at, "%s%s", what, detail);
}

/* Applies one change inside the batch's transaction. Returns 0, or ATKV_E_DB. */
static int apply(struct indexer *x, const struct atkv_change *ch)
{
	if (ch->kind == ATKV_CHANGE_BAD_KEY) {
		log_skipped(ch, "bad_key", "key outside the record key scheme skipped: ", ch->subject);
		x->bad_keys++;
		return 0;
	}
	/* The filter's ".>" also matches longer NSIDs under app.bsky.feed.like. */
	if (strcmp(ch->collection, LIKE)) {
		x->other++;
		return 0;
	}
	if (ch->kind == ATKV_CHANGE_DELETE) {
		x->deletes++;
		return atkv_likeindex_delete(x->ix, ch->stream_seq, ch->did, ch->rkey);
	}
	char why[256];
	int rc = atkv_likeindex_put(x->ix, ch->stream_seq, ch->did, ch->rkey, ch->value, ch->value_len, why, sizeof(why));
	if (rc == ATKV_E_SYNTAX) {
		char detail[sizeof(why) + ATKV_ATURI_MAX + 8];
		snprintf(detail, sizeof(detail), "%s (%s)", why, ch->uri);
		log_skipped(ch, "bad_value", "like skipped: ", detail);
		x->bad_values++;
		/* The record no longer likes what an earlier value did. */
		return atkv_likeindex_delete(x->ix, ch->stream_seq, ch->did, ch->rkey);
	}
	x->puts += rc == 0;
	return rc;
}

/* Takes up to batch_max changes (waiting WAIT_MS for the first), applies them in one
 * transaction, commits, then acknowledges. Returns 0; -1 when the index failed (the batch is
 * not acknowledged: it comes again); -2 when the consumer failed (see atkv_consumer_next). */
static int run_batch(struct indexer *x)
{
	int n = 0, rc = 0, got = 0;
	struct atkv_change *ch;
	/* After the first change, a few milliseconds more gather what a backlog is still
	 * delivering: a transaction (and its fsync) per handful of likes would cap the rate. */
	int64_t until = 0;
	while (n < x->batch_max && (got = atkv_consumer_next(x->c, n ? GATHER_STEP_MS : WAIT_MS, &ch)) > 0) {
		x->batch[n++] = ch;
		if (n == 1)
			until = atkv_now_ms() + GATHER_MS;
		else if (atkv_now_ms() >= until)
			break;
	}
	/* Each change says how many are left after it: cheaper than asking the server, which
	 * counts them through the stream. */
	if (got >= 0)
		x->pending = n ? x->batch[n - 1]->pending : 0;
	x->drained = got >= 0 && x->pending == 0;
	if (!n)
		return got < 0 ? -2 : 0;
	if (!x->load_checked && start_load(x, (uint64_t)n + x->pending))
		return -1;
	int64_t t0 = atkv_now_ms();
	if (atkv_likeindex_begin(x->ix))
		rc = ATKV_E_DB;
	for (int i = 0; i < n && !rc; i++)
		rc = apply(x, x->batch[i]);
	int64_t t1 = atkv_now_ms();
	if (!rc)
		rc = atkv_likeindex_commit(x->ix);
	if (atkv_log_enabled(ATKV_LOG_DEBUG))
		atkv_log(ATKV_LOG_DEBUG, "batch of %d: applied in %lld ms, committed in %lld ms", n, (long long)(t1 - t0),
		         (long long)(atkv_now_ms() - t1));
	if (rc) {
		atkv_log(ATKV_LOG_ERROR, "the like index failed: %s", atkv_likeindex_error(x->ix));
		atkv_likeindex_rollback(x->ix);
	}
	for (int i = 0; i < n; i++) {
		if (!rc)
			atkv_change_ack(x->batch[i]);
		atkv_change_free(x->batch[i]);
	}
	return rc ? -1 : 0;
}

static void report(struct indexer *x, int64_t now)
{
	if (now - x->last_status_ms >= 1000) {
		uint64_t done = x->puts + x->deletes;
		double secs = (double)(now - x->last_status_ms) / 1000.0;
		/* Counters of this run, not counts of the index: those would walk every page. */
		atkv_systemd_status("%s; %.0f likes/s; %llu pending; %llu puts, %llu deletes, %llu bad since start",
		                    !x->c ? "waiting for the record bucket" : x->load_started_ms ? "bulk loading" : "indexing",
		                    x->last_status_ms ? (double)(done - x->last_reported) / secs : 0.0,
		                    (unsigned long long)x->pending, (unsigned long long)x->puts,
		                    (unsigned long long)x->deletes, (unsigned long long)(x->bad_values + x->bad_keys));
		x->last_reported = done;
		x->last_status_ms = now;
	}
	/* Pinged from the loop: a loop stuck in SQLite or NATS stops the pings. */
	uint64_t wd = atkv_systemd_watchdog_usec();
	if (wd && (uint64_t)(now - x->last_watchdog_ms) * 1000 >= wd) {
		atkv_systemd_watchdog();
		x->last_watchdog_ms = now;
	}
}

/* One indexer per index: two would share the consumer's messages, and could apply the changes
 * of one record in the wrong order. The lock is <db>.lock, held while running. */
static int lock_index(const char *db, int *fd)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s.lock", db);
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (*fd < 0) {
		atkv_log(ATKV_LOG_ERROR, "cannot create %s: %s (set --db to a writable path)", path, strerror(errno));
		return -1;
	}
	if (flock(*fd, LOCK_EX | LOCK_NB)) {
		atkv_log(ATKV_LOG_ERROR, "%s is in use: another atkv-like-indexer runs on %s", path, db);
		close(*fd);
		*fd = -1;
		return -1;
	}
	return 0;
}

static int run(struct indexer *x)
{
	/* A load a restart interrupted goes on, even when nothing is left to read. */
	if (atkv_likeindex_loading(x->ix) && start_load(x, 0))
		return 1;
	while (!stop_requested) {
		int64_t now = atkv_now_ms();
		if (!x->c && now >= x->next_open_ms) {
			int rc = open_consumer(x);
			if (rc == 2)
				return 2;
			if (rc)
				x->next_open_ms = now + RETRY_OPEN_MS;
		}
		int rc = x->c ? run_batch(x) : 0;
		if (rc == 0 && x->c && x->load_started_ms && x->drained)
			rc = finish_load(x);
		if (rc == -1)
			return 1;
		if (rc == -2) {
			/* Closed for good: systemd restarts us. A consumer that went away (deleted, its
			 * bucket re-created) is opened again. */
			if (natsConnection_IsClosed(x->nc)) {
				atkv_log(ATKV_LOG_ERROR, "the NATS connection is closed");
				return 1;
			}
			atkv_log(ATKV_LOG_WARNING, "the consumer failed; opening it again");
			atkv_consumer_close(x->c);
			x->c = NULL;
			x->waiting_logged = false;
			x->next_open_ms = atkv_now_ms() + RETRY_OPEN_MS;
		}
		if (!x->c) {
			struct timespec ts = {0, 200 * 1000000};
			nanosleep(&ts, NULL);
		}
		report(x, atkv_now_ms());
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct indexer x = {0};
	char why[1024];
	int rc = atkv_config_start(PROGRAM, PROGRAM " [OPTION...]", summary, options, N_OPTIONS, 0, argc, argv, &x.cfg);
	if (rc >= 0)
		return rc;
	atkv_log_init(PROGRAM, (enum atkv_log_level)atkv_log_level_parse(atkv_config_str(x.cfg, "log-level")),
	              atkv_journal_send);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* A batch's JSON and SQLite's cache come and go by the megabyte: without these, glibc hands
	 * the top of the heap back to the kernel and takes it again on every batch. */
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	mallopt(M_TOP_PAD, 16 << 20);
	x.batch_max = (int)atkv_config_int(x.cfg, "batch");
	int code = 1, lock_fd = -1;
	struct atkv_nats_options no = atkv_nats_options_from_config(x.cfg, PROGRAM);
	no.log_events = true;
	if (!(x.batch = calloc((size_t)x.batch_max, sizeof(*x.batch)))) {
		atkv_log(ATKV_LOG_ERROR, "out of memory");
	} else if (lock_index(atkv_config_str(x.cfg, "db"), &lock_fd)) {
		code = 2;
	} else if (atkv_likeindex_open(atkv_config_str(x.cfg, "db"), false, &x.ix, why, sizeof(why))) {
		atkv_log(ATKV_LOG_ERROR, "%s (set --db to a writable path)", why);
	} else if (atkv_nats_connect(&no, 10000, &x.nc, why, sizeof(why))) {
		atkv_log(ATKV_LOG_ERROR, "%s", why);
	} else {
		char shown[512];
		atkv_nats_urls_shown(no.urls, shown, sizeof(shown));
		atkv_log(ATKV_LOG_INFO, "index %s, NATS %s", atkv_config_str(x.cfg, "db"), shown);
		atkv_systemd_ready();
		code = run(&x);
		atkv_systemd_stopping();
		atkv_log(ATKV_LOG_INFO, "stopped after %llu puts, %llu deletes, %llu bad values, %llu bad keys",
		         (unsigned long long)x.puts, (unsigned long long)x.deletes, (unsigned long long)x.bad_values,
		         (unsigned long long)x.bad_keys);
	}
	atkv_consumer_close(x.c);
	atkv_likeindex_close(x.ix);
	natsConnection_Destroy(x.nc);
	nats_Close();
	free(x.batch);
	atkv_config_free(x.cfg);
	if (lock_fd >= 0)
		close(lock_fd);
	return code;
}
