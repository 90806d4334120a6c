/* likeindex.c — the like index in SQLite (see likeindex.h). Statements are prepared once and
 * reused: the indexer applies thousands of changes a second. The first fill of an empty index
 * is a bulk load: appended rows, then sorts, instead of random B-tree inserts per like. */
#include "likeindex.h"
#include "likerecord.h"
#include <atkv/error.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SCHEMA_VERSION 2


#define BY_SUBJECT_INDEX "CREATE INDEX IF NOT EXISTS likes_by_subject ON likes (subject, rkey);"

/* Subjects are interned: a like row holds an integer, and the count lives with the subject. */
static const char schema[] =
	"CREATE TABLE IF NOT EXISTS subjects ("
	" id INTEGER PRIMARY KEY,"
	" uri TEXT NOT NULL UNIQUE,"
	" likes INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS likes ("
	" did TEXT NOT NULL,"          /* the liker */
	" rkey TEXT NOT NULL,"         /* the like record's key: a TID, so newer sorts later */
	" subject INTEGER NOT NULL,"   /* subjects.id */
	" subject_cid TEXT,"
	" created_at TEXT,"
	" PRIMARY KEY (did, rkey)) WITHOUT ROWID;"
	BY_SUBJECT_INDEX
	"PRAGMA user_version = 2;";

/* A bulk load's changes in stream order; subject NULL: the like was deleted (or its value was
 * bad). They live in a file of their own beside the index (LOAD_SUFFIX), attached as `load`,
 * which goes when the load is done: dropped from the index's own file, the table would leave
 * it twice the size, half of it free pages. (Interning subjects as the changes come instead
 * costs more in lookups than the sort at the end does.) */
#define LOAD_SUFFIX "-load"
static const char load_table[] =
	"PRAGMA load.journal_mode = WAL; PRAGMA load.synchronous = FULL;"
	"CREATE TABLE IF NOT EXISTS load.loading (seq INTEGER PRIMARY KEY, did TEXT NOT NULL, rkey TEXT NOT NULL,"
	" subject TEXT, subject_cid TEXT, created_at TEXT)";

/* The last change of each like wins (ordered by seq within a like, the upsert keeps the
 * latest); counts are taken once the likes are in, through the index built in one sort. */
static const char *const load_finish[] = {
	"DROP INDEX likes_by_subject",
	"INSERT INTO subjects (uri, likes) SELECT subject, 0 FROM loading WHERE subject IS NOT NULL GROUP BY subject",
	"INSERT INTO likes (did, rkey, subject, subject_cid, created_at)"
	" SELECT l.did, l.rkey, coalesce(s.id, 0), l.subject_cid, l.created_at"
	" FROM loading l LEFT JOIN subjects s ON s.uri = l.subject WHERE true ORDER BY l.did, l.rkey, l.seq"
	" ON CONFLICT (did, rkey) DO UPDATE SET subject = excluded.subject, subject_cid = excluded.subject_cid,"
	" created_at = excluded.created_at",
	"DELETE FROM likes WHERE subject = 0",
	BY_SUBJECT_INDEX,
	"UPDATE subjects SET likes = (SELECT count(*) FROM likes WHERE subject = subjects.id)",
	"DELETE FROM subjects WHERE likes = 0",
};

enum stmt {
	S_COUNT_UP, S_INSERT, S_GET, S_COUNT_DOWN, S_DROP_ZERO, S_MOVE, S_DELETE, S_BY_LIKER, S_BY_SUBJECT, S_COUNT,
	S_TOTALS, S_BEGIN, S_COMMIT, S_ROLLBACK, N_STMT,
};

static const char *const sql[N_STMT] = {
	/* Counted first (the like usually is new), taken back when it was not. */
	[S_COUNT_UP] = "INSERT INTO subjects (uri, likes) VALUES (?1, 1)"
	               " ON CONFLICT (uri) DO UPDATE SET likes = likes + 1 RETURNING id",
	[S_INSERT] = "INSERT INTO likes (did, rkey, subject, subject_cid, created_at) VALUES (?1, ?2, ?3, ?4, ?5)"
	             " ON CONFLICT (did, rkey) DO NOTHING",
	[S_GET] = "SELECT subject FROM likes WHERE did = ?1 AND rkey = ?2",
	[S_COUNT_DOWN] = "UPDATE subjects SET likes = likes - 1 WHERE id = ?1",
	[S_DROP_ZERO] = "DELETE FROM subjects WHERE id = ?1 AND likes <= 0",
	[S_MOVE] = "UPDATE likes SET subject = ?3, subject_cid = ?4, created_at = ?5 WHERE did = ?1 AND rkey = ?2",
	[S_DELETE] = "DELETE FROM likes WHERE did = ?1 AND rkey = ?2 RETURNING subject",
	[S_BY_LIKER] = "SELECT l.did, l.rkey, s.uri, l.subject_cid, l.created_at FROM likes l"
	               " JOIN subjects s ON s.id = l.subject WHERE l.did = ?1 ORDER BY l.rkey DESC LIMIT ?2",
	[S_BY_SUBJECT] = "SELECT l.did, l.rkey, s.uri, l.subject_cid, l.created_at FROM subjects s"
	                 " JOIN likes l ON l.subject = s.id WHERE s.uri = ?1 ORDER BY l.rkey DESC LIMIT ?2",
	[S_COUNT] = "SELECT likes FROM subjects WHERE uri = ?1",
	[S_TOTALS] = "SELECT (SELECT count(*) FROM likes), (SELECT count(*) FROM subjects)",
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
};

struct atkv_likeindex {
	sqlite3 *db;
	bool writer;
	sqlite3_stmt *st[N_STMT];
	sqlite3_stmt *load;  /* appends to `loading`; set while a bulk load runs */
	char *load_path;     /* the bulk load's file */
	char *fields;        /* a record's strings, unescaped: reused, grown as records need */
	size_t fields_n;
};

const char *atkv_likeindex_error(struct atkv_likeindex *ix) { return sqlite3_errmsg(ix->db); }

void atkv_likeindex_close(struct atkv_likeindex *ix)
{
	if (!ix)
		return;
	for (int i = 0; i < N_STMT; i++)
		sqlite3_finalize(ix->st[i]);
	sqlite3_finalize(ix->load);
	/* The WAL file stays (for readers that may not create it) but empty: a reader would
	 * otherwise rebuild its index from every frame, on every open. */
	if (ix->writer)
		sqlite3_exec(ix->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	sqlite3_close(ix->db);
	free(ix->load_path);
	free(ix->fields);
	free(ix);
}

static int failed(struct atkv_likeindex *ix, const char *path, const char *what, char *why, size_t why_n)
{
	snprintf(why, why_n, "like index %s: %s: %s", path, what, ix->db ? sqlite3_errmsg(ix->db) : "out of memory");
	atkv_likeindex_close(ix);
	return ATKV_E_DB;
}

static int prepare_load(struct atkv_likeindex *ix)
{
	return sqlite3_prepare_v3(ix->db, "INSERT OR REPLACE INTO load.loading VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1,
	                          SQLITE_PREPARE_PERSISTENT, &ix->load, NULL) == SQLITE_OK ? 0 : ATKV_E_DB;
}

/* 1 when the index holds no like and no subject, 0 when it does, -1 when it cannot tell.
 * EXISTS, not count(*): a full index would be walked page by page. */
static int empty(struct atkv_likeindex *ix)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(ix->db, "SELECT NOT EXISTS (SELECT 1 FROM main.likes) AND NOT EXISTS (SELECT 1 FROM main.subjects)",
	                            -1, &st, NULL);
	int e = rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	return e;
}

static bool load_file_exists(struct atkv_likeindex *ix) { return access(ix->load_path, F_OK) == 0; }

/* Attaches the load's file (creating it and its table when new) and prepares the appends. */
static int attach_load(struct atkv_likeindex *ix)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(ix->db, "ATTACH ?1 AS load", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, ix->load_path, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK || sqlite3_exec(ix->db, load_table, NULL, NULL, NULL) || prepare_load(ix))
		return ATKV_E_DB;
	return 0;
}

/* The load's file and SQLite's companions of it. */
static void remove_load_file(struct atkv_likeindex *ix)
{
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	size_t n = strlen(ix->load_path);
	char *path = malloc(n + 5);
	for (size_t i = 0; path && i < 3; i++) {
		snprintf(path, n + 5, "%s%s", ix->load_path, suffixes[i]);
		unlink(path);
	}
	free(path);
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
	sqlite3_stmt *v = NULL;
	int version = -1;
	if (sqlite3_prepare_v2(ix->db, "PRAGMA user_version", -1, &v, NULL) == SQLITE_OK && sqlite3_step(v) == SQLITE_ROW)
		version = sqlite3_column_int(v, 0);
	sqlite3_finalize(v);
	v = NULL;
	if (version < 0)
		return failed(ix, path, "cannot read", why, why_n);
	/* Version 0 is a new file, or a database of something else: that one is left alone. */
	int tables = 0;
	if (version == 0 && sqlite3_prepare_v2(ix->db, "SELECT count(*) FROM sqlite_master", -1, &v, NULL) == SQLITE_OK &&
	    sqlite3_step(v) == SQLITE_ROW)
		tables = sqlite3_column_int(v, 0);
	sqlite3_finalize(v);
	if (tables)
		version = -1;
	if (!readonly) {
		/* WAL: readers never block the indexer; its files stay when the indexer stops, so a
		 * reader that may not create them can still open the index. FULL: a commit is on disk
		 * before its acks go, so not even a power cut loses an acknowledged like. */
		int persist = 1;
		sqlite3_file_control(ix->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
		/* journal_size_limit: a checkpoint gives back what a large batch grew the WAL to. */
		if (sqlite3_exec(ix->db,
		                 "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA cache_size = -65536;"
		                 " PRAGMA journal_size_limit = 8388608;",
		                 NULL, NULL, NULL) ||
		    (version == 0 && sqlite3_exec(ix->db, schema, NULL, NULL, NULL)))
			return failed(ix, path, "cannot set up the schema", why, why_n);
		if (version == 0)
			version = SCHEMA_VERSION;
		ix->writer = true;
	}
	if (version != SCHEMA_VERSION) {
		snprintf(why, why_n, "%s is not a like index of this version (schema %d, expected %d): has atkv-like-indexer run?",
		         path, version, SCHEMA_VERSION);
		atkv_likeindex_close(ix);
		return ATKV_E_DB;
	}
	for (int i = 0; i < N_STMT; i++)
		if (sqlite3_prepare_v3(ix->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &ix->st[i], NULL) != SQLITE_OK)
			return failed(ix, path, "cannot prepare a statement", why, why_n);
	size_t path_n = strlen(path) + sizeof(LOAD_SUFFIX);
	if (!(ix->load_path = malloc(path_n)))
		return failed(ix, path, "out of memory", why, why_n);
	snprintf(ix->load_path, path_n, "%s%s", path, LOAD_SUFFIX);
	/* A load file beside an index with likes is what a crash left between the end of the load
	 * and the file's removal. */
	if (ix->writer && load_file_exists(ix)) {
		int e = empty(ix);
		if (e == 0)
			remove_load_file(ix);
		else if (e < 0 || attach_load(ix))
			return failed(ix, path, "cannot resume the bulk load", why, why_n);
	}
	*out = ix;
	return 0;
}

/* Steps st once after binding up to six text values (NULL binds NULL) and an integer (when
 * id_param > 0, at that position); returns the step's result code and resets st, keeping the
 * first column of a row in *col0 when col0 is not NULL. */
static int step(sqlite3_stmt *st, const char *const *text, int n_text, int id_param, int64_t id, int64_t *col0)
{
	for (int i = 0; i < n_text; i++)
		sqlite3_bind_text(st, i + 1, text[i], -1, SQLITE_STATIC);
	/* Bound last, so it replaces whatever text was given for its position. */
	if (id_param > 0)
		sqlite3_bind_int64(st, id_param, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && col0)
		*col0 = sqlite3_column_int64(st, 0);
	/* A RETURNING statement finishes its work on reset; its result counts. */
	int reset = sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? (reset == SQLITE_OK ? rc : reset) : rc;
}

static int run(struct atkv_likeindex *ix, enum stmt s)
{
	return step(ix->st[s], NULL, 0, 0, 0, NULL) == SQLITE_DONE ? 0 : ATKV_E_DB;
}

int atkv_likeindex_begin(struct atkv_likeindex *ix) { return run(ix, S_BEGIN); }
int atkv_likeindex_commit(struct atkv_likeindex *ix) { return run(ix, S_COMMIT); }
void atkv_likeindex_rollback(struct atkv_likeindex *ix) { run(ix, S_ROLLBACK); }

/* One like fewer for subject id; a subject with none left goes. */
static int uncount(struct atkv_likeindex *ix, int64_t id)
{
	if (step(ix->st[S_COUNT_DOWN], NULL, 0, 1, id, NULL) != SQLITE_DONE ||
	    step(ix->st[S_DROP_ZERO], NULL, 0, 1, id, NULL) != SQLITE_DONE)
		return ATKV_E_DB;
	return 0;
}

static int db_failed(struct atkv_likeindex *ix, char *why, size_t why_n)
{
	snprintf(why, why_n, "%s", sqlite3_errmsg(ix->db));
	return ATKV_E_DB;
}

/* A bulk load's row: the change at stream position seq, subject NULL for a delete. */
static int append(struct atkv_likeindex *ix, uint64_t seq, const char *did, const char *rkey, const char *subject_uri,
                  const char *subject_cid, const char *created_at)
{
	/* The first text is a placeholder: seq, bound last, takes its place. */
	const char *row[6] = {NULL, did, rkey, subject_uri, subject_cid, created_at};
	return step(ix->load, row, 6, 1, (int64_t)seq, NULL) == SQLITE_DONE ? 0 : ATKV_E_DB;
}

int atkv_likeindex_put(struct atkv_likeindex *ix, uint64_t seq, const char *did, const char *rkey, const char *json,
                       size_t n, char *why, size_t why_n)
{
	if (n + 1 > ix->fields_n) {
		char *grown = realloc(ix->fields, n + 1);
		if (!grown) {
			snprintf(why, why_n, "out of memory");
			return ATKV_E_NOMEM;
		}
		ix->fields = grown;
		ix->fields_n = n + 1;
	}
	struct atkv_like_fields f;
	switch (atkv_like_parse(json, n, ix->fields, &f)) {
	case ATKV_LIKE_OK: break;
	case ATKV_LIKE_NOT_JSON: snprintf(why, why_n, "the value is not JSON"); return ATKV_E_SYNTAX;
	default: snprintf(why, why_n, "the like has no subject.uri"); return ATKV_E_SYNTAX;
	}
	if (ix->load)
		return append(ix, seq, did, rkey, f.subject_uri, f.subject_cid, f.created_at) ? db_failed(ix, why, why_n) : 0;
	const char *row[5] = {did, rkey, NULL, f.subject_cid, f.created_at};
	int64_t id = 0, old = 0;
	if (step(ix->st[S_COUNT_UP], &f.subject_uri, 1, 0, 0, &id) != SQLITE_ROW ||
	    step(ix->st[S_INSERT], row, 5, 3, id, NULL) != SQLITE_DONE)
		return db_failed(ix, why, why_n);
	if (sqlite3_changes(ix->db) == 1)
		return 0; /* a new like: counted already */
	/* The like was there. Its old subject loses one: that takes back the count above when the
	 * subject is the same (it is at least 2 then, so it stays), and moves the like when not. */
	if (step(ix->st[S_GET], row, 2, 0, 0, &old) != SQLITE_ROW || uncount(ix, old) ||
	    step(ix->st[S_MOVE], row, 5, 3, id, NULL) != SQLITE_DONE)
		return db_failed(ix, why, why_n);
	return 0;
}

int atkv_likeindex_delete(struct atkv_likeindex *ix, uint64_t seq, const char *did, const char *rkey)
{
	if (ix->load)
		return append(ix, seq, did, rkey, NULL, NULL, NULL);
	const char *key[2] = {did, rkey};
	int64_t old = 0;
	int rc = step(ix->st[S_DELETE], key, 2, 0, 0, &old);
	if (rc == SQLITE_ROW)
		return uncount(ix, old);
	return rc == SQLITE_DONE ? 0 : ATKV_E_DB;
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

bool atkv_likeindex_loading(struct atkv_likeindex *ix)
{
	return ix->writer ? ix->load != NULL : load_file_exists(ix) && empty(ix) != 0;
}

int atkv_likeindex_load_start(struct atkv_likeindex *ix)
{
	if (ix->load)
		return 0;
	int e = empty(ix);
	if (e != 1)
		return e < 0 ? ATKV_E_DB : ATKV_E_ARG;
	return attach_load(ix);
}

struct progress {
	int (*tick)(void *arg);
	void *arg;
};

static int on_progress(void *arg)
{
	struct progress *p = arg;
	return p->tick(p->arg);
}

int atkv_likeindex_load_finish(struct atkv_likeindex *ix, int (*tick)(void *arg), void *arg)
{
	if (!ix->load)
		return 0;
	/* The statement that knows `loading` goes before the file does. */
	sqlite3_finalize(ix->load);
	ix->load = NULL;
	struct progress p = {tick, arg};
	if (tick)
		sqlite3_progress_handler(ix->db, 1000, on_progress, &p);
	/* Two sorter threads: a third faster on two cores, for another cache's worth of memory. */
	sqlite3_exec(ix->db, "PRAGMA threads = 2", NULL, NULL, NULL);
	int rc = atkv_likeindex_begin(ix);
	/* Asked between the steps too: a step too small for the progress handler still stops. */
	for (size_t i = 0; !rc && i < sizeof(load_finish) / sizeof(load_finish[0]); i++) {
		if (tick && tick(arg))
			rc = ATKV_E_STOPPED;
		else if (sqlite3_exec(ix->db, load_finish[i], NULL, NULL, NULL) != SQLITE_OK)
			rc = sqlite3_errcode(ix->db) == SQLITE_INTERRUPT ? ATKV_E_STOPPED : ATKV_E_DB;
	}
	if (!rc)
		rc = atkv_likeindex_commit(ix);
	if (rc) {
		/* The load goes on from where it was. */
		atkv_likeindex_rollback(ix);
		prepare_load(ix);
	} else {
		sqlite3_exec(ix->db, "DETACH load", NULL, NULL, NULL);
		remove_load_file(ix);
	}
	sqlite3_progress_handler(ix->db, 0, NULL, NULL);
	sqlite3_exec(ix->db, "PRAGMA threads = 0", NULL, NULL, NULL);
	sqlite3_db_release_memory(ix->db);
	return rc;
}
