/* seeds.c — writes starting corpora for the fuzz targets from a capture: each frame (for
 * fuzz-frame), each frame's CAR (fuzz-car) and each record block (fuzz-dagcbor); and, for
 * fuzz-websocket, a handshake response and a few server frames, one carrying a capture frame.
 *   seeds CAPTURE OUTDIR   (OUTDIR/frame, OUTDIR/car, OUTDIR/dagcbor, OUTDIR/websocket must exist) */
#include "capture.h"
#include "car.h"
#include "firehose.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Appends an unmasked server frame (first: FIN, opcode) of p[0..n) at out + *len, the length in
 * its shortest form, or the 64-bit one when long64. */
static void ws_frame(uint8_t *out, size_t *len, uint8_t first, const void *p, size_t n, int long64)
{
	uint8_t *o = out + *len;
	size_t h = 2;
	o[0] = first;
	if (n < 126 && !long64) {
		o[1] = (uint8_t)n;
	} else if (n <= 0xffff && !long64) {
		o[1] = 126;
		o[2] = (uint8_t)(n >> 8);
		o[3] = (uint8_t)n;
		h = 4;
	} else {
		o[1] = 127;
		for (int i = 0; i < 8; i++)
			o[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
		h = 10;
	}
	if (n)
		memcpy(o + h, p, n);
	*len += h + n;
}

/* The fuzz-websocket seeds; frame[0..frame_n) is a capture frame to carry in a binary message. */
static int websocket_seeds(const char *dir, const uint8_t *frame, size_t frame_n)
{
	static const char head[] = "HTTP/1.1 101 Switching Protocols\r\n"
	                           "Upgrade: websocket\r\n"
	                           "Connection: Upgrade\r\n"
	                           "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
	static uint8_t out[1 << 20];
	size_t len, i = 0;
	/* The handshake response (for the RFC 6455 example key) with a first message behind it. */
	memcpy(out, head, sizeof(head) - 1);
	len = sizeof(head) - 1;
	ws_frame(out, &len, 0x82, "\xa2\x61\x74\x67\x23\x63\x6f\x6d\x6d\x69\x74\x62\x6f\x70\x01", 15, 0);
	if (write_file(dir, "websocket", i++, out, len))
		return -1;
	/* A binary, a text, a ping, a pong and a close back to back. */
	len = 0;
	ws_frame(out, &len, 0x82, "binary", 6, 0);
	ws_frame(out, &len, 0x81, "{\"text\":true}", 13, 0);
	ws_frame(out, &len, 0x89, "ping", 4, 0);
	ws_frame(out, &len, 0x8a, "pong", 4, 0);
	ws_frame(out, &len, 0x88, "\x03\xe8" "bye", 5, 0);
	if (write_file(dir, "websocket", i++, out, len))
		return -1;
	/* A message in three fragments with a ping between the first two. */
	len = 0;
	ws_frame(out, &len, 0x01, "frag", 4, 0);
	ws_frame(out, &len, 0x89, "", 0, 0);
	ws_frame(out, &len, 0x00, "ment", 4, 0);
	ws_frame(out, &len, 0x80, "ed", 2, 0);
	if (write_file(dir, "websocket", i++, out, len))
		return -1;
	/* A capture frame as a relay sends it, and the same with the 64-bit length form. */
	if (frame && frame_n < sizeof(out) - 16) {
		len = 0;
		ws_frame(out, &len, 0x82, frame, frame_n, 0);
		if (write_file(dir, "websocket", i++, out, len))
			return -1;
		len = 0;
		ws_frame(out, &len, 0x82, frame, frame_n, 1);
		if (write_file(dir, "websocket", i++, out, len))
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
		if (i == 0 && websocket_seeds(argv[2], frame, len))
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
