/* repostate.c — the backfill's per-repository state in NATS (see repostate.h). */
#define _DEFAULT_SOURCE
#include "repostate.h"

#include <atkv/recordkey.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int atkv_repostate_open(jsCtx *js, int replicas, kvStore **kv, char *why, size_t why_n)
{
	if (js_KeyValue(kv, js, ATKV_BUCKET_BACKFILL) == NATS_OK)
		return 0;
	kvConfig c;
	kvConfig_Init(&c);
	c.Bucket = ATKV_BUCKET_BACKFILL;
	c.History = 1;
	c.Replicas = replicas;
	natsStatus s = js_CreateKeyValue(kv, js, &c);
	if (s == NATS_OK)
		return 0;
	snprintf(why, why_n, "cannot create bucket %s: %s", ATKV_BUCKET_BACKFILL, natsStatus_GetText(s));
	return -1;
}

/* prefix followed by s escaped (bytes outside the key alphabet as /XX). */
static int prefixed_key(const char *prefix, const char *s, char *key, size_t n)
{
	size_t pn = strlen(prefix);
	if (n <= pn)
		return -1;
	memcpy(key, prefix, pn);
	return atkv_key_escape(s, strlen(s), key + pn, n - pn) < 0 ? -1 : 0;
}

static int key_of(const char *did, char *key, size_t n) { return prefixed_key("repo.", did, key, n); }

static void now_text(char when[32])
{
	time_t now = time(NULL);
	struct tm tm;
	strftime(when, 32, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
}

/* The string field `name` of the JSON object at key into out ("" when the key or the field is
 * missing, or out too small). Returns 0, or -1 when NATS failed. */
static int get_field(kvStore *kv, const char *key, const char *name, char *out, size_t out_n)
{
	kvEntry *e = NULL;
	out[0] = '\0';
	natsStatus s = kvStore_Get(&e, kv, key);
	if (s == NATS_NOT_FOUND)
		return 0;
	if (s != NATS_OK)
		return -1;
	json_error_t jerr;
	json_t *v = json_loadb(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), 0, &jerr);
	const char *f = json_string_value(json_object_get(v, name));
	if (f && strlen(f) < out_n)
		strcpy(out, f);
	json_decref(v);
	kvEntry_Destroy(e);
	return 0;
}

/* Puts v (which it takes) at key, with "time" added. Returns 0 or -1. */
static int put_json(kvStore *kv, const char *key, json_t *v)
{
	char when[32];
	now_text(when);
	json_object_set_new(v, "time", json_string(when));
	char *text = v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	uint64_t seq;
	natsStatus s = text ? kvStore_PutString(&seq, kv, key, text) : NATS_NO_MEMORY;
	free(text);
	json_decref(v);
	return s == NATS_OK ? 0 : -1;
}

int atkv_repostate_cursor(kvStore *kv, const char *source, char *cursor, size_t cursor_n)
{
	char key[3 * 1024 + 8];
	cursor[0] = '\0';
	if (strlen(source) > 1024 || prefixed_key("list.", source, key, sizeof(key)))
		return 0;
	return get_field(kv, key, "cursor", cursor, cursor_n);
}

int atkv_repostate_set_cursor(kvStore *kv, const char *source, const char *cursor)
{
	char key[3 * 1024 + 8];
	if (strlen(source) > 1024 || prefixed_key("list.", source, key, sizeof(key)))
		return -1;
	if (!cursor)
		return kvStore_Delete(kv, key) == NATS_OK ? 0 : -1;
	return put_json(kv, key, json_pack("{s:s}", "cursor", cursor));
}

int atkv_repostate_rev(kvStore *kv, const char *did, char rev[ATKV_TID_LEN + 1])
{
	char key[3 * ATKV_DID_MAX + 8];
	rev[0] = '\0';
	if (key_of(did, key, sizeof(key)))
		return 0;
	int rc = get_field(kv, key, "rev", rev, ATKV_TID_LEN + 1);
	if (rev[0] && !atkv_syntax_tid(rev, strlen(rev)))
		rev[0] = '\0';
	return rc;
}

int atkv_repostate_done(kvStore *kv, const char *did, const char *rev, uint64_t records)
{
	char key[3 * ATKV_DID_MAX + 8];
	if (key_of(did, key, sizeof(key)))
		return -1;
	return put_json(kv, key, json_pack("{s:s,s:I,s:s}", "rev", rev, "records", (json_int_t)records, "status", "done"));
}

bool atkv_repostate_needed(const char *done_rev, const char *listed_rev)
{
	if (!done_rev[0])
		return true;
	/* Without a listed revision there is no telling whether it changed: done is done (the
	 * firehose carries what came after). TIDs sort as strings. */
	return listed_rev[0] && strcmp(done_rev, listed_rev) < 0;
}
