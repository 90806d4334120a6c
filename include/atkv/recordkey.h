/* atkv/recordkey.h — the KV key scheme of bucket `record` (DESIGN.md, a contract shared with the
 * original TypeScript nats-record-kv): {partition}.{collection tokens}.{did}.{rkey}, each part
 * escaped so that every byte outside [A-Za-z0-9_=/-] becomes "/XX" (uppercase hex). */
#ifndef ATKV_RECORDKEY_H
#define ATKV_RECORDKEY_H

#include <stddef.h>

#include <atkv/error.h>
#include <atkv/syntax.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest key: partition, NSID, DID and rkey each escaped at worst three bytes per byte. */
#define ATKV_KEY_MAX (2 + ATKV_NSID_MAX + 1 + 3 * ATKV_DID_MAX + 1 + 3 * ATKV_RKEY_MAX)

/* The partition of a DID, '0'..'f': the first character of the lowercase hex MurmurHash3
 * (seed 0) of its bytes, written without leading zeros but padded to at least two digits
 * (the original's murmur.v3(did).toString(16).padStart(2, '0')[0]). Cannot fail. */
char atkv_key_partition(const char *did, size_t n);

/* Escapes s[0..n) into out (capacity cap, NUL-terminated). Returns the length written, or
 * ATKV_E_BUFFER. */
long atkv_key_escape(const char *s, size_t n, char *out, size_t cap);

/* Reverses atkv_key_escape into out (capacity cap, NUL-terminated). Returns the length, or
 * ATKV_E_KEY when a '/' is not followed by two uppercase hex digits, when it escapes a byte that
 * atkv_key_escape leaves plain, or when an unescaped byte is outside the plain set; or
 * ATKV_E_BUFFER. */
long atkv_key_unescape(const char *s, size_t n, char *out, size_t cap);

/* Builds the key of record (did, collection, rkey) into out (capacity cap; ATKV_KEY_MAX + 1
 * always suffices). Returns its length, ATKV_E_SYNTAX when an identifier is invalid, or
 * ATKV_E_BUFFER. */
long atkv_key_build(char *out, size_t cap, const char *did, size_t did_n, const char *collection,
                    size_t collection_n, const char *rkey, size_t rkey_n);

/* A parsed key: the identifiers unescaped, NUL-terminated. */
struct atkv_key {
	char partition;
	char did[ATKV_DID_MAX + 1];
	char collection[ATKV_NSID_MAX + 1];
	char rkey[ATKV_RKEY_MAX + 1];
	size_t did_n, collection_n, rkey_n;
};

/* Parses a key (without the "$KV.record." subject prefix). Returns 0, or ATKV_E_KEY when it is
 * not exactly what atkv_key_build writes for its parts: wrong shape or escapes, identifiers that
 * are not valid, a partition that is not the DID's. *key is set only on success. */
int atkv_key_parse(const char *s, size_t n, struct atkv_key *key);

#ifdef __cplusplus
}
#endif

#endif
