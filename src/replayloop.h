/* replayloop.h — what a captured firehose frame becomes on loop k of a replay
 * (atkv-firehose-replay --loop): the ops' record keys that are TIDs move k × 2^36 µs (about
 * 19 hours) later, so every loop writes records of its own, with the same CIDs and values.
 * (The seq is raised by the replay itself.) The CAR is left alone: its MST still names the
 * original keys, so a looped replay is for consumers that do not verify the MST. */
#ifndef ATKV_REPLAYLOOP_H
#define ATKV_REPLAYLOOP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A TID is 13 characters (base32-sortable) in every frame that carries one. */
#define ATKV_TID_LEN 13

/* Finds in frame[0..n) the record keys of the body's ops (each "collection/rkey" path) that are
 * TIDs: their offsets go to at[0..cap), the count to *found (which may exceed cap: the rest are
 * not stored). A frame that is not a commit finds none. Returns 0, or a negative ATKV_E_* code
 * when the frame does not tokenize. */
int atkv_loop_rkeys_locate(const uint8_t *frame, size_t n, uint32_t *at, size_t cap, size_t *found);

/* The TID tid[0..13) as it is on loop `loop`: written over tid. Returns false (tid unchanged)
 * when tid is not a TID (as a 63-bit value) or the shifted one would pass the largest TID. */
bool atkv_loop_tid_shift(char *tid, uint64_t loop);

/* The largest loop to which tid can be shifted (0 for a key that is not a TID). */
uint64_t atkv_loop_max(const char *tid);
#endif
