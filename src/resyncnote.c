/* resyncnote.c — the resynchronizations owed, kept in bucket cursor (see resyncnote.h). */
#include "resyncnote.h"
#include "err.h"

#include <atkv/recordkey.h>

#include <stdio.h>
#include <string.h>

/* Notes are few (repositories desynchronized and not yet resynchronized): listing them waits
 * this long for the server at most. */
#define LIST_TIMEOUT_MS 10000

long atkv_resyncnote_key(const char *did, size_t n, char *out, size_t cap)
{
	size_t prefix = sizeof(ATKV_RESYNCNOTE_PREFIX) - 1;
	if (cap <= prefix)
		return ATKV_E_SYNTAX;
	memcpy(out, ATKV_RESYNCNOTE_PREFIX, prefix);
	long len = atkv_key_escape(did, n, out + prefix, cap - prefix);
	return len < 0 ? ATKV_E_SYNTAX : (long)prefix + len;
}

const char *atkv_resyncnote_value(bool purge)
{
	return purge ? "purge" : "fetch";
}

int atkv_resyncnote_delete(kvStore *cursor, const char *did)
{
	char key[ATKV_RESYNCNOTE_KEY_MAX + 1];
	if (atkv_resyncnote_key(did, strlen(did), key, sizeof(key)) < 0)
		return ATKV_E_SYNTAX;
	return kvStore_Delete(cursor, key) == NATS_OK ? 0 : ATKV_E_NATS;
}

int atkv_resyncnote_list(kvStore *cursor, bool (*fn)(void *arg, const char *did, bool purge), void *arg, char *why,
                         size_t why_n)
{
	kvWatchOptions o;
	kvWatchOptions_Init(&o);
	o.IgnoreDeletes = true;
	kvWatcher *w = NULL;
	natsStatus s = kvStore_Watch(&w, cursor, ATKV_RESYNCNOTE_PREFIX ">", &o);
	size_t prefix = sizeof(ATKV_RESYNCNOTE_PREFIX) - 1;
	bool more = true;
	while (s == NATS_OK && more) {
		kvEntry *e = NULL;
		s = kvWatcher_Next(&e, w, LIST_TIMEOUT_MS);
		if (s != NATS_OK || !e)
			break; /* NULL: every note there was is listed */
		const char *key = kvEntry_Key(e);
		char did[ATKV_DID_MAX + 1];
		/* A key that is not a DID's is not one of ours: left alone. */
		long n = atkv_key_unescape(key + prefix, strlen(key + prefix), did, sizeof(did));
		if (n > 0 && atkv_syntax_did(did, (size_t)n))
			more = fn(arg, did, kvEntry_ValueLen(e) == 5 && !memcmp(kvEntry_Value(e), "purge", 5));
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
