/* buckets.h — the JetStream key-value buckets atkv writes (DESIGN.md "Contracts"): their names
 * and settings live here and nowhere else, and atkv_buckets_ensure creates them or checks that
 * existing ones match. */
#ifndef ATKV_BUCKETS_H
#define ATKV_BUCKETS_H

#include <nats/nats.h>
#include <stddef.h>
#include <stdint.h>

#define ATKV_BUCKET_RECORD "record"
#define ATKV_BUCKET_CURSOR "cursor"
#define ATKV_BUCKET_ACCOUNT "account"
/* Each repository's verified head (repohead.h). */
#define ATKV_BUCKET_REPO "repo"
/* What atkv-backfill has done (repostate.h); made by it, not by atkv_buckets_ensure. */
#define ATKV_BUCKET_BACKFILL "backfill"

/* Settings the operator chooses (configuration); everything else is fixed by the contract. */
struct atkv_bucket_limits {
	int replicas;          /* 1 on one server, 3 on a cluster */
	int64_t record_max_bytes;  /* -1: unlimited */
	int64_t record_max_age_s;  /* 0: records never expire */
};

enum {
	ATKV_BUCKETS_OK = 0,
	ATKV_BUCKETS_MISMATCH = -1,  /* a bucket exists with other settings: a configuration error */
	ATKV_BUCKETS_ERROR = -2,     /* NATS failed (not reachable, no JetStream, ...) */
};

/* Creates each bucket that is missing; checks each existing one against the contract and the
 * limits. Returns ATKV_BUCKETS_OK, or MISMATCH with every difference in why ("bucket record:
 * history is 5, atkv needs 1; ..."), or ERROR with NATS's reason in why. */
int atkv_buckets_ensure(jsCtx *js, const struct atkv_bucket_limits *limits, char *why, size_t why_n);

#endif
