/* test-listrepos.c — listRepos pages (src/listrepos.c): the page URL with and without a cursor,
 * a page as the reference PDS answers it, inactive accounts, bad DIDs left out and counted, the
 * last page, and what is not a page (or carries a cursor that could inject a parameter). */
#include "listrepos.h"
#include "tap.h"

#include <atkv/error.h>

#include <string.h>

static int parse(const char *json, struct atkv_listrepos_page *p, size_t *bad)
{
	char why[256];
	return atkv_listrepos_parse(json, strlen(json), p, bad, why, sizeof(why));
}

int main(void)
{
	char url[512];
	tap_ok(atkv_listrepos_url("http://localhost:2583/", NULL, 1000, url, sizeof(url)) == 0 &&
	           !strcmp(url, "http://localhost:2583/xrpc/com.atproto.sync.listRepos?limit=1000"),
	       "the first page's URL: %s", url);
	tap_ok(atkv_listrepos_url("https://bsky.network", "1234:abc", 500, url, sizeof(url)) == 0 &&
	           !strcmp(url, "https://bsky.network/xrpc/com.atproto.sync.listRepos?limit=500&cursor=1234:abc"),
	       "a later page's URL: %s", url);
	tap_eq(atkv_listrepos_url("https://bsky.network", NULL, 500, url, 20), ATKV_E_BUFFER, "a URL too long for the buffer");

	struct atkv_listrepos_page p;
	size_t bad;
	int rc = parse("{\"cursor\":\"1764201600000::did:plc:b\",\"repos\":["
	               "{\"did\":\"did:plc:twdfc4yfvnvbb3bo5ywhrfzs\",\"head\":\"bafyx\",\"rev\":\"3n3cdu6nf3c2m\",\"active\":true},"
	               "{\"did\":\"did:plc:ogan3kpoi4pxetp53pku53te\",\"head\":\"bafyy\",\"rev\":\"3n3cdu6l2uc2m\",\"active\":false,"
	               "\"status\":\"takendown\"},"
	               "{\"did\":\"not a did\",\"rev\":\"3n3cdu6l2uc2m\"},"
	               "{\"did\":\"did:web:example.com\",\"rev\":\"bad rev\"}]}",
	               &p, &bad);
	tap_ok(rc == 0 && p.count == 3 && bad == 1, "a page: 3 repositories, 1 bad DID left out (%zu, %zu)", p.count, bad);
	tap_ok(!strcmp(p.repos[0].did, "did:plc:twdfc4yfvnvbb3bo5ywhrfzs") && !strcmp(p.repos[0].rev, "3n3cdu6nf3c2m") &&
	           p.repos[0].active,
	       "with DID, rev and active");
	tap_ok(!p.repos[1].active && !strcmp(p.repos[1].status, "takendown"), "an inactive account, with its status");
	tap_ok(p.repos[2].active && !p.repos[2].rev[0], "a rev that is not a TID is left empty; active when not said");
	tap_ok(!strcmp(p.cursor, "1764201600000::did:plc:b"), "the next page's cursor");
	atkv_listrepos_page_free(&p);
	rc = parse("{\"repos\":[]}", &p, &bad);
	tap_ok(rc == 0 && p.count == 0 && !p.cursor[0], "the last page: no cursor");
	atkv_listrepos_page_free(&p);
	tap_eq(parse("{\"error\":\"InternalServerError\"}", &p, &bad), ATKV_E_SYNTAX, "an error body: not a page");
	tap_eq(parse("not json", &p, &bad), ATKV_E_SYNTAX, "not JSON: not a page");
	tap_eq(parse("{\"cursor\":\"x&limit=1\",\"repos\":[]}", &p, &bad), ATKV_E_SYNTAX,
	       "a cursor that would add a query parameter: refused");
	tap_eq(parse("{\"cursor\":5,\"repos\":[]}", &p, &bad), ATKV_E_SYNTAX, "a cursor that is not a string: refused");
	return tap_done();
}
