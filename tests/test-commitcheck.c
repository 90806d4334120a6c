/* test-commitcheck.c — Sync 1.1 checks of #commit events (src/commitcheck.c) on a capture of
 * the reference PDS's firehose recorded with its accounts' DID documents
 * (tests/data/signed-capture*, by tests/reference/capture.js): every commit's signature
 * verifies with its account's key, and its ops, undone on the tree its blocks carry, lead back
 * to its prevData. Then events altered as a hostile relay might: an op naming another record,
 * a prevData that is not the tree before, a commit of another repo or rev, a create claimed as
 * a delete, an op left out, a commit checked with another account's key. */
#include "capture.h"
#include "commitcheck.h"
#include "diddoc.h"
#include "tap.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ACCOUNTS 16

static struct {
	char did[64];
	struct atkv_sigkey *key;
} accounts[MAX_ACCOUNTS];
static int n_accounts;

/* The signing key of every DID document recorded with the capture. */
static void load_keys(void)
{
	size_t n;
	char *text = (char *)tap_read_file(tap_path("tests/data/signed-capture-docs.jsonl"), &n);
	for (char *line = text, *end; line < text + n && n_accounts < MAX_ACCOUNTS; line = end + 1) {
		end = memchr(line, '\n', (size_t)(text + n - line));
		if (!end)
			end = text + n;
		json_t *doc = json_loadb(line, (size_t)(end - line), 0, NULL);
		const char *did = json_string_value(json_object_get(doc, "id"));
		struct atkv_pubkey k;
		char why[256];
		if (did && !atkv_diddoc_key(line, (size_t)(end - line), did, &k, why, sizeof(why)) &&
		    !atkv_sigkey_load(&k, &accounts[n_accounts].key)) {
			snprintf(accounts[n_accounts].did, sizeof(accounts[0].did), "%s", did);
			n_accounts++;
		}
		json_decref(doc);
	}
	free(text);
}

static const struct atkv_sigkey *key_of(const struct atkv_str *did)
{
	for (int i = 0; i < n_accounts; i++)
		if (strlen(accounts[i].did) == did->n && !memcmp(accounts[i].did, did->p, did->n))
			return accounts[i].key;
	return NULL;
}

static struct atkv_firehose *fh;
static struct atkv_commitcheck *cc;

static int check(const struct atkv_event *ev, const struct atkv_sigkey *key, struct atkv_err *err)

{
	struct atkv_commit commit;
	memset(err, 0, sizeof(*err));
	return atkv_commitcheck_run(cc, fh, ev, key, &commit, err);
}

/* The outcome of check on a copy of ev changed by `change`. */
static void altered(const struct atkv_event *ev, const char *what, int want, const char *where,
                    void (*change)(struct atkv_event *e, struct atkv_op *ops))
{
	struct atkv_op ops[64];
	struct atkv_event e = *ev;
	size_t n = ev->n_ops < 64 ? ev->n_ops : 64;
	memcpy(ops, ev->ops, n * sizeof(*ops));
	e.ops = ops;
	e.n_ops = n;
	change(&e, ops);
	struct atkv_err err;
	int rc = check(&e, key_of(&ev->did), &err);
	tap_ok(rc == want && err.where && !strcmp(err.where, where), "%s: refused (%d, %s)", what, rc,
	       err.where ? err.where : "");
}

static const struct atkv_cid *other_cid;

static void op_other_record(struct atkv_event *e, struct atkv_op *ops)
{
	(void)e;
	ops[0].cid = *other_cid;
}
static void prev_data_wrong(struct atkv_event *e, struct atkv_op *ops)
{
	(void)ops;
	e->prev_data = *other_cid;
}
static void other_repo(struct atkv_event *e, struct atkv_op *ops)
{
	(void)ops;
	e->did.p = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
	e->did.n = strlen(e->did.p);
}
static void other_rev(struct atkv_event *e, struct atkv_op *ops)
{
	(void)ops;
	e->rev.p = "3kaaaaaaaaa2a";
}
static void create_as_delete(struct atkv_event *e, struct atkv_op *ops)
{
	(void)e;
	ops[0].action = ATKV_ACTION_DELETE;
	ops[0].prev = ops[0].cid;
	ops[0].cid = (struct atkv_cid){0};
}
static void op_dropped(struct atkv_event *e, struct atkv_op *ops)
{
	(void)ops;
	e->n_ops--;
}

int main(void)
{
	size_t cap_n;
	uint8_t *cap = tap_read_file(tap_path("tests/data/signed-capture.bin"), &cap_n);
	load_keys();
	tap_ok(n_accounts >= 4, "%d accounts' signing keys read from their DID documents", n_accounts);
	fh = atkv_firehose_new();
	cc = atkv_commitcheck_new();
	long start = atkv_capture_start(cap, cap_n);
	size_t off = start < 0 ? cap_n : (size_t)start;
	const uint8_t *frame;
	size_t frame_n;
	int commits = 0, with_prev = 0, ok = 0, ops = 0, tested_alterations = 0, wrong_key = 0;
	while (atkv_capture_next(cap, cap_n, &off, &frame, &frame_n) == 1) {
		const struct atkv_event *ev;
		struct atkv_err err = {0};
		if (atkv_firehose_decode(fh, frame, frame_n, &ev, &err) || ev->type != ATKV_EVENT_COMMIT)
			continue;
		commits++;
		with_prev += ev->prev_data.bytes != NULL;
		int rc = check(ev, key_of(&ev->did), &err);
		ok += rc == 0 && key_of(&ev->did);
		/* Another account's key: refused, whatever else holds. */
		const struct atkv_sigkey *other = accounts[0].key == key_of(&ev->did) ? accounts[1].key : accounts[0].key;
		wrong_key += check(ev, other, &err) == ATKV_E_SIGNATURE && err.where && !strcmp(err.where, "commit sig");
		ops += (int)ev->n_ops;
		if (rc && commits - ok <= 3)
			tap_note("seq %lld: %d at %s", (long long)ev->seq, rc, err.where ? err.where : "");
		/* Alterations, on the first commit with a create and prevData. */
		if (!rc && !tested_alterations && ev->prev_data.bytes && ev->n_ops >= 1 &&
		    ev->ops[0].action == ATKV_ACTION_CREATE) {
			tested_alterations = 1;
			other_cid = &ev->commit;
			altered(ev, "an op naming another record", ATKV_E_MST, "commit op", op_other_record);
			altered(ev, "a prevData that is not the tree before", ATKV_E_MST, "commit prevData", prev_data_wrong);
			altered(ev, "the commit of another repo", ATKV_E_FRAME, "commit did", other_repo);
			altered(ev, "another rev than the commit's", ATKV_E_FRAME, "commit rev", other_rev);
			altered(ev, "a create claimed as a delete", ATKV_E_MST, "commit op", create_as_delete);
			if (ev->n_ops >= 1)
				altered(ev, "an op left out", ATKV_E_MST, "commit prevData", op_dropped);
		}
	}
	/* An account's first commit has no tree before it: no prevData. */
	tap_ok(commits > 50 && with_prev >= commits - 10, "the capture: %d #commit events, %d with prevData (%d ops)",
	       commits, with_prev, ops);
	tap_eq(ok, commits, "every commit: its signature verifies with its account's key, and its ops undone on its "
	                    "blocks lead back to its prevData (when it has one)");
	tap_eq(wrong_key, commits, "every commit checked with another account's key: refused (commit sig)");
	tap_ok(tested_alterations, "an event to alter was found");
	for (int i = 0; i < n_accounts; i++)
		atkv_sigkey_free(accounts[i].key);
	atkv_commitcheck_free(cc);
	atkv_firehose_free(fh);
	free(cap);
	return tap_done();
}
