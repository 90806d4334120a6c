/* log.c — journald or stderr logging (see log.h). journald is used only when JOURNAL_STREAM
 * names the device and inode of our stderr: a service whose output was redirected elsewhere
 * keeps plain lines. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>

/* Set once by atkv_log_init before threads start; never written again. */
static struct {
	const char *program;
	enum atkv_log_level level;
	bool journal;
} logger = {"atkv", ATKV_LOG_INFO, false};

int atkv_log_level_parse(const char *s)
{
	if (!strcmp(s, "error"))
		return ATKV_LOG_ERROR;
	if (!strcmp(s, "warning"))
		return ATKV_LOG_WARNING;
	if (!strcmp(s, "info"))
		return ATKV_LOG_INFO;
	if (!strcmp(s, "debug"))
		return ATKV_LOG_DEBUG;
	return -1;
}

static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(2, &st) != 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void atkv_log_init(const char *program, enum atkv_log_level level)
{
	logger.program = program;
	logger.level = level;
	logger.journal = stderr_is_journal();
}

bool atkv_log_enabled(enum atkv_log_level level) { return level <= logger.level; }

static const char *level_name(enum atkv_log_level level)
{
	switch (level) {
	case ATKV_LOG_ERROR: return "error";
	case ATKV_LOG_WARNING: return "warning";
	case ATKV_LOG_INFO: return "info";
	case ATKV_LOG_DEBUG: return "debug";
	}
	return "?";
}

static void emit(enum atkv_log_level level, const struct atkv_log_at *at, const char *fmt, va_list ap)
{
	char msg[2048], where[1024] = "";
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (logger.journal) {
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
		sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", (int)level, "SYSLOG_IDENTIFIER=%s",
		                logger.program, n > 0 ? "%s" : NULL, fields[0], n > 1 ? "%s" : NULL,
		                fields[1], n > 2 ? "%s" : NULL, fields[2], n > 3 ? "%s" : NULL, fields[3],
		                NULL);
		return;
	}
	if (at) {
		size_t len = 0;
		if (at->seq >= 0)
			len += (size_t)snprintf(where + len, sizeof(where) - len, " seq=%lld", (long long)at->seq);
		if (at->did && len < sizeof(where))
			len += (size_t)snprintf(where + len, sizeof(where) - len, " did=%.*s", at->did_n, at->did);
		if (at->path && len < sizeof(where))
			len += (size_t)snprintf(where + len, sizeof(where) - len, " path=%.*s", at->path_n, at->path);
		if (at->kind && len < sizeof(where))
			snprintf(where + len, sizeof(where) - len, " kind=%s", at->kind);
	}
	fprintf(stderr, "%s: %s: %s%s\n", logger.program, level_name(level), msg, where);
}

void atkv_log(enum atkv_log_level level, const char *fmt, ...)
{
	if (!atkv_log_enabled(level))
		return;
	va_list ap;
	va_start(ap, fmt);
	emit(level, NULL, fmt, ap);
	va_end(ap);
}

void atkv_log_event(enum atkv_log_level level, const struct atkv_log_at *at, const char *fmt, ...)
{
	if (!atkv_log_enabled(level))
		return;
	va_list ap;
	va_start(ap, fmt);
	emit(level, at, fmt, ap);
	va_end(ap);
}
