/* test-repo.c — reading whole repositories (src/repo.c) as the reference PDS serves them
 * (tests/data/repo-*.car, recorded by tests/reference/repo-capture.js): every record, its CID
 * and its JSON value equal to what com.atproto.repo.listRecords says, the commit's rev equal to
 * getLatestCommit's; a record whose block is corrupted skipped alone; another DID's repository
 * and a cut CAR refused. */
#include "repo.h"
#include "tap.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct got {
	json_t *records;   /* path → {"cid", "value"} */
	int skipped, last_error;
	char last_path[300];
};

static int collect(void *arg, const struct atkv_repo_record *r)
{
	struct got *g = arg;
	char path[300], cid[ATKV_CID_STR_MAX];
	snprintf(path, sizeof(path), "%.*s", (int)r->path_n, r->path);
	if (!r->json) {
		g->skipped++;
		g->last_error = r->error;
		snprintf(g->last_path, sizeof(g->last_path), "%s", path);
		return 0;
	}
	json_error_t jerr;
	json_t *value = json_loadb(r->json, r->json_n, 0, &jerr);
	atkv_cid_format(r->cid, cid);
	json_object_set_new(g->records, path, json_pack("{s:s,s:o*}", "cid", cid, "value", value));
	return 0;
}

static int read_repo(struct atkv_repo *rp, const uint8_t *car, size_t n, const char *did, struct atkv_commit *c,
                     struct got *g, struct atkv_err *err)
{
	g->records = json_object();
	g->skipped = 0;
	return atkv_repo_read(rp, car, n, did, strlen(did), c, collect, g, err);
}

/* The differences between what was read and the account's line of repo-expected.jsonl. */
static int differences(const struct got *g, json_t *want)
{
	int bad = 0;
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(want, "records"), i, r) {
		const char *path = json_string_value(json_object_get(r, "path"));
		json_t *got = json_object_get(g->records, path);
		if (!got || !json_equal(json_object_get(got, "cid"), json_object_get(r, "cid")) ||
		    !json_equal(json_object_get(got, "value"), json_object_get(r, "value"))) {
			if (bad++ < 3) {
				char *text = got ? json_dumps(got, JSON_COMPACT) : NULL;
				tap_note("%s: got %s", path, text ? text : "nothing");
				free(text);
			}
		}
	}
	if (json_object_size(g->records) != json_array_size(json_object_get(want, "records")))
		bad++;
	return bad;
}

int main(void)
{
	size_t n;
	char *text = (char *)tap_read_file(tap_path("tests/data/repo-expected.jsonl"), &n);
	struct atkv_repo *rp = atkv_repo_new();
	int accounts = 0;
	uint8_t *kept = NULL;
	size_t kept_n = 0;
	char kept_did[128] = "";
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		json_error_t jerr;
		json_t *want = json_loads(line, 0, &jerr);
		const char *handle = json_string_value(json_object_get(want, "handle"));
		const char *did = json_string_value(json_object_get(want, "did"));
		char path[256];
		snprintf(path, sizeof(path), "tests/data/repo-%.*s.car", (int)strcspn(handle, "."), handle);
		size_t car_n;
		uint8_t *car = tap_read_file(tap_path(path), &car_n);
		struct atkv_commit c;
		struct atkv_err err = {0};
		struct got g;
		int rc = read_repo(rp, car, car_n, did, &c, &g, &err);
		char e[160];
		tap_eq(rc, 0, "%s: read (%s)", handle, rc ? atkv_err_format(&err, e, sizeof(e)) : "ok");
		tap_ok(!strcmp(c.rev, json_string_value(json_object_get(want, "rev"))), "%s: the commit's rev %s", handle, c.rev);
		tap_eq(differences(&g, want) + g.skipped, 0, "%s: its %zu records, CIDs and values as listRecords gives them",
		       handle, json_array_size(json_object_get(want, "records")));
		json_decref(g.records);
		accounts++;
		if (!kept) {
			kept = car;
			kept_n = car_n;
			snprintf(kept_did, sizeof(kept_did), "%s", did);
		} else {
			/* Another account's CAR read as this DID's. */
			rc = read_repo(rp, car, car_n, kept_did, &c, &g, &err);
			tap_ok(rc == ATKV_E_FRAME && err.where && !strcmp(err.where, "repo did"),
			       "%s's repository asked for as %s: refused", handle, kept_did);
			json_decref(g.records);
			free(car);
		}
		json_decref(want);
	}
	tap_ok(accounts >= 3, "%d accounts recorded", accounts);

	/* One record block corrupted: that record alone is skipped. The last bytes of the CAR are
	 * the last block's, a record or a tree node; try from the end until a record breaks. */
	struct atkv_commit c;
	struct atkv_err err = {0};
	struct got g;
	bool one_skipped = false;
	for (size_t back = 2; back < 2000 && !one_skipped; back += 37) {
		uint8_t *copy = malloc(kept_n);
		memcpy(copy, kept, kept_n);
		copy[kept_n - back] ^= 0x01;
		int rc = read_repo(rp, copy, kept_n, kept_did, &c, &g, &err);
		one_skipped = rc == 0 && g.skipped == 1 && g.last_error == ATKV_E_CID_MISMATCH;
		json_decref(g.records);
		free(copy);
	}
	tap_ok(one_skipped, "a record whose block fails its CID is skipped alone, the rest read");
	tap_ok(read_repo(rp, kept, kept_n / 2, kept_did, &c, &g, &err) != 0, "a CAR cut in half: refused");
	json_decref(g.records);
	free(kept);
	atkv_repo_free(rp);
	free(text);
	return tap_done();
}
