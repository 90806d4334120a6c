/* verifier.c — worker threads checking firehose frames out of order (see verifier.h). The ring
 * counts frames pushed, claimed by a worker, and popped; slot i of frame k is k % slots. One
 * mutex guards the counts and slot states; a worker reads and writes its slot unlocked while
 * it holds the claim. */
#define _DEFAULT_SOURCE
#include "verifier.h"
#include "buf.h"
#include "commitcheck.h"
#include "err.h"
#include "firehose.h"
#include "identity.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A slot's buffer larger than this is given back when popped: big frames must not pin their
 * size in every slot they pass through (4096 slots keep at most 64 MB this way; most frames
 * are a few kilobytes). */
#define KEEP_FRAME_MAX (16u << 10)
/* The longest a DID document fetch may take, and how long a failed one is the answer. */
#define KEY_FETCH_MS 10000
#define KEY_FAIL_TTL_S 60

enum slot_state { QUEUED, WORKING, DONE };

struct slot {
	struct atkv_buf frame;
	enum slot_state state;
	bool dropped;           /* cleared while queued or being checked */
	struct atkv_verdict v;
};

struct worker {
	struct atkv_verifier *v;
	pthread_t thread;
	bool started;
	struct atkv_firehose *fh;
	struct atkv_commitcheck *cc;
	struct atkv_httpc *http;
};

struct atkv_verifier {
	struct atkv_verifier_options o;
	void (*wakeup)(void *);
	void *arg;
	struct atkv_identity *id;
	pthread_mutex_t mu;
	pthread_cond_t work;
	bool stopping;
	struct slot *slots;
	uint64_t pushed, claimed, popped;
	size_t bytes;
	uint64_t verified, failed;
	struct worker *workers;
	unsigned n_workers;
};

/* Two tries a second apart for a key whose fetch failed for now (no answer, 429, 5xx), each
 * GET bounded as a whole (KEY_FETCH_MS): the events behind it wait, but one DID whose server is
 * down or trickles holds them up seconds, not for ever; its failure is then kept a minute
 * (KEY_FAIL_TTL_S), so its next commits fail at once. */
static int signing_key(struct worker *w, const char *did, bool refresh, struct atkv_sigkey **key, char *why, size_t why_n)
{
	int rc = 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (attempt)
			sleep(1);
		rc = atkv_identity_key(w->v->id, w->http, did, refresh, key, why, why_n);
		if (rc != ATKV_E_TIMEOUT)
			break;
	}
	return rc;
}

static void check_commit(struct worker *w, const struct atkv_event *ev, struct atkv_verdict *vd)
{
	char did[ATKV_DID_MAX + 1], why[192];
	struct atkv_commit commit;
	struct atkv_err err = {0};
	struct atkv_sigkey *key = NULL;
	snprintf(did, sizeof(did), "%.*s", (int)ev->did.n, ev->did.p);
	struct atkv_verifier *v = w->v;
	if (v->o.heads && !atkv_repoheads_cached(v->o.heads, ev->did.p, ev->did.n)) {
		vd->ahead_read = true;
		vd->ahead_rc = atkv_repoheads_fetch(v->o.repo_kv, ev->did.p, ev->did.n, &vd->ahead);
	}
	int rc = signing_key(w, did, false, &key, why, sizeof(why));
	if (rc) {
		vd->rc = rc;
		snprintf(vd->why, sizeof(vd->why), "no signing key: %s", why);
		return;
	}
	rc = atkv_commitcheck_run(w->cc, w->fh, ev, key, NULL, &commit, &err);
	if (rc == ATKV_E_SIGNATURE) {
		/* The key may have rotated since it was cached. */
		struct atkv_sigkey *fresh = NULL;
		if (!signing_key(w, did, true, &fresh, why, sizeof(why)) && fresh != key)
			rc = atkv_commitcheck_run(w->cc, w->fh, ev, fresh, NULL, &commit, &err);
		atkv_sigkey_free(fresh);
	}
	atkv_sigkey_free(key);
	if (rc) {
		char e[160];
		vd->rc = rc;
		snprintf(vd->why, sizeof(vd->why), "%s", atkv_err_format(&err, e, sizeof(e)));
		return;
	}
	if (commit.data.len <= sizeof(vd->data)) {
		memcpy(vd->data, commit.data.bytes, commit.data.len);
		vd->data_n = commit.data.len;
	}
}

/* Checks the frame of s into its verdict; returns whether it was a #commit. */
static bool check(struct worker *w, struct slot *s)
{
	const struct atkv_event *ev;
	struct atkv_err err = {0};
	struct atkv_verdict *vd = &s->v;
	memset(vd, 0, sizeof(*vd));
	/* A frame that does not decode is the writer's to skip and count, as without checks. */
	if (atkv_firehose_decode(w->fh, (const uint8_t *)s->frame.data, s->frame.len, &ev, &err))
		return false;
	if (ev->type == ATKV_EVENT_COMMIT) {
		check_commit(w, ev, vd);
		return true;
	}
	if (ev->type == ATKV_EVENT_IDENTITY && ev->did.p) {
		char did[ATKV_DID_MAX + 1];
		snprintf(did, sizeof(did), "%.*s", (int)ev->did.n, ev->did.p);
		atkv_identity_forget(w->v->id, did);
	}
	return false;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	struct atkv_verifier *v = w->v;
	pthread_mutex_lock(&v->mu);
	for (;;) {
		while (!v->stopping && v->claimed == v->pushed)
			pthread_cond_wait(&v->work, &v->mu);
		if (v->stopping)
			break;
		uint64_t k = v->claimed++;
		struct slot *s = &v->slots[k % v->o.slots];
		s->state = WORKING;
		pthread_mutex_unlock(&v->mu);
		bool commit = check(w, s);
		pthread_mutex_lock(&v->mu);
		s->state = DONE;
		if (commit)
			s->v.rc ? v->failed++ : v->verified++;
		if (k == v->popped && v->wakeup) {
			/* Wake the reader without the lock: it may be about to take it. */
			pthread_mutex_unlock(&v->mu);
			v->wakeup(v->arg);
			pthread_mutex_lock(&v->mu);
		}
	}
	pthread_mutex_unlock(&v->mu);
	return NULL;
}

static void stop_workers(struct atkv_verifier *v)
{
	pthread_mutex_lock(&v->mu);
	v->stopping = true;
	pthread_cond_broadcast(&v->work);
	pthread_mutex_unlock(&v->mu);
	for (unsigned i = 0; i < v->n_workers; i++)
		if (v->workers[i].started)
			pthread_join(v->workers[i].thread, NULL);
}

void atkv_verifier_free(struct atkv_verifier *v)
{
	if (!v)
		return;
	if (v->workers) {
		stop_workers(v);
		for (unsigned i = 0; i < v->n_workers; i++) {
			atkv_firehose_free(v->workers[i].fh);
			atkv_commitcheck_free(v->workers[i].cc);
			atkv_httpc_free(v->workers[i].http);
		}
	}
	for (size_t i = 0; v->slots && i < v->o.slots; i++)
		atkv_buf_free(&v->slots[i].frame);
	free(v->slots);
	free(v->workers);
	atkv_identity_free(v->id);
	pthread_cond_destroy(&v->work);
	pthread_mutex_destroy(&v->mu);
	free(v);
}

int atkv_verifier_new(const struct atkv_verifier_options *o, void (*wakeup)(void *), void *arg,
                      struct atkv_verifier **out, char *why, size_t why_n)
{
	struct atkv_verifier *v = calloc(1, sizeof(*v));
	if (!v) {
		snprintf(why, why_n, "out of memory");
		return -1;
	}
	v->o = *o;
	v->wakeup = wakeup;
	v->arg = arg;
	pthread_mutex_init(&v->mu, NULL);
	pthread_cond_init(&v->work, NULL);
	if (!v->o.slots)
		v->o.slots = 1;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	v->n_workers = o->threads ? o->threads : cpus > 0 ? (unsigned)cpus : 1;
	struct atkv_identity_options io = {
		.plc = o->plc, .capacity = o->keys, .ttl_s = o->key_ttl_s, .min_refresh_s = 1, .fail_ttl_s = KEY_FAIL_TTL_S,
	};
	v->slots = calloc(v->o.slots, sizeof(*v->slots));
	v->workers = calloc(v->n_workers, sizeof(*v->workers));
	v->id = atkv_identity_new(&io);
	if (!v->slots || !v->workers || !v->id) {
		snprintf(why, why_n, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < v->n_workers; i++) {
		struct worker *w = &v->workers[i];
		w->v = v;
		w->fh = atkv_firehose_new();
		w->cc = atkv_commitcheck_new();
		if (!w->fh || !w->cc) {
			snprintf(why, why_n, "out of memory");
			goto fail;
		}
		if (atkv_httpc_new(o->ca_file, o->timeout_ms, "atkv-builder/" PACKAGE_VERSION, &w->http, why, why_n))
			goto fail;
		atkv_httpc_set_total(w->http, o->timeout_ms < KEY_FETCH_MS ? o->timeout_ms : KEY_FETCH_MS);
	}
	for (unsigned i = 0; i < v->n_workers; i++) {
		int e = pthread_create(&v->workers[i].thread, NULL, work, &v->workers[i]);
		if (e) {
			snprintf(why, why_n, "cannot start a verifying thread: %s", strerror(e));
			goto fail;
		}
		v->workers[i].started = true;
	}
	*out = v;
	return 0;
fail:
	atkv_verifier_free(v);
	return -1;
}

bool atkv_verifier_full(struct atkv_verifier *v)
{
	pthread_mutex_lock(&v->mu);
	bool full = v->pushed - v->popped >= v->o.slots || v->bytes >= v->o.max_bytes;
	pthread_mutex_unlock(&v->mu);
	return full;
}

int atkv_verifier_push(struct atkv_verifier *v, const uint8_t *frame, size_t n)
{
	pthread_mutex_lock(&v->mu);
	bool room = v->pushed - v->popped < v->o.slots;
	struct slot *s = &v->slots[v->pushed % v->o.slots];
	pthread_mutex_unlock(&v->mu);
	if (!room)
		return ATKV_E_BUFFER;
	/* The slot is free: no worker can claim it before pushed moves past it. */
	s->frame.len = 0;
	if (atkv_buf_append(&s->frame, frame, n))
		return ATKV_E_NOMEM;
	s->state = QUEUED;
	s->dropped = false;
	pthread_mutex_lock(&v->mu);
	v->pushed++;
	v->bytes += n;
	pthread_cond_signal(&v->work);
	pthread_mutex_unlock(&v->mu);
	return 0;
}

/* Pops the oldest slot; the lock is held. */
static void pop_locked(struct atkv_verifier *v)
{
	struct slot *s = &v->slots[v->popped % v->o.slots];
	v->bytes -= s->frame.len;
	if (s->frame.cap > KEEP_FRAME_MAX)
		atkv_buf_free(&s->frame);
	v->popped++;
}

bool atkv_verifier_next(struct atkv_verifier *v, const uint8_t **frame, size_t *n, const struct atkv_verdict **verdict)
{
	pthread_mutex_lock(&v->mu);
	bool ready = false;
	while (v->popped < v->pushed) {
		struct slot *s = &v->slots[v->popped % v->o.slots];
		if (s->state != DONE)
			break;
		if (s->dropped) {
			pop_locked(v);
			continue;
		}
		*frame = (const uint8_t *)s->frame.data;
		*n = s->frame.len;
		*verdict = &s->v;
		ready = true;
		break;
	}
	pthread_mutex_unlock(&v->mu);
	return ready;
}

void atkv_verifier_pop(struct atkv_verifier *v)
{
	pthread_mutex_lock(&v->mu);
	if (v->popped < v->pushed)
		pop_locked(v);
	pthread_mutex_unlock(&v->mu);
}

void atkv_verifier_clear(struct atkv_verifier *v)
{
	pthread_mutex_lock(&v->mu);
	for (uint64_t k = v->popped; k < v->pushed; k++)
		v->slots[k % v->o.slots].dropped = true;
	/* Frames no worker has claimed are done with as they are. */
	for (; v->claimed < v->pushed; v->claimed++)
		v->slots[v->claimed % v->o.slots].state = DONE;
	while (v->popped < v->pushed && v->slots[v->popped % v->o.slots].state == DONE)
		pop_locked(v);
	pthread_mutex_unlock(&v->mu);
}

bool atkv_verifier_idle(struct atkv_verifier *v)
{
	const uint8_t *frame;
	size_t n;
	const struct atkv_verdict *vd;
	/* next() pops the dropped frames that are done. */
	(void)atkv_verifier_next(v, &frame, &n, &vd);
	pthread_mutex_lock(&v->mu);
	bool idle = v->popped == v->pushed;
	pthread_mutex_unlock(&v->mu);
	return idle;
}

void atkv_verifier_stats(struct atkv_verifier *v, struct atkv_verifier_stats *st)
{
	pthread_mutex_lock(&v->mu);
	st->verified = v->verified;
	st->failed = v->failed;
	st->queued = (size_t)(v->pushed - v->popped);
	st->queued_bytes = v->bytes;
	pthread_mutex_unlock(&v->mu);
	st->key_fetches = atkv_identity_fetches(v->id);
}
