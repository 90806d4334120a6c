/* fuzz-repo.c — libFuzzer target: a whole repository CAR as getRepo returns it (commit, MST
 * walk, record paths, record JSON), read as the DID its commit would have to name. */
#include "repo.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count(void *arg, const struct atkv_repo_record *r)
{
	(*(size_t *)arg) += r->json ? r->json_n : 1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct atkv_repo *rp;
	if (!rp && !(rp = atkv_repo_new()))
		abort();
	/* The seeds' accounts' DIDs are unknown here: their commits fail the DID check unless
	 * the fuzzer keeps one; the walk is reached with the one below. */
	static const char did[] = "did:plc:twdfc4yfvnvbb3bo5ywhrfzs";
	struct atkv_commit c;
	size_t seen = 0;
	atkv_repo_read(rp, data, size, did, sizeof(did) - 1, &c, count, &seen, NULL);
	return 0;
}
