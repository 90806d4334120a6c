/* likecheck.h — checking a like index against the likes a store holds. */
#ifndef ATKV_TESTS_LIKECHECK_H
#define ATKV_TESTS_LIKECHECK_H

#include <jansson.h>
#include <stdbool.h>

/* The differences between the index at db and likes ("did rkey" → subject URI, as
 * expected_likes makes it): a missing, extra or wrong like, or a subject whose count is not its
 * number of likes; the first few noted when note. -1 when the index cannot be read. */
int likecheck_compare(const char *db, json_t *likes, bool note);

#endif
