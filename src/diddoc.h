/* diddoc.h — DID documents (atproto DID spec) as far as atkv needs them: where a DID's document
 * is fetched (did:plc from a PLC directory, did:web from its host), the PDS it names (its
 * #atproto_pds service, checked to be a plain origin URL), and its signing key (#atproto). */
#ifndef ATKV_DIDDOC_H
#define ATKV_DIDDOC_H

#include <stddef.h>

#include "didkey.h"

/* Longest URL written by these functions, with its NUL. */
#define ATKV_DIDDOC_URL_MAX 512

/* Writes into url the address of did's document: PLC_URL/DID for did:plc (plc without a
 * trailing slash), https://HOST/.well-known/did.json for did:web (a port given as %3A in the
 * DID; http:// for localhost, as in the spec's test setups). Returns 0, or ATKV_E_SYNTAX for
 * another DID method or a did:web with a path, ATKV_E_BUFFER. */
int atkv_diddoc_url(const char *did, const char *plc, char *url, size_t url_n);

/* Finds the PDS in the document json[0..n) of did: its id must be did, and its service with id
 * "#atproto_pds" (or DID#atproto_pds) of type AtprotoPersonalDataServer gives the endpoint, an
 * origin (https://host[:port], or http:// for localhost and 127.0.0.1) without path, query or
 * user. Writes it without a trailing slash into url. Returns 0, or ATKV_E_SYNTAX with why. */
int atkv_diddoc_pds(const char *json, size_t n, const char *did, char *url, size_t url_n, char *why, size_t why_n);

/* The signing key of the document json[0..n) of did: its verification method with id "#atproto"
 * (or DID#atproto), Multikey or one of the older suites. Returns 0, or ATKV_E_SYNTAX with why
 * (also for a key atproto does not sign with). */
int atkv_diddoc_key(const char *json, size_t n, const char *did, struct atkv_pubkey *key, char *why, size_t why_n);

#endif
