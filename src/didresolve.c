/* didresolve.c — see didresolve.h. */
#include "didresolve.h"
#include "diddoc.h"
#include "err.h"

#include <stdio.h>

int atkv_didresolve_fetch(struct atkv_httpc *http, const char *plc, const char *did, struct atkv_buf *body,
                          struct atkv_http_response *resp, char *why, size_t why_n)
{
	char url[ATKV_DIDDOC_URL_MAX];
	if (atkv_diddoc_url(did, plc, url, sizeof(url))) {
		snprintf(why, why_n, "%s: no DID document address (only did:plc and did:web are resolved)", did);
		return ATKV_E_SYNTAX;
	}
	if (atkv_httpc_get(http, url, "application/did+ld+json, application/json", 1 << 20, body, resp, why, why_n))
		return ATKV_E_TIMEOUT;
	if (resp->status == 200)
		return 0;
	snprintf(why, why_n, "%s: HTTP %d", url, resp->status);
	return resp->status == 429 || resp->status >= 500 ? ATKV_E_TIMEOUT : ATKV_E_SYNTAX;
}

int atkv_didresolve_key(const char *doc, size_t n, const char *did, struct atkv_sigkey **key, char *why, size_t why_n)
{
	struct atkv_pubkey pk;
	int rc = atkv_diddoc_key(doc, n, did, &pk, why, why_n);
	if (rc)
		return rc;
	if (atkv_sigkey_load(&pk, key)) {
		snprintf(why, why_n, "the #atproto key of %s is not a point of its curve", did);
		return ATKV_E_SYNTAX;
	}
	return 0;
}
