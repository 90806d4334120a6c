/* bench-decode.c — decoding speed of the firehose core over a capture, with no NATS: every
 * frame decoded (header, body, CAR indexed, every record's block hashed against its CID) and
 * every record converted to JSON, the work atkv-builder does per event before it publishes. Usage:
 *   bench-decode CAPTURE [--seconds S]
 * Prints one line: c-atkv: frames=N bytes=B seconds=S frames_per_s=F mb_per_s=M records=R */
#include "capture.h"
#include "err.h"
#include "firehose.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	uint8_t *buf = NULL;
	if (fseek(f, 0, SEEK_END) == 0) {
		long n = ftell(f);
		if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) &&
		    fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)n;
	}
	fclose(f);
	return buf;
}

int main(int argc, char **argv)
{
	double seconds = 5;
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (argv[i][0] != '-' && !path)
			path = argv[i];
		else {
			fprintf(stderr, "usage: bench-decode CAPTURE [--seconds S]\n");
			return 2;
		}
	}
	if (!path) {
		fprintf(stderr, "usage: bench-decode CAPTURE [--seconds S]\n");
		return 2;
	}
	size_t n;
	uint8_t *cap = read_file(path, &n);
	long start = cap ? atkv_capture_start(cap, n) : -1;
	if (start < 0) {
		fprintf(stderr, "bench-decode: %s is not a readable atkvcap1 capture\n", path);
		return 1;
	}
	struct atkv_firehose *fh = atkv_firehose_new();
	if (!fh)
		return 1;

	unsigned long long frames = 0, bytes = 0, records = 0, sink = 0, errors = 0;
	double t0 = now(), elapsed;
	do {
		size_t off = (size_t)start, len;
		const uint8_t *frame;
		while (atkv_capture_next(cap, n, &off, &frame, &len) == 1) {
			const struct atkv_event *ev;
			frames++;
			bytes += len;
			if (atkv_firehose_decode(fh, frame, len, &ev, NULL)) {
				errors++;
				continue;
			}
			for (size_t i = 0; i < ev->n_ops; i++) {
				const char *json;
				size_t jl;
				if (ev->ops[i].cid.bytes && atkv_firehose_record(fh, i, &json, &jl, NULL) == 0) {
					records++;
					sink += jl;
				}
			}
		}
		elapsed = now() - t0;
	} while (elapsed < seconds);

	printf("c-atkv: frames=%llu bytes=%llu seconds=%.3f frames_per_s=%.1f mb_per_s=%.3f records=%llu\n",
	       frames, bytes, elapsed, (double)frames / elapsed, (double)bytes / 1e6 / elapsed, records);
	if (errors || !sink)
		fprintf(stderr, "bench-decode: %llu frames failed to decode\n", errors);
	atkv_firehose_free(fh);
	free(cap);
	return errors ? 1 : 0;
}
