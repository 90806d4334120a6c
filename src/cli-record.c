/* cli-record.c — atkv put, get and del: one record of bucket `record` by its AT-URI, the
 * local-dev path where mock data goes into the store instead of arriving from the firehose.
 * put checks the JSON is an atproto record before writing it compact, as the builder would. */
#include "buckets.h"
#include "cli.h"
#include "natsconn.h"

#include <atkv/atkv.h>

#include <errno.h>
#include <stdbool.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOT_FROM_BUILDER "nothing has written to this NATS yet (start atkv-builder, or atkv put a record)"

/* The KV key of a record's AT-URI, or 2 after saying what is wrong with it. */
static int key_of(const char *uri, char *key, size_t cap)
{
	struct atkv_record_uri u;
	if (atkv_record_uri_parse(uri, strlen(uri), &u))
		return atkv_cli_fail(ATKV_CLI_USAGE, "\"%s\" is not a record's AT-URI: at://DID/COLLECTION/RKEY, "
		                     "with a DID (not a handle), an NSID and a record key", uri);
	if (atkv_key_build(key, cap, u.did, strlen(u.did), u.collection, strlen(u.collection), u.rkey,
	                   strlen(u.rkey)) < 0)
		return atkv_cli_fail(ATKV_CLI_USAGE, "%s: too long for a KV key", uri);
	return 0;
}

static int open_record(struct atkv_cli *c, kvStore **kv)
{
	natsStatus s = js_KeyValue(kv, c->js, ATKV_BUCKET_RECORD);
	if (s == NATS_NOT_FOUND)
		return atkv_cli_fail(ATKV_CLI_FAILED, "bucket %s does not exist: %s", ATKV_BUCKET_RECORD, NOT_FROM_BUILDER);
	if (s != NATS_OK)
		return atkv_cli_fail(ATKV_CLI_FAILED, "cannot open bucket %s: %s", ATKV_BUCKET_RECORD, atkv_nats_why(s));
	return 0;
}

/* The value at key: 0 with *e set, 1 after saying there is none (or NATS failed). */
static int entry_at(kvStore *kv, const char *uri, const char *key, kvEntry **e)
{
	natsStatus s = kvStore_Get(e, kv, key);
	if (s == NATS_NOT_FOUND)
		return atkv_cli_fail(ATKV_CLI_FAILED, "no record at %s", uri);
	if (s != NATS_OK)
		return atkv_cli_fail(ATKV_CLI_FAILED, "cannot read %s: %s", uri, atkv_nats_why(s));
	return 0;
}

/* Atkv-Time only, now: a change that came from no repo has no CID, revision or seq. */
static struct atkv_record_meta now_meta(char *stamp, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(stamp, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(stamp + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000);
	return (struct atkv_record_meta){.seq = -1, .time = stamp, .time_n = n};
}

/* The record at uri, with the connection and bucket it needs: 0 with *kv and *e set (the caller
 * destroys both, also on failure), or the exit status after saying why. */
static int find_record(struct atkv_cli *c, const char *uri, kvStore **kv, kvEntry **e)
{
	char key[ATKV_KEY_MAX + 1];
	int rc = key_of(uri, key, sizeof(key));
	if (!rc)
		rc = atkv_cli_connect(c);
	if (!rc)
		rc = open_record(c, kv);
	if (!rc)
		rc = entry_at(*kv, uri, key, e);
	return rc;
}

int atkv_cli_get(struct atkv_cli *c)
{
	kvStore *kv = NULL;
	kvEntry *e = NULL;
	int rc = find_record(c, c->argv[0], &kv, &e);
	if (!rc) {
		fwrite(kvEntry_Value(e), 1, (size_t)kvEntry_ValueLen(e), stdout);
		putchar('\n');
		rc = fflush(stdout) ? atkv_cli_fail(ATKV_CLI_FAILED, "cannot write: %s", strerror(errno)) : 0;
	}
	kvEntry_Destroy(e);
	kvStore_Destroy(kv);
	return rc;
}

int atkv_cli_del(struct atkv_cli *c)
{
	char why[512], stamp[32];
	kvStore *kv = NULL;
	kvEntry *e = NULL;
	const char *uri = c->argv[0];
	int rc = find_record(c, uri, &kv, &e);
	if (!rc) {
		struct atkv_record_meta meta = now_meta(stamp, sizeof(stamp));
		if (atkv_record_delete(c->js, uri, &meta, why, sizeof(why)))
			rc = atkv_cli_fail(ATKV_CLI_FAILED, "cannot delete %s: %s", uri, why);
	}
	kvEntry_Destroy(e);
	kvStore_Destroy(kv);
	return rc;
}

/* Reads all of f, up to max bytes. Returns 0 with *out (the caller frees) and *n, or 1. */
static int read_all(FILE *f, const char *name, size_t max, char **out, size_t *n)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	while (buf) {
		if (len == cap) {
			char *more = cap > max ? NULL : realloc(buf, cap * 2);
			if (!more)
				break;
			buf = more, cap *= 2;
		}
		size_t got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0) {
			if (ferror(f)) {
				free(buf);
				return atkv_cli_fail(ATKV_CLI_FAILED, "cannot read %s: %s", name, strerror(errno));
			}
			if (len > max)
				break;
			*out = buf, *n = len;
			return 0;
		}
	}
	free(buf);
	return atkv_cli_fail(ATKV_CLI_FAILED, "%s: over %zu bytes, the most NATS takes in one message", name, max);
}

/* True when j holds a floating-point number; path then says where ("/embed/aspectRatio/0"). */
static bool find_float(const json_t *j, char *path, size_t cap, size_t at)
{
	if (json_is_real(j))
		return true;
	size_t i;
	const char *k;
	json_t *v;
	int w;
	if (json_is_object(j)) {
		json_object_foreach((json_t *)j, k, v) {
			w = snprintf(path + at, cap - at, "/%s", k);
			if (find_float(v, path, cap, w < 0 || (size_t)w >= cap - at ? cap - 1 : at + (size_t)w))
				return true;
		}
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v) {
			w = snprintf(path + at, cap - at, "/%zu", i);
			if (find_float(v, path, cap, w < 0 || (size_t)w >= cap - at ? cap - 1 : at + (size_t)w))
				return true;
		}
	}
	path[at] = '\0';
	return false;
}

/* Checks the JSON is an atproto record of collection and writes it compact into *out. */
static int record_json(const char *name, const char *text, size_t n, const char *collection, char **out)
{
	json_error_t err;
	json_t *j = json_loadb(text, n, JSON_REJECT_DUPLICATES, &err);
	if (!j)
		return atkv_cli_fail(ATKV_CLI_FAILED, "%s is not JSON: %s (line %d, column %d)", name, err.text, err.line,
		                     err.column);
	int rc = 0;
	char path[512] = "";
	const char *type = json_string_value(json_object_get(j, "$type"));
	if (!json_is_object(j))
		rc = atkv_cli_fail(ATKV_CLI_FAILED, "%s: a record is a JSON object, not this", name);
	else if (!type)
		rc = atkv_cli_fail(ATKV_CLI_FAILED, "%s: the record has no \"$type\" (a string: here \"%s\")", name,
		                   collection);
	else if (strcmp(type, collection))
		rc = atkv_cli_fail(ATKV_CLI_FAILED, "%s: \"$type\" is \"%s\" but the AT-URI's collection is \"%s\"", name,
		                   type, collection);
	else if (find_float(j, path, sizeof(path), 0))
		rc = atkv_cli_fail(ATKV_CLI_FAILED, "%s: a floating-point number at %s: atproto records hold integers only",
		                   name, path);
	else if (!(*out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER)))
		rc = atkv_cli_fail(ATKV_CLI_FAILED, "out of memory");
	json_decref(j);
	return rc;
}

int atkv_cli_put(struct atkv_cli *c)
{
	char key[ATKV_KEY_MAX + 1], why[1024], stamp[32];
	const char *uri = c->argv[0], *file = c->argc > 1 ? c->argv[1] : "-";
	const char *name = strcmp(file, "-") ? file : "standard input";
	char *text = NULL, *json = NULL;
	size_t n = 0;
	struct atkv_record_uri u;
	int rc = key_of(uri, key, sizeof(key));
	if (rc)
		return rc;
	atkv_record_uri_parse(uri, strlen(uri), &u);
	FILE *f = strcmp(file, "-") ? fopen(file, "rb") : stdin;
	if (!f)
		return atkv_cli_fail(ATKV_CLI_USAGE, "cannot open %s: %s", file, strerror(errno));
	/* Read before connecting: a bad record is reported whether NATS is up or not. */
	rc = read_all(f, name, 1 << 20, &text, &n);
	if (f != stdin)
		fclose(f);
	if (!rc)
		rc = record_json(name, text, n, u.collection, &json);
	if (!rc)
		rc = atkv_cli_connect(c);
	struct atkv_bucket_limits limits = {
		.replicas = (int)atkv_config_int(c->cfg, "replicas"),
		.record_max_bytes = atkv_config_int(c->cfg, "record-max-bytes"),
		.record_max_age_s = atkv_config_int(c->cfg, "record-max-age"),
	};
	if (!rc && atkv_buckets_ensure(c->js, &limits, why, sizeof(why)))
		rc = atkv_cli_fail(ATKV_CLI_FAILED, "%s", why);
	if (!rc) {
		struct atkv_record_meta meta = now_meta(stamp, sizeof(stamp));
		if (atkv_record_put(c->js, uri, json, strlen(json), &meta, why, sizeof(why)))
			rc = atkv_cli_fail(ATKV_CLI_FAILED, "cannot put %s: %s", uri, why);
	}
	free(json);
	free(text);
	return rc;
}
