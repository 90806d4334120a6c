/* prune.c — deleting a repository's keys it no longer holds (see prune.h). The keys kept are
 * remembered as 64-bit SipHashes (8 bytes per record, sorted before the search) rather than as
 * strings: a repository of a million records costs 8 MB. Two keys sharing a hash would leave
 * a stale one in place, not delete a live one. */
#define _DEFAULT_SOURCE
#include "prune.h"
#include "buf.h"
#include "buckets.h"
#include "err.h"
#include "siphash.h"
#include <atkv/recordkey.h>
#include <atkv/syntax.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* The longest wait for the next key while listing. */
#define LIST_TIMEOUT_MS 10000

struct atkv_prune {
	jsCtx *js;
	kvStore *kv;
	uint8_t hash_key[16];
	uint64_t *kept;
	size_t n_kept, cap_kept;
	struct atkv_buf collections;  /* "nsid\n" each */
};

int atkv_prune_new(natsConnection *nc, struct atkv_prune **out, char *why, size_t why_n)
{
	struct atkv_prune *p = calloc(1, sizeof(*p));
	if (!p || getrandom(p->hash_key, sizeof(p->hash_key), 0) != sizeof(p->hash_key)) {
		free(p);
		snprintf(why, why_n, "out of memory");
		return -1;
	}
	if (natsConnection_JetStream(&p->js, nc, NULL) != NATS_OK || js_KeyValue(&p->kv, p->js, ATKV_BUCKET_RECORD) != NATS_OK) {
		snprintf(why, why_n, "cannot open bucket record");
		atkv_prune_free(p);
		return -1;
	}
	*out = p;
	return 0;
}

void atkv_prune_free(struct atkv_prune *p)
{
	if (!p)
		return;
	kvStore_Destroy(p->kv);
	jsCtx_Destroy(p->js);
	free(p->kept);
	atkv_buf_free(&p->collections);
	free(p);
}

void atkv_prune_reset(struct atkv_prune *p)
{
	p->n_kept = 0;
	atkv_buf_reset(&p->collections);
}

int atkv_prune_keep(struct atkv_prune *p, const char *key, size_t n)
{
	if (p->n_kept == p->cap_kept) {
		size_t cap = p->cap_kept ? 2 * p->cap_kept : 1024;
		uint64_t *k = realloc(p->kept, cap * sizeof(*k));
		if (!k)
			return ATKV_E_NOMEM;
		p->kept = k;
		p->cap_kept = cap;
	}
	p->kept[p->n_kept++] = atkv_siphash(p->hash_key, key, n);
	return 0;
}

int atkv_prune_collection(struct atkv_prune *p, const char *collection, size_t n)
{
	if (!atkv_syntax_nsid(collection, n))
		return ATKV_E_SYNTAX;
	const char *at = p->collections.data, *end = at + p->collections.len;
	for (; at && at < end; at = memchr(at, '\n', (size_t)(end - at)) + 1)
		if ((size_t)(end - at) > n && at[n] == '\n' && !memcmp(at, collection, n))
			return 0;
	if (atkv_buf_append(&p->collections, collection, n) || atkv_buf_putc(&p->collections, '\n'))
		return ATKV_E_NOMEM;
	return 0;
}

const char *atkv_prune_collections(const struct atkv_prune *p)
{
	return p->collections.data ? p->collections.data : "";
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static bool kept(const struct atkv_prune *p, const char *key)
{
	uint64_t h = atkv_siphash(p->hash_key, key, strlen(key));
	return p->n_kept && bsearch(&h, p->kept, p->n_kept, sizeof(h), cmp_u64) != NULL;
}

/* Whether key's DID token (the one before the record key) is escaped_did. */
static bool of_did(const char *key, const char *escaped_did, size_t n)
{
	const char *rkey = strrchr(key, '.');
	return rkey && rkey - key > (long)n && rkey[-(long)n - 1] == '.' && !memcmp(rkey - n, escaped_did, n);
}

static int delete_key(struct atkv_prune *p, const char *key, const struct atkv_record_meta *meta, char *why,
                      size_t why_n)
{
	natsMsg *m = NULL;
	jsPubAck *ack = NULL;
	jsErrCode jerr = 0;
	int rc = atkv_record_msg(&m, ATKV_BUCKET_RECORD, key, NULL, 0, true, meta, NULL);
	if (rc)
		return rc;
	natsStatus s = js_PublishMsg(&ack, p->js, m, NULL, &jerr);
	natsMsg_Destroy(m);
	jsPubAck_Destroy(ack);
	if (s != NATS_OK) {
		snprintf(why, why_n, "cannot delete %s: %s", key, natsStatus_GetText(s));
		return ATKV_E_NATS;
	}
	return 0;
}

/* Deletes the keys not kept among those filter matches (only did's when check_did). */
static int prune_filter(struct atkv_prune *p, const char *filter, const char *escaped_did, bool check_did,
                        const struct atkv_record_meta *meta, uint64_t *deleted, char *why, size_t why_n)
{
	kvWatchOptions o;
	kvWatchOptions_Init(&o);
	o.MetaOnly = true;
	o.IgnoreDeletes = true;
	kvWatcher *w = NULL;
	natsStatus s = kvStore_Watch(&w, p->kv, filter, &o);
	int rc = 0;
	size_t did_n = strlen(escaped_did);
	while (s == NATS_OK && !rc) {
		kvEntry *e = NULL;
		s = kvWatcher_Next(&e, w, LIST_TIMEOUT_MS);
		if (s != NATS_OK || !e)
			break; /* NULL: every key there was is listed */
		const char *key = kvEntry_Key(e);
		if ((!check_did || of_did(key, escaped_did, did_n)) && !kept(p, key)) {
			rc = delete_key(p, key, meta, why, why_n);
			if (!rc)
				(*deleted)++;
		}
		kvEntry_Destroy(e);
	}
	kvWatcher_Destroy(w);
	if (s != NATS_OK && !rc) {
		snprintf(why, why_n, "cannot list the keys %s: %s", filter, natsStatus_GetText(s));
		rc = ATKV_E_NATS;
	}
	return rc;
}

int atkv_prune_run(struct atkv_prune *p, const char *did, bool all_known, const struct atkv_record_meta *meta,
                   uint64_t *deleted, char *why, size_t why_n)
{
	char filter[ATKV_KEY_MAX + 8], escaped[3 * ATKV_DID_MAX + 1];
	*deleted = 0;
	if (p->n_kept)
		qsort(p->kept, p->n_kept, sizeof(*p->kept), cmp_u64);
	if (atkv_key_escape(did, strlen(did), escaped, sizeof(escaped)) < 0)
		return ATKV_E_SYNTAX;
	if (!all_known) {
		/* Any collection: the partition is the key's first token. */
		long n = atkv_key_build(filter, sizeof(filter), did, strlen(did), "a.b.c", 5, "x", 1);
		if (n < 0)
			return (int)n;
		strcpy(strchr(filter, '.') + 1, ">");
		return prune_filter(p, filter, escaped, true, meta, deleted, why, why_n);
	}
	const char *at = atkv_prune_collections(p);
	for (const char *nl; (nl = strchr(at, '\n')); at = nl + 1) {
		long n = atkv_key_build(filter, sizeof(filter), did, strlen(did), at, (size_t)(nl - at), "x", 1);
		if (n < 0)
			return (int)n;
		filter[n - 1] = '*';
		int rc = prune_filter(p, filter, escaped, false, meta, deleted, why, why_n);
		if (rc)
			return rc;
	}
	return 0;
}
