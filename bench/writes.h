/* writes.h — the KV writes a capture makes, for the builder benchmark: the same subjects,
 * values and headers atkv-builder publishes, computed once from the capture. */
#ifndef ATKV_BENCH_WRITES_H
#define ATKV_BENCH_WRITES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bench_write {
	char *subject;
	char *value;          /* NULL for a delete */
	size_t len;
	int64_t seq;
	char cid[140], rev[32], time[40];
};

/* Decodes the capture at path into writes (malloc'd array, *n entries) and *events (frames with
 * a seq). Returns 0, or -1 with a message on stderr. */
int bench_writes_load(const char *path, struct bench_write **writes, size_t *n, size_t *events);
void bench_writes_free(struct bench_write *w, size_t n);

#endif
