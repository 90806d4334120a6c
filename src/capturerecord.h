/* capturerecord.h — recording a live relay's (or PDS's) subscribeRepos stream into a capture
 * file (capture.h), for atkv-firehose-replay --record: a slice of the real network to replay
 * offline, byte for byte as received. */
#ifndef ATKV_CAPTURERECORD_H
#define ATKV_CAPTURERECORD_H
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

struct atkv_capture_record_options {
	const char *file;      /* created; an existing file is refused */
	const char *from;      /* ws:// or wss:// URL of the relay */
	const char *ca_file;   /* for wss://; NULL: the system's CAs */
	int64_t cursor;        /* start after this seq; -1: live */
	uint64_t frames;       /* stop after this many messages; 0: no limit */
	uint64_t seconds;      /* stop after this long; 0: no limit */
};

/* Records until a limit is reached or *stop is set (a signal), then closes the file (flushed
 * and synced) and says what it holds on stderr. Returns 0, or 1 after saying why (the file
 * cannot be made, the relay cannot be reached, the connection ended early: what was received
 * stays recorded). */
int atkv_capture_record(const struct atkv_capture_record_options *o, volatile sig_atomic_t *stop);
#endif
