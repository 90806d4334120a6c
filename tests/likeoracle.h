/* likeoracle.h — atkv_like_parse checked against jansson, a general JSON parser: both must agree
 * on whether a text is JSON and on the three fields read from it. Used by the unit test's
 * mutations and by the fuzz target. */
#ifndef ATKV_TESTS_LIKEORACLE_H
#define ATKV_TESTS_LIKEORACLE_H

#include <stdbool.h>
#include <stddef.h>

/* Returns true when they agree, or when jansson cannot be the judge (numbers out of its range,
 * nesting past ours); otherwise false with what differs in why. */
bool like_oracle_agrees(const char *json, size_t n, char *why, size_t why_n);

#endif
