/* fakepds.h — a PDS and PLC directory of the tests and benchmarks, on a loopback port: the
 * repositories it holds are built here (likes, posts and follows, an MST and a commit each,
 * tests/repobuild.h) and served by listRepos and getRepo, their DID documents by GET /DID.
 * What the backfill should store is known record by record, to check the store against. */
#ifndef ATKV_TESTS_FAKEPDS_H
#define ATKV_TESTS_FAKEPDS_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#include <nats/nats.h>

struct fakepds_record {
	char path[64];            /* "collection/rkey" */
	struct atkv_buf cbor;
	char *json;               /* what bucket record should hold */
};

struct fakepds_repo {
	char did[40];
	char rev[14];
	struct fakepds_record *records; /* sorted by path */
	size_t n;
	struct atkv_buf car;
};

struct fakepds {
	struct fakepds_repo *repos;
	long n_repos;
	size_t car_bytes;
	int port;
	char url[64];             /* http://127.0.0.1:PORT: PDS, PLC and listRepos source at once */
	int delay_ms;             /* each getRepo answer waits this long */
	int page_limit;           /* listRepos pages hold at most this many (0: as asked) */
	long busy_repo;           /* getRepo of this repository answers 429 (Retry-After: 1) ... */
	int busy_times;           /* ... this many times first */
	/* Counted as served: */
	int list_requests, get_requests;
	char first_cursor[32];    /* of the first listRepos request ("" when it had none) */
	struct httpserver *http;
};

/* Builds `repos` repositories holding `records` records between them and starts serving them
 * with `threads` connections at once. Returns NULL when it cannot listen. */
struct fakepds *fakepds_start(long repos, long records, int threads);
void fakepds_stop(struct fakepds *p);

/* The key (atkv_key_build) of record r of repository rp. */
void fakepds_key(const struct fakepds_repo *rp, const struct fakepds_record *r, char *key, size_t key_n);

/* The records of the repositories missing from bucket `record` (on js) or held with another
 * value or without their Atkv-Rev; the first few are printed as TAP notes. */
long fakepds_wrong_in_store(const struct fakepds *p, jsCtx *js);

#endif
