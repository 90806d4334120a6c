/* seeds.c — writes starting corpora for the fuzz targets from a capture: each frame (for
 * fuzz-frame), each frame's CAR (fuzz-car) and each record block (fuzz-dagcbor).
 *   seeds CAPTURE OUTDIR   (OUTDIR/frame, OUTDIR/car, OUTDIR/dagcbor must exist) */
#include "capture.h"
#include "car.h"
#include "firehose.h"

#include <stdio.h>
#include <stdlib.h>

static int write_file(const char *dir, const char *kind, size_t i, const uint8_t *p, size_t n)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s/seed-%05zu", dir, kind, i);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
		fprintf(stderr, "seeds: cannot write %s\n", path);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: seeds CAPTURE OUTDIR\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "rb");
	static uint8_t cap[1 << 24];
	size_t n = f ? fread(cap, 1, sizeof(cap), f) : 0;
	long start = atkv_capture_start(cap, n);
	if (!f || start < 0) {
		fprintf(stderr, "seeds: %s is not a capture\n", argv[1]);
		return 1;
	}
	fclose(f);
	struct atkv_firehose *fh = atkv_firehose_new();
	struct atkv_car *car = atkv_car_new();
	size_t off = (size_t)start, len, i = 0, records = 0;
	const uint8_t *frame;
	while (fh && car && atkv_capture_next(cap, n, &off, &frame, &len) == 1) {
		const struct atkv_event *ev;
		if (write_file(argv[2], "frame", i, frame, len))
			return 1;
		if (atkv_firehose_decode(fh, frame, len, &ev, NULL) == 0 && ev->blocks) {
			if (write_file(argv[2], "car", i, ev->blocks, ev->blocks_len))
				return 1;
			atkv_car_load(car, ev->blocks, ev->blocks_len, NULL);
			for (size_t k = 0; k < ev->n_ops; k++) {
				const uint8_t *block;
				size_t bl;
				if (ev->ops[k].cid.bytes &&
				    atkv_car_get(car, ev->ops[k].cid.bytes, ev->ops[k].cid.len, &block, &bl) == 0 &&
				    write_file(argv[2], "dagcbor", records++, block, bl))
					return 1;
			}
		}
		i++;
	}
	printf("seeds: %zu frames, %zu records\n", i, records);
	atkv_firehose_free(fh);
	atkv_car_free(car);
	return 0;
}
