/* likecheck.c — a like index (atkv-like-indexer's SQLite file) compared with the likes a store
 * holds, read with SQL of the tests' own rather than the index's queries. */
#include "likecheck.h"
#include "tap.h"
#include <atkv/recordkey.h>

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

int likecheck_compare(const char *db, json_t *likes, bool note)
{
	sqlite3 *q = NULL;
	sqlite3_stmt *st = NULL;
	int bad = 0, rows = 0;
	if (sqlite3_open_v2(db, &q, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(q, "SELECT l.did, l.rkey, s.uri FROM likes l JOIN subjects s ON s.id = l.subject", -1, &st,
	                       NULL) != SQLITE_OK) {
		sqlite3_close(q);
		return -1;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		char id[ATKV_DID_MAX + ATKV_RKEY_MAX + 2];
		const char *uri = (const char *)sqlite3_column_text(st, 2);
		snprintf(id, sizeof(id), "%s %s", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1));
		const char *want = json_string_value(json_object_get(likes, id));
		rows++;
		if ((!want || strcmp(want, uri)) && bad++ < 5 && note)
			tap_note("index: like %s of %s, the store: %s", id, uri, want ? want : "no such like");
	}
	sqlite3_finalize(st);
	if (rows != (int)json_object_size(likes) && bad++ < 5 && note)
		tap_note("index: %d likes, the store: %zu", rows, json_object_size(likes));
	/* Checked with SQL the index does not use for its own counts. */
	if (sqlite3_prepare_v2(q,
	                       "SELECT count(*) FROM subjects s WHERE s.likes != "
	                       "(SELECT count(*) FROM likes l WHERE l.subject = s.id)",
	                       -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 0)) {
		bad++;
		if (note)
			tap_note("index: some subjects' counts are not their numbers of likes");
	}
	sqlite3_finalize(st);
	sqlite3_close(q);
	return bad;
}
