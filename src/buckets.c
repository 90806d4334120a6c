/* buckets.c — creating and checking atkv's key-value buckets (see buckets.h). A KV bucket is
 * the JetStream stream KV_<name>; its settings are read back from the stream's configuration. */
#include "buckets.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct bucket {
	const char *name;
	const char *description;
	bool limited;   /* takes the record limits (max bytes, max age) */
};

static const struct bucket buckets[] = {
	{ATKV_BUCKET_RECORD, "atkv: every AT Protocol record, by partition.collection.did.rkey", true},
	{ATKV_BUCKET_CURSOR, "atkv: firehose cursors (key firehose: last seq fully stored)", false},
	{ATKV_BUCKET_ACCOUNT, "atkv: account status and handle, by escaped DID", false},
	{ATKV_BUCKET_REPO, "atkv: each repository's last verified commit (rev, data) and sync status, by escaped DID", false},
};

static void config_for(const struct bucket *b, const struct atkv_bucket_limits *l, kvConfig *c)
{
	kvConfig_Init(c);
	c->Bucket = b->name;
	c->Description = b->description;
	c->History = 1;
	c->StorageType = js_FileStorage;
	c->Replicas = l->replicas;
	c->MaxBytes = b->limited ? l->record_max_bytes : -1;
	c->TTL = b->limited ? l->record_max_age_s * 1000 : 0;
}

/* Appends "; " and a formatted difference to why. */
static void differs(char *why, size_t why_n, bool *first, const char *name, const char *what,
                    long long have, long long want)
{
	size_t len = strlen(why);
	if (len + 1 >= why_n)
		return;
	snprintf(why + len, why_n - len, "%sbucket %s: %s is %lld, atkv is configured for %lld",
	         *first ? "" : "; ", name, what, have, want);
	*first = false;
}

static int check(jsCtx *js, const struct bucket *b, const kvConfig *want, char *why, size_t why_n,
                 bool *first)
{
	char stream[64];
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	snprintf(stream, sizeof(stream), "KV_%s", b->name);
	natsStatus s = js_GetStreamInfo(&si, js, stream, NULL, &jerr);
	if (s != NATS_OK) {
		snprintf(why, why_n, "bucket %s: cannot read its stream %s: %s", b->name, stream,
		         natsStatus_GetText(s));
		return ATKV_BUCKETS_ERROR;
	}
	const jsStreamConfig *c = si->Config;
	int rc = ATKV_BUCKETS_OK;
	/* Limits are compared in the stream's units: MaxAge in nanoseconds, MaxBytes in bytes. */
	struct {
		const char *what;
		long long have, want;
	} fields[] = {
		{"history", c->MaxMsgsPerSubject, want->History},
		{"replicas", c->Replicas, want->Replicas},
		{"max bytes", c->MaxBytes, want->MaxBytes},
		{"max age (seconds)", c->MaxAge / 1000000000LL, want->TTL / 1000},
		{"file storage (1 = yes)", c->Storage == js_FileStorage, 1},
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (fields[i].have != fields[i].want) {
			differs(why, why_n, first, b->name, fields[i].what, fields[i].have, fields[i].want);
			rc = ATKV_BUCKETS_MISMATCH;
		}
	}
	jsStreamInfo_Destroy(si);
	return rc;
}

int atkv_buckets_ensure(jsCtx *js, const struct atkv_bucket_limits *limits, char *why, size_t why_n)
{
	bool first = true;
	int result = ATKV_BUCKETS_OK;
	why[0] = '\0';
	for (size_t i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++) {
		const struct bucket *b = &buckets[i];
		kvConfig want;
		kvStore *kv = NULL;
		config_for(b, limits, &want);
		natsStatus s = js_KeyValue(&kv, js, b->name);
		if (s == NATS_NOT_FOUND) {
			s = js_CreateKeyValue(&kv, js, &want);
			if (s != NATS_OK) {
				snprintf(why, why_n, "cannot create bucket %s: %s (%s)", b->name,
				         natsStatus_GetText(s), nats_GetLastError(NULL));
				return ATKV_BUCKETS_ERROR;
			}
			kvStore_Destroy(kv);
			continue;
		}
		if (s != NATS_OK) {
			snprintf(why, why_n, "cannot open bucket %s: %s (%s)", b->name, natsStatus_GetText(s),
			         nats_GetLastError(NULL));
			return ATKV_BUCKETS_ERROR;
		}
		kvStore_Destroy(kv);
		int rc = check(js, b, &want, why, why_n, &first);
		if (rc == ATKV_BUCKETS_ERROR)
			return rc;
		if (rc == ATKV_BUCKETS_MISMATCH)
			result = rc;
	}
	return result;
}
