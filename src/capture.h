/* capture.h — the firehose capture format: the 8 bytes "atkvcap1", then for every WebSocket
 * message of a subscribeRepos stream, its length as 4 bytes big-endian and its bytes as
 * received. Tests, benchmarks and the replay tool read it. */
#ifndef ATKV_CAPTURE_H
#define ATKV_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#define ATKV_CAPTURE_MAGIC "atkvcap1"
#define ATKV_CAPTURE_MAGIC_LEN 8

/* Checks the magic of a capture held in p[0..n). Returns the offset of the first frame (for
 * atkv_capture_next), or ATKV_E_FRAME when the magic is wrong. */
long atkv_capture_start(const uint8_t *p, size_t n);

/* Reads the frame at *off: returns 1 with *frame and *len set and *off advanced, 0 at the end, or
 * ATKV_E_TRUNCATED when the capture ends inside a frame. */
int atkv_capture_next(const uint8_t *p, size_t n, size_t *off, const uint8_t **frame, size_t *len);

#endif
