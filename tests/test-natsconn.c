/* test-natsconn.c — what the NATS connection code does without a server: an NKey seed's public
 * key (against a vector computed with Python's cryptography), its refusals (which never echo
 * the seed), and server lists shown without their secrets. tests/test-natsauth.sh connects to
 * servers that require each kind of authentication. */
#include "natsconn.h"
#include "nkey.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEED "SUAACAQDAQCQMBYIBEFAWDANBYHRAEISCMKBKFQXDAMRUGY4DUPB6IC5CQ"
#define PUB "UB43KVROR7TFJ6KAPCYRF2FJROTZAH4FHLTJLPWX4DRZCC5NASLGJBFE"

static void test_nkey(void)
{
	char pub[ATKV_NKEY_PUBLIC_LEN + 1] = "", why[256] = "";
	tap_ok(atkv_nkey_public_from_seed(SEED, strlen(SEED), pub, why, sizeof(why)) == 0 && !strcmp(pub, PUB),
	       "the seed of bytes 1..32 gives the public key Python's cryptography gives (%s)", pub);
	char bad[] = SEED;
	bad[20] = bad[20] == 'A' ? 'B' : 'A';
	tap_ok(atkv_nkey_public_from_seed(bad, strlen(bad), pub, why, sizeof(why)) == -1 && strstr(why, "checksum") &&
	       !strstr(why, "SUAAC"), "one character changed: refused by the checksum, the seed not repeated (%s)", why);
	tap_ok(atkv_nkey_public_from_seed("SAAXYZ", 6, pub, why, sizeof(why)) == -1 && strstr(why, "58 characters"),
	       "not a user seed: refused (%s)", why);
	char path[] = "/tmp/atkv-test-nkey.XXXXXX";
	int fd = mkstemp(path);
	bool written = fd >= 0 && write(fd, SEED "\n", sizeof(SEED)) == (ssize_t)sizeof(SEED);
	if (fd >= 0)
		close(fd);
	pub[0] = '\0';
	tap_ok(written && atkv_nkey_public_from_seed_file(path, pub, why, sizeof(why)) == 0 && !strcmp(pub, PUB),
	       "from a seed file ending in a newline");
	unlink(path);
	tap_ok(atkv_nkey_public_from_seed_file(path, pub, why, sizeof(why)) == -1 && strstr(why, path),
	       "a missing seed file: named (%s)", why);
}

static void test_shown(void)
{
	static const struct {
		const char *urls, *shown;
	} cases[] = {
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://alice:s3cret@127.0.0.1:4222", "nats://***@127.0.0.1:4222"},
		{"nats://t0ken@h:4222,tls://bob:pw@k:4443,nats://plain:1", "nats://***@h:4222,tls://***@k:4443,nats://plain:1"},
		{"nats://h:4222/path@x", "nats://h:4222/path@x"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[256];
		atkv_nats_urls_shown(cases[i].urls, out, sizeof(out));
		tap_ok(!strcmp(out, cases[i].shown), "shown: %s -> %s", cases[i].urls, out);
	}
	char small[12];
	atkv_nats_urls_shown("nats://alice:s3cret@127.0.0.1:4222", small, sizeof(small));
	tap_ok(strlen(small) < sizeof(small) && !strstr(small, "s3c") && !strstr(small, "alice"),
	       "cut short, still nothing of the secret (%s)", small);
}

int main(void)
{
	test_nkey();
	test_shown();
	return tap_done();
}
