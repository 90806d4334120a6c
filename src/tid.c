/* tid.c — see tid.h. */
#include "tid.h"

#include <string.h>
#include <time.h>

int64_t atkv_tid_us(const char *s, size_t n)
{
	static const char alphabet[] = "234567abcdefghijklmnopqrstuvwxyz";
	uint64_t v = 0;
	if (!s || n != 13)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *at = s[i] ? memchr(alphabet, s[i], 32) : NULL;
		if (!at)
			return -1;
		v = v << 5 | (uint64_t)(at - alphabet);
	}
	return (int64_t)(v >> 10 & ((UINT64_C(1) << 53) - 1));
}

int atkv_tid_plausible(const char *s, size_t n)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	int64_t now = (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000, us = atkv_tid_us(s, n);
	return us >= 0 && us <= now + ATKV_TID_FUTURE_US;
}
