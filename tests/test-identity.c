/* test-identity.c — signing keys from DID documents, kept (src/identity.c), against a PLC
 * directory and a did:web host of the test: a key fetched once is kept; a refresh asked right
 * after a fetch keeps it, one asked later fetches again and finds the rotated key; a key
 * outlives its TTL only until the next ask; the oldest DID makes room for a new one; a DID
 * the directory does not know, and one of another method, are refused with the reason, and
 * the failure is kept a while rather than fetched again at every ask. */
#define _DEFAULT_SOURCE
#include "didkey.h"
#include "httpserver.h"
#include "identity.h"
#include "tap.h"

#include <atkv/error.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define ANN "did:plc:annannannannannannannann"
#define BEN "did:plc:benbenbenbenbenbenbenbenb"
#define CAL "did:plc:calcalcalcalcalcalcalcalc"
/* Two K-256 keys of the interop fixtures (w3c_didkey_K256.json). */
#define K1 "zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme"
#define K2 "zQ3shtxV1FrJfhqE1dvxYRcCknWNjHc3c5X1y3ZSoPDi2aur2"

static const char *ann_key = K1;
static int port;
static bool unavailable;   /* the directory answers 503 */

static bool serve(int fd, const char *path, void *arg)
{
	(void)arg;
	if (unavailable)
		return httpserver_reply(fd, 503, "", "Service Unavailable", 19);
	char doc[1024], did[128];
	const char *key = K2;
	if (!strcmp(path, "/.well-known/did.json"))
		snprintf(did, sizeof(did), "did:web:localhost%%3A%d", port);
	else if (!strcmp(path, "/" ANN) || !strcmp(path, "/" BEN) || !strcmp(path, "/" CAL))
		snprintf(did, sizeof(did), "%s", path + 1);
	else
		return httpserver_reply(fd, 404, "", "Not Found", 9);
	if (!strcmp(did, ANN))
		key = ann_key;
	int n = snprintf(doc, sizeof(doc),
	                 "{\"id\":\"%s\",\"verificationMethod\":[{\"id\":\"%s#atproto\",\"type\":\"Multikey\","
	                 "\"controller\":\"%s\",\"publicKeyMultibase\":\"%s\"}]}",
	                 did, did, did, key);
	return httpserver_reply(fd, 200, "Content-Type: application/json\r\n", doc, (size_t)n);
}

/* did's key as a did:key, "" on failure (why then says it). */
static const char *key_of(struct atkv_identity *id, struct atkv_httpc *http, const char *did, bool refresh, int *rc,
                          char *why, size_t why_n)
{
	static char out[ATKV_DIDKEY_MAX];
	struct atkv_sigkey *key = NULL;
	out[0] = '\0';
	*rc = atkv_identity_key(id, http, did, refresh, &key, why, why_n);
	if (!*rc)
		atkv_didkey_format(atkv_sigkey_pub(key), out, sizeof(out));
	atkv_sigkey_free(key);
	return out;
}

int main(void)
{
	struct httpserver *srv = httpserver_start(serve, NULL, &port);
	char plc[64], why[256], web[64];
	snprintf(plc, sizeof(plc), "http://127.0.0.1:%d", port);
	snprintf(web, sizeof(web), "did:web:localhost%%3A%d", port);
	struct atkv_httpc *http = NULL;
	if (!srv || atkv_httpc_new(NULL, 5000, "test-identity", &http, why, sizeof(why))) {
		printf("Bail out! cannot start the test's PLC directory\n");
		return 1;
	}
	struct atkv_identity_options o = {.plc = plc, .capacity = 2, .ttl_s = 2, .min_refresh_s = 1};
	struct atkv_identity *id = atkv_identity_new(&o);
	int rc;
	const char *k = key_of(id, http, ANN, false, &rc, why, sizeof(why));
	tap_ok(rc == 0 && !strcmp(k, "did:key:" K1) && atkv_identity_fetches(id) == 1,
	       "%s: its key fetched from the PLC directory (%s)", ANN, k);
	key_of(id, http, ANN, false, &rc, why, sizeof(why));
	tap_ok(rc == 0 && atkv_identity_fetches(id) == 1, "asked again: kept, not fetched");
	ann_key = K2; /* rotated */
	k = key_of(id, http, ANN, true, &rc, why, sizeof(why));
	tap_ok(rc == 0 && !strcmp(k, "did:key:" K1) && atkv_identity_fetches(id) == 1,
	       "a refresh right after the fetch: the key kept (at most one fetch a second)");
	sleep(1);
	k = key_of(id, http, ANN, true, &rc, why, sizeof(why));
	tap_ok(rc == 0 && !strcmp(k, "did:key:" K2) && atkv_identity_fetches(id) == 2,
	       "a refresh a second later: fetched again, the rotated key (%s)", k);
	sleep(2);
	key_of(id, http, ANN, false, &rc, why, sizeof(why));
	tap_ok(rc == 0 && atkv_identity_fetches(id) == 3, "after its TTL (2 s): fetched again");
	key_of(id, http, BEN, false, &rc, why, sizeof(why));
	key_of(id, http, CAL, false, &rc, why, sizeof(why)); /* two kept at most: ANN goes */
	key_of(id, http, ANN, false, &rc, why, sizeof(why));
	tap_ok(rc == 0 && atkv_identity_fetches(id) == 6, "two DIDs kept at most: the oldest made room, fetched again "
	       "when asked (%llu fetches)", (unsigned long long)atkv_identity_fetches(id));
	key_of(id, http, web, false, &rc, why, sizeof(why));
	tap_ok(rc == 0, "%s: its key from http://localhost:%d/.well-known/did.json (%s)", web, port, rc ? why : "ok");
	key_of(id, http, "did:plc:nobodynobodynobodynobodyn", false, &rc, why, sizeof(why));
	tap_ok(rc == ATKV_E_SYNTAX && strstr(why, "HTTP 404"), "a DID the directory does not know: refused (%s)", why);
	uint64_t before = atkv_identity_fetches(id);
	why[0] = '\0';
	key_of(id, http, "did:plc:nobodynobodynobodynobodyn", true, &rc, why, sizeof(why));
	tap_ok(rc == ATKV_E_SYNTAX && strstr(why, "HTTP 404") && atkv_identity_fetches(id) == before,
	       "asked again at once (even to refresh): the failure kept, not fetched again (%s)", why);
	key_of(id, http, "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK", false, &rc, why, sizeof(why));
	tap_ok(rc == ATKV_E_SYNTAX && strstr(why, "only did:plc and did:web"), "a did:key: refused (%s)", why);

	/* The directory out of order: a key known stays in use; an #identity event makes it go. */
	key_of(id, http, ANN, false, &rc, why, sizeof(why));
	sleep(2);
	unavailable = true;
	before = atkv_identity_fetches(id);
	k = key_of(id, http, ANN, false, &rc, why, sizeof(why));
	tap_ok(rc == 0 && !strcmp(k, "did:key:" K2) && atkv_identity_fetches(id) == before + 1,
	       "its TTL over and the directory answering 503: the key known stays in use (%s)", rc ? why : k);
	key_of(id, http, ANN, false, &rc, why, sizeof(why));
	tap_ok(rc == 0 && atkv_identity_fetches(id) == before + 1, "and is not asked for again at once");
	atkv_identity_forget(id, ANN);
	unavailable = false;
	ann_key = K1;
	k = key_of(id, http, ANN, false, &rc, why, sizeof(why));
	tap_ok(rc == 0 && !strcmp(k, "did:key:" K1) && atkv_identity_fetches(id) == before + 2,
	       "forgotten (an #identity event): fetched again at once, the new key (%s)", k);
	atkv_identity_free(id);
	atkv_httpc_free(http);
	httpserver_stop(srv);
	return tap_done();
}
