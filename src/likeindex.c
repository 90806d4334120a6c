/* likeindex.c — the like index in SQLite (see likeindex.h). Statements are prepared once and
 * reused: the indexer applies thousands of changes a second. */
#include "likeindex.h"
#include <atkv/error.h>

#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA_VERSION 1

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS likes ("
	" did TEXT NOT NULL,"          /* the liker */
	" rkey TEXT NOT NULL,"         /* the like record's key */
	" subject_uri TEXT NOT NULL,"
	" subject_cid TEXT,"
	" created_at TEXT,"
	" PRIMARY KEY (did, rkey)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS likes_by_liker ON likes (did, created_at);"
	"CREATE INDEX IF NOT EXISTS likes_by_subject ON likes (subject_uri, created_at);"
	"CREATE TABLE IF NOT EXISTS like_counts ("
	" subject_uri TEXT PRIMARY KEY,"
	" likes INTEGER NOT NULL) WITHOUT ROWID;"
	"PRAGMA user_version = 1;";

enum stmt {
	S_GET, S_UPSERT, S_DELETE, S_INC, S_DEC, S_DROP_ZERO, S_BY_LIKER, S_BY_SUBJECT, S_COUNT, S_TOTALS,
	S_BEGIN, S_COMMIT, S_ROLLBACK, N_STMT,
};

static const char *const sql[N_STMT] = {
	[S_GET] = "SELECT subject_uri FROM likes WHERE did = ?1 AND rkey = ?2",
	[S_UPSERT] = "INSERT INTO likes (did, rkey, subject_uri, subject_cid, created_at) VALUES (?1, ?2, ?3, ?4, ?5)"
	             " ON CONFLICT (did, rkey) DO UPDATE SET subject_uri = excluded.subject_uri,"
	             " subject_cid = excluded.subject_cid, created_at = excluded.created_at",
	[S_DELETE] = "DELETE FROM likes WHERE did = ?1 AND rkey = ?2",
	[S_INC] = "INSERT INTO like_counts (subject_uri, likes) VALUES (?1, 1)"
	          " ON CONFLICT (subject_uri) DO UPDATE SET likes = likes + 1",
	[S_DEC] = "UPDATE like_counts SET likes = likes - 1 WHERE subject_uri = ?1",
	[S_DROP_ZERO] = "DELETE FROM like_counts WHERE subject_uri = ?1 AND likes <= 0",
	[S_BY_LIKER] = "SELECT did, rkey, subject_uri, subject_cid, created_at FROM likes WHERE did = ?1"
	               " ORDER BY created_at DESC, rkey DESC LIMIT ?2",
	[S_BY_SUBJECT] = "SELECT did, rkey, subject_uri, subject_cid, created_at FROM likes WHERE subject_uri = ?1"
	                 " ORDER BY created_at DESC, did DESC LIMIT ?2",
	[S_COUNT] = "SELECT likes FROM like_counts WHERE subject_uri = ?1",
	[S_TOTALS] = "SELECT (SELECT count(*) FROM likes), (SELECT count(*) FROM like_counts)",
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
};

struct atkv_likeindex {
	sqlite3 *db;
	sqlite3_stmt *st[N_STMT];
};

const char *atkv_likeindex_error(struct atkv_likeindex *ix) { return sqlite3_errmsg(ix->db); }

void atkv_likeindex_close(struct atkv_likeindex *ix)
{
	if (!ix)
		return;
	for (int i = 0; i < N_STMT; i++)
		sqlite3_finalize(ix->st[i]);
	sqlite3_close(ix->db);
	free(ix);
}

static int failed(struct atkv_likeindex *ix, const char *path, const char *what, char *why, size_t why_n)
{
	snprintf(why, why_n, "like index %s: %s: %s", path, what, ix->db ? sqlite3_errmsg(ix->db) : "out of memory");
	atkv_likeindex_close(ix);
	return ATKV_E_DB;
}

int atkv_likeindex_open(const char *path, bool readonly, struct atkv_likeindex **out, char *why, size_t why_n)
{
	struct atkv_likeindex *ix = calloc(1, sizeof(*ix));
	if (!ix) {
		snprintf(why, why_n, "out of memory");
		return ATKV_E_NOMEM;
	}
	int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	if (sqlite3_open_v2(path, &ix->db, flags, NULL) != SQLITE_OK)
		return failed(ix, path, "cannot open", why, why_n);
	/* The indexer's commits make the reader wait a moment, not fail. */
	sqlite3_busy_timeout(ix->db, 5000);
	if (!readonly) {
		/* WAL: readers never block the indexer. FULL: a commit is on disk before its acks go,
		 * so not even a power cut loses an acknowledged like. */
		if (sqlite3_exec(ix->db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA cache_size = -65536;", NULL, NULL, NULL) ||
		    sqlite3_exec(ix->db, schema, NULL, NULL, NULL))
			return failed(ix, path, "cannot set up the schema", why, why_n);
	}
	sqlite3_stmt *v = NULL;
	int version = -1;
	if (sqlite3_prepare_v2(ix->db, "PRAGMA user_version", -1, &v, NULL) == SQLITE_OK && sqlite3_step(v) == SQLITE_ROW)
		version = sqlite3_column_int(v, 0);
	sqlite3_finalize(v);
	if (version != SCHEMA_VERSION) {
		snprintf(why, why_n, "%s is not a like index of this version (schema %d, expected %d): has atkv-like-indexer run?",
		         path, version, SCHEMA_VERSION);
		atkv_likeindex_close(ix);
		return ATKV_E_DB;
	}
	for (int i = 0; i < N_STMT; i++)
		if (sqlite3_prepare_v3(ix->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &ix->st[i], NULL) != SQLITE_OK)
			return failed(ix, path, "cannot prepare a statement", why, why_n);
	*out = ix;
	return 0;
}

/* Runs a statement that returns no rows, with up to three text parameters (NULL binds NULL). */
static int run(struct atkv_likeindex *ix, enum stmt s, const char *a, const char *b, const char *c)
{
	sqlite3_stmt *st = ix->st[s];
	const char *p[3] = {a, b, c};
	for (int i = 0; i < 3 && i < sqlite3_bind_parameter_count(st); i++)
		sqlite3_bind_text(st, i + 1, p[i], -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : ATKV_E_DB;
}

int atkv_likeindex_begin(struct atkv_likeindex *ix) { return run(ix, S_BEGIN, NULL, NULL, NULL); }
int atkv_likeindex_commit(struct atkv_likeindex *ix) { return run(ix, S_COMMIT, NULL, NULL, NULL); }
void atkv_likeindex_rollback(struct atkv_likeindex *ix) { run(ix, S_ROLLBACK, NULL, NULL, NULL); }

/* The subject the like (did, rkey) has now, copied into out; 0 with out empty when none. */
static int current_subject(struct atkv_likeindex *ix, const char *did, const char *rkey, char **out)
{
	sqlite3_stmt *st = ix->st[S_GET];
	sqlite3_bind_text(st, 1, did, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, rkey, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st), result = 0;
	*out = NULL;
	if (rc == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 0);
		if (!(*out = strdup(s ? s : "")))
			result = ATKV_E_NOMEM;
	} else if (rc != SQLITE_DONE) {
		result = ATKV_E_DB;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return result;
}

static int uncount(struct atkv_likeindex *ix, const char *subject)
{
	int rc = run(ix, S_DEC, subject, NULL, NULL);
	return rc ? rc : run(ix, S_DROP_ZERO, subject, NULL, NULL);
}

static const char *string_at(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int atkv_likeindex_put(struct atkv_likeindex *ix, const char *did, const char *rkey, const char *json, size_t n,
                       char *why, size_t why_n)
{
	json_error_t jerr;
	json_t *v = json_loadb(json, n, 0, &jerr);
	json_t *subject = json_object_get(v, "subject");
	const char *uri = string_at(subject, "uri");
	if (!json_is_object(v) || !uri || !*uri) {
		snprintf(why, why_n, "%s", !v ? "the value is not JSON" : "the like has no subject.uri");
		json_decref(v);
		return ATKV_E_SYNTAX;
	}
	char *old = NULL;
	int rc = current_subject(ix, did, rkey, &old);
	/* Same subject: only the details change. Another subject: the like moves. */
	if (!rc && old && strcmp(old, uri))
		rc = uncount(ix, old);
	if (!rc) {
		sqlite3_stmt *st = ix->st[S_UPSERT];
		sqlite3_bind_text(st, 1, did, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, rkey, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, uri, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, string_at(subject, "cid"), -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, string_at(v, "createdAt"), -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ATKV_E_DB;
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	if (!rc && (!old || strcmp(old, uri)))
		rc = run(ix, S_INC, uri, NULL, NULL);
	free(old);
	json_decref(v);
	if (rc)
		snprintf(why, why_n, "%s", sqlite3_errmsg(ix->db));
	return rc;
}

int atkv_likeindex_delete(struct atkv_likeindex *ix, const char *did, const char *rkey)
{
	char *old = NULL;
	int rc = current_subject(ix, did, rkey, &old);
	if (!rc && old && !(rc = run(ix, S_DELETE, did, rkey, NULL)))
		rc = uncount(ix, old);
	free(old);
	return rc;
}

static int each_row(struct atkv_likeindex *ix, enum stmt s, const char *key, int64_t limit,
                    int (*fn)(void *arg, const struct atkv_like_row *row), void *arg)
{
	sqlite3_stmt *st = ix->st[s];
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct atkv_like_row row = {
			.did = (const char *)sqlite3_column_text(st, 0),
			.rkey = (const char *)sqlite3_column_text(st, 1),
			.subject_uri = (const char *)sqlite3_column_text(st, 2),
			.subject_cid = (const char *)sqlite3_column_text(st, 3),
			.created_at = (const char *)sqlite3_column_text(st, 4),
		};
		if (fn(arg, &row)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : ATKV_E_DB;
}

int atkv_likeindex_by_liker(struct atkv_likeindex *ix, const char *did, int64_t limit,
                            int (*fn)(void *arg, const struct atkv_like_row *row), void *arg)
{
	return each_row(ix, S_BY_LIKER, did, limit, fn, arg);
}

int atkv_likeindex_by_subject(struct atkv_likeindex *ix, const char *subject_uri, int64_t limit,
                              int (*fn)(void *arg, const struct atkv_like_row *row), void *arg)
{
	return each_row(ix, S_BY_SUBJECT, subject_uri, limit, fn, arg);
}

int atkv_likeindex_count(struct atkv_likeindex *ix, const char *subject_uri, int64_t *count)
{
	sqlite3_stmt *st = ix->st[S_COUNT];
	sqlite3_bind_text(st, 1, subject_uri, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	*count = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : ATKV_E_DB;
}

int atkv_likeindex_totals(struct atkv_likeindex *ix, int64_t *likes, int64_t *subjects)
{
	sqlite3_stmt *st = ix->st[S_TOTALS];
	int rc = sqlite3_step(st);
	*likes = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	*subjects = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : ATKV_E_DB;
}
