/* resyncnote.h — the resynchronizations the builder owes, noted in bucket `cursor` (keys
 * `resync.fetch.<escaped DID>` and `resync.purge.<escaped DID>`, apart so that a repository's
 * fetch never hides its account's purge): written with the event that asks for one, removed
 * once it is done or given up, and listed when the builder starts. A restart, or a table of
 * requests too full to take one, loses none: an account deleted sends no later event to ask
 * again, and a repository that stays quiet would wait for its next commit. */
#ifndef ATKV_RESYNCNOTE_H
#define ATKV_RESYNCNOTE_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>

#include <atkv/syntax.h>

#define ATKV_RESYNCNOTE_PREFIX "resync."
#define ATKV_RESYNCNOTE_KEY_MAX (sizeof(ATKV_RESYNCNOTE_PREFIX "fetch.") - 1 + 3 * ATKV_DID_MAX)

/* The key of did[0..n)'s note (purge: of its account's purge) into out (cap bytes). Returns its
 * length, or ATKV_E_SYNTAX. */
long atkv_resyncnote_key(const char *did, size_t n, bool purge, char *out, size_t cap);

/* Removes did's note (purge: of its purge) from the stream of bucket cursor, leaving no delete
 * marker behind to be listed ever after. Returns 0, ATKV_E_SYNTAX or ATKV_E_NATS. */
int atkv_resyncnote_remove(jsCtx *js, const char *did, bool purge);

/* Calls fn for each note (the DID, whether it asks for a purge) until fn returns false.
 * Returns 0, or ATKV_E_NATS with why. */
int atkv_resyncnote_list(kvStore *cursor, bool (*fn)(void *arg, const char *did, bool purge), void *arg, char *why,
                         size_t why_n);

#endif
