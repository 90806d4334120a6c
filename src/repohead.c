/* repohead.c — repository heads, cached and kept in bucket `repo` (see repohead.h). The cache
 * is a fixed array of entries indexed by an open-addressing table (linear probing, SipHash of
 * the DID under a per-process key, deletion by backward shift). A new DID takes the entry the
 * clock hand points at unless that one was set within the last capacity/2 sets. */
#define _DEFAULT_SOURCE
#include "repohead.h"
#include "buf.h"
#include "err.h"
#include "siphash.h"
#include <atkv/recordkey.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define INLINE_DID 48   /* did:plc DIDs are 32 bytes: most never allocate */

struct entry {
	char inline_did[INLINE_DID];
	char *did;            /* inline_did or the heap; NULL when the entry is free */
	size_t did_n;
	uint64_t stamp;       /* the set count when it was last set */
	struct atkv_repohead head;
};

struct atkv_repoheads {
	kvStore *kv;
	pthread_mutex_t mu;
	uint8_t hash_key[16];
	struct entry *entries;
	size_t capacity, used, hand;
	uint32_t *table;      /* entry index + 1; 0 is empty */
	size_t mask;
	uint64_t sets;
	char key[3 * ATKV_DID_MAX + 1];
	struct atkv_buf json;
};

int atkv_repoheads_new(kvStore *kv, size_t capacity, struct atkv_repoheads **out)
{
	struct atkv_repoheads *h = calloc(1, sizeof(*h));
	if (!h)
		return ATKV_E_NOMEM;
	h->kv = kv;
	h->capacity = capacity < 2 ? 2 : capacity;
	size_t slots = 4;
	while (slots < 2 * h->capacity)
		slots *= 2;
	h->mask = slots - 1;
	pthread_mutex_init(&h->mu, NULL);
	h->entries = calloc(h->capacity, sizeof(*h->entries));
	h->table = calloc(slots, sizeof(*h->table));
	if (!h->entries || !h->table || getrandom(h->hash_key, sizeof(h->hash_key), 0) != sizeof(h->hash_key)) {
		atkv_repoheads_free(h);
		return ATKV_E_NOMEM;
	}
	*out = h;
	return 0;
}

static void release(struct entry *e)
{
	if (e->did != e->inline_did)
		free(e->did);
	e->did = NULL;
}

void atkv_repoheads_free(struct atkv_repoheads *h)
{
	if (!h)
		return;
	for (size_t i = 0; h->entries && i < h->capacity; i++)
		if (h->entries[i].did)
			release(&h->entries[i]);
	free(h->entries);
	free(h->table);
	atkv_buf_free(&h->json);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

static size_t home(const struct atkv_repoheads *h, const char *did, size_t n)
{
	return (size_t)atkv_siphash(h->hash_key, did, n) & h->mask;
}

/* The table slot holding did, or the empty slot where it would go. */
static size_t probe(const struct atkv_repoheads *h, const char *did, size_t n)
{
	size_t i = home(h, did, n);
	for (;; i = (i + 1) & h->mask) {
		uint32_t at = h->table[i];
		if (!at)
			return i;
		const struct entry *e = &h->entries[at - 1];
		if (e->did_n == n && !memcmp(e->did, did, n))
			return i;
	}
}

/* Empties table slot i and moves back the entries after it that probing would no longer find. */
static void unlink_slot(struct atkv_repoheads *h, size_t i)
{
	size_t j = i;
	h->table[i] = 0;
	for (;;) {
		j = (j + 1) & h->mask;
		uint32_t at = h->table[j];
		if (!at)
			return;
		const struct entry *e = &h->entries[at - 1];
		size_t k = home(h, e->did, e->did_n);
		/* It may move to i unless its home lies cyclically in (i, j]. */
		bool stays = i <= j ? i < k && k <= j : i < k || k <= j;
		if (!stays) {
			h->table[i] = at;
			h->table[j] = 0;
			i = j;
		}
	}
}

/* A free entry: a never used one, else the first at the clock hand not set lately. */
static struct entry *take_entry(struct atkv_repoheads *h)
{
	if (h->used < h->capacity)
		return &h->entries[h->used++];
	for (;;) {
		struct entry *e = &h->entries[h->hand];
		h->hand = (h->hand + 1) % h->capacity;
		if (h->sets - e->stamp >= h->capacity / 2) {
			unlink_slot(h, probe(h, e->did, e->did_n));
			release(e);
			return e;
		}
	}
}

bool atkv_repoheads_cached(struct atkv_repoheads *h, const char *did, size_t n)
{
	pthread_mutex_lock(&h->mu);
	bool cached = h->table[probe(h, did, n)] != 0;
	pthread_mutex_unlock(&h->mu);
	return cached;
}

static void unknown(struct atkv_repohead *out)
{
	memset(out, 0, sizeof(*out));
	out->seq = -1;
	/* Records may be there from before heads were kept. */
	out->partial = true;
}

void atkv_repohead_add_collection(struct atkv_repohead *head, const char *collection, size_t n)
{
	size_t have = strlen(head->collections);
	for (const char *at = head->collections, *nl; (nl = strchr(at, '\n')); at = nl + 1)
		if ((size_t)(nl - at) == n && !memcmp(at, collection, n))
			return;
	if (have + n + 2 > sizeof(head->collections)) {
		head->partial = true;
		return;
	}
	memcpy(head->collections + have, collection, n);
	head->collections[have + n] = '\n';
	head->collections[have + n + 1] = '\0';
}

/* A stored value into *out; one that is not ours reads as unknown. A desynchronized repository
 * may have no verified commit yet (no rev, no data). */
static void parse_value(const char *v, size_t n, struct atkv_repohead *out)
{
	json_error_t jerr;
	json_t *o = json_loadb(v, n, 0, &jerr);
	const char *rev = json_string_value(json_object_get(o, "rev"));
	const char *data = json_string_value(json_object_get(o, "data"));
	const char *status = json_string_value(json_object_get(o, "status"));
	json_t *seq = json_object_get(o, "seq");
	json_t *collections = json_object_get(o, "collections");
	unknown(out);
	if (status && json_is_integer(seq)) {
		size_t i;
		json_t *c;
		out->partial = !json_is_array(collections);
		json_array_foreach(collections, i, c)
			if (json_is_string(c))
				atkv_repohead_add_collection(out, json_string_value(c), json_string_length(c));
		long data_n = data && *data ? atkv_cid_from_string(data, strlen(data), out->data) : -1;
		out->desync = strcmp(status, "synced") != 0;
		out->seq = json_integer_value(seq);
		if (rev && strlen(rev) == ATKV_TID_LEN && data_n > 0) {
			out->known = true;
			memcpy(out->rev, rev, ATKV_TID_LEN + 1);
			out->data_n = (size_t)data_n;
		}
	}
	json_decref(o);
}

int atkv_repoheads_fetch(kvStore *kv, const char *did, size_t n, struct atkv_repohead *out)
{
	char key[3 * ATKV_DID_MAX + 1];
	unknown(out);
	if (!kv || atkv_key_escape(did, n, key, sizeof(key)) < 0)
		return 0;
	kvEntry *e = NULL;
	natsStatus s = kvStore_Get(&e, kv, key);
	if (s == NATS_NOT_FOUND)
		return 0;
	if (s != NATS_OK)
		return ATKV_E_NATS;
	parse_value(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), out);
	kvEntry_Destroy(e);
	return 0;
}

int atkv_repoheads_get(struct atkv_repoheads *h, const char *did, size_t n, const struct atkv_repohead *ahead,
                       struct atkv_repohead *out)
{
	pthread_mutex_lock(&h->mu);
	uint32_t at = h->table[probe(h, did, n)];
	if (at)
		*out = h->entries[at - 1].head;
	pthread_mutex_unlock(&h->mu);
	if (at)
		return 0;
	if (ahead) {
		*out = *ahead;
		return 0;
	}
	return atkv_repoheads_fetch(h->kv, did, n, out);
}

static int cache(struct atkv_repoheads *h, const char *did, size_t n, const struct atkv_repohead *head)
{
	size_t i = probe(h, did, n);
	struct entry *e;
	if (h->table[i]) {
		e = &h->entries[h->table[i] - 1];
	} else {
		char *heap = NULL;
		if (n >= INLINE_DID && !(heap = malloc(n + 1)))
			return ATKV_E_NOMEM;
		e = take_entry(h);
		e->did = heap ? heap : e->inline_did;
		memcpy(e->did, did, n);
		e->did[n] = 0;
		e->did_n = n;
		/* Taking an entry may have moved slots: look again. */
		h->table[probe(h, did, n)] = (uint32_t)(e - h->entries) + 1;
	}
	e->head = *head;
	e->stamp = ++h->sets;
	return 0;
}

static int render(const struct atkv_repohead *head, const char *reason_in, struct atkv_buf *json)
{
	/* The reason quotes what came from outside (a rev, a DID document's words), cut to length:
	 * only printable ASCII goes into the value, so it is always valid JSON text. */
	char reason[256];
	size_t n = 0;
	for (const char *p = reason_in; p && *p && n + 1 < sizeof(reason); p++)
		reason[n++] = *p >= 0x20 && *p < 0x7f ? *p : '?';
	reason[n] = '\0';
	char cid[ATKV_CID_STR_MAX] = "";
	struct atkv_cid c;
	size_t used;
	if (head->data_n && !atkv_cid_parse(head->data, head->data_n, &c, &used, NULL))
		atkv_cid_format(&c, cid);
	json->len = 0;
	json_t *o = json_pack("{s:s, s:s, s:I, s:s}", "rev", head->rev, "data", cid,
	                      "seq", (json_int_t)head->seq, "status", head->desync ? "desynchronized" : "synced");
	if (o && reason_in && json_object_set_new(o, "reason", json_string(reason))) {
		json_decref(o);
		o = NULL;
	}
	json_t *list = o && !head->partial ? json_array() : NULL;
	for (const char *at = head->collections, *nl; list && (nl = strchr(at, '\n')); at = nl + 1)
		json_array_append_new(list, json_stringn(at, (size_t)(nl - at)));
	if (list && json_object_set_new(o, "collections", list)) {
		json_decref(o);
		o = NULL;
	}
	size_t need = o ? json_dumpb(o, NULL, 0, JSON_COMPACT) : 0;
	int rc = need && !atkv_buf_reserve(json, need) ? 0 : ATKV_E_NOMEM;
	if (!rc)
		json->len = json_dumpb(o, json->data, need, JSON_COMPACT);
	json_decref(o);
	return rc;
}

int atkv_repoheads_put(struct atkv_repoheads *h, const char *did, size_t n, const struct atkv_repohead *head)
{
	pthread_mutex_lock(&h->mu);
	int rc = cache(h, did, n, head);
	pthread_mutex_unlock(&h->mu);
	return rc;
}

int atkv_repoheads_set(struct atkv_repoheads *h, const char *did, size_t n, const struct atkv_repohead *head,
                       const char *reason, const char **key, const char **json, size_t *len)
{
	if (atkv_key_escape(did, n, h->key, sizeof(h->key)) < 0)
		return ATKV_E_SYNTAX;
	pthread_mutex_lock(&h->mu);
	int rc = cache(h, did, n, head);
	pthread_mutex_unlock(&h->mu);
	if (rc || (rc = render(head, reason, &h->json)))
		return rc;
	*key = h->key;
	*json = h->json.data;
	*len = h->json.len;
	return 0;
}

int atkv_repoheads_create(kvStore *kv, const char *did, size_t n, const struct atkv_repohead *head)
{
	char key[3 * ATKV_DID_MAX + 1];
	if (atkv_key_escape(did, n, key, sizeof(key)) < 0)
		return ATKV_E_SYNTAX;
	struct atkv_buf json = {0};
	int rc = render(head, NULL, &json);
	uint64_t rev = 0;
	natsStatus s = rc ? NATS_OK : kvStore_Create(&rev, kv, key, json.data, (int)json.len);
	atkv_buf_free(&json);
	if (rc)
		return rc;
	/* kvStore_Create fails with the server's "wrong last sequence" when the key holds a value. */
	if (s == NATS_OK)
		return 0;
	kvEntry *e = NULL;
	if (kvStore_Get(&e, kv, key) == NATS_OK) {
		kvEntry_Destroy(e);
		return 1;
	}
	return ATKV_E_NATS;
}
