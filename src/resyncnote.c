/* resyncnote.c — the resynchronizations owed, kept in bucket cursor (see resyncnote.h). */
#include "resyncnote.h"
#include "buckets.h"
#include "err.h"

#include <atkv/recordkey.h>

#include <stdio.h>
#include <string.h>

/* Notes are few (repositories desynchronized and not yet resynchronized): listing them waits
 * this long for the server at most. */
#define LIST_TIMEOUT_MS 10000

#define FETCH ATKV_RESYNCNOTE_PREFIX "fetch."
#define PURGE ATKV_RESYNCNOTE_PREFIX "purge."

long atkv_resyncnote_key(const char *did, size_t n, bool purge, char *out, size_t cap)
{
	const char *prefix = purge ? PURGE : FETCH;
	size_t p = strlen(prefix);
	if (cap <= p)
		return ATKV_E_SYNTAX;
	memcpy(out, prefix, p);
	long len = atkv_key_escape(did, n, out + p, cap - p);
	return len < 0 ? ATKV_E_SYNTAX : (long)p + len;
}

int atkv_resyncnote_remove(jsCtx *js, const char *did, bool purge)
{
	char subject[sizeof("$KV." ATKV_BUCKET_CURSOR ".") + ATKV_RESYNCNOTE_KEY_MAX];
	size_t p = sizeof("$KV." ATKV_BUCKET_CURSOR ".") - 1;
	memcpy(subject, "$KV." ATKV_BUCKET_CURSOR ".", p);
	if (atkv_resyncnote_key(did, strlen(did), purge, subject + p, sizeof(subject) - p) < 0)
		return ATKV_E_SYNTAX;
	jsOptions o;
	jsOptions_Init(&o);
	o.Stream.Purge.Subject = subject;
	jsErrCode jerr = 0;
	return js_PurgeStream(js, "KV_" ATKV_BUCKET_CURSOR, &o, &jerr) == NATS_OK ? 0 : ATKV_E_NATS;
}

int atkv_resyncnote_list(kvStore *cursor, bool (*fn)(void *arg, const char *did, bool purge), void *arg, char *why,
                         size_t why_n)
{
	kvWatchOptions o;
	kvWatchOptions_Init(&o);
	o.IgnoreDeletes = true;
	o.MetaOnly = true;
	kvWatcher *w = NULL;
	natsStatus s = kvStore_Watch(&w, cursor, ATKV_RESYNCNOTE_PREFIX ">", &o);
	bool more = true;
	while (s == NATS_OK && more) {
		kvEntry *e = NULL;
		s = kvWatcher_Next(&e, w, LIST_TIMEOUT_MS);
		if (s != NATS_OK || !e)
			break; /* NULL: every note there was is listed */
		const char *key = kvEntry_Key(e);
		bool purge = !strncmp(key, PURGE, strlen(PURGE));
		char did[ATKV_DID_MAX + 1];
		long n = -1;
		if (purge || !strncmp(key, FETCH, strlen(FETCH))) {
			const char *esc = key + strlen(purge ? PURGE : FETCH);
			n = atkv_key_unescape(esc, strlen(esc), did, sizeof(did));
		}
		/* A key that is not one of ours is left alone. */
		if (n > 0 && atkv_syntax_did(did, (size_t)n))
			more = fn(arg, did, purge);
		kvEntry_Destroy(e);
	}
	kvWatcher_Destroy(w);
	if (s != NATS_OK) {
		snprintf(why, why_n, "cannot list the resynchronizations owed (bucket cursor, keys %s>): %s",
		         ATKV_RESYNCNOTE_PREFIX, natsStatus_GetText(s));
		return ATKV_E_NATS;
	}
	return 0;
}
