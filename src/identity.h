/* identity.h — each repository's signing key, as its DID document says (did:plc through a PLC
 * directory, did:web over HTTPS), kept for a while: up to `capacity` DIDs for `ttl_s` seconds
 * each, the oldest let go first. A caller whose signature failed asks again with refresh (the
 * key may have rotated); the document is then fetched again unless it was within min_refresh_s,
 * so a relay sending bad signatures cannot make atkv hammer the PLC directory; a fetch that
 * failed is not tried again for fail_ttl_s, and one that failed for now (no answer, 429, 5xx)
 * leaves a key kept before in use meanwhile. Safe from any number of threads; each
 * fetches on its own HTTP client. */
#ifndef ATKV_IDENTITY_H
#define ATKV_IDENTITY_H

#include <stdbool.h>
#include <stdint.h>

#include "httpconn.h"
#include "sigverify.h"

struct atkv_identity_options {
	const char *plc;         /* e.g. https://plc.directory */
	size_t capacity;         /* DIDs kept */
	int64_t ttl_s;           /* a key is used this long before its document is fetched again */
	int64_t min_refresh_s;   /* a refresh asked sooner than this after a fetch keeps the key */
	int64_t fail_ttl_s;      /* a failed fetch is given as the answer this long (0: min_refresh_s) */
};

struct atkv_identity;

/* NULL when memory is short. */
struct atkv_identity *atkv_identity_new(const struct atkv_identity_options *o);
void atkv_identity_free(struct atkv_identity *id);

/* did's signing key into *key (the caller's reference: atkv_sigkey_free it), fetched with http
 * when not kept, expired, or refresh. Returns 0; ATKV_E_TIMEOUT (no answer, or 429/5xx: worth
 * again later); ATKV_E_SYNTAX (no document, or none usable: 404, a DID of another method, no
 * #atproto key); with why. */
int atkv_identity_key(struct atkv_identity *id, struct atkv_httpc *http, const char *did, bool refresh,
                      struct atkv_sigkey **key, char *why, size_t why_n);

/* did changed its identity (an #identity event): its document is fetched again at the next
 * request, however fresh the key kept. Cannot fail. */
void atkv_identity_forget(struct atkv_identity *id, const char *did);

/* Fetches done so far (for tests and metrics). */
uint64_t atkv_identity_fetches(const struct atkv_identity *id);

#endif
