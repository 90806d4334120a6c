/* clock.h — the one clock atkv measures intervals with: CLOCK_MONOTONIC in milliseconds, which
 * wall-clock jumps cannot move. Header-only, so libatkv uses it without exporting it. */
#ifndef ATKV_CLOCK_H
#define ATKV_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t atkv_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
