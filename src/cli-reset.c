/* cli-reset.c — atkv reset: deletes what atkv made in NATS (the buckets record, cursor,
 * account, repo and backfill — the repositories' heads and a backfill's record of what it did
 * would outlive the records otherwise; a bucket's consumers go with it), after saying exactly what and asking, unless
 * --yes. The SQLite like index is a file of its own and is left alone; the message says so. */
#include "buckets.h"
#include "cli.h"
#include "natsconn.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const buckets[] = {ATKV_BUCKET_RECORD, ATKV_BUCKET_CURSOR, ATKV_BUCKET_ACCOUNT, ATKV_BUCKET_REPO,
                                      ATKV_BUCKET_BACKFILL};
#define N_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

/* What would go: "bucket record (1200 entries; consumers like-indexer), bucket cursor (1 entry)".
 * Returns how many buckets exist, or -1 after saying why NATS could not tell (then nothing may
 * be deleted: a bucket not seen is not known to be gone). */
static int describe(jsCtx *js, bool exists[N_BUCKETS], char *out, size_t cap)
{
	int found = 0;
	size_t len = 0;
	out[0] = '\0';
	for (size_t i = 0; i < N_BUCKETS; i++) {
		char stream[64];
		jsStreamInfo *si = NULL;
		jsConsumerNamesList *names = NULL;
		jsErrCode jerr = 0;
		snprintf(stream, sizeof(stream), "KV_%s", buckets[i]);
		natsStatus s = js_GetStreamInfo(&si, js, stream, NULL, &jerr);
		exists[i] = s == NATS_OK;
		if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr)
			continue;
		if (s != NATS_OK) {
			atkv_cli_fail(ATKV_CLI_FAILED, "cannot read bucket %s: %s; nothing deleted", buckets[i],
			              atkv_nats_why(s));
			return -1;
		}
		int w = snprintf(out + len, cap - len, "%sbucket %s (%llu entr%s", found ? ", " : "", buckets[i],
		                 (unsigned long long)si->State.Msgs, si->State.Msgs == 1 ? "y" : "ies");
		len += w > 0 && (size_t)w < cap - len ? (size_t)w : 0;
		if (js_ConsumerNames(&names, js, stream, NULL, NULL) == NATS_OK && names)
			for (int k = 0; k < names->Count; k++) {
				w = snprintf(out + len, cap - len, "%s%s", k ? " " : "; consumers ", names->List[k]);
				len += w > 0 && (size_t)w < cap - len ? (size_t)w : 0;
			}
		w = snprintf(out + len, cap - len, ")");
		len += w > 0 && (size_t)w < cap - len ? (size_t)w : 0;
		jsConsumerNamesList_Destroy(names);
		jsStreamInfo_Destroy(si);
		found++;
	}
	return found;
}

static bool confirmed(const char *what, const char *url)
{
	char line[64] = "";
	fprintf(stderr, "atkv reset deletes, on %s: %s.\nType yes to go on: ", url, what);
	fflush(stderr);
	if (!fgets(line, sizeof(line), stdin))
		return false;
	line[strcspn(line, "\r\n")] = '\0';
	return !strcmp(line, "yes");
}

int atkv_cli_reset(struct atkv_cli *c)
{
	bool yes = atkv_config_bool(c->cfg, "yes");
	if (!yes && !isatty(STDIN_FILENO))
		return atkv_cli_fail(ATKV_CLI_USAGE, "reset deletes the store: with no terminal to ask on, say --yes");
	int rc = atkv_cli_connect(c);
	if (rc)
		return rc;
	char url[512];
	atkv_nats_urls_shown(atkv_config_str(c->cfg, "nats"), url, sizeof(url));
	char what[8192];
	bool exists[N_BUCKETS];
	int found = describe(c->js, exists, what, sizeof(what));
	if (found < 0)
		return ATKV_CLI_FAILED;
	if (found == 0) {
		printf("nothing to reset: no atkv bucket on %s\n", url);
		return 0;
	}
	if (!yes && !confirmed(what, url))
		return atkv_cli_fail(ATKV_CLI_FAILED, "nothing deleted");
	for (size_t i = 0; i < N_BUCKETS; i++) {
		char stream[64];
		jsErrCode jerr = 0;
		snprintf(stream, sizeof(stream), "KV_%s", buckets[i]);
		natsStatus s = exists[i] ? js_DeleteStream(c->js, stream, NULL, &jerr) : NATS_OK;
		if (s != NATS_OK)
			rc = atkv_cli_fail(ATKV_CLI_FAILED, "cannot delete bucket %s: %s", buckets[i], atkv_nats_why(s));
	}
	if (!rc)
		printf("deleted %s\nThe like index is a file of atkv-like-indexer's own: stop the indexer and delete it "
		       "(like-index.sqlite and its -wal, -shm) before starting it again, or it keeps the old likes.\n",
		       what);
	return rc;
}
