/* tid.h — the time in a TID (atproto's timestamp identifiers: revs and most record keys), so a
 * rev can be told to be in the future. */
#ifndef ATKV_TID_H
#define ATKV_TID_H

#include <stddef.h>
#include <stdint.h>

/* PDS clocks run a little ahead of ours: a rev up to this far in the future is let through. */
#define ATKV_TID_FUTURE_US (5 * 60 * INT64_C(1000000))

/* The time in s[0..n), µs since the epoch: its 13 base32-sortable characters hold 64 bits,
 * the first always 0, then 53 of time and 10 of clock id. -1 when it is not a TID. */
int64_t atkv_tid_us(const char *s, size_t n);

/* Whether s[0..n) is a TID whose time is not more than ATKV_TID_FUTURE_US ahead of now. */
int atkv_tid_plausible(const char *s, size_t n);

#endif
