/* test-accounts.c — merging #identity and #account events into bucket `account` values, and
 * the cache that keeps every DID written recently (by last write, not first). */
#include "accounts.h"
#include "err.h"
#include "tap.h"

#include <jansson.h>
#include <string.h>

static struct atkv_str S(const char *s) { return (struct atkv_str){s, s ? strlen(s) : 0}; }

static json_t *update(struct atkv_accounts *a, struct atkv_event *ev)
{
	const char *json;
	size_t len;
	json_error_t jerr;
	if (atkv_accounts_update(a, ev, &json, &len))
		return NULL;
	return json_loadb(json, len, 0, &jerr);
}

static struct atkv_event identity(const char *did, const char *handle, int64_t seq)
{
	return (struct atkv_event){.type = ATKV_EVENT_IDENTITY, .did = S(did), .handle = S(handle), .seq = seq,
	                           .time = S("2024-01-01T00:00:00Z")};
}

static struct atkv_event account(const char *did, bool active, const char *status, int64_t seq)
{
	return (struct atkv_event){.type = ATKV_EVENT_ACCOUNT, .did = S(did), .active = active,
	                           .status = S(status), .seq = seq, .time = S("2024-01-01T00:00:01Z")};
}

int main(void)
{
	struct atkv_accounts *a = NULL;
	tap_eq(atkv_accounts_new(NULL, 2, &a), 0, "cache of two writes");
	struct atkv_event ev = identity("did:plc:a", "alice.test", 1);
	json_t *v = update(a, &ev);
	tap_ok(v && !strcmp(json_string_value(json_object_get(v, "did")), "did:plc:a") &&
	       !strcmp(json_string_value(json_object_get(v, "handle")), "alice.test") &&
	       json_integer_value(json_object_get(v, "seq")) == 1 && !json_object_get(v, "active"),
	       "#identity gives did, handle, seq, time; active stays unknown");
	json_decref(v);
	ev = account("did:plc:a", false, "takendown", 2);
	v = update(a, &ev);
	tap_ok(v && !strcmp(json_string_value(json_object_get(v, "handle")), "alice.test") &&
	       json_is_false(json_object_get(v, "active")) &&
	       !strcmp(json_string_value(json_object_get(v, "status")), "takendown") &&
	       json_integer_value(json_object_get(v, "seq")) == 2,
	       "#account merges active and status, keeping the handle");
	json_decref(v);
	ev = account("did:plc:a", true, NULL, 3);
	v = update(a, &ev);
	tap_ok(v && json_is_true(json_object_get(v, "active")) && !json_object_get(v, "status"),
	       "an #account without status removes it");
	json_decref(v);

	/* Writes: a, a, a (above), then b, a, c: a was written after b, so b leaves first. */
	ev = identity("did:plc:b", "bob.test", 4);
	json_decref(update(a, &ev));
	ev = identity("did:plc:a", "alice2.test", 5);
	json_decref(update(a, &ev));
	ev = identity("did:plc:c", "carol.test", 6);
	json_decref(update(a, &ev));
	ev = account("did:plc:a", true, NULL, 7);
	v = update(a, &ev);
	tap_ok(v && json_object_get(v, "handle") && !strcmp(json_string_value(json_object_get(v, "handle")), "alice2.test"),
	       "a DID written recently stays cached though it was first in long ago");
	json_decref(v);
	ev = account("did:plc:b", true, NULL, 8);
	v = update(a, &ev);
	tap_ok(v && !json_object_get(v, "handle"), "the DID not written for the longest was evicted");
	json_decref(v);
	struct atkv_event commit = {.type = ATKV_EVENT_COMMIT};
	const char *json;
	size_t len;
	tap_eq(atkv_accounts_update(a, &commit, &json, &len), ATKV_E_FRAME, "other event types are refused");
	atkv_accounts_free(a);
	atkv_accounts_free(NULL);
	return tap_done();
}
