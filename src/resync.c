/* resync.c — the resynchronizing threads (see resync.h). Jobs and results are two rings under
 * one mutex; a job counts against the queue bound from its push until its result is read, so
 * a worker never waits for room to put a result. */
#define _DEFAULT_SOURCE
#include "resync.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "prune.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct worker {
	struct atkv_resync *rs;
	pthread_t thread;
	bool started;
	struct atkv_backfill *fetch;
	struct atkv_prune *prune;
	struct atkv_resync_result result;
};

struct atkv_resync {
	struct atkv_resync_options o;
	void (*wakeup)(void *);
	void *arg;
	pthread_mutex_t mu;
	pthread_cond_t work;
	bool stopping;
	struct atkv_resync_job *jobs;       /* ring: jobs_at, n_jobs */
	size_t jobs_at, n_jobs;
	struct atkv_resync_result *results; /* ring: results_at, n_results */
	size_t results_at, n_results;
	size_t busy;                        /* pushed, results not yet read */
	struct worker *workers;
	unsigned n_workers;
};

/* Names the job's collections to prune (those it does not know by name are searched for by
 * partition). */
static void name_collections(struct atkv_prune *p, const struct atkv_resync_job *job)
{
	for (const char *at = job->collections, *nl; (nl = strchr(at, '\n')); at = nl + 1)
		atkv_prune_collection(p, at, (size_t)(nl - at));
}

static void run(struct worker *w, const struct atkv_resync_job *job, struct atkv_resync_result *r)
{
	memset(r, 0, sizeof(*r));
	r->job = *job;
	double t0 = (double)atkv_now_ms() / 1000;
	atkv_prune_reset(w->prune);
	name_collections(w->prune, job);
	if (job->kind == ATKV_RESYNC_APPLY) {
		memcpy(r->res.rev, job->rev, sizeof(r->res.rev));
		memcpy(r->res.data, job->data, job->data_n);
		r->res.data_n = job->data_n;
		r->rc = atkv_backfill_apply(w->fetch, job->did, job->held, job->n_held, &r->res, &r->gap, r->why,
		                            sizeof(r->why));
		memcpy(r->collections, job->collections, sizeof(r->collections));
		r->partial = job->partial;
	} else if (job->kind == ATKV_RESYNC_PURGE) {
		time_t now = time(NULL);
		struct tm tm;
		char stamp[32];
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S.000Z", gmtime_r(&now, &tm));
		struct atkv_record_meta meta = {.seq = -1, .time = stamp, .time_n = strlen(stamp)};
		r->rc = atkv_prune_run(w->prune, job->did, !job->partial, &meta, &r->res.deleted, r->why, sizeof(r->why));
	} else {
		r->rc = atkv_backfill_resync(w->fetch, job->did, w->prune, !job->partial, &r->res, r->why, sizeof(r->why));
		/* The collections it may have keys in from now on: the snapshot's and the job's. */
		const char *names = atkv_prune_collections(w->prune);
		struct atkv_repohead h = {.partial = false};
		for (const char *at = names, *nl; (nl = strchr(at, '\n')); at = nl + 1)
			atkv_repohead_add_collection(&h, at, (size_t)(nl - at));
		memcpy(r->collections, h.collections, sizeof(r->collections));
		r->partial = h.partial;
		/* Then what was held meanwhile, past the snapshot. */
		if (!r->rc)
			r->rc = atkv_backfill_apply(w->fetch, job->did, job->held, job->n_held, &r->res, &r->gap, r->why,
			                            sizeof(r->why));
	}
	r->job.held = NULL;
	r->job.n_held = 0;
	r->seconds = (double)atkv_now_ms() / 1000 - t0;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	struct atkv_resync *rs = w->rs;
	pthread_mutex_lock(&rs->mu);
	for (;;) {
		while (!rs->stopping && !rs->n_jobs)
			pthread_cond_wait(&rs->work, &rs->mu);
		if (rs->stopping)
			break;
		struct atkv_resync_job job = rs->jobs[rs->jobs_at];
		rs->jobs_at = (rs->jobs_at + 1) % rs->o.queue;
		rs->n_jobs--;
		pthread_mutex_unlock(&rs->mu);
		run(w, &job, &w->result);
		atkv_resync_job_clear(&job);
		pthread_mutex_lock(&rs->mu);
		rs->results[(rs->results_at + rs->n_results++) % rs->o.queue] = w->result;
		if (rs->wakeup) {
			pthread_mutex_unlock(&rs->mu);
			rs->wakeup(rs->arg);
			pthread_mutex_lock(&rs->mu);
		}
	}
	pthread_mutex_unlock(&rs->mu);
	return NULL;
}

void atkv_resync_job_clear(struct atkv_resync_job *job)
{
	for (size_t i = 0; i < job->n_held; i++)
		atkv_buf_free(&job->held[i].frame);
	free(job->held);
	job->held = NULL;
	job->n_held = 0;
}

void atkv_resync_free(struct atkv_resync *rs)
{
	if (!rs)
		return;
	pthread_mutex_lock(&rs->mu);
	rs->stopping = true;
	pthread_cond_broadcast(&rs->work);
	pthread_mutex_unlock(&rs->mu);
	for (unsigned i = 0; rs->workers && i < rs->n_workers; i++) {
		if (rs->workers[i].started)
			pthread_join(rs->workers[i].thread, NULL);
		atkv_backfill_free(rs->workers[i].fetch);
		atkv_prune_free(rs->workers[i].prune);
	}
	free(rs->workers);
	/* Jobs no thread took: their held commits. */
	for (size_t i = 0; rs->jobs && i < rs->n_jobs; i++)
		atkv_resync_job_clear(&rs->jobs[(rs->jobs_at + i) % rs->o.queue]);
	free(rs->jobs);
	free(rs->results);
	pthread_cond_destroy(&rs->work);
	pthread_mutex_destroy(&rs->mu);
	free(rs);
}

int atkv_resync_new(natsConnection *nc, const struct atkv_resync_options *o, void (*wakeup)(void *), void *arg,
                    struct atkv_resync **out, char *why, size_t why_n)
{
	struct atkv_resync *rs = calloc(1, sizeof(*rs));
	if (!rs) {
		snprintf(why, why_n, "out of memory");
		return -1;
	}
	rs->o = *o;
	rs->o.queue = o->queue ? o->queue : 1;
	rs->n_workers = o->threads ? o->threads : 1;
	rs->wakeup = wakeup;
	rs->arg = arg;
	pthread_mutex_init(&rs->mu, NULL);
	pthread_cond_init(&rs->work, NULL);
	rs->jobs = calloc(rs->o.queue, sizeof(*rs->jobs));
	rs->results = calloc(rs->o.queue, sizeof(*rs->results));
	rs->workers = calloc(rs->n_workers, sizeof(*rs->workers));
	if (!rs->jobs || !rs->results || !rs->workers) {
		snprintf(why, why_n, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < rs->n_workers; i++) {
		struct worker *w = &rs->workers[i];
		w->rs = rs;
		if (atkv_backfill_new(nc, &rs->o.fetch, &w->fetch, why, why_n) || atkv_prune_new(nc, &w->prune, why, why_n))
			goto fail;
	}
	for (unsigned i = 0; i < rs->n_workers; i++) {
		int e = pthread_create(&rs->workers[i].thread, NULL, work, &rs->workers[i]);
		if (e) {
			snprintf(why, why_n, "cannot start a resynchronizing thread: %s", strerror(e));
			goto fail;
		}
		rs->workers[i].started = true;
	}
	*out = rs;
	return 0;
fail:
	atkv_resync_free(rs);
	return -1;
}

int atkv_resync_push(struct atkv_resync *rs, const struct atkv_resync_job *job)
{
	pthread_mutex_lock(&rs->mu);
	int rc = ATKV_E_BUFFER;
	if (rs->busy < rs->o.queue) {
		rs->jobs[(rs->jobs_at + rs->n_jobs++) % rs->o.queue] = *job;
		rs->busy++;
		pthread_cond_signal(&rs->work);
		rc = 0;
	}
	pthread_mutex_unlock(&rs->mu);
	return rc;
}

bool atkv_resync_next(struct atkv_resync *rs, struct atkv_resync_result *out)
{
	pthread_mutex_lock(&rs->mu);
	bool ready = rs->n_results > 0;
	if (ready) {
		*out = rs->results[rs->results_at];
		rs->results_at = (rs->results_at + 1) % rs->o.queue;
		rs->n_results--;
		rs->busy--;
	}
	pthread_mutex_unlock(&rs->mu);
	return ready;
}
