/* diddoc.c — DID document addresses and their PDS (see diddoc.h). */
#include "diddoc.h"

#include <atkv/error.h>
#include <atkv/syntax.h>

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int atkv_diddoc_url(const char *did, const char *plc, char *url, size_t url_n)
{
	int w;
	if (!atkv_syntax_did(did, strlen(did)))
		return ATKV_E_SYNTAX;
	if (!strncmp(did, "did:plc:", 8)) {
		size_t pn = strlen(plc);
		while (pn && plc[pn - 1] == '/')
			pn--;
		w = snprintf(url, url_n, "%.*s/%s", (int)pn, plc, did);
	} else if (!strncmp(did, "did:web:", 8)) {
		/* did:web:HOST or did:web:HOST%3APORT; more colons would be a path, which atproto
		 * does not allow. */
		const char *host = did + 8;
		if (strchr(host, ':'))
			return ATKV_E_SYNTAX;
		char h[256];
		size_t hn = 0;
		for (const char *p = host; *p && hn + 1 < sizeof(h); p++) {
			if (!strncasecmp(p, "%3A", 3)) {
				h[hn++] = ':';
				p += 2;
			} else if (*p == '%') {
				return ATKV_E_SYNTAX;
			} else {
				h[hn++] = *p;
			}
		}
		h[hn] = '\0';
		bool local = !strncmp(h, "localhost", 9) && (!h[9] || h[9] == ':');
		w = snprintf(url, url_n, "%s://%s/.well-known/did.json", local ? "http" : "https", h);
	} else {
		return ATKV_E_SYNTAX;
	}
	return w < 0 || (size_t)w >= url_n ? ATKV_E_BUFFER : 0;
}

/* An origin: scheme, host, optional port; nothing after. */
static bool origin_ok(const char *u)
{
	const char *host;
	if (!strncmp(u, "https://", 8))
		host = u + 8;
	else if (!strncmp(u, "http://", 7))
		host = u + 7;
	else
		return false;
	size_t hn = strcspn(host, ":/?#@");
	if (!hn || host[hn] == '@' || host[hn] == '?' || host[hn] == '#')
		return false;
	bool plain = host == u + 7;
	if (plain && !(hn == 9 && !strncmp(host, "localhost", 9)) && !(hn == 9 && !strncmp(host, "127.0.0.1", 9)))
		return false;
	const char *rest = host + hn;
	if (*rest == ':') {
		size_t digits = strspn(rest + 1, "0123456789");
		if (!digits || digits > 5)
			return false;
		rest += 1 + digits;
	}
	return !*rest || !strcmp(rest, "/");
}

/* The document json[0..n) of did as an object whose id is did; NULL with why. */
static json_t *load_doc(const char *json, size_t n, const char *did, char *why, size_t why_n)
{
	json_error_t jerr;
	json_t *doc = json_loadb(json, n, 0, &jerr);
	const char *id = json_string_value(json_object_get(doc, "id"));
	if (!doc || !json_is_object(doc)) {
		snprintf(why, why_n, "the DID document of %s is not a JSON object", did);
	} else if (!id || strcmp(id, did)) {
		snprintf(why, why_n, "the DID document of %s names another DID (%.100s)", did, id ? id : "none");
	} else {
		return doc;
	}
	json_decref(doc);
	return NULL;
}

/* Whether id is did's fragment frag ("#atproto"), written relative or whole ("DID#atproto"). */
static bool is_fragment(const char *id, const char *did, const char *frag)
{
	size_t dn = strlen(did);
	return id && (!strcmp(id, frag) || (!strncmp(id, did, dn) && !strcmp(id + dn, frag)));
}

int atkv_diddoc_pds(const char *json, size_t n, const char *did, char *url, size_t url_n, char *why, size_t why_n)
{
	json_t *doc = load_doc(json, n, did, why, why_n);
	int rc = ATKV_E_SYNTAX;
	if (!doc)
		return rc;
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(doc, "service"), i, s) {
		const char *type = json_string_value(json_object_get(s, "type"));
		const char *end = json_string_value(json_object_get(s, "serviceEndpoint"));
		if (!is_fragment(json_string_value(json_object_get(s, "id")), did, "#atproto_pds"))
			continue;
		if (!type || strcmp(type, "AtprotoPersonalDataServer")) {
			snprintf(why, why_n, "the #atproto_pds service of %s is of type %.100s, not AtprotoPersonalDataServer",
			         did, type ? type : "none");
			goto done;
		}
		if (!end || !origin_ok(end)) {
			snprintf(why, why_n, "the #atproto_pds service of %s is not a PDS origin URL (%.100s)", did,
			         end ? end : "none");
			goto done;
		}
		size_t en = strlen(end);
		if (end[en - 1] == '/')
			en--;
		if (en >= url_n) {
			rc = ATKV_E_BUFFER;
			snprintf(why, why_n, "the PDS URL of %s is too long", did);
			goto done;
		}
		memcpy(url, end, en);
		url[en] = '\0';
		rc = 0;
		goto done;
	}
	snprintf(why, why_n, "the DID document of %s names no #atproto_pds service", did);
done:
	json_decref(doc);
	return rc;
}

int atkv_diddoc_key(const char *json, size_t n, const char *did, struct atkv_pubkey *key, char *why, size_t why_n)
{
	json_t *doc = load_doc(json, n, did, why, why_n);
	if (!doc)
		return ATKV_E_SYNTAX;
	int rc = ATKV_E_SYNTAX;
	size_t i;
	json_t *m;
	snprintf(why, why_n, "the DID document of %s names no #atproto verification method", did);
	json_array_foreach(json_object_get(doc, "verificationMethod"), i, m) {
		if (!is_fragment(json_string_value(json_object_get(m, "id")), did, "#atproto"))
			continue;
		const char *type = json_string_value(json_object_get(m, "type"));
		const char *mb = json_string_value(json_object_get(m, "publicKeyMultibase"));
		rc = type && mb && atkv_didkey_parse_method(type, mb, strlen(mb), key) == 0 ? 0 : ATKV_E_SYNTAX;
		if (rc)
			snprintf(why, why_n, "the #atproto key of %s is not one atproto signs with (%.40s %.100s)", did,
			         type ? type : "no type", mb ? mb : "no publicKeyMultibase");
		break;
	}
	json_decref(doc);
	return rc;
}
