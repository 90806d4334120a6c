/* listrepos.c — listRepos pages (see listrepos.h). */
#include "listrepos.h"

#include <atkv/error.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A cursor goes into a query string: only bytes that need no escaping are let through, so a
 * hostile server cannot inject parameters. */
static bool cursor_ok(const char *c)
{
	for (; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		      strchr("-._~:", *c)))
			return false;
	return true;
}

int atkv_listrepos_url(const char *service, const char *cursor, int limit, char *url, size_t url_n)
{
	size_t sn = strlen(service);
	while (sn && service[sn - 1] == '/')
		sn--;
	int w = snprintf(url, url_n, "%.*s/xrpc/com.atproto.sync.listRepos?limit=%d%s%s", (int)sn, service, limit,
	                 cursor && *cursor ? "&cursor=" : "", cursor && *cursor ? cursor : "");
	return w < 0 || (size_t)w >= url_n ? ATKV_E_BUFFER : 0;
}

int atkv_listrepos_parse(const char *json, size_t n, struct atkv_listrepos_page *page, size_t *bad, char *why,
                         size_t why_n)
{
	json_error_t jerr;
	json_t *doc = json_loadb(json, n, 0, &jerr);
	json_t *repos = json_object_get(doc, "repos");
	const char *cursor = json_string_value(json_object_get(doc, "cursor"));
	memset(page, 0, sizeof(*page));
	if (bad)
		*bad = 0;
	if (!json_is_array(repos) || (json_object_get(doc, "cursor") && !json_is_null(json_object_get(doc, "cursor")) && !cursor)) {
		snprintf(why, why_n, "not a listRepos page (%s)", doc ? "no repos array" : jerr.text);
		json_decref(doc);
		return ATKV_E_SYNTAX;
	}
	if (cursor && (strlen(cursor) >= sizeof(page->cursor) || !cursor_ok(cursor))) {
		snprintf(why, why_n, "a listRepos cursor that is too long or not URL-safe");
		json_decref(doc);
		return ATKV_E_SYNTAX;
	}
	snprintf(page->cursor, sizeof(page->cursor), "%s", cursor ? cursor : "");
	page->repos = json_array_size(repos) ? calloc(json_array_size(repos), sizeof(*page->repos)) : NULL;
	if (json_array_size(repos) && !page->repos) {
		json_decref(doc);
		return ATKV_E_NOMEM;
	}
	size_t i;
	json_t *r;
	json_array_foreach(repos, i, r) {
		const char *did = json_string_value(json_object_get(r, "did"));
		const char *rev = json_string_value(json_object_get(r, "rev"));
		const char *status = json_string_value(json_object_get(r, "status"));
		json_t *active = json_object_get(r, "active");
		if (!did || !atkv_syntax_did(did, strlen(did))) {
			if (bad)
				(*bad)++;
			continue;
		}
		struct atkv_listed_repo *e = &page->repos[page->count++];
		snprintf(e->did, sizeof(e->did), "%s", did);
		if (rev && atkv_syntax_tid(rev, strlen(rev)))
			snprintf(e->rev, sizeof(e->rev), "%s", rev);
		e->active = !json_is_false(active);
		snprintf(e->status, sizeof(e->status), "%s", status ? status : "");
	}
	json_decref(doc);
	return 0;
}

void atkv_listrepos_page_free(struct atkv_listrepos_page *page)
{
	free(page->repos);
	page->repos = NULL;
	page->count = 0;
}
