/* identity.c — the signing-key cache (see identity.h). A jansson object maps each DID to its
 * slot in a ring; the ring's next slot is the oldest, given to the next DID fetched. Fetches
 * run without the lock, so a slow PLC directory holds up only the DIDs being fetched (two
 * threads missing the same DID at once both fetch it). */
#define _DEFAULT_SOURCE
#include "identity.h"
#include "clock.h"
#include "diddoc.h"
#include "didresolve.h"

#include <atkv/syntax.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Small, as there may be a hundred thousand: the DID and a failure's reason live on the heap
 * (a fetch, which allocates anyway, is the only time they change). */
struct slot {
	char *did;                    /* NULL when free */
	struct atkv_sigkey *key;      /* the cache's reference; NULL after a failed fetch: */
	int failed_rc;                /* its code and reason, given again until min_refresh_s */
	char *failed_why;
	int64_t fetched_ms;           /* when the fetch kept began */
	int64_t stale_before_ms;      /* an #identity event: fetches begun before do not count */
	int64_t retry_after_ms;       /* its document could not be had for now: the key stays till */
};

struct atkv_identity {
	struct atkv_identity_options o;
	char plc[ATKV_DIDDOC_URL_MAX];
	pthread_mutex_t mu;
	json_t *index;                /* DID → slot number */
	struct slot *slots;
	size_t next;                  /* the oldest slot, given out next */
	uint64_t fetches;
};

struct atkv_identity *atkv_identity_new(const struct atkv_identity_options *o)
{
	struct atkv_identity *id = calloc(1, sizeof(*id));
	if (!id)
		return NULL;
	id->o = *o;
	if (id->o.capacity < 1)
		id->o.capacity = 1;
	if (id->o.fail_ttl_s <= 0)
		id->o.fail_ttl_s = id->o.min_refresh_s;
	snprintf(id->plc, sizeof(id->plc), "%s", o->plc ? o->plc : "https://plc.directory");
	id->o.plc = id->plc;
	pthread_mutex_init(&id->mu, NULL);
	id->index = json_object();
	id->slots = calloc(id->o.capacity, sizeof(*id->slots));
	if (!id->index || !id->slots) {
		atkv_identity_free(id);
		return NULL;
	}
	return id;
}

void atkv_identity_free(struct atkv_identity *id)
{
	if (!id)
		return;
	for (size_t i = 0; id->slots && i < id->o.capacity; i++) {
		atkv_sigkey_free(id->slots[i].key);
		free(id->slots[i].did);
		free(id->slots[i].failed_why);
	}
	free(id->slots);
	json_decref(id->index);
	pthread_mutex_destroy(&id->mu);
	free(id);
}

static struct slot *find_locked(struct atkv_identity *id, const char *did)
{
	json_t *at = json_object_get(id->index, did);
	return at ? &id->slots[json_integer_value(at)] : NULL;
}

/* Keeps what the fetch begun at started_ms found for did: key (the cache takes the reference
 * given), or its failure. A fetch begun later and kept already wins: a slow answer does not
 * bring back a key rotated since. Returns the slot. */
static struct slot *keep_locked(struct atkv_identity *id, const char *did, int64_t started_ms, struct atkv_sigkey *key,
                                int failed_rc, const char *why)
{
	struct slot *s = find_locked(id, did);
	if (s && s->fetched_ms > started_ms) {
		atkv_sigkey_free(key);
		return s;
	}
	if (s && started_ms < s->stale_before_ms) {
		/* Begun before the identity changed: answered, not kept. */
		atkv_sigkey_free(key);
		return NULL;
	}
	if (s && s->key && !key && failed_rc == ATKV_E_TIMEOUT && s->fetched_ms >= s->stale_before_ms) {
		/* No answer for now: the key known stays in use, asked for again after fail_ttl_s. */
		s->retry_after_ms = started_ms + id->o.fail_ttl_s * 1000;
		return s;
	}
	if (!s) {
		char *copy = strdup(did);
		if (!copy) {
			/* Not kept: the caller still gets what was found. */
			atkv_sigkey_free(key);
			return NULL;
		}
		s = &id->slots[id->next];
		if (s->did)
			json_object_del(id->index, s->did);
		free(s->did);
		s->did = copy;
		s->stale_before_ms = 0;
		json_object_set_new(id->index, did, json_integer((json_int_t)id->next));
		id->next = (id->next + 1) % id->o.capacity;
	}
	atkv_sigkey_free(s->key);
	free(s->failed_why);
	s->key = key;
	s->failed_rc = failed_rc;
	s->failed_why = key ? NULL : strdup(why);
	s->fetched_ms = started_ms;
	s->retry_after_ms = 0;
	return s;
}

/* What a slot says: its key (a reference for the caller), or the failure kept. */
static int answer_locked(const struct slot *s, struct atkv_sigkey **key, char *why, size_t why_n)
{
	if (s->key) {
		*key = atkv_sigkey_ref(s->key);
		return 0;
	}
	snprintf(why, why_n, "%s", s->failed_why ? s->failed_why : "no memory to keep why");
	return s->failed_rc;
}

/* did's document fetched and its key loaded. */
static int fetch(struct atkv_identity *id, struct atkv_httpc *http, const char *did, struct atkv_sigkey **key, char *why,
                 size_t why_n)
{
	struct atkv_buf body = ATKV_BUF_INIT;
	struct atkv_http_response resp = {0};
	int rc = atkv_didresolve_fetch(http, id->plc, did, &body, &resp, why, why_n);
	if (!rc)
		rc = atkv_didresolve_key(body.data, body.len, did, key, why, why_n);
	atkv_buf_free(&body);
	atkv_http_response_free(&resp);
	return rc;
}

int atkv_identity_key(struct atkv_identity *id, struct atkv_httpc *http, const char *did, bool refresh,
                      struct atkv_sigkey **key, char *why, size_t why_n)
{
	pthread_mutex_lock(&id->mu);
	struct slot *s = find_locked(id, did);
	int64_t started = atkv_now_ms(), age = s ? started - s->fetched_ms : 0;
	/* A failure is kept fail_ttl_s: a DID that does not resolve is not asked for at every
	 * event of it. */
	bool fresh_enough = s && s->fetched_ms >= s->stale_before_ms &&
	                    (s->key ? (age < id->o.ttl_s * 1000 && (!refresh || age < id->o.min_refresh_s * 1000)) ||
	                                  started < s->retry_after_ms
	                            : age < id->o.fail_ttl_s * 1000);
	if (fresh_enough) {
		int rc = answer_locked(s, key, why, why_n);
		pthread_mutex_unlock(&id->mu);
		return rc;
	}
	__atomic_add_fetch(&id->fetches, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&id->mu);
	struct atkv_sigkey *fetched = NULL;
	int rc = fetch(id, http, did, &fetched, why, why_n);
	pthread_mutex_lock(&id->mu);
	struct slot *kept = keep_locked(id, did, started, rc ? NULL : atkv_sigkey_ref(fetched), rc, why);
	if (kept)
		rc = answer_locked(kept, key, why, why_n);
	else if (!rc)
		*key = atkv_sigkey_ref(fetched);
	pthread_mutex_unlock(&id->mu);
	atkv_sigkey_free(fetched);
	return rc;
}

void atkv_identity_forget(struct atkv_identity *id, const char *did)
{
	pthread_mutex_lock(&id->mu);
	struct slot *s = find_locked(id, did);
	/* Stale now, and so is whatever a fetch begun before brings. */
	if (s)
		s->stale_before_ms = atkv_now_ms();
	pthread_mutex_unlock(&id->mu);
}

uint64_t atkv_identity_fetches(const struct atkv_identity *id)
{
	return __atomic_load_n(&id->fetches, __ATOMIC_RELAXED);
}
