/* didresolve.h — a DID's document fetched (did:plc from a PLC directory, did:web from its
 * host) and its answer classified, and the signing key it names loaded: what the backfill (each
 * repository's PDS and key) and the identity cache (keys) both need. The parsing is diddoc.c's,
 * which does no I/O. */
#ifndef ATKV_DIDRESOLVE_H
#define ATKV_DIDRESOLVE_H

#include "buf.h"
#include "http.h"
#include "httpconn.h"
#include "sigverify.h"

/* GETs did's document with http (plc: the PLC directory for did:plc) into body, the answer's
 * status and headers into resp (the caller frees both, whatever happens). Returns 0 (body is
 * the document), ATKV_E_TIMEOUT (no answer, or 429 or 5xx: worth again later, after
 * resp->retry_after_s when the server said), or ATKV_E_SYNTAX (a DID of another method, or
 * any other status: no document), with why. */
int atkv_didresolve_fetch(struct atkv_httpc *http, const char *plc, const char *did, struct atkv_buf *body,
                          struct atkv_http_response *resp, char *why, size_t why_n);

/* The #atproto signing key of did's document doc[0..n), loaded into *key (free it with
 * atkv_sigkey_free). Returns 0 or ATKV_E_SYNTAX (none usable) with why. */
int atkv_didresolve_key(const char *doc, size_t n, const char *did, struct atkv_sigkey **key, char *why, size_t why_n);

#endif
