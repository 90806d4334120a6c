/* atkv-backfill.c — the backfill program: the repositories of a relay or PDS (listRepos, on a
 * thread of its own), or the DIDs given, each fetched whole and written into bucket `record`
 * by a pool of workers (backfill.c), never over what the live builder wrote later. The queue
 * between them is bounded; the listing's cursor is kept in NATS once every repository before
 * it is done, so a restart resumes there. Progress on stderr and in STATUS=; repositories that
 * fail for a while (429, 5xx, no connection) are tried again. */
#define _DEFAULT_SOURCE
#include "backfill.h"
#include "clock.h"
#include "buckets.h"
#include "accounts.h"
#include "config.h"
#include "httpconn.h"
#include "listrepos.h"
#include "log.h"
#include "natsconn.h"
#include "repostate.h"
#include "repohead.h"
#include "tid.h"
#include "systemd.h"

#include <atkv/error.h>
#include <atkv/syntax.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROGRAM "atkv-backfill"
/* A repository that keeps failing in a way worth retrying is given up after this many tries. */
#define MAX_ATTEMPTS 6
/* Repositories listed but not yet taken by a worker, at most (the listing waits). */
#define MAX_QUEUE 4096
/* listRepos pages whose repositories are not all done yet, at most. */
#define MAX_PAGES 64
#define NO_PAGE UINT64_MAX

static const struct atkv_option options[] = {
	ATKV_NATS_CONFIG_OPTIONS,
	{"source", ATKV_OPT_STRING, "https://bsky.network", "URL", "relay or PDS whose com.atproto.sync.listRepos lists the repositories (when no DID is given)", 0, 0, NULL, false},
	{"pds", ATKV_OPT_STRING, NULL, "URL", "fetch every repository from this PDS (default: each DID's own, from its DID document)", 0, 0, NULL, false},
	{"plc", ATKV_OPT_STRING, "https://plc.directory", "URL", "PLC directory that resolves did:plc", 0, 0, NULL, false},
	{"concurrency", ATKV_OPT_INT, "4", "N", "repositories fetched at once", 1, 256, NULL, false},
	{"http-timeout", ATKV_OPT_INT, "30000", "MS", "each network wait (connect, TLS, bytes)", 100, 600000, NULL, false},
	{"max-repo-bytes", ATKV_OPT_INT, "1073741824", "BYTES", "largest repository CAR fetched", 65536, INT64_MAX, NULL, false},
	{"http-ca", ATKV_OPT_PATH, NULL, "FILE", "CA bundle for https (default: the system's)", 0, 0, NULL, false},
	{"verify", ATKV_OPT_BOOL, "true", "", "check each repository's commit signature with the key of its DID document", 0, 0, NULL, false},
	{"force", ATKV_OPT_BOOL, "false", "", "fetch even the repositories already backfilled at the revision listed", 0, 0, NULL, true},
	{"replicas", ATKV_OPT_INT, "1", "N", "replicas of the buckets when creating them (as atkv-builder)", 1, 5, NULL, false},
	{"log-level", ATKV_OPT_LEVEL, "info", "LEVEL", "error, warning, info or debug", 0, 0, NULL, false},
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

static const char summary[] =
	"Writes every record of the repositories named by DID arguments (\"-\": one DID per line on\n"
	"standard input), or of all those --source lists, into the KV bucket record, with the keys,\n"
	"values and headers atkv-builder gives them. A key holding the same record, or one the\n"
	"builder wrote at a later revision of the repository, is left as it is, so a backfill may\n"
	"run beside the live builder and never undoes it. What was done is kept in the bucket backfill: run again (or restarted),\n"
	"it resumes the listing where every repository before was done, and fetches only the\n"
	"repositories not done yet or listed at a later revision (--force: all, from the start).\n"
	"Accounts not yet in the bucket account are added as the source lists them. With --verify,\n"
	"each repository fetched gets its head in the bucket repo (unless the builder keeps one\n"
	"already): the builder then checks the repository's next commit against the snapshot.\n"
	"\n"
	"Each repository's PDS comes from its DID document (did:plc through --plc, did:web over\n"
	"HTTPS) unless --pds names one for all. Servers that answer 429 or 5xx, or not at all, are\n"
	"asked again later (after their Retry-After when they give one); a repository that keeps\n"
	"failing, or is broken, is logged and given up. Progress (repositories done of listed,\n"
	"records/s, ETA) goes to the terminal, to STATUS= under systemd (atkv-backfill.service) and\n"
	"to the log every 30 s.\n"
	"\n"
	"  atkv-backfill                          every repository of https://bsky.network\n"
	"  atkv-backfill --source https://pds.example.com\n"
	"  echo did:plc:... | atkv-backfill -     one account, e.g. after a NATS data loss\n"
	"\n"
	"Exit status: 0 when every repository was done; 1 when NATS or the listing failed or a\n"
	"signal stopped it (run again to resume); 2 for bad options; 3 when it went to the end but\n"
	"gave some repositories up (named in the log; run again to try them once more).";

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

struct item {
	char did[ATKV_DID_MAX + 1];
	char rev[ATKV_TID_LEN + 1];   /* as the source listed it, or "" */
	uint64_t page;                /* the listRepos page it came from, or NO_PAGE */
	int attempts;
	int64_t not_before_ms;
};

/* A listRepos page whose repositories are not all done: once they are (and all before it), the
 * listing may resume at next. */
struct page {
	size_t remaining;
	char next[256];
};

/* The work shared by the threads: a queue of repositories, the pages in progress, the totals. */
struct work {
	pthread_mutex_t mu;
	pthread_cond_t changed;
	struct item *q;
	size_t head, count, cap;
	struct page pages[MAX_PAGES]; /* a ring: page first_page is at pages[first_page % MAX_PAGES] */
	uint64_t first_page, next_page;
	char resume[256];             /* where the listing may resume; saved by the main thread */
	bool resume_changed;
	bool listing_done;
	int list_rc;
	int busy;
	uint64_t repos_done, repos_failed, repos_current, records, written, kept, skipped, listed;
	natsConnection *nc;
	kvStore *state, *accounts, *heads;
	bool force;
	struct atkv_backfill_options bo;
	const struct atkv_config *config;
	const char *source;
};

/* The deadline of a condition wait 200 ms from now (the signal flag is looked at that often). */
static struct timespec in_200ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_nsec += 200 * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/* Queues a repository. A fresh one (from the listing) waits while MAX_QUEUE are queued and
 * counts as listed; a retry never waits (the workers must not block each other). */
static int push(struct work *w, const char *did, const char *rev, uint64_t page, int attempts, int64_t not_before_ms,
                bool fresh)
{
	pthread_mutex_lock(&w->mu);
	while (fresh && w->count >= MAX_QUEUE && !stop_requested)
		pthread_cond_wait(&w->changed, &w->mu);
	w->listed += fresh;
	if (w->count == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 256;
		struct item *q = malloc(cap * sizeof(*q));
		if (!q) {
			pthread_mutex_unlock(&w->mu);
			return ATKV_E_NOMEM;
		}
		for (size_t i = 0; i < w->count; i++)
			q[i] = w->q[(w->head + i) % w->cap];
		free(w->q);
		w->q = q;
		w->head = 0;
		w->cap = cap;
	}
	struct item *it = &w->q[(w->head + w->count++) % w->cap];
	snprintf(it->did, sizeof(it->did), "%s", did);
	snprintf(it->rev, sizeof(it->rev), "%s", rev ? rev : "");
	it->page = page;
	it->attempts = attempts;
	it->not_before_ms = not_before_ms;
	pthread_cond_broadcast(&w->changed);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

/* Waits for a repository whose time has come: one waiting to be tried again goes to the back
 * of the queue, so no worker sleeps on it while others are ready. False once there is none
 * left (or a stop). */
static bool pop(struct work *w, struct item *out)
{
	pthread_mutex_lock(&w->mu);
	for (;;) {
		if (stop_requested)
			break;
		int64_t now = atkv_now_ms();
		for (size_t tries = w->count; tries; tries--) {
			struct item *it = &w->q[w->head];
			if (it->not_before_ms <= now) {
				*out = *it;
				w->head = (w->head + 1) % w->cap;
				w->count--;
				w->busy++;
				pthread_cond_broadcast(&w->changed); /* room for the listing */
				pthread_mutex_unlock(&w->mu);
				return true;
			}
			w->q[(w->head + w->count) % w->cap] = *it; /* to the back (a full ring: in place) */
			w->head = (w->head + 1) % w->cap;
		}
		if (!w->count && w->listing_done && !w->busy)
			break;
		struct timespec t = in_200ms();
		pthread_cond_timedwait(&w->changed, &w->mu, &t);
	}
	pthread_cond_broadcast(&w->changed);
	pthread_mutex_unlock(&w->mu);
	return false;
}

/* Drops the pages at the front whose repositories are all done: the listing may resume after
 * the last of them. */
static void advance_pages_locked(struct work *w)
{
	while (w->first_page < w->next_page && !w->pages[w->first_page % MAX_PAGES].remaining) {
		snprintf(w->resume, sizeof(w->resume), "%s", w->pages[w->first_page % MAX_PAGES].next);
		w->resume_changed = true;
		w->first_page++;
	}
}

/* A repository leaves the work: done (ok), given up (failed), or found current already; over
 * is false when it was queued again to retry. */
static void finished(struct work *w, const struct item *it, const struct atkv_backfill_result *r, bool ok, bool failed,
                     bool current, bool over)
{
	pthread_mutex_lock(&w->mu);
	if (over && it->page != NO_PAGE) {
		w->pages[it->page % MAX_PAGES].remaining--;
		advance_pages_locked(w);
	}
	w->repos_current += current;
	w->busy--;
	w->records += r->records;
	w->written += r->written;
	w->kept += r->kept;
	w->skipped += r->skipped;
	w->repos_done += ok;
	w->repos_failed += failed;
	pthread_cond_broadcast(&w->changed);
	pthread_mutex_unlock(&w->mu);
}

/* The snapshot's verified commit as the repository's head, unless the builder keeps one
 * already (its chain goes on from its own): the verifying builder checks the repository's
 * next commit against it. The head lists no collections: the store may hold keys of the
 * repository that the snapshot no longer has (written before, or by a builder that does not
 * verify), and a list taken for complete would leave them when the account is pruned. */
static void write_head(struct work *w, const char *did, const struct atkv_backfill_result *r)
{
	/* A rev in the future would make every real commit after it look stale, for good. */
	if (!r->data_n || !atkv_tid_plausible(r->rev, strlen(r->rev))) {
		atkv_log(ATKV_LOG_WARNING, "%s: no head written: its commit (rev %s) is in the future or has no data CID",
		         did, r->rev);
		return;
	}
	struct atkv_repohead head = {.known = true, .seq = -1, .partial = true};
	memcpy(head.rev, r->rev, sizeof(head.rev));
	memcpy(head.data, r->data, r->data_n);
	head.data_n = r->data_n;
	int rc = atkv_repoheads_create(w->heads, did, strlen(did), &head);
	if (rc < 0)
		atkv_log(ATKV_LOG_WARNING, "%s: backfilled, but its head could not be written to bucket %s: %s", did,
		         ATKV_BUCKET_REPO, atkv_strerror(rc));
}

static void *worker(void *arg)
{
	struct work *w = arg;
	struct atkv_backfill *b = NULL;
	char why[1024];
	if (atkv_backfill_new(w->nc, &w->bo, &b, why, sizeof(why))) {
		atkv_log(ATKV_LOG_ERROR, "%s", why);
		stop_requested = 1;
		return NULL;
	}
	struct item it;
	while (pop(w, &it)) {
		struct atkv_backfill_result r = {.retry_after_s = -1};
		char done_rev[ATKV_TID_LEN + 1];
		if (!w->force && atkv_repostate_rev(w->state, it.did, done_rev) == 0 &&
		    !atkv_repostate_needed(done_rev, it.rev)) {
			finished(w, &it, &r, true, false, true, true);
			continue;
		}
		int rc = atkv_backfill_repo(b, it.did, &r, why, sizeof(why));
		/* The head first: a repository marked done is not fetched again to write it. */
		if (rc == 0 && w->bo.verify)
			write_head(w, it.did, &r);
		if (rc == 0 && atkv_repostate_done(w->state, it.did, r.rev, r.records))
			atkv_log(ATKV_LOG_WARNING, "%s: backfilled, but its state could not be saved in NATS", it.did);
		if (rc == 0 && atkv_accounts_create(w->accounts, it.did, true, NULL))
			atkv_log(ATKV_LOG_WARNING, "%s: backfilled, but it could not be added to bucket account", it.did);
		bool again = (rc == ATKV_E_TIMEOUT || rc == ATKV_E_NATS) && it.attempts + 1 < MAX_ATTEMPTS;
		if (rc == 0)
			atkv_log(ATKV_LOG_DEBUG, "%s: %llu records at rev %s (%llu written, %llu kept)", it.did,
			         (unsigned long long)r.records, r.rev, (unsigned long long)r.written, (unsigned long long)r.kept);
		else if (again)
			atkv_log(ATKV_LOG_INFO, "%s; trying again later", why);
		else
			atkv_log(ATKV_LOG_WARNING, "%s; given up on %s", why, it.did);
		if (again) {
			/* The server's wait when it named one, else one that doubles: 2 s, 4 s, ... */
			int64_t backoff = r.retry_after_s >= 0 ? r.retry_after_s * 1000 : 2000LL << it.attempts;
			push(w, it.did, it.rev, it.page, it.attempts + 1, atkv_now_ms() + backoff, false);
		}
		finished(w, &it, &r, rc == 0, rc != 0 && !again, false, !again);
	}
	atkv_backfill_free(b);
	return NULL;
}

/* The DIDs of the arguments, or of standard input for "-". */
static int list_given(struct work *w, const struct atkv_config *c)
{
	for (int i = 0; i < atkv_config_positional_count(c); i++) {
		const char *a = atkv_config_positional(c, i);
		if (!strcmp(a, "-")) {
			char line[ATKV_DID_MAX + 2];
			while (!stop_requested && fgets(line, sizeof(line), stdin)) {
				line[strcspn(line, "\r\n")] = '\0';
				if (!*line)
					continue;
				if (!atkv_syntax_did(line, strlen(line))) {
					atkv_log(ATKV_LOG_WARNING, "not a DID, skipped: %.200s", line);
					continue;
				}
				push(w, line, NULL, NO_PAGE, 0, 0, true);
			}
		} else if (atkv_syntax_did(a, strlen(a))) {
			push(w, a, NULL, NO_PAGE, 0, 0, true);
		} else {
			atkv_log(ATKV_LOG_WARNING, "not a DID, skipped: %.200s", a);
		}
	}
	return 0;
}

/* Starts a page of the listing (waiting while MAX_PAGES are in progress); returns its index,
 * or NO_PAGE after a stop. */
static uint64_t page_begin(struct work *w, const char *next)
{
	pthread_mutex_lock(&w->mu);
	while (w->next_page - w->first_page >= MAX_PAGES && !stop_requested)
		pthread_cond_wait(&w->changed, &w->mu);
	if (stop_requested) {
		pthread_mutex_unlock(&w->mu);
		return NO_PAGE;
	}
	uint64_t p = w->next_page++;
	/* Counted one more until every repository of the page is queued, so it cannot end early. */
	w->pages[p % MAX_PAGES].remaining = 1;
	snprintf(w->pages[p % MAX_PAGES].next, sizeof(w->pages[0].next), "%s", next);
	pthread_mutex_unlock(&w->mu);
	return p;
}

static void page_add(struct work *w, uint64_t p)
{
	pthread_mutex_lock(&w->mu);
	w->pages[p % MAX_PAGES].remaining++;
	pthread_mutex_unlock(&w->mu);
}

/* Every repository of page p is queued: it may now end as they finish. A page cut short by a
 * stop never comes here, so the listing resumes at its start, not after it. */
static void page_end(struct work *w, uint64_t p)
{
	pthread_mutex_lock(&w->mu);
	w->pages[p % MAX_PAGES].remaining--;
	advance_pages_locked(w);
	pthread_cond_broadcast(&w->changed);
	pthread_mutex_unlock(&w->mu);
}

/* Every repository --source lists, page by page, from cursor on ("": the first page). */
static int list_source(struct work *w, const char *source, char *cursor, size_t cursor_n)
{
	struct atkv_httpc *http = NULL;
	char why[1024], url[1024];
	if (atkv_httpc_new(w->bo.ca_file, w->bo.timeout_ms, "atkv-backfill/" PACKAGE_VERSION, &http, why, sizeof(why))) {
		atkv_log(ATKV_LOG_ERROR, "%s", why);
		return 1;
	}
	struct atkv_buf body = ATKV_BUF_INIT;
	struct atkv_http_response resp = {0};
	int rc = 0;
	for (int tries = 0; !stop_requested;) {
		if (atkv_listrepos_url(source, cursor, 1000, url, sizeof(url))) {
			atkv_log(ATKV_LOG_ERROR, "--source is too long");
			rc = 2;
			break;
		}
		if (atkv_httpc_get(http, url, "application/json", 64 << 20, &body, &resp, why, sizeof(why)) || resp.status != 200) {
			if (++tries >= MAX_ATTEMPTS) {
				atkv_log(ATKV_LOG_ERROR, "cannot list the repositories of %s: %s", source,
				         resp.status ? "it keeps answering with an error" : why);
				rc = 1;
				break;
			}
			int64_t wait = resp.retry_after_s >= 0 ? resp.retry_after_s : 2 << tries;
			atkv_log(ATKV_LOG_WARNING, "listRepos on %s failed (%s); trying again in %lld s", source,
			         resp.status ? "an HTTP error" : why, (long long)wait);
			for (int64_t s = 0; s < wait * 10 && !stop_requested; s++)
				usleep(100000);
			continue;
		}
		tries = 0;
		struct atkv_listrepos_page page;
		size_t bad = 0;
		if (atkv_listrepos_parse(body.data, body.len, &page, &bad, why, sizeof(why))) {
			atkv_log(ATKV_LOG_ERROR, "%s: %s", url, why);
			rc = 1;
			break;
		}
		if (bad)
			atkv_log(ATKV_LOG_WARNING, "%s: %zu entries without a valid DID skipped", url, bad);
		bool last = !page.count || !page.cursor[0];
		/* The last page resumes nowhere: "" forgets the resume point. */
		uint64_t p = page_begin(w, last ? "" : page.cursor);
		if (p == NO_PAGE) {
			atkv_listrepos_page_free(&page);
			break;
		}
		size_t i = 0;
		for (; i < page.count && !stop_requested; i++) {
			const struct atkv_listed_repo *r = &page.repos[i];
			if (r->active) {
				page_add(w, p);
				push(w, r->did, r->rev, p, 0, 0, true);
			} else if (atkv_accounts_create(w->accounts, r->did, false, r->status)) {
				atkv_log(ATKV_LOG_WARNING, "%s (%s): cannot add it to bucket account", r->did, r->status);
			}
		}
		if (i < page.count) {
			atkv_listrepos_page_free(&page);
			break;
		}
		page_end(w, p);
		snprintf(cursor, cursor_n, "%s", page.cursor);
		atkv_listrepos_page_free(&page);
		if (last)
			break;
	}
	atkv_buf_free(&body);
	atkv_http_response_free(&resp);
	atkv_httpc_free(http);
	return rc;
}

/* The listing thread: the DIDs given, or --source's list from where the last run stopped. */
static void *lister(void *arg)
{
	struct work *w = arg;
	char cursor[256] = "";
	int rc;
	if (atkv_config_positional_count(w->config) > 0) {
		rc = list_given(w, w->config);
	} else {
		if (!w->force && atkv_repostate_cursor(w->state, w->source, cursor, sizeof(cursor)) == 0 && cursor[0])
			atkv_log(ATKV_LOG_INFO, "resuming the listing of %s where the last run stopped (cursor %s; --force starts "
			         "over)", w->source, cursor);
		rc = list_source(w, w->source, cursor, sizeof(cursor));
	}
	pthread_mutex_lock(&w->mu);
	w->list_rc = rc;
	w->listing_done = true;
	pthread_cond_broadcast(&w->changed);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* "ETA 1h02m", "ETA 3m20s", "ETA 12s" for the repositories left at the rate so far. */
static void eta(char *out, size_t n, uint64_t left, uint64_t done, double seconds, bool listing)
{
	if (listing || !done) {
		snprintf(out, n, listing ? "ETA: still listing" : "ETA: not known yet");
		return;
	}
	uint64_t t = (uint64_t)((double)left * seconds / (double)done + 0.5);
	if (t >= 3600)
		snprintf(out, n, "ETA %lluh%02llum", (unsigned long long)(t / 3600), (unsigned long long)(t / 60 % 60));
	else if (t >= 60)
		snprintf(out, n, "ETA %llum%02llus", (unsigned long long)(t / 60), (unsigned long long)(t % 60));
	else
		snprintf(out, n, "ETA %llus", (unsigned long long)t);
}

/* Progress to STATUS= and the terminal; to the log (info) when final or log_it. */
static void report(struct work *w, int64_t started_ms, bool final, bool log_it)
{
	pthread_mutex_lock(&w->mu);
	double s = (double)(atkv_now_ms() - started_ms) / 1000;
	uint64_t done = w->repos_done + w->repos_failed;
	double rate = s > 0 ? (double)w->records / s : 0;
	char line[384], when[48];
	eta(when, sizeof(when), w->listed - done, done, s, !w->listing_done);
	snprintf(line, sizeof(line),
	         "%llu/%llu repositories%s (%llu already current), %llu records (%llu written, %llu kept, %llu skipped), "
	         "%.0f records/s, %llu given up%s%s",
	         (unsigned long long)done, (unsigned long long)w->listed, w->listing_done ? "" : " (listing)",
	         (unsigned long long)w->repos_current,
	         (unsigned long long)w->records, (unsigned long long)w->written, (unsigned long long)w->kept,
	         (unsigned long long)w->skipped, rate, (unsigned long long)w->repos_failed, final ? "" : ", ",
	         final ? "" : when);
	pthread_mutex_unlock(&w->mu);
	atkv_log(final || log_it ? ATKV_LOG_INFO : ATKV_LOG_DEBUG, "%s", line);
	atkv_systemd_status("%s", line);
	if (!final && isatty(2))
		fprintf(stderr, "\r%s ", line);
}

/* Saves where the listing may resume, when that moved; the end of the list forgets it. */
static void save_resume(struct work *w)
{
	char cursor[256];
	pthread_mutex_lock(&w->mu);
	bool changed = w->resume_changed;
	w->resume_changed = false;
	snprintf(cursor, sizeof(cursor), "%s", w->resume);
	pthread_mutex_unlock(&w->mu);
	if (changed && atkv_repostate_set_cursor(w->state, w->source, cursor[0] ? cursor : NULL))
		atkv_log(ATKV_LOG_WARNING, "cannot save in NATS where the listing of %s may resume", w->source);
}

static bool http_url(const char *u) { return u && (!strncmp(u, "http://", 7) || !strncmp(u, "https://", 8)); }

/* Runs the listing and the workers to their end (or a stop), reporting as they go; returns the
 * exit status. */
static int run(struct work *w)
{
	int n = (int)atkv_config_int(w->config, "concurrency");
	pthread_t *threads = calloc((size_t)n, sizeof(*threads)), listing;
	int started_threads = 0;
	while (threads && started_threads < n && !pthread_create(&threads[started_threads], NULL, worker, w))
		started_threads++;
	if (started_threads < n || pthread_create(&listing, NULL, lister, w)) {
		atkv_log(ATKV_LOG_ERROR, "cannot start %d worker threads", n);
		stop_requested = 1;
		for (int i = 0; i < started_threads; i++)
			pthread_join(threads[i], NULL);
		free(threads);
		return 1;
	}
	atkv_systemd_ready();
	int64_t started = atkv_now_ms();
	/* Progress every 2 s (in the log every 30 s), and the listing's resume point as it moves,
	 * until the listing is over, the queue empty and no worker busy; each change wakes this
	 * thread. */
	for (int64_t next_report = atkv_now_ms() + 2000, next_log = atkv_now_ms() + 30000;;) {
		pthread_mutex_lock(&w->mu);
		bool over = stop_requested || (w->listing_done && !w->count && !w->busy);
		if (!over) {
			struct timespec t = in_200ms();
			pthread_cond_timedwait(&w->changed, &w->mu, &t);
		}
		pthread_mutex_unlock(&w->mu);
		save_resume(w);
		if (natsConnection_Status(w->nc) == NATS_CONN_STATUS_CONNECTED)
			atkv_systemd_watchdog();
		if (over)
			break;
		if (atkv_now_ms() >= next_report) {
			bool log_it = atkv_now_ms() >= next_log;
			report(w, started, false, log_it);
			next_report = atkv_now_ms() + 2000;
			if (log_it)
				next_log = atkv_now_ms() + 30000;
		}
	}
	pthread_mutex_lock(&w->mu);
	pthread_cond_broadcast(&w->changed); /* a stop: wake the listing if it waits for room */
	pthread_mutex_unlock(&w->mu);
	pthread_join(listing, NULL);
	for (int i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	save_resume(w);
	if (isatty(2))
		fputc('\n', stderr);
	report(w, started, true, true);
	atkv_systemd_stopping();
	if (stop_requested)
		return 1;
	return w->list_rc ? w->list_rc : w->repos_failed ? 3 : 0;
}

int main(int argc, char **argv)
{
	struct atkv_config *c = NULL;
	int rc = atkv_config_start(PROGRAM, PROGRAM " [OPTION...] [DID... | -]", summary, options, N_OPTIONS, 1 << 20, argc,
	                           argv, &c);
	if (rc >= 0)
		return rc;
	atkv_log_init(PROGRAM, (enum atkv_log_level)atkv_log_level_parse(atkv_config_str(c, "log-level")), atkv_journal_send);
	const char *source = atkv_config_str(c, "source"), *pds = atkv_config_str(c, "pds"), *plc = atkv_config_str(c, "plc");
	if (!http_url(source) || (pds && !http_url(pds)) || !http_url(plc)) {
		fprintf(stderr, "%s: --source, --pds and --plc take http:// or https:// URLs\n", PROGRAM);
		atkv_config_free(c);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	char why[1024];
	int status = 1;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	struct atkv_nats_options no = atkv_nats_options_from_config(c, PROGRAM);
	no.log_events = true;
	int replicas = (int)atkv_config_int(c, "replicas");
	struct atkv_bucket_limits limits = {.replicas = replicas, .record_max_bytes = -1};
	struct work w = {.mu = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER,
	                 .force = atkv_config_bool(c, "force"), .config = c, .source = source};
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = 10000;
	if (atkv_nats_connect(&no, 10000, &nc, why, sizeof(why))) {
		atkv_log(ATKV_LOG_ERROR, "%s", why);
		goto out;
	}
	if (natsConnection_JetStream(&js, nc, &jo) != NATS_OK ||
	    (rc = atkv_buckets_ensure(js, &limits, why, sizeof(why))) != 0 ||
	    (rc = atkv_repostate_open(js, replicas, &w.state, why, sizeof(why))) != 0 ||
	    (js_KeyValue(&w.accounts, js, ATKV_BUCKET_ACCOUNT) != NATS_OK &&
	     (snprintf(why, sizeof(why), "cannot open bucket %s", ATKV_BUCKET_ACCOUNT), rc = 1)) ||
	    (js_KeyValue(&w.heads, js, ATKV_BUCKET_REPO) != NATS_OK &&
	     (snprintf(why, sizeof(why), "cannot open bucket %s", ATKV_BUCKET_REPO), rc = 1))) {
		atkv_log(ATKV_LOG_ERROR, "%s", why);
		status = rc == ATKV_BUCKETS_MISMATCH ? 2 : 1;
		goto out;
	}
	w.nc = nc;
	w.bo = (struct atkv_backfill_options){
		.plc = plc, .pds = pds, .ca_file = atkv_config_str(c, "http-ca"), .timeout_ms = (int)atkv_config_int(c, "http-timeout"),
		.max_car = (size_t)atkv_config_int(c, "max-repo-bytes"), .max_value = (size_t)natsConnection_GetMaxPayload(nc),
		.verify = atkv_config_bool(c, "verify"),
	};
	status = run(&w);
out:
	free(w.q);
	kvStore_Destroy(w.state);
	kvStore_Destroy(w.accounts);
	kvStore_Destroy(w.heads);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_CloseAndWait(5000);
	atkv_config_free(c);
	return status;
}
