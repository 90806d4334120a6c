/* test-backfill.c — backfilling repositories (src/backfill.c) into a real nats-server, from an
 * HTTP server of the test that plays the PLC directory and the PDS with the repositories the
 * reference PDS gave (tests/data/repo-*.car): every record lands with its value, Atkv-Cid and
 * Atkv-Rev, as listRecords says; a second run writes nothing; a record the live path deleted
 * or changed at a later revision stays as the live path left it; a repository the PDS does not
 * know, a 429 and a DID document without a PDS are told apart. */
#define _DEFAULT_SOURCE
#include "backfill.h"
#include "httpserver.h"
#include "natsserver.h"
#include "tap.h"

#include <atkv/atkv.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LATER "3zzzzzzzzzz2a"   /* a revision after any the reference PDS wrote */

static int port;
static json_t *accounts;      /* the lines of repo-expected.jsonl */
static jsCtx *js;

static json_t *account_of(const char *did)
{
	size_t i;
	json_t *a;
	json_array_foreach(accounts, i, a) if (!strcmp(json_string_value(json_object_get(a, "did")), did)) return a;
	return NULL;
}

/* The PLC directory (GET /DID) and the PDS (GET /xrpc/com.atproto.sync.getRepo?did=DID). */
static bool serve(int fd, const char *path, void *arg)
{
	(void)arg;
	char doc[1024];
	if (!strncmp(path, "/did:plc:", 9)) {
		const char *did = path + 1;
		if (!strcmp(did, "did:plc:nopdsnopdsnopdsnopdsnopd")) {
			int n = snprintf(doc, sizeof(doc), "{\"id\":\"%s\",\"service\":[]}", did);
			return httpserver_reply(fd, 200, "", doc, (size_t)n);
		}
		int n = snprintf(doc, sizeof(doc),
		                 "{\"id\":\"%s\",\"service\":[{\"id\":\"#atproto_pds\",\"type\":\"AtprotoPersonalDataServer\","
		                 "\"serviceEndpoint\":\"http://127.0.0.1:%d\"}]}",
		                 did, port);
		return httpserver_reply(fd, 200, "", doc, (size_t)n);
	}
	const char *q = "/xrpc/com.atproto.sync.getRepo?did=";
	if (!strncmp(path, q, strlen(q))) {
		const char *did = path + strlen(q);
		if (!strcmp(did, "did:plc:busybusybusybusybusybusyb"))
			return httpserver_reply(fd, 429, "Retry-After: 3\r\n", "{\"error\":\"RateLimitExceeded\"}", 29);
		json_t *a = account_of(did);
		if (!a)
			return httpserver_reply(fd, 400, "", "{\"error\":\"RepoNotFound\"}", 24);
		const char *handle = json_string_value(json_object_get(a, "handle"));
		char file[128];
		size_t n;
		snprintf(file, sizeof(file), "tests/data/repo-%.*s.car", (int)strcspn(handle, "."), handle);
		uint8_t *car = tap_read_file(tap_path(file), &n);
		bool ok = httpserver_reply(fd, 200, "Content-Type: application/vnd.ipld.car\r\n", car, n);
		free(car);
		return ok;
	}
	return httpserver_reply(fd, 404, "", "", 0);
}

/* The differences between the bucket and the account's records (value, Atkv-Cid, Atkv-Rev). */
static int differences(json_t *account)
{
	const char *did = json_string_value(json_object_get(account, "did"));
	const char *rev = json_string_value(json_object_get(account, "rev"));
	int bad = 0;
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(account, "records"), i, r) {
		const char *path = json_string_value(json_object_get(r, "path"));
		const char *slash = strchr(path, '/');
		char key[ATKV_KEY_MAX + 1];
		atkv_key_build(key, sizeof(key), did, strlen(did), path, (size_t)(slash - path), slash + 1, strlen(slash + 1));
		natsMsg *m = kv_last_msg(js, "record", key);
		const char *cid = NULL, *got_rev = NULL;
		json_error_t jerr;
		json_t *value = m ? json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, &jerr) : NULL;
		if (m) {
			natsMsgHeader_Get(m, "Atkv-Cid", &cid);
			natsMsgHeader_Get(m, "Atkv-Rev", &got_rev);
		}
		if (!value || !json_equal(value, json_object_get(r, "value")) || !cid ||
		    strcmp(cid, json_string_value(json_object_get(r, "cid"))) || !got_rev || strcmp(got_rev, rev)) {
			if (bad++ < 3)
				tap_note("%s %s differs", did, path);
		}
		json_decref(value);
		natsMsg_Destroy(m);
	}
	return bad;
}

static int run(struct atkv_backfill *b, const char *did, struct atkv_backfill_result *res, char *why, size_t why_n)
{
	why[0] = '\0';
	return atkv_backfill_repo(b, did, res, why, why_n);
}

int main(void)
{
	struct nats_server server = {0};
	natsConnection *nc = NULL;
	size_t n;
	char *text = (char *)tap_read_file(tap_path("tests/data/repo-expected.jsonl"), &n);
	accounts = json_array();
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		json_error_t jerr;
		json_array_append_new(accounts, json_loads(line, 0, &jerr));
	}
	free(text);
	if (nats_server_start(&server, 0) || natsConnection_ConnectTo(&nc, server.url) != NATS_OK ||
	    natsConnection_JetStream(&js, nc, NULL) != NATS_OK || kv_bucket_create(js, "record")) {
		printf("Bail out! cannot set up nats-server\n");
		return 1;
	}
	struct httpserver *srv = httpserver_start(serve, NULL, &port);
	char plc[64], why[512];
	snprintf(plc, sizeof(plc), "http://127.0.0.1:%d", port);
	struct atkv_backfill_options o = {.plc = plc, .timeout_ms = 5000, .max_car = 64 << 20, .max_value = 1 << 20};
	struct atkv_backfill *b = NULL;
	tap_ok(srv && atkv_backfill_new(nc, &o, &b, why, sizeof(why)) == 0, "a backfill context, a PLC and PDS on port %d", port);

	struct atkv_backfill_result res;
	size_t i;
	json_t *a;
	json_array_foreach(accounts, i, a) {
		const char *did = json_string_value(json_object_get(a, "did"));
		size_t records = json_array_size(json_object_get(a, "records"));
		int rc = run(b, did, &res, why, sizeof(why));
		tap_ok(rc == 0 && res.records == records && res.written == records && !res.kept && !res.skipped &&
		           !strcmp(res.rev, json_string_value(json_object_get(a, "rev"))),
		       "%s: %llu records written at rev %s %s", json_string_value(json_object_get(a, "handle")),
		       (unsigned long long)res.written, res.rev, why);
		tap_eq(differences(a), 0, "%s: every record in the bucket as listRecords gives it, with Atkv-Cid and Atkv-Rev",
		       json_string_value(json_object_get(a, "handle")));
	}

	json_t *ann = json_array_get(accounts, 0);
	const char *did = json_string_value(json_object_get(ann, "did"));
	int rc = run(b, did, &res, why, sizeof(why));
	tap_ok(rc == 0 && res.written == 0 && res.kept == res.records, "the same repository again: nothing written (%llu kept)",
	       (unsigned long long)res.kept);

	/* The live path deletes one record and changes another, later than the repository's rev. */
	json_t *records = json_object_get(ann, "records");
	const char *gone = json_string_value(json_object_get(json_array_get(records, 0), "path"));
	const char *changed = json_string_value(json_object_get(json_array_get(records, 1), "path"));
	char key[ATKV_KEY_MAX + 1];
	const char *slash = strchr(gone, '/');
	atkv_key_build(key, sizeof(key), did, strlen(did), gone, (size_t)(slash - gone), slash + 1, strlen(slash + 1));
	natsMsg *m = NULL;
	struct atkv_record_meta later = {.seq = 1, .rev = LATER, .rev_n = strlen(LATER)};
	atkv_record_msg(&m, "record", key, NULL, 0, true, &later, NULL);
	js_PublishMsg(NULL, js, m, NULL, NULL);
	natsMsg_Destroy(m);
	char key2[ATKV_KEY_MAX + 1];
	slash = strchr(changed, '/');
	atkv_key_build(key2, sizeof(key2), did, strlen(did), changed, (size_t)(slash - changed), slash + 1, strlen(slash + 1));
	atkv_record_msg(&m, "record", key2, "{\"live\":true}", 13, false, &later, NULL);
	js_PublishMsg(NULL, js, m, NULL, NULL);
	natsMsg_Destroy(m);
	rc = run(b, did, &res, why, sizeof(why));
	natsMsg *g = kv_last_msg(js, "record", key), *c = kv_last_msg(js, "record", key2);
	const char *op = NULL;
	if (g)
		natsMsgHeader_Get(g, "KV-Operation", &op);
	tap_ok(rc == 0 && op && !strcmp(op, "DEL"), "a record deleted live at a later rev is not resurrected");
	tap_ok(c && natsMsg_GetDataLength(c) == 13 && !memcmp(natsMsg_GetData(c), "{\"live\":true}", 13),
	       "a record changed live at a later rev keeps the live value");
	natsMsg_Destroy(g);
	natsMsg_Destroy(c);

	rc = run(b, "did:plc:unknownunknownunknownunkn", &res, why, sizeof(why));
	tap_ok(rc == ATKV_E_ARG && res.http_status == 400 && strstr(why, "RepoNotFound"), "a repository the PDS does not know: %s",
	       why);
	rc = run(b, "did:plc:busybusybusybusybusybusyb", &res, why, sizeof(why));
	tap_ok(rc == ATKV_E_TIMEOUT && res.http_status == 429 && res.retry_after_s == 3, "a 429: to try again after 3 s (%s)",
	       why);
	rc = run(b, "did:plc:nopdsnopdsnopdsnopdsnopd", &res, why, sizeof(why));
	tap_ok(rc == ATKV_E_SYNTAX && strstr(why, "no #atproto_pds"), "a DID document without a PDS: %s", why);
	rc = run(b, "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK", &res, why, sizeof(why));
	tap_ok(rc != 0 && strstr(why, "no DID document address"), "a did:key: %s", why);

	atkv_backfill_free(b);
	httpserver_stop(srv);
	json_decref(accounts);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_server_destroy(&server);
	return tap_done();
}
