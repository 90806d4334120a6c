/* test-commit.c — decoding repository commits (src/commit.c): a version 3 commit as a PDS
 * writes it, unknown fields stepped over, and each way of being wrong refused with the field
 * named. */
#include "cbuild.h"
#include "commit.h"
#include "tap.h"

#include <string.h>

#define DID "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
#define REV "3kcr2qsa5e22c"
#define ROOT "bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454"

/* What to change in the commit built. */
struct variant {
	const char *did, *rev;
	int64_t version;
	bool no_sig, prev_link, extra_field, swap_order, trailing, data_text;
};

/* A commit with its fields in DAG-CBOR order: did, rev, sig, data, prev, version (shorter keys
 * first, then bytewise). */
static void build(struct atkv_buf *b, const struct variant *v)
{
	uint8_t root[ATKV_CID_MAX_BYTES];
	long rn = atkv_cid_from_string(ROOT, strlen(ROOT), root);
	cb_head(b, 5, 6 - v->no_sig + v->extra_field);
	if (v->swap_order) {
		cb_text(b, "rev");
		cb_text(b, v->rev ? v->rev : REV);
		cb_text(b, "did");
		cb_text(b, v->did ? v->did : DID);
	} else {
		cb_text(b, "did");
		cb_text(b, v->did ? v->did : DID);
		cb_text(b, "rev");
		cb_text(b, v->rev ? v->rev : REV);
	}
	if (!v->no_sig) {
		cb_text(b, "sig");
		cb_bytes(b, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 64);
	}
	cb_text(b, "data");
	if (v->data_text)
		cb_text(b, ROOT);
	else
		cb_link(b, root, (size_t)rn);
	cb_text(b, "prev");
	if (v->prev_link)
		cb_link(b, root, (size_t)rn);
	else
		cb_null(b);
	if (v->extra_field) {
		cb_text(b, "future");
		cb_head(b, 4, 2);
		cb_uint(b, 1);
		cb_head(b, 5, 1);
		cb_text(b, "x");
		cb_text(b, "y");
	}
	cb_text(b, "version");
	cb_int(b, v->version ? v->version : 3);
	if (v->trailing)
		cb_null(b);
}

static int parse(const struct variant *v, struct atkv_commit *c, struct atkv_err *err)
{
	struct atkv_buf b = ATKV_BUF_INIT;
	build(&b, v);
	int rc = atkv_commit_parse((const uint8_t *)b.data, b.len, c, err);
	atkv_buf_free(&b);
	return rc;
}

static void refused(const char *what, struct variant v, int want, const char *where)
{
	struct atkv_commit c;
	struct atkv_err err = {0};
	int rc = parse(&v, &c, &err);
	tap_ok(rc == want && (!where || (err.where && !strcmp(err.where, where))), "%s: refused (%d, %s)", what, rc,
	       err.where ? err.where : "");
}

int main(void)
{
	struct atkv_commit c;
	struct atkv_err err = {0};
	/* The block is freed by parse: the checks below only read copies and lengths. */
	int rc = parse(&(struct variant){0}, &c, &err);
	tap_eq(rc, 0, "a version 3 commit decodes");
	tap_ok(c.did_n == strlen(DID) && !strcmp(c.rev, REV) && c.sig_n == 64 && !c.has_prev &&
	           c.data.codec == ATKV_CODEC_DAG_CBOR && c.data.digest_len == 32,
	       "with its did, rev, sig, data and a null prev");
	tap_eq(parse(&(struct variant){.prev_link = true}, &c, &err), 0, "a prev link is read too");
	tap_ok(c.has_prev, "and said to be there");
	tap_eq(parse(&(struct variant){.extra_field = true}, &c, &err), 0, "a field of a later version is stepped over");

	refused("version 2", (struct variant){.version = 2}, ATKV_E_FRAME, "commit version (3 expected)");
	refused("no sig", (struct variant){.no_sig = true}, ATKV_E_FRAME, "commit without sig");
	refused("a DID that is not one", (struct variant){.did = "did:nope"}, ATKV_E_SYNTAX, "commit did");
	refused("a rev that is not a TID", (struct variant){.rev = "notatid"}, ATKV_E_SYNTAX, "commit rev");
	refused("data as text instead of a link", (struct variant){.data_text = true}, ATKV_E_FRAME, "commit data");
	refused("keys out of DAG-CBOR order", (struct variant){.swap_order = true}, ATKV_E_CBOR_KEY_ORDER, "commit");
	refused("bytes after the commit", (struct variant){.trailing = true}, ATKV_E_TRAILING, "commit");
	uint8_t junk[] = {0xa1, 0x63, 'd', 'i', 'd'};
	tap_ok(atkv_commit_parse(junk, sizeof(junk), &c, &err) == ATKV_E_TRUNCATED, "a truncated commit: refused");
	return tap_done();
}
