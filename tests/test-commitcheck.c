/* test-commitcheck.c — Sync 1.1 checks of #commit events (src/commitcheck.c) on a capture of
 * the reference PDS's firehose recorded with its accounts' DID documents
 * (tests/data/signed-capture*, by tests/reference/capture.js): every commit's signature
 * verifies with its account's key, and its ops, undone on the tree its blocks carry, lead back
 * to its prevData. Then events altered as a hostile relay might: an op naming another record,
 * a prevData that is not the tree before (or none, with an op naming another record), a commit
 * of another repo or rev, a create claimed as
 * a delete, an op left out, a forged create undone by an update of the same path, a commit
 * checked with another account's key or against another tree before it. The prevData chain:
 * each commit's prevData is the data of the repo's commit before it in the stream. */
#include "capture.h"
#include "commitcheck.h"
#include "signedkeys.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ACCOUNTS 16

static struct signed_keys keys;

static const struct atkv_sigkey *key_of(const struct atkv_str *did) { return signed_keys_of(&keys, did); }

static struct atkv_firehose *fh;
static struct atkv_commitcheck *cc;

static int check(const struct atkv_event *ev, const struct atkv_sigkey *key, struct atkv_err *err)

{
	struct atkv_commit commit;
	memset(err, 0, sizeof(*err));
	return atkv_commitcheck_run(cc, fh, ev, key, NULL, &commit, err);
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
/* prevData taken away (as before Sync 1.1), and an op naming another record: the signed tree
 * must still hold every op. */
static void prev_data_gone(struct atkv_event *e, struct atkv_op *ops)
{
	e->prev_data.bytes = NULL;
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
/* A create of a forged value, then an update back to the signed one: undone in turn they would
 * lead to the same tree. */
static void path_twice(struct atkv_event *e, struct atkv_op *ops)
{
	ops[1] = ops[0];
	ops[1].action = ATKV_ACTION_UPDATE;
	ops[1].prev = *other_cid;
	ops[0].cid = *other_cid;
	e->n_ops = 2;
}

/* The data CID of each repo's last commit seen, for the prevData chain. */
static struct {
	char did[64];
	uint8_t data[ATKV_CID_MAX_BYTES];
	size_t data_n;
} chain[MAX_ACCOUNTS];

static struct atkv_cid *last_data(const struct atkv_str *did, struct atkv_cid *out)
{
	for (int i = 0; i < MAX_ACCOUNTS; i++)
		if (chain[i].data_n && strlen(chain[i].did) == did->n && !memcmp(chain[i].did, did->p, did->n)) {
			size_t used;
			struct atkv_err err = {0};
			return atkv_cid_parse(chain[i].data, chain[i].data_n, out, &used, &err) ? NULL : out;
		}
	return NULL;
}

static void remember(const struct atkv_str *did, const struct atkv_cid *data)
{
	int free_slot = -1;
	for (int i = 0; i < MAX_ACCOUNTS; i++) {
		bool same = chain[i].data_n && strlen(chain[i].did) == did->n && !memcmp(chain[i].did, did->p, did->n);
		if (same || (!chain[i].data_n && free_slot < 0))
			free_slot = i;
		if (same)
			break;
	}
	if (free_slot < 0)
		return;
	snprintf(chain[free_slot].did, sizeof(chain[0].did), "%.*s", (int)did->n, did->p);
	memcpy(chain[free_slot].data, data->bytes, data->len);
	chain[free_slot].data_n = data->len;
}

static void forget(const struct atkv_str *did)
{
	for (int i = 0; i < MAX_ACCOUNTS; i++)
		if (chain[i].data_n && strlen(chain[i].did) == did->n && !memcmp(chain[i].did, did->p, did->n))
			chain[i].data_n = 0;
}

int main(void)
{
	size_t cap_n;
	uint8_t *cap = tap_read_file(tap_path("tests/data/signed-capture.bin"), &cap_n);
	size_t docs_n;
	char *docs = (char *)tap_read_file(tap_path("tests/data/signed-capture-docs.jsonl"), &docs_n);
	signed_keys_read(&keys, docs, docs_n);
	free(docs);
	tap_ok(keys.n >= 4, "%d accounts' signing keys read from their DID documents", keys.n);
	fh = atkv_firehose_new();
	cc = atkv_commitcheck_new();
	long start = atkv_capture_start(cap, cap_n);
	size_t off = start < 0 ? cap_n : (size_t)start;
	const uint8_t *frame;
	size_t frame_n;
	int commits = 0, with_prev = 0, ok = 0, ops = 0, tested_alterations = 0, wrong_key = 0, chained = 0, linked = 0;
	int chain_refused = 0;
	while (atkv_capture_next(cap, cap_n, &off, &frame, &frame_n) == 1) {
		const struct atkv_event *ev;
		struct atkv_err err = {0};
		if (atkv_firehose_decode(fh, frame, frame_n, &ev, &err))
			continue;
		if (ev->type == ATKV_EVENT_SYNC)
			forget(&ev->did); /* the repo's state asserted anew: the chain restarts */
		if (ev->type != ATKV_EVENT_COMMIT)
			continue;
		commits++;
		with_prev += ev->prev_data.bytes != NULL;
		int rc = check(ev, key_of(&ev->did), &err);
		ok += rc == 0 && key_of(&ev->did);
		/* The chain: prevData is the data of the repo's commit before, when one was seen. */
		struct atkv_cid before, *last = last_data(&ev->did, &before);
		struct atkv_commit commit;
		if (last) {
			linked++;
			chained += atkv_commitcheck_run(cc, fh, ev, key_of(&ev->did), last, &commit, &err) == 0;
			/* The commit's own data as the one before: not what its prevData says. */
			struct atkv_commit self;
			if (atkv_commitcheck_run(cc, fh, ev, NULL, NULL, &self, &err) == 0)
				chain_refused += atkv_commitcheck_run(cc, fh, ev, NULL, &self.data, &commit, &err) == ATKV_E_MST &&
				                 !strcmp(err.where, "commit prevData chain");
		}
		if (!rc && atkv_commitcheck_run(cc, fh, ev, NULL, NULL, &commit, &err) == 0)
			remember(&ev->did, &commit.data);
		/* Another account's key: refused, whatever else holds. */
		const struct atkv_sigkey *other = keys.a[0].key == key_of(&ev->did) ? keys.a[1].key : keys.a[0].key;
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
			altered(ev, "no prevData, and an op naming another record", ATKV_E_MST, "commit op", prev_data_gone);
			altered(ev, "the commit of another repo", ATKV_E_FRAME, "commit did", other_repo);
			altered(ev, "another rev than the commit's", ATKV_E_FRAME, "commit rev", other_rev);
			altered(ev, "a create claimed as a delete", ATKV_E_MST, "commit op", create_as_delete);
			if (ev->n_ops >= 1)
				altered(ev, "an op left out", ATKV_E_MST, "commit prevData", op_dropped);
			altered(ev, "a forged create undone by an update on the same path", ATKV_E_MST, "commit op path",
			        path_twice);
		}
	}
	/* An account's first commit has no tree before it: no prevData. */
	tap_ok(commits > 50 && with_prev >= commits - 10, "the capture: %d #commit events, %d with prevData (%d ops)",
	       commits, with_prev, ops);
	tap_eq(ok, commits, "every commit: its signature verifies with its account's key, and its ops undone on its "
	                    "blocks lead back to its prevData (when it has one)");
	tap_eq(wrong_key, commits, "every commit checked with another account's key: refused (commit sig)");
	tap_ok(linked > 90 && chained == linked, "the chain: %d of %d commits after one of their repo have as prevData its data",
	       chained, linked);
	tap_eq(chain_refused, linked, "and given another data as the one before, each is refused (commit prevData chain)");
	tap_ok(tested_alterations, "an event to alter was found");
	signed_keys_free(&keys);
	atkv_commitcheck_free(cc);
	atkv_firehose_free(fh);
	free(cap);
	return tap_done();
}
