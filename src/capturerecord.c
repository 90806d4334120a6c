/* capturerecord.c — a relay's stream into a capture file (see capturerecord.h): one WebSocket
 * connection through relay.c, each message appended as its 4-byte big-endian length and its
 * bytes. Frames are decoded only to report the range of seqs recorded. */
#include "capturerecord.h"
#include "capture.h"
#include "firehose.h"
#include "relay.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROG "atkv-firehose-replay"
#define MAX_MESSAGE (16u << 20)

struct recorder {
	const struct atkv_capture_record_options *o;
	volatile sig_atomic_t *stop;
	struct atkv_relay *relay;
	struct atkv_firehose *fh;
	FILE *f;
	uint64_t frames, bytes, undecodable;
	int write_errno;
	int64_t first_seq, last_seq;
	time_t deadline;          /* 0: none */
	bool connected, done, write_failed;
	char why[512];            /* how the connection ended, when not by us */
};

static int on_frame(void *arg, const uint8_t *p, size_t n)
{
	struct recorder *rec = arg;
	uint8_t len[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
	if (fwrite(len, 1, 4, rec->f) != 4 || fwrite(p, 1, n, rec->f) != n) {
		rec->write_errno = errno;
		rec->write_failed = true;
		rec->done = true;
		return 1;
	}
	const struct atkv_event *ev;
	if (atkv_firehose_decode(rec->fh, p, n, &ev, NULL) != 0)
		rec->undecodable++;
	else if (ev->seq >= 0) {
		if (rec->first_seq < 0)
			rec->first_seq = ev->seq;
		rec->last_seq = ev->seq;
	}
	rec->frames++;
	rec->bytes += n;
	if (rec->o->frames && rec->frames >= rec->o->frames) {
		rec->done = true;
		return 1;
	}
	return 0;
}

static void on_connected(void *arg)
{
	struct recorder *rec = arg;
	rec->connected = true;
	fprintf(stderr, PROG ": recording %s into %s\n", atkv_relay_url(rec->relay), rec->o->file);
}

static void on_closed(void *arg, const char *why)
{
	struct recorder *rec = arg;
	if (!rec->done)
		snprintf(rec->why, sizeof(rec->why), "%s", why);
	rec->done = true;
}

static void on_tick(void *arg)
{
	struct recorder *rec = arg;
	if (*rec->stop || (rec->deadline && time(NULL) >= rec->deadline)) {
		rec->done = true;
		if (atkv_relay_is_open(rec->relay))
			atkv_relay_close(rec->relay);
	}
}

static int finish(struct recorder *rec)
{
	int rc = 0;
	if (rec->write_failed || fflush(rec->f) || fsync(fileno(rec->f))) {
		fprintf(stderr, PROG ": cannot write %s: %s\n", rec->o->file,
		        strerror(rec->write_failed ? rec->write_errno : errno));
		rc = 1;
	}
	if (fclose(rec->f) && !rc) {
		fprintf(stderr, PROG ": cannot write %s: %s\n", rec->o->file, strerror(errno));
		rc = 1;
	}
	if (rec->why[0]) {
		if (rec->connected)
			fprintf(stderr, PROG ": the connection to %s ended: %s\n", rec->o->from, rec->why);
		else
			fprintf(stderr, PROG ": %s\n", rec->why);
		rc = 1;
	}
	if (rc && rec->frames == 0) { /* nothing worth keeping: no file left behind */
		unlink(rec->o->file);
		fprintf(stderr, PROG ": nothing recorded; %s not kept\n", rec->o->file);
		return rc;
	}
	fprintf(stderr, PROG ": %s: %" PRIu64 " frames, %" PRIu64 " bytes", rec->o->file, rec->frames, rec->bytes);
	if (rec->first_seq >= 0)
		fprintf(stderr, ", seq %" PRId64 "..%" PRId64, rec->first_seq, rec->last_seq);
	fprintf(stderr, ", %" PRIu64 " undecodable\n", rec->undecodable);
	return rc;
}

int atkv_capture_record(const struct atkv_capture_record_options *o, volatile sig_atomic_t *stop)
{
	struct recorder rec = {.o = o, .stop = stop, .first_seq = -1, .last_seq = -1};
	char why[400];
	if (!(rec.f = fopen(o->file, "wbx"))) {
		fprintf(stderr, PROG ": cannot create %s: %s%s\n", o->file, strerror(errno),
		        errno == EEXIST ? " (remove it or record into another file)" : "");
		return 1;
	}
	struct atkv_relay_options ro = {.url = o->from, .max_message = MAX_MESSAGE, .tick_ms = 200,
	                                .ca_file = o->ca_file, .timeout_ms = 60000};
	struct atkv_relay_handler h = {on_frame, on_connected, on_closed, on_tick, &rec};
	if (fwrite(ATKV_CAPTURE_MAGIC, 1, ATKV_CAPTURE_MAGIC_LEN, rec.f) != ATKV_CAPTURE_MAGIC_LEN)
		rec.write_failed = true;
	else if (!(rec.fh = atkv_firehose_new()))
		snprintf(rec.why, sizeof(rec.why), "out of memory");
	else if (atkv_relay_new(&ro, &h, &rec.relay, why, sizeof(why)))
		snprintf(rec.why, sizeof(rec.why), "%s", why);
	if (rec.relay) {
		if (o->seconds)
			rec.deadline = time(NULL) + (time_t)o->seconds;
		atkv_relay_connect(rec.relay, o->cursor);
		while (!(rec.done && !atkv_relay_is_open(rec.relay)))
			if (atkv_relay_service(rec.relay) < 0) {
				snprintf(rec.why, sizeof(rec.why), "the WebSocket library's loop failed");
				break;
			}
	}
	int rc = finish(&rec);
	atkv_relay_free(rec.relay);
	atkv_firehose_free(rec.fh);
	return rc;
}
