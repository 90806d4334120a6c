/* signedfeed.h — a firehose of signed commits made by a test or a benchmark, and what a PLC
 * directory and a PDS would serve for it: accounts with keys of their own (testkey.h), each
 * commit creating one like in its account's repository — a version 3 commit over the whole
 * MST, signed, with prevData the tree before it — in a frame that carries the commit, the new
 * record and every node of the tree (more than the proof needs, which is allowed). */
#ifndef ATKV_TESTS_SIGNEDFEED_H
#define ATKV_TESTS_SIGNEDFEED_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct signedfeed;

/* accounts accounts with no records yet; seq starts after first_seq. */
struct signedfeed *sf_new(size_t accounts, int64_t first_seq);
void sf_free(struct signedfeed *f);

size_t sf_accounts(const struct signedfeed *f);
const char *sf_did(const struct signedfeed *f, size_t i);
/* The account of did, or -1. */
long sf_find(const struct signedfeed *f, const char *did);

/* The next #commit frame (of account seq % accounts) into out (replaced); its seq is returned. */
int64_t sf_commit(struct signedfeed *f, struct atkv_buf *out);

/* A #sync frame stating account i's repository as it is now (its commit, signed, in the
 * blocks) into out (replaced); its seq is returned. */
int64_t sf_sync(struct signedfeed *f, size_t i, struct atkv_buf *out);

/* Account i's DID document (its #atproto key, its PDS at pds) into out (replaced). */
void sf_did_doc(const struct signedfeed *f, size_t i, const char *pds, struct atkv_buf *out);

/* The CAR of account i's repository as it is now (getRepo), into out (replaced). */
void sf_repo_car(struct signedfeed *f, size_t i, struct atkv_buf *out);

/* The same, its commit at a rev of time at_us (µs since the epoch): a PDS whose clock is off. */
void sf_repo_car_at(struct signedfeed *f, size_t i, int64_t at_us, struct atkv_buf *out);

/* Writes frames[0..n) as a capture file (capture.h). Returns 0 or -1. */
int sf_write_capture(const char *path, const struct atkv_buf *frames, size_t n);

#endif
