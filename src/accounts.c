/* accounts.c — merging account events into bucket `account` values (see accounts.h). jansson
 * holds the cache: an object keyed by DID (its hash table is seeded per process). Every write
 * appends (DID, stamp) to a ring; when the ring is full its oldest entry evicts the DID only if
 * the DID has not been written since, so a DID leaves the cache only after `capacity` other
 * writes, long after its own was acknowledged. A backfill only creates values the firehose
 * has not written yet. */
#include "accounts.h"
#include "err.h"
#include <atkv/recordkey.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	char *did;
	json_int_t stamp;
};

struct atkv_accounts {
	kvStore *kv;
	json_t *cache;        /* DID → value object */
	json_t *stamps;       /* DID → stamp of its last write */
	struct entry *ring;   /* writes, oldest first */
	size_t capacity, head, count;
	json_int_t next_stamp;
	char *json;           /* the last value produced */
};

int atkv_accounts_new(kvStore *kv, size_t capacity, struct atkv_accounts **out)
{
	struct atkv_accounts *a = calloc(1, sizeof(*a));
	if (!a)
		return ATKV_E_NOMEM;
	a->kv = kv;
	a->capacity = capacity ? capacity : 1;
	a->cache = json_object();
	a->stamps = json_object();
	a->ring = calloc(a->capacity, sizeof(*a->ring));
	if (!a->cache || !a->stamps || !a->ring) {
		atkv_accounts_free(a);
		return ATKV_E_NOMEM;
	}
	*out = a;
	return 0;
}

void atkv_accounts_free(struct atkv_accounts *a)
{
	if (!a)
		return;
	for (size_t i = 0; a->ring && i < a->count; i++)
		free(a->ring[(a->head + i) % a->capacity].did);
	free(a->ring);
	json_decref(a->cache);
	json_decref(a->stamps);
	free(a->json);
	free(a);
}

/* The last known value of did: cached, else stored, else a new {"did": did}. New reference. */
static int load(struct atkv_accounts *a, const char *did, json_t **value)
{
	json_t *v = json_object_get(a->cache, did);
	if (v) {
		*value = json_deep_copy(v);
		return *value ? 0 : ATKV_E_NOMEM;
	}
	if (a->kv) {
		char key[3 * ATKV_DID_MAX + 1];
		kvEntry *e = NULL;
		if (atkv_key_escape(did, strlen(did), key, sizeof(key)) < 0)
			return ATKV_E_SYNTAX;
		natsStatus s = kvStore_Get(&e, a->kv, key);
		if (s == NATS_OK) {
			json_error_t jerr;
			v = json_loadb(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), 0, &jerr);
			kvEntry_Destroy(e);
			/* A stored value that is not an object is replaced, not merged. */
			if (json_is_object(v)) {
				*value = v;
				return 0;
			}
			json_decref(v);
		} else if (s != NATS_NOT_FOUND) {
			return ATKV_E_NATS;
		}
	}
	*value = json_pack("{s:s}", "did", did);
	return *value ? 0 : ATKV_E_NOMEM;
}

static int remember(struct atkv_accounts *a, const char *did, json_t *value)
{
	if (a->count == a->capacity) {
		struct entry *old = &a->ring[a->head];
		if (json_integer_value(json_object_get(a->stamps, old->did)) == old->stamp) {
			json_object_del(a->cache, old->did);
			json_object_del(a->stamps, old->did);
		}
		free(old->did);
		a->head = (a->head + 1) % a->capacity;
		a->count--;
	}
	size_t n = strlen(did) + 1;
	char *copy = malloc(n);
	if (!copy)
		return ATKV_E_NOMEM;
	memcpy(copy, did, n);
	json_int_t stamp = ++a->next_stamp;
	a->ring[(a->head + a->count) % a->capacity] = (struct entry){copy, stamp};
	a->count++;
	if (json_object_set_new(a->stamps, did, json_integer(stamp)) || json_object_set(a->cache, did, value))
		return ATKV_E_NOMEM;
	return 0;
}

/* Sets key to s, or removes it when s is absent (unknown). */
static int set_str(json_t *o, const char *key, struct atkv_str s)
{
	if (!s.p) {
		json_object_del(o, key);
		return 0;
	}
	return json_object_set_new(o, key, json_stringn(s.p, s.n)) ? ATKV_E_NOMEM : 0;
}

int atkv_accounts_update(struct atkv_accounts *a, const struct atkv_event *ev, const char **json,
                         size_t *len)
{
	if (ev->type != ATKV_EVENT_IDENTITY && ev->type != ATKV_EVENT_ACCOUNT)
		return ATKV_E_FRAME;
	char did[ATKV_DID_MAX + 1];
	snprintf(did, sizeof(did), "%.*s", (int)ev->did.n, ev->did.p);
	json_t *v = NULL;
	int rc = load(a, did, &v);
	if (rc)
		return rc;
	if (ev->type == ATKV_EVENT_IDENTITY) {
		rc = set_str(v, "handle", ev->handle);
	} else {
		rc = json_object_set_new(v, "active", json_boolean(ev->active)) ? ATKV_E_NOMEM
		                                                                : set_str(v, "status", ev->status);
	}
	if (!rc && (json_object_set_new(v, "seq", json_integer(ev->seq)) || set_str(v, "time", ev->time)))
		rc = ATKV_E_NOMEM;
	if (!rc)
		rc = remember(a, did, v);
	if (!rc) {
		free(a->json);
		a->json = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (!a->json)
			rc = ATKV_E_NOMEM;
	}
	json_decref(v);
	if (rc)
		return rc;
	*json = a->json;
	*len = strlen(a->json);
	return 0;
}

int atkv_accounts_create(kvStore *kv, const char *did, bool active, const char *status)
{
	char key[3 * ATKV_DID_MAX + 1];
	if (atkv_key_escape(did, strlen(did), key, sizeof(key)) < 0)
		return 0; /* not a DID the firehose could name either */
	json_t *v = json_pack("{s:s,s:b}", "did", did, "active", active);
	if (status && *status)
		json_object_set_new(v, "status", json_string(status));
	char *text = v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(v);
	if (!text)
		return ATKV_E_NOMEM;
	uint64_t rev = 0;
	natsStatus s = kvStore_CreateString(&rev, kv, key, text);
	free(text);
	if (s == NATS_OK)
		return 0;
	/* Refused because the key holds a value is the point; anything else is a failure. */
	kvEntry *e = NULL;
	s = kvStore_Get(&e, kv, key);
	kvEntry_Destroy(e);
	return s == NATS_OK ? 0 : ATKV_E_NATS;
}
