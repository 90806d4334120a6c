/* test-diddoc.c — where DID documents are fetched and the PDS they name (src/diddoc.c): a
 * did:plc document as the reference PLC directory serves it, did:web addresses with ports, and
 * documents that must be refused (another DID, no PDS, a PDS URL with a path, user or query,
 * plain http to a host that is not local); and the signing key they name (#atproto), as a
 * Multikey and in the older secp256k1 suite, refused when absent or of a curve atproto does
 * not use. */
#include "diddoc.h"
#include "tap.h"

#include <atkv/error.h>

#include <stdio.h>
#include <string.h>

#define DID "did:plc:twdfc4yfvnvbb3bo5ywhrfzs"

static char doc[2048];

/* A document as the reference PLC serves it, with service id, type and endpoint given. */
static const char *make(const char *id, const char *sid, const char *type, const char *endpoint)
{
	snprintf(doc, sizeof(doc),
	         "{\"@context\":[\"https://www.w3.org/ns/did/v1\",\"https://w3id.org/security/multikey/v1\"],"
	         "\"id\":\"%s\",\"alsoKnownAs\":[\"at://ann.test\"],\"verificationMethod\":[{\"id\":\"%s#atproto\","
	         "\"type\":\"Multikey\",\"controller\":\"%s\",\"publicKeyMultibase\":\"zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF\"}],"
	         "\"service\":[{\"id\":\"#other\",\"type\":\"Other\",\"serviceEndpoint\":\"https://x.example\"},"
	         "{\"id\":\"%s\",\"type\":\"%s\",\"serviceEndpoint\":\"%s\"}]}",
	         id, id, id, sid, type, endpoint);
	return doc;
}

static void pds_is(const char *what, const char *json, const char *want)
{
	char url[ATKV_DIDDOC_URL_MAX] = "", why[256] = "";
	int rc = atkv_diddoc_pds(json, strlen(json), DID, url, sizeof(url), why, sizeof(why));
	if (want)
		tap_ok(rc == 0 && !strcmp(url, want), "%s: %s", what, rc ? why : url);
	else
		tap_ok(rc == ATKV_E_SYNTAX && why[0], "%s: refused (%s)", what, why);
}

static void url_is(const char *did, const char *want)
{
	char url[ATKV_DIDDOC_URL_MAX] = "";
	int rc = atkv_diddoc_url(did, "https://plc.directory/", url, sizeof(url));
	if (want)
		tap_ok(rc == 0 && !strcmp(url, want), "%s: %s", did, url);
	else
		tap_eq(rc, ATKV_E_SYNTAX, "%s: refused", did);
}

/* A document with one verification method. */
static const char *with_key(const char *vid, const char *type, const char *multibase)
{
	snprintf(doc, sizeof(doc),
	         "{\"id\":\"%s\",\"verificationMethod\":[{\"id\":\"%s\",\"type\":\"%s\",\"controller\":\"%s\","
	         "\"publicKeyMultibase\":\"%s\"}]}",
	         DID, vid, type, DID, multibase);
	return doc;
}

static void key_is(const char *what, const char *json, const char *want_didkey)
{
	struct atkv_pubkey k;
	char why[256] = "", got[ATKV_DIDKEY_MAX] = "";
	int rc = atkv_diddoc_key(json, strlen(json), DID, &k, why, sizeof(why));
	if (!rc)
		atkv_didkey_format(&k, got, sizeof(got));
	if (want_didkey)
		tap_ok(rc == 0 && !strcmp(got, want_didkey), "%s: %s", what, got);
	else
		tap_ok(rc == ATKV_E_SYNTAX && why[0], "%s: refused (%s)", what, why);
}

int main(void)
{
	/* Keys of the interop crypto fixtures: the same K-256 key as a Multikey and as the
	 * older suite's bare point. */
	const char *k256 = "did:key:zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc";
	key_is("a Multikey #atproto key", with_key("#atproto", "Multikey", k256 + 8), k256);
	key_is("its id spelt out", with_key(DID "#atproto", "Multikey", k256 + 8), k256);
	key_is("a P-256 Multikey", with_key("#atproto", "Multikey", "zDnaembgSGUhZULN2Caob4HLJPaxBh92N7rtH21TErzqf8HQo"),
	       "did:key:zDnaembgSGUhZULN2Caob4HLJPaxBh92N7rtH21TErzqf8HQo");
	/* ann.test's key in tests/data/repo-expected.jsonl: an uncompressed point. */
	key_is("the older secp256k1 suite, uncompressed (as the reference PLC serves it)",
	       with_key("#atproto", "EcdsaSecp256k1VerificationKey2019",
	                "zRPMYYkJx9Zzgq5cyeK3Cie5hAiNuGboto24DdBGqcFyk5SwRB4Lh4kWyLNy1ziERNWMx4vAXgtwHH1LXwptZRCVb"),
	       "did:key:zQ3shaafS4fGUU5mUPRXRPgrP3qdxicYVgZ3gJ7uFK3BKwdzk");
	key_is("no #atproto method", with_key("#other", "Multikey", k256 + 8), NULL);
	key_is("an Ed25519 key", with_key("#atproto", "Multikey", "z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"), NULL);
	key_is("a type it does not know", with_key("#atproto", "JsonWebKey2020", k256 + 8), NULL);

	pds_is("a did:plc document with #atproto_pds", make(DID, "#atproto_pds", "AtprotoPersonalDataServer", "https://pds.example.com"),
	       "https://pds.example.com");
	pds_is("the reference PDS on localhost, its id spelt out", make(DID, DID "#atproto_pds", "AtprotoPersonalDataServer",
	                                                               "http://localhost:2583/"),
	       "http://localhost:2583");
	pds_is("a document of another DID", make("did:plc:someoneelse", "#atproto_pds", "AtprotoPersonalDataServer",
	                                          "https://pds.example.com"),
	       NULL);
	pds_is("no #atproto_pds service", make(DID, "#atproto_labeler", "AtprotoLabeler", "https://l.example"), NULL);
	pds_is("a service of the wrong type", make(DID, "#atproto_pds", "Other", "https://pds.example.com"), NULL);
	pds_is("an endpoint with a path", make(DID, "#atproto_pds", "AtprotoPersonalDataServer", "https://pds.example.com/x"), NULL);
	pds_is("an endpoint with a user", make(DID, "#atproto_pds", "AtprotoPersonalDataServer", "https://u@pds.example.com"), NULL);
	pds_is("an endpoint with a query", make(DID, "#atproto_pds", "AtprotoPersonalDataServer", "https://pds.example.com?a"), NULL);
	pds_is("plain http to a host that is not local", make(DID, "#atproto_pds", "AtprotoPersonalDataServer", "http://pds.example.com"),
	       NULL);
	pds_is("not JSON", "{\"id\":", NULL);

	url_is(DID, "https://plc.directory/" DID);
	url_is("did:web:example.com", "https://example.com/.well-known/did.json");
	url_is("did:web:localhost%3A2584", "http://localhost:2584/.well-known/did.json");
	url_is("did:web:example.com:user:alice", NULL);
	url_is("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK", NULL);
	url_is("not-a-did", NULL);
	return tap_done();
}
