/* log.h — leveled logging for atkv's programs: to journald with structured fields (ATKV_SEQ,
 * ATKV_DID, ATKV_PATH, ATKV_KIND) when stderr is the journal (systemd's JOURNAL_STREAM), else
 * plain lines on stderr. Configured once by main before any thread starts; read-only after. */
#ifndef ATKV_LOG_H
#define ATKV_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum atkv_log_level {
	ATKV_LOG_ERROR = 3,    /* syslog priorities, as journald wants them */
	ATKV_LOG_WARNING = 4,
	ATKV_LOG_INFO = 6,
	ATKV_LOG_DEBUG = 7,
};

/* Where a log line is about, when it is about one event or record; absent parts are NULL/-1. */
struct atkv_log_at {
	int64_t seq;
	const char *did;      /* need not be NUL-terminated: did_n bytes */
	int did_n;
	const char *path;
	int path_n;
	const char *kind;     /* the error kind counted in the metrics, e.g. "cid_mismatch" */
};

/* Parses "error", "warning", "info" or "debug". Returns -1 for anything else. */
int atkv_log_level_parse(const char *s);

/* Sends one line to journald: atkv_journal_send (journal.c, which links libsystemd). */
typedef void atkv_log_journal_fn(enum atkv_log_level level, const char *program, const char *msg,
                                 const struct atkv_log_at *at);
atkv_log_journal_fn atkv_journal_send;
/* Sets the program name and threshold, and sends lines through journal when stderr is the
 * journal (a service's; tools pass NULL and always write to stderr). Call once, early. */
void atkv_log_init(const char *program, enum atkv_log_level level, atkv_log_journal_fn *journal);

/* True when lines at level would be written. */
bool atkv_log_enabled(enum atkv_log_level level);

void atkv_log(enum atkv_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void atkv_log_event(enum atkv_log_level level, const struct atkv_log_at *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
