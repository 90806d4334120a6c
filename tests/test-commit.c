/* test-commit.c — decoding repository commits (src/commit.c): a version 3 commit as a PDS
 * writes it, unknown fields stepped over, and each way of being wrong refused with the field
 * named. Then the commits of three repositories recorded from the reference PDS: the unsigned
 * commit rebuilt here is what each one's signature covers (verified with the account's signing
 * key from its DID document), and a commit changed by one byte no longer verifies. */
#define _GNU_SOURCE /* memmem */
#include "car.h"
#include "cbuild.h"
#include "commit.h"
#include "sigverify.h"
#include "tap.h"

#include <jansson.h>
#include <stdlib.h>
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

/* The signature of the commit at the root of tests/data/repo-<name>.car, checked with key. */
static void signed_commit(const char *name, const char *key_type, const char *signing_key)
{
	char path[64];
	size_t n;
	snprintf(path, sizeof(path), "tests/data/repo-%s.car", name);
	uint8_t *car_bytes = tap_read_file(tap_path(path), &n);
	struct atkv_car *car = atkv_car_new();
	struct atkv_err err = {0};
	const uint8_t *block = NULL;
	size_t block_n = 0;
	struct atkv_commit c;
	struct atkv_pubkey k;
	struct atkv_sigkey *key = NULL;
	struct atkv_buf unsigned_commit = ATKV_BUF_INIT;
	int rc = atkv_car_load(car, car_bytes, n, &err);
	if (!rc)
		rc = atkv_car_get(car, atkv_car_root(car, 0)->bytes, atkv_car_root(car, 0)->len, &block, &block_n);
	if (!rc)
		rc = atkv_commit_parse(block, block_n, &c, &err);
	if (!rc)
		rc = atkv_didkey_parse_method(key_type, signing_key, strlen(signing_key), &k);
	if (!rc)
		rc = atkv_sigkey_load(&k, &key);
	if (!rc)
		rc = atkv_commit_unsigned(block, block_n, &c, &unsigned_commit);
	if (!rc)
		rc = atkv_sig_verify(key, (const uint8_t *)unsigned_commit.data, unsigned_commit.len, c.sig, c.sig_n);
	tap_eq(rc, 0, "%s.test: the commit's signature verifies over the unsigned commit (%zu of %zu bytes)", name,
	       unsigned_commit.len, block_n);
	if (!rc) {
		/* One byte of the rev changed: the same signature no longer covers it. */
		size_t at = (size_t)((const uint8_t *)memmem(unsigned_commit.data, unsigned_commit.len, c.rev, 13) -
		                     (const uint8_t *)unsigned_commit.data);
		unsigned_commit.data[at + 12] ^= 1;
		tap_eq(atkv_sig_verify(key, (const uint8_t *)unsigned_commit.data, unsigned_commit.len, c.sig, c.sig_n),
		       ATKV_E_SIGNATURE, "%s.test: the commit with its rev changed: refused", name);
	}
	atkv_buf_free(&unsigned_commit);
	atkv_sigkey_free(key);
	atkv_car_free(car);
	free(car_bytes);
}

static void signed_commits(void)
{
	size_t n;
	char *text = (char *)tap_read_file(tap_path("tests/data/repo-expected.jsonl"), &n);
	int seen = 0;
	for (char *line = text, *end; line < text + n; line = end + 1) {
		end = memchr(line, '\n', (size_t)(text + n - line));
		if (!end)
			end = text + n;
		json_t *a = json_loadb(line, (size_t)(end - line), 0, NULL);
		const char *handle = json_string_value(json_object_get(a, "handle"));
		json_t *vm = json_object_get(a, "signingKey");
		const char *type = json_string_value(json_object_get(vm, "type"));
		const char *key = json_string_value(json_object_get(vm, "publicKeyMultibase"));
		if (handle && type && key) {
			char name[16];
			snprintf(name, sizeof(name), "%.*s", (int)strcspn(handle, "."), handle);
			signed_commit(name, type, key);
			seen++;
		}
		json_decref(a);
	}
	tap_eq(seen, 3, "the three recorded repositories have their signing keys");
	free(text);
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
	signed_commits();
	return tap_done();
}
