/* accounts.h — values of bucket `account` (DESIGN.md): {"did", "handle", "active", "status",
 * "seq", "time"}, merged from #identity (handle) and #account (active, status) events; a field
 * is absent while unknown. The last value written for each recent DID is cached (first in,
 * first out by last write), so a merge never reads a value still in flight; older ones are
 * read from the bucket. capacity must exceed the writes that can be in flight. */
#ifndef ATKV_ACCOUNTS_H
#define ATKV_ACCOUNTS_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>

#include "firehose.h"

struct atkv_accounts;

/* kv is bucket `account` (borrowed; may be NULL to never read it). capacity bounds the cache
 * and must exceed the writes that can be in flight. Returns 0 or ATKV_E_NOMEM. */
int atkv_accounts_new(kvStore *kv, size_t capacity, struct atkv_accounts **out);
void atkv_accounts_free(struct atkv_accounts *a);

/* The new value for the #identity or #account event ev, as compact JSON owned by a (valid until
 * the next call). Returns 0, ATKV_E_FRAME when ev is another type, ATKV_E_NATS when reading the
 * stored value failed (not when it is absent), or ATKV_E_NOMEM. */
int atkv_accounts_update(struct atkv_accounts *a, const struct atkv_event *ev, const char **json,
                         size_t *len);

/* For a backfill, which learns of accounts from listRepos and getRepo rather than events:
 * creates did's value {"did", "active"[, "status"]} in kv (bucket `account`) unless the key
 * holds one already, which came from the firehose and knows better. Returns 0 (also when the
 * key was taken), or ATKV_E_NATS. */
int atkv_accounts_create(kvStore *kv, const char *did, bool active, const char *status);

#endif
