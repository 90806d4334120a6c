/* sigverify.h — atproto's ECDSA signatures checked as its cryptography spec has them: over the
 * SHA-256 of the message, 64 bytes r||s (DER is refused), s in the low half of the curve order
 * (high-S is refused), on P-256 or secp256k1, with libcrypto. A key is loaded once (its point is
 * checked to be on its curve then) and verifies any number of messages, from any thread. */
#ifndef ATKV_SIGVERIFY_H
#define ATKV_SIGVERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "didkey.h"

struct atkv_sigkey;

/* Returns 0 with *out (free with atkv_sigkey_free), ATKV_E_SIGNATURE when the point is not on
 * the curve, or ATKV_E_NOMEM. */
int atkv_sigkey_load(const struct atkv_pubkey *k, struct atkv_sigkey **out);
/* The key as it was loaded. */
const struct atkv_pubkey *atkv_sigkey_pub(const struct atkv_sigkey *key);
/* One more holder of key (each holder frees it once); returns key. */
struct atkv_sigkey *atkv_sigkey_ref(struct atkv_sigkey *key);
void atkv_sigkey_free(struct atkv_sigkey *key);

/* Returns 0 when sig[0..sig_n) is key's signature of msg[0..n), else ATKV_E_SIGNATURE (also for
 * a signature not 64 bytes long or with a high S), or ATKV_E_NOMEM. */
int atkv_sig_verify(const struct atkv_sigkey *key, const uint8_t *msg, size_t n, const uint8_t *sig, size_t sig_n);

#endif
