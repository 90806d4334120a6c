/* commit.h — a repository commit (atproto repository spec, version 3): the signed object at the
 * root of a repo's CAR that names its DID, its MST root and its revision. Decoded and checked
 * here; its signature is verified elsewhere. */
#ifndef ATKV_COMMIT_H
#define ATKV_COMMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <atkv/syntax.h>

#include "cid.h"
#include "buf.h"
#include "err.h"

struct atkv_commit {
	const char *did;            /* "did": the repository's DID (points into the block) */
	size_t did_n;
	struct atkv_cid data;       /* "data": the MST root */
	char rev[ATKV_TID_LEN + 1]; /* "rev": the revision, a TID */
	struct atkv_cid prev;       /* "prev": the previous commit, when has_prev */
	bool has_prev;
	const uint8_t *sig;         /* "sig": the signature's bytes */
	size_t sig_n;
	/* Where the block's map entries start, how many there are, and where the "sig" entry (key
	 * and value) lies: what atkv_commit_unsigned leaves out. */
	size_t entries_at, sig_from, sig_to;
	uint64_t fields;
};

/* Decodes the commit block p[0..n). Fields besides the six of version 3 are skipped (they are
 * covered by the signature, not by this decoding). Returns 0; ATKV_E_FRAME (err->where names
 * the field) when a field is missing, of the wrong type, or version is not 3; ATKV_E_SYNTAX
 * for a DID or rev that is not valid; or a DAG-CBOR error. The result points into p. */
int atkv_commit_parse(const uint8_t *p, size_t n, struct atkv_commit *c, struct atkv_err *err);

/* The unsigned commit its signature covers: the block p[0..n) that c was parsed from, without
 * its "sig" entry and with a map one field shorter. It stays canonical DAG-CBOR: the other
 * entries keep their order. Written into out (emptied first). Returns 0 or ATKV_E_NOMEM. */
int atkv_commit_unsigned(const uint8_t *p, size_t n, const struct atkv_commit *c, struct atkv_buf *out);

#endif
