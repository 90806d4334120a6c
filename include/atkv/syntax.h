/* atkv/syntax.h — identifier syntax of the atproto specs (DID, handle, NSID, record key, TID, AT-URI),
 * checked exactly as the interop test suite's syntax lists expect. Nothing is resolved. */
#ifndef ATKV_SYNTAX_H
#define ATKV_SYNTAX_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATKV_DID_MAX 2048
#define ATKV_HANDLE_MAX 253
#define ATKV_NSID_MAX 317
#define ATKV_RKEY_MAX 512
#define ATKV_TID_LEN 13
#define ATKV_ATURI_MAX 8192

/* Each returns true when s[0..n) is valid. None can fail otherwise. */
bool atkv_syntax_did(const char *s, size_t n);
bool atkv_syntax_handle(const char *s, size_t n);
bool atkv_syntax_nsid(const char *s, size_t n);
bool atkv_syntax_rkey(const char *s, size_t n);
bool atkv_syntax_tid(const char *s, size_t n);

/* The parts of a valid AT-URI, as views into it; absent parts have n == 0. */
struct atkv_aturi {
	const char *authority, *collection, *rkey;
	size_t authority_n, collection_n, rkey_n;
};

/* True when s[0..n) is an AT-URI in atproto's restricted form
 * at://AUTHORITY[/COLLECTION[/RKEY]] (authority a DID or handle, collection an NSID, no query
 * or fragment); fills *parts when it is and parts is not NULL. */
bool atkv_syntax_aturi(const char *s, size_t n, struct atkv_aturi *parts);

#ifdef __cplusplus
}
#endif

#endif
