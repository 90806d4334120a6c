/* fuzz-listing.c — libFuzzer target: what servers answer a backfill before it fetches a
 * repository, a listRepos page and a DID document (JSON from anywhere on the Internet). */
#include "diddoc.h"
#include "listrepos.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct atkv_listrepos_page page;
	size_t bad = 0;
	char why[256], url[ATKV_DIDDOC_URL_MAX];
	if (atkv_listrepos_parse((const char *)data, size, &page, &bad, why, sizeof(why)) == 0)
		atkv_listrepos_page_free(&page);
	atkv_diddoc_pds((const char *)data, size, "did:plc:ewvi7nxzyoun6zhxrhs64oiz", url, sizeof(url), why, sizeof(why));
	atkv_diddoc_pds((const char *)data, size, "did:web:example.com", url, sizeof(url), why, sizeof(why));
	return 0;
}
