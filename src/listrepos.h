/* listrepos.h — one page of com.atproto.sync.listRepos (a relay's or a PDS's list of the
 * repositories it holds): the address of a page, and its JSON read into DIDs with their latest
 * revision and whether the account is active, plus the cursor of the next page. */
#ifndef ATKV_LISTREPOS_H
#define ATKV_LISTREPOS_H

#include <stdbool.h>
#include <stddef.h>

#include <atkv/syntax.h>

struct atkv_listed_repo {
	char did[ATKV_DID_MAX + 1];
	char rev[ATKV_TID_LEN + 1];   /* "" when the page gave none */
	bool active;                  /* false: deactivated, taken down, deleted... (status says) */
	char status[32];
};

struct atkv_listrepos_page {
	struct atkv_listed_repo *repos;  /* malloc'd; free with atkv_listrepos_page_free */
	size_t count;
	char cursor[256];                /* "" on the last page */
};

/* Writes the URL of the page after cursor (NULL or "": the first) of service (an origin, no
 * trailing slash needed) into url. Returns 0, or ATKV_E_BUFFER. */
int atkv_listrepos_url(const char *service, const char *cursor, int limit, char *url, size_t url_n);

/* Reads a page's JSON. Entries whose DID is not valid are left out (counted in *bad when bad
 * is not NULL). Returns 0, ATKV_E_SYNTAX with why when the JSON is not a listRepos page, or
 * ATKV_E_NOMEM. */
int atkv_listrepos_parse(const char *json, size_t n, struct atkv_listrepos_page *page, size_t *bad, char *why,
                         size_t why_n);
void atkv_listrepos_page_free(struct atkv_listrepos_page *page);

#endif
