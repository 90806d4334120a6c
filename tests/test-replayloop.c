/* test-replayloop.c — a replay's later loops: TIDs shifted by whole loops (valid, ordered, in
 * range, refused past the largest TID), and every frame of the test capture rewritten for a
 * later loop still decoding, with exactly its TID record keys moved and nothing else changed. */
#include "capture.h"
#include "firehose.h"
#include "replayloop.h"
#include "tap.h"

#include <atkv/syntax.h>

#include <stdlib.h>
#include <string.h>

static void test_tid_shift(void)
{
	char a[] = "3jzfcijpj2z2a", b[] = "3jzfcijpj2z2a";
	tap_ok(atkv_loop_tid_shift(a, 0) && !strcmp(a, "3jzfcijpj2z2a"), "loop 0 leaves a TID as it is");
	tap_ok(atkv_loop_tid_shift(a, 1) && atkv_syntax_tid(a, 13) && strcmp(a, b) > 0,
	       "loop 1 gives a valid, later TID (%s)", a);
	/* The shift is 2^46 on the integer: character 13 - 46/5 - 1 moves by 2 (46 = 9 * 5 + 1). */
	tap_ok(!memcmp(a, b, 3) && !memcmp(a + 4, b + 4, 9) && a[3] == 'h', "by 2^36 microseconds: %s -> %s", b, a);
	char c[] = "3jzfcijpj2z2a";
	atkv_loop_tid_shift(c, 2);
	tap_ok(strcmp(c, a) > 0, "loop 2 comes after loop 1 (%s)", c);
	uint64_t max = atkv_loop_max(b);
	char d[] = "3jzfcijpj2z2a", e[] = "3jzfcijpj2z2a";
	tap_ok(max > 50000 && atkv_loop_tid_shift(d, max) && atkv_syntax_tid(d, 13),
	       "up to %llu loops of a TID of today (%s at the last)", (unsigned long long)max, d);
	tap_ok(!atkv_loop_tid_shift(e, max + 1) && !strcmp(e, b), "one more is refused, the TID untouched");
	char high[] = "jzzzzzzzzzzzz", feed[] = "feedgenerator";
	tap_ok(!atkv_loop_tid_shift(high, 1) && !atkv_loop_tid_shift(feed, 1) && atkv_loop_max(feed) == 0,
	       "TID-shaped keys over 2^63 (jzzz..., feedgenerator) are not shifted (no wrap past 2^64)");
	char self[] = "self000000000";
	tap_ok(!atkv_loop_tid_shift(self, 1), "a record key that is not a TID is not shifted");
}

static size_t tid_ops(const struct atkv_event *ev)
{
	size_t n = 0;
	for (size_t i = 0; i < ev->n_ops; i++)
		n += ev->ops[i].rkey.n == 13 && atkv_syntax_tid((const char *)ev->ops[i].rkey.p, 13);
	return n;
}

/* Every frame of the capture, rewritten for loop 3: its TID rkeys are found where the decoder
 * sees them, and after the rewrite it decodes to the same event but for those keys. */
static void test_capture(void)
{
	size_t cap_n, off, frame_n, frames = 0, commits = 0, shifted = 0, bad = 0;
	uint8_t *cap = tap_read_file(tap_path("tests/data/firehose-capture.bin"), &cap_n);
	long start = atkv_capture_start(cap, cap_n);
	struct atkv_firehose *orig = atkv_firehose_new(), *looped = atkv_firehose_new();
	const uint8_t *frame;
	off = start > 0 ? (size_t)start : cap_n;
	while (atkv_capture_next(cap, cap_n, &off, &frame, &frame_n) == 1) {
		const struct atkv_event *a, *b;
		uint32_t at[256];
		size_t found = 0;
		frames++;
		if (atkv_firehose_decode(orig, frame, frame_n, &a, NULL) ||
		    atkv_loop_rkeys_locate(frame, frame_n, at, 256, &found) || found != tid_ops(a)) {
			bad++;
			tap_note("frame %zu: %zu TID keys found, %zu in the decoded ops", frames - 1, found,
			         a ? tid_ops(a) : 0);
			continue;
		}
		commits += a->type == ATKV_EVENT_COMMIT;
		uint8_t *copy = malloc(frame_n);
		memcpy(copy, frame, frame_n);
		for (size_t i = 0; i < found; i++)
			shifted += atkv_loop_tid_shift((char *)copy + at[i], 3);
		if (atkv_firehose_decode(looped, copy, frame_n, &b, NULL) || b->n_ops != a->n_ops || b->seq != a->seq) {
			bad++;
			tap_note("frame %zu: the rewritten frame does not decode to the same event", frames - 1);
		}
		for (size_t i = 0; !bad && i < a->n_ops; i++) {
			char want[14] = {0};
			memcpy(want, a->ops[i].rkey.p, a->ops[i].rkey.n < 13 ? a->ops[i].rkey.n : 13);
			bool is_tid = a->ops[i].rkey.n == 13 && atkv_loop_tid_shift(want, 3);
			bool same_rest = a->ops[i].cid.len == b->ops[i].cid.len &&
			                 (!a->ops[i].cid.len || !memcmp(a->ops[i].cid.bytes, b->ops[i].cid.bytes, a->ops[i].cid.len)) &&
			                 a->ops[i].collection.n == b->ops[i].collection.n && a->ops[i].action == b->ops[i].action;
			bool key_ok = is_tid ? b->ops[i].rkey.n == 13 && !memcmp(b->ops[i].rkey.p, want, 13)
			                     : b->ops[i].rkey.n == a->ops[i].rkey.n &&
			                               !memcmp(b->ops[i].rkey.p, a->ops[i].rkey.p, a->ops[i].rkey.n);
			if (!same_rest || !key_ok) {
				bad++;
				tap_note("frame %zu op %zu: rewritten wrongly", frames - 1, i);
			}
		}
		free(copy);
	}
	tap_ok(frames > 100 && commits > 50, "the capture: %zu frames, %zu commits", frames, commits);
	tap_ok(shifted > 50, "%zu TID record keys shifted", shifted);
	tap_eq((long long)bad, 0, "each found where the decoder sees it; each frame decodes after, same but for those keys");
	atkv_firehose_free(orig);
	atkv_firehose_free(looped);
	free(cap);
}

int main(void)
{
	test_tid_shift();
	test_capture();
	return tap_done();
}
