/* journal.c — one log line to journald with atkv's structured fields (ATKV_SEQ, ATKV_DID,
 * ATKV_PATH, ATKV_KIND). Kept apart from log.c so that tools which never run under systemd
 * (atkv-get-likes-by) do not load libsystemd and its dependencies on every start. */
#include "log.h"

#include <stdio.h>
#include <systemd/sd-journal.h>

void atkv_journal_send(enum atkv_log_level level, const char *program, const char *msg,
                       const struct atkv_log_at *at)
{
	char seq[32] = "", did[600] = "", path[600] = "", kind[80] = "";
	if (at && at->seq >= 0)
		snprintf(seq, sizeof(seq), "ATKV_SEQ=%lld", (long long)at->seq);
	if (at && at->did)
		snprintf(did, sizeof(did), "ATKV_DID=%.*s", at->did_n, at->did);
	if (at && at->path)
		snprintf(path, sizeof(path), "ATKV_PATH=%.*s", at->path_n, at->path);
	if (at && at->kind)
		snprintf(kind, sizeof(kind), "ATKV_KIND=%s", at->kind);
	/* Empty fields are skipped by ending the list at the first one missing. */
	const char *fields[4] = {NULL, NULL, NULL, NULL};
	int n = 0;
	if (seq[0])
		fields[n++] = seq;
	if (did[0])
		fields[n++] = did;
	if (path[0])
		fields[n++] = path;
	if (kind[0])
		fields[n++] = kind;
	sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", (int)level, "SYSLOG_IDENTIFIER=%s", program,
	                n > 0 ? "%s" : NULL, fields[0], n > 1 ? "%s" : NULL, fields[1],
	                n > 2 ? "%s" : NULL, fields[2], n > 3 ? "%s" : NULL, fields[3], NULL);
}
