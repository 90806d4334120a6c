/* signedkeys.h — the accounts of tests/data/signed-capture.bin and their signing keys, read from
 * the DID documents recorded beside it (signed-capture-docs.jsonl), for the test and the
 * benchmark that verify its commits. */
#ifndef ATKV_TESTS_SIGNEDKEYS_H
#define ATKV_TESTS_SIGNEDKEYS_H

#include <stddef.h>

#include "firehose.h"
#include "sigverify.h"

#define SIGNED_KEYS_MAX 64

struct signed_keys {
	int n;
	struct {
		char did[64];
		struct atkv_sigkey *key;
	} a[SIGNED_KEYS_MAX];
};

/* Reads the documents text[0..n), one a line; those without a usable #atproto key are left out. */
void signed_keys_read(struct signed_keys *k, const char *text, size_t n);
/* The key of did, or NULL. */
const struct atkv_sigkey *signed_keys_of(const struct signed_keys *k, const struct atkv_str *did);
void signed_keys_free(struct signed_keys *k);

#endif
