/* writes.c — the KV writes of a capture (see writes.h), derived with the same decoder and key
 * scheme as the builder so that both sides of the benchmark publish identical messages. */
#define _DEFAULT_SOURCE
#include "writes.h"
#include "accounts.h"
#include "capture.h"
#include "firehose.h"
#include <atkv/recordkey.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

static int add(struct bench_write **w, size_t *n, size_t *cap, const char *bucket, const char *key,
               const char *value, size_t len, const struct atkv_event *ev)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 1024;
		struct bench_write *nw = realloc(*w, *cap * sizeof(**w));
		if (!nw)
			return -1;
		*w = nw;
	}
	struct bench_write *x = &(*w)[(*n)++];
	memset(x, 0, sizeof(*x));
	size_t sn = strlen(bucket) + strlen(key) + 6;
	x->subject = malloc(sn);
	snprintf(x->subject, sn, "$KV.%s.%s", bucket, key);
	x->value = value ? dup_n(value, len) : NULL;
	x->len = len;
	x->seq = ev->seq;
	snprintf(x->rev, sizeof(x->rev), "%.*s", ev->rev.p ? (int)ev->rev.n : 0, ev->rev.p ? ev->rev.p : "");
	snprintf(x->time, sizeof(x->time), "%.*s", ev->time.p ? (int)ev->time.n : 0, ev->time.p ? ev->time.p : "");
	return 0;
}

int bench_writes_load(const char *path, struct bench_write **writes, size_t *n, size_t *events)
{
	FILE *f = fopen(path, "rb");
	static uint8_t cap[1 << 24];
	size_t len = f ? fread(cap, 1, sizeof(cap), f) : 0;
	long start = atkv_capture_start(cap, len);
	if (f)
		fclose(f);
	if (start < 0) {
		fprintf(stderr, "%s is not a capture\n", path);
		return -1;
	}
	struct atkv_firehose *fh = atkv_firehose_new();
	struct atkv_accounts *acc = NULL;
	atkv_accounts_new(NULL, 1 << 16, &acc);
	size_t off = (size_t)start, fl, capn = 0;
	const uint8_t *frame;
	*writes = NULL;
	*n = 0;
	*events = 0;
	while (atkv_capture_next(cap, len, &off, &frame, &fl) == 1) {
		const struct atkv_event *ev;
		if (atkv_firehose_decode(fh, frame, fl, &ev, NULL) || ev->seq < 0)
			continue;
		(*events)++;
		char key[ATKV_KEY_MAX + 1];
		if (ev->type == ATKV_EVENT_IDENTITY || ev->type == ATKV_EVENT_ACCOUNT) {
			const char *json;
			size_t jl;
			atkv_key_escape(ev->did.p, ev->did.n, key, sizeof(key));
			if (atkv_accounts_update(acc, ev, &json, &jl) == 0)
				add(writes, n, &capn, "account", key, json, jl, ev);
			continue;
		}
		for (size_t i = 0; ev->type == ATKV_EVENT_COMMIT && i < ev->n_ops; i++) {
			const struct atkv_op *op = &ev->ops[i];
			const char *json = NULL;
			size_t jl = 0;
			atkv_key_build(key, sizeof(key), ev->did.p, ev->did.n, op->collection.p, op->collection.n,
			               op->rkey.p, op->rkey.n);
			if (op->action != ATKV_ACTION_DELETE && atkv_firehose_record(fh, i, &json, &jl, NULL))
				continue;
			add(writes, n, &capn, "record", key, json, jl, ev);
			if (json)
				atkv_cid_format(&op->cid, (*writes)[*n - 1].cid);
		}
	}
	atkv_firehose_free(fh);
	atkv_accounts_free(acc);
	return 0;
}

void bench_writes_free(struct bench_write *w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(w[i].subject);
		free(w[i].value);
	}
	free(w);
}
