/* resyncnote.h — the resynchronizations the builder owes, noted in bucket `cursor` (key
 * `resync.<escaped DID>`, value "fetch" or "purge"): written with the event that asks for one,
 * deleted once it is done or given up, and listed when the builder starts. A restart, or a
 * table of requests too full to take one, loses none: an account deleted sends no later event
 * to ask again, and a repository that stays quiet would wait for its next commit. */
#ifndef ATKV_RESYNCNOTE_H
#define ATKV_RESYNCNOTE_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>

#include <atkv/syntax.h>

#define ATKV_RESYNCNOTE_PREFIX "resync."
#define ATKV_RESYNCNOTE_KEY_MAX (sizeof(ATKV_RESYNCNOTE_PREFIX) - 1 + 3 * ATKV_DID_MAX)

/* The key noting did[0..n) into out (cap bytes). Returns its length, or ATKV_E_SYNTAX. */
long atkv_resyncnote_key(const char *did, size_t n, char *out, size_t cap);

/* The value of a note: what is owed. */
const char *atkv_resyncnote_value(bool purge);

/* Deletes did's note. Returns 0 or ATKV_E_NATS (ATKV_E_SYNTAX for a DID that does not escape). */
int atkv_resyncnote_delete(kvStore *cursor, const char *did);

/* Calls fn for each note (the DID, whether it asks for a purge) until fn returns false.
 * Returns 0, or ATKV_E_NATS with why. */
int atkv_resyncnote_list(kvStore *cursor, bool (*fn)(void *arg, const char *did, bool purge), void *arg, char *why,
                         size_t why_n);

#endif
