/* tap.h — a small Test Anything Protocol emitter for the unit tests, plus the file helpers they
 * share. Automake's tap-driver counts every "ok"/"not ok" line. */
#ifndef ATKV_TAP_H
#define ATKV_TAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Reports one check; returns cond. */
bool tap_ok(bool cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports a check that two integers are equal, printing both when they differ. */
bool tap_eq(long long got, long long want, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A check that cannot run here, with why ("ok N # SKIP reason"). */
void tap_skip(const char *reason);
/* A diagnostic line ("# ..."). */
void tap_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the plan; returns the process exit status (0 when every check passed). */
int tap_done(void);

/* Removes a test's temporary directory, or keeps it (and says where) when ATKV_TEST_KEEP is
 * set, to look at its logs. */
void tap_remove_dir(const char *dir);

/* $srcdir/rel (srcdir from the environment, "." without it), in a static buffer. */
const char *tap_path(const char *rel);
/* Reads a whole file into a malloc'd buffer (NUL-terminated; the NUL is not counted).
 * Exits the test with a "Bail out!" when it cannot. */
uint8_t *tap_read_file(const char *path, size_t *len);
/* The last `lines` lines of the file dir/name as diagnostics ("# ..."), if it exists. */
void tap_note_tail(const char *dir, const char *name, int lines);
/* How many times needle occurs in the file dir/name; 0 when it does not exist. */
int tap_count_in_file(const char *dir, const char *name, const char *needle);
/* Decodes hex (whitespace ignored) into a malloc'd buffer; bails out on bad input. */
uint8_t *tap_hex(const char *hex, size_t *len);

#endif
