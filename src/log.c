/* log.c — journald or stderr logging (see log.h; the journal side is journal.c). journald is used only when JOURNAL_STREAM
 * names the device and inode of our stderr: a service whose output was redirected elsewhere
 * keeps plain lines. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Set once by atkv_log_init before threads start; never written again. */
static struct {
	const char *program;
	enum atkv_log_level level;
	atkv_log_journal_fn *journal; /* NULL: stderr */
} logger = {"atkv", ATKV_LOG_INFO, NULL};

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

void atkv_log_init(const char *program, enum atkv_log_level level, atkv_log_journal_fn *journal)
{
	logger.program = program;
	logger.level = level;
	logger.journal = journal && stderr_is_journal() ? journal : NULL;
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
		logger.journal(level, logger.program, msg, at);
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
