/* firehose.c — the subscribeRepos frame decoder (see firehose.h). Message bodies are read
 * through one field table per message type (lexicon com.atproto.sync.subscribeRepos): known
 * fields are type-checked and stored as views, unknown ones skipped, repeated ones rejected.
 * Key order is not enforced in frames, unlike in records: a relay whose encoder orders keys
 * differently must not stop the stream, and nothing in a frame's meaning depends on order. */
#include "firehose.h"
#include "recordjson.h"
#include "buf.h"
#include "car.h"
#include "cborscan.h"
#include <atkv/syntax.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct atkv_firehose {
	struct atkv_car *car;
	struct atkv_op *ops;
	size_t cap_ops;
	struct atkv_buf json;
	size_t json_max;          /* longest record JSON produced (SIZE_MAX: no limit) */
	struct atkv_event ev;
};

enum field_kind {
	F_SEQ,            /* non-negative integer → int64_t */
	F_DID,            /* text with DID syntax → struct atkv_str */
	F_TEXT,           /* text → struct atkv_str */
	F_TEXT_OR_NULL,   /* text or null → struct atkv_str */
	F_BOOL,           /* → bool */
	F_LINK,           /* CID link → struct atkv_cid */
	F_LINK_OR_NULL,   /* CID link or null → struct atkv_cid */
	F_BLOCKS,         /* bytes → blocks, blocks_len */
	F_OPS,            /* array of repoOp → ops, n_ops */
};

struct field {
	const char *name;
	size_t name_n;
	enum field_kind kind;
	size_t offset;    /* of the target in struct atkv_event */
	bool required;
};

#define EV(member) offsetof(struct atkv_event, member)
#define FIELD(name, kind, member, required) {name, sizeof(name) - 1, kind, EV(member), required}
#define END_FIELDS {NULL, 0, F_SEQ, 0, false}

static const struct field commit_fields[] = {
	FIELD("seq", F_SEQ, seq, true),
	FIELD("repo", F_DID, did, true),
	FIELD("commit", F_LINK, commit, true),
	FIELD("rev", F_TEXT, rev, true),
	FIELD("since", F_TEXT_OR_NULL, since, false),
	FIELD("blocks", F_BLOCKS, blocks, true),
	FIELD("ops", F_OPS, ops, true),
	FIELD("prevData", F_LINK_OR_NULL, prev_data, false),
	FIELD("time", F_TEXT, time, true),
	FIELD("tooBig", F_BOOL, too_big, false),
	FIELD("rebase", F_BOOL, rebase, false),
	END_FIELDS,
};

static const struct field sync_fields[] = {
	FIELD("seq", F_SEQ, seq, true),
	FIELD("did", F_DID, did, true),
	FIELD("blocks", F_BLOCKS, blocks, true),
	FIELD("rev", F_TEXT, rev, true),
	FIELD("time", F_TEXT, time, true),
	END_FIELDS,
};

static const struct field identity_fields[] = {
	FIELD("seq", F_SEQ, seq, true),
	FIELD("did", F_DID, did, true),
	FIELD("time", F_TEXT, time, true),
	FIELD("handle", F_TEXT_OR_NULL, handle, false),
	END_FIELDS,
};

static const struct field account_fields[] = {
	FIELD("seq", F_SEQ, seq, true),
	FIELD("did", F_DID, did, true),
	FIELD("time", F_TEXT, time, true),
	FIELD("active", F_BOOL, active, true),
	FIELD("status", F_TEXT_OR_NULL, status, false),
	END_FIELDS,
};

static const struct field info_fields[] = {
	FIELD("name", F_TEXT, name, true),
	FIELD("message", F_TEXT_OR_NULL, message, false),
	END_FIELDS,
};

static const struct field error_fields[] = {
	FIELD("error", F_TEXT, name, true),
	FIELD("message", F_TEXT_OR_NULL, message, false),
	END_FIELDS,
};

/* Unknown message types still give their seq when they have one, so a cursor can pass them. */
static const struct field unknown_fields[] = {
	FIELD("seq", F_SEQ, seq, false),
	END_FIELDS,
};

static const struct {
	const char *t;
	size_t t_n;
	enum atkv_event_type type;
	const struct field *fields;
} message_types[] = {
#define MESSAGE(t, type, fields) {t, sizeof(t) - 1, type, fields}
	MESSAGE("#commit", ATKV_EVENT_COMMIT, commit_fields),
	MESSAGE("#sync", ATKV_EVENT_SYNC, sync_fields),
	MESSAGE("#identity", ATKV_EVENT_IDENTITY, identity_fields),
	MESSAGE("#account", ATKV_EVENT_ACCOUNT, account_fields),
	MESSAGE("#info", ATKV_EVENT_INFO, info_fields),
#undef MESSAGE
};

const char *atkv_action_name(enum atkv_action a)
{
	switch (a) {
	case ATKV_ACTION_CREATE: return "create";
	case ATKV_ACTION_UPDATE: return "update";
	case ATKV_ACTION_DELETE: return "delete";
	}
	return "?";
}

struct atkv_firehose *atkv_firehose_new(void)
{
	struct atkv_firehose *fh = calloc(1, sizeof(*fh));
	if (!fh)
		return NULL;
	if (!(fh->car = atkv_car_new())) {
		free(fh);
		return NULL;
	}
	fh->json_max = SIZE_MAX;
	return fh;
}

void atkv_firehose_set_json_max(struct atkv_firehose *fh, size_t max) { fh->json_max = max; }

void atkv_firehose_free(struct atkv_firehose *fh)
{
	if (!fh)
		return;
	atkv_car_free(fh->car);
	free(fh->ops);
	atkv_buf_free(&fh->json);
	free(fh);
}

static int expect(struct atkv_cbor *r, struct atkv_cbor_item *it, enum atkv_cbor_kind kind,
                  bool nullable, const char *where, struct atkv_err *err)
{
	int rc = atkv_cbor_next(r, it, err);
	if (rc)
		return rc;
	if (it->kind != kind && !(nullable && it->kind == ATKV_CBOR_NULL))
		return atkv_fail(err, ATKV_E_FRAME, it->offset, where);
	return 0;
}

static struct atkv_str str_of(const struct atkv_cbor_item *it)
{
	if (it->kind != ATKV_CBOR_TEXT)
		return (struct atkv_str){NULL, 0};
	return (struct atkv_str){(const char *)it->p, it->n};
}

/* A link item's CID; null gives an empty CID (bytes NULL). */
static struct atkv_cid cid_of(const struct atkv_cbor_item *it)
{
	return it->kind == ATKV_CBOR_LINK ? it->cid : (struct atkv_cid){0};
}

static int parse_action(const struct atkv_cbor_item *it, enum atkv_action *a)
{
	if (atkv_cbor_text_is(it, "create"))
		*a = ATKV_ACTION_CREATE;
	else if (atkv_cbor_text_is(it, "update"))
		*a = ATKV_ACTION_UPDATE;
	else if (atkv_cbor_text_is(it, "delete"))
		*a = ATKV_ACTION_DELETE;
	else
		return ATKV_E_FRAME;
	return 0;
}

/* Splits "collection/rkey" and checks both parts. */
static int split_path(struct atkv_op *op)
{
	const char *slash = memchr(op->path.p, '/', op->path.n);
	if (!slash)
		return ATKV_E_SYNTAX;
	op->collection = (struct atkv_str){op->path.p, (size_t)(slash - op->path.p)};
	op->rkey = (struct atkv_str){slash + 1, op->path.n - op->collection.n - 1};
	if (!atkv_syntax_nsid(op->collection.p, op->collection.n) ||
	    !atkv_syntax_rkey(op->rkey.p, op->rkey.n))
		return ATKV_E_SYNTAX;
	return 0;
}

static int parse_op(struct atkv_cbor *r, struct atkv_op *op, struct atkv_err *err)
{
	struct atkv_cbor_item it, key;
	size_t start = r->off;
	bool have_action = false, have_cid = false, have_prev = false;
	int rc;

	*op = (struct atkv_op){0};
	if ((rc = expect(r, &it, ATKV_CBOR_MAP, false, "commit op", err)))
		return rc;
	for (uint64_t k = it.count; k > 0; k--) {
		if ((rc = expect(r, &key, ATKV_CBOR_TEXT, false, "commit op key", err)))
			return rc;
		if (atkv_cbor_text_is(&key, "action")) {
			if ((rc = expect(r, &it, ATKV_CBOR_TEXT, false, "op action", err)))
				return rc;
			if (have_action || parse_action(&it, &op->action))
				return atkv_fail(err, ATKV_E_FRAME, it.offset, "op action");
			have_action = true;
		} else if (atkv_cbor_text_is(&key, "path")) {
			if ((rc = expect(r, &it, ATKV_CBOR_TEXT, false, "op path", err)))
				return rc;
			if (op->path.p)
				return atkv_fail(err, ATKV_E_FRAME, it.offset, "op path");
			op->path = str_of(&it);
			if ((rc = split_path(op)))
				return atkv_fail(err, rc, it.offset, "op path");
		} else if (atkv_cbor_text_is(&key, "cid")) {
			if ((rc = expect(r, &it, ATKV_CBOR_LINK, true, "op cid", err)))
				return rc;
			if (have_cid)
				return atkv_fail(err, ATKV_E_FRAME, it.offset, "op cid");
			op->cid = cid_of(&it);
			have_cid = true;
		} else if (atkv_cbor_text_is(&key, "prev")) {
			if ((rc = expect(r, &it, ATKV_CBOR_LINK, true, "op prev", err)))
				return rc;
			if (have_prev)
				return atkv_fail(err, ATKV_E_FRAME, it.offset, "op prev");
			op->prev = cid_of(&it);
			have_prev = true;
		} else if ((rc = atkv_cbor_skip(r, err))) {
			return rc;
		}
	}
	if (!have_action || !op->path.p || !have_cid)
		return atkv_fail(err, ATKV_E_FRAME, start, "commit op");
	/* Creates and updates name the new record; deletes name none. */
	if ((op->action == ATKV_ACTION_DELETE) != (op->cid.bytes == NULL))
		return atkv_fail(err, ATKV_E_FRAME, start, "op cid");
	return 0;
}

static int parse_ops(struct atkv_firehose *fh, struct atkv_cbor *r, struct atkv_err *err)
{
	struct atkv_cbor_item it;
	int rc = expect(r, &it, ATKV_CBOR_ARRAY, false, "commit ops", err);
	if (rc)
		return rc;
	/* The smallest op ({cid: null, path: "a.b.c/x", action: "create"}) takes 33 bytes: a
	 * count that the bytes left cannot hold is refused before memory is reserved for it. */
	if (it.count > (r->n - r->off) / 33)
		return atkv_fail(err, ATKV_E_TRUNCATED, it.offset, "commit ops");
	if (it.count > fh->cap_ops) {
		struct atkv_op *ops = realloc(fh->ops, (size_t)it.count * sizeof(*ops));
		if (!ops)
			return atkv_fail(err, ATKV_E_NOMEM, it.offset, "commit ops");
		fh->ops = ops;
		fh->cap_ops = (size_t)it.count;
	}
	for (size_t i = 0; i < it.count; i++)
		if ((rc = parse_op(r, &fh->ops[i], err)))
			return rc;
	fh->ev.ops = fh->ops;
	fh->ev.n_ops = (size_t)it.count;
	return 0;
}

static int parse_field(struct atkv_firehose *fh, struct atkv_cbor *r, const struct field *f,
                       struct atkv_err *err)
{
	static const enum atkv_cbor_kind wire[] = {
		[F_SEQ] = ATKV_CBOR_INT, [F_DID] = ATKV_CBOR_TEXT, [F_TEXT] = ATKV_CBOR_TEXT,
		[F_TEXT_OR_NULL] = ATKV_CBOR_TEXT, [F_BOOL] = ATKV_CBOR_BOOL,
		[F_LINK] = ATKV_CBOR_LINK, [F_LINK_OR_NULL] = ATKV_CBOR_LINK,
		[F_BLOCKS] = ATKV_CBOR_BYTES,
	};
	char *target = (char *)&fh->ev + f->offset;
	struct atkv_cbor_item it;
	int rc;

	if (f->kind == F_OPS)
		return parse_ops(fh, r, err);
	bool nullable = f->kind == F_TEXT_OR_NULL || f->kind == F_LINK_OR_NULL;
	if ((rc = expect(r, &it, wire[f->kind], nullable, f->name, err)))
		return rc;
	switch (f->kind) {
	case F_SEQ:
		if (it.i < 0)
			return atkv_fail(err, ATKV_E_FRAME, it.offset, f->name);
		*(int64_t *)target = it.i;
		break;
	case F_DID:
		if (!atkv_syntax_did((const char *)it.p, it.n))
			return atkv_fail(err, ATKV_E_SYNTAX, it.offset, f->name);
		/* fall through */
	case F_TEXT:
	case F_TEXT_OR_NULL:
		*(struct atkv_str *)target = str_of(&it);
		break;
	case F_BOOL:
		*(bool *)target = it.i != 0;
		break;
	case F_LINK:
	case F_LINK_OR_NULL:
		*(struct atkv_cid *)target = cid_of(&it);
		break;
	case F_BLOCKS:
		fh->ev.blocks = it.p;
		fh->ev.blocks_len = it.n;
		break;
	case F_OPS:
		break;
	}
	return 0;
}

/* Reads a body map against a field table. */
static int parse_body(struct atkv_firehose *fh, struct atkv_cbor *r, const struct field *fields,
                      struct atkv_err *err)
{
	struct atkv_cbor_item it, key;
	uint32_t seen = 0;
	size_t start = r->off;
	int rc = expect(r, &it, ATKV_CBOR_MAP, false, "frame body", err);
	if (rc)
		return rc;
	for (uint64_t k = it.count; k > 0; k--) {
		if ((rc = expect(r, &key, ATKV_CBOR_TEXT, false, "frame body key", err)))
			return rc;
		size_t i = 0;
		while (fields[i].name && !atkv_cbor_text_eq(&key, fields[i].name, fields[i].name_n))
			i++;
		if (!fields[i].name) {
			if ((rc = atkv_cbor_skip(r, err)))
				return rc;
			continue;
		}
		if (seen & (1u << i))
			return atkv_fail(err, ATKV_E_CBOR_KEY_DUP, key.offset, fields[i].name);
		seen |= 1u << i;
		if ((rc = parse_field(fh, r, &fields[i], err)))
			return rc;
	}
	for (size_t i = 0; fields[i].name; i++)
		if (fields[i].required && !(seen & (1u << i)))
			return atkv_fail(err, ATKV_E_FRAME, start, fields[i].name);
	return 0;
}

/* Reads the header {op, t}: op 1 is a message of type t, op -1 an error. */
static int parse_header(struct atkv_firehose *fh, struct atkv_cbor *r, int64_t *op,
                        struct atkv_err *err)
{
	struct atkv_cbor_item it, key;
	bool have_op = false;
	int rc = expect(r, &it, ATKV_CBOR_MAP, false, "frame header", err);
	if (rc)
		return rc;
	for (uint64_t k = it.count; k > 0; k--) {
		if ((rc = expect(r, &key, ATKV_CBOR_TEXT, false, "frame header key", err)))
			return rc;
		if (atkv_cbor_text_is(&key, "op")) {
			if ((rc = expect(r, &it, ATKV_CBOR_INT, false, "header op", err)))
				return rc;
			if (have_op || (it.i != 1 && it.i != -1))
				return atkv_fail(err, ATKV_E_FRAME, it.offset, "header op");
			*op = it.i;
			have_op = true;
		} else if (atkv_cbor_text_is(&key, "t")) {
			if ((rc = expect(r, &it, ATKV_CBOR_TEXT, false, "header t", err)))
				return rc;
			if (fh->ev.t.p)
				return atkv_fail(err, ATKV_E_FRAME, it.offset, "header t");
			fh->ev.t = str_of(&it);
		} else if ((rc = atkv_cbor_skip(r, err))) {
			return rc;
		}
	}
	if (!have_op || (*op == 1 && !fh->ev.t.p))
		return atkv_fail(err, ATKV_E_FRAME, 0, "frame header");
	return 0;
}

int atkv_firehose_decode(struct atkv_firehose *fh, const uint8_t *frame, size_t n,
                         const struct atkv_event **ev, struct atkv_err *err)
{
	struct atkv_cbor r;
	const struct field *fields = unknown_fields;
	int64_t op = 0;
	int rc;

	fh->ev = (struct atkv_event){.type = ATKV_EVENT_UNKNOWN, .seq = -1};
	atkv_cbor_init(&r, frame, n);
	if ((rc = parse_header(fh, &r, &op, err)))
		goto fail;
	if (op == -1) {
		fh->ev.type = ATKV_EVENT_ERROR;
		fields = error_fields;
	} else {
		for (size_t i = 0; i < sizeof(message_types) / sizeof(message_types[0]); i++) {
			if (fh->ev.t.n == message_types[i].t_n &&
			    memcmp(fh->ev.t.p, message_types[i].t, fh->ev.t.n) == 0) {
				fh->ev.type = message_types[i].type;
				fields = message_types[i].fields;
			}
		}
	}
	if ((rc = parse_body(fh, &r, fields, err)))
		goto fail;
	if (r.off != n) {
		rc = atkv_fail(err, ATKV_E_TRAILING, r.off, "frame");
		goto fail;
	}
	if (fh->ev.blocks) {
		if ((rc = atkv_car_load(fh->car, fh->ev.blocks, fh->ev.blocks_len, err))) {
			if (err)
				err->offset += (size_t)(fh->ev.blocks - frame);
			goto fail;
		}
	}
	*ev = &fh->ev;
	return 0;
fail:
	fh->ev.n_ops = 0;
	fh->ev.blocks = NULL;
	return rc;
}

int atkv_firehose_block(void *fh, const uint8_t *cid, size_t cid_n, const uint8_t **data, size_t *n)
{
	return atkv_car_get(((struct atkv_firehose *)fh)->car, cid, cid_n, data, n);
}

int atkv_firehose_record(struct atkv_firehose *fh, size_t i, const char **json, size_t *len,
                         struct atkv_err *err)
{
	if (i >= fh->ev.n_ops || !fh->ev.ops[i].cid.bytes)
		return atkv_fail(err, ATKV_E_BLOCK_MISSING, 0, "record");
	int rc = atkv_record_json(fh->car, &fh->ev.ops[i].cid, fh->json_max, &fh->json, err);
	if (rc)
		return rc;
	*json = fh->json.data;
	*len = fh->json.len;
	return 0;
}
