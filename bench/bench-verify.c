/* bench-verify.c — what Sync 1.1 verification costs per #commit, with no NATS: the frames of a
 * capture recorded with its accounts' DID documents decoded (the baseline: what the builder
 * does already), then decoded and checked (atkv_commitcheck_run: the signature with the
 * account's key, the ops undone on the tree in the blocks back to prevData), each for a fixed
 * time. Keys are loaded once, as the identity cache keeps them. Run from the build directory:
 *   bench/bench-verify [--seconds S] [--smoke]
 * Prints commits/s of both, their ratio and the microseconds verification adds per commit. */
#include "../tests/signedkeys.h"
#include "capture.h"
#include "commitcheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CAPTURE "tests/data/signed-capture.bin"
#define DOCS "tests/data/signed-capture-docs.jsonl"
static struct signed_keys keys;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;
	if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
		*len = (size_t)n;
	} else {
		free(buf);
		buf = NULL;
	}
	if (f)
		fclose(f);
	return buf;
}

static const struct atkv_sigkey *key_of(const struct atkv_str *did) { return signed_keys_of(&keys, did); }

/* Decodes (and with verify, checks) every frame over and over for `seconds`; returns commits/s,
 * or -1 when a commit fails its check. */
static double run(const uint8_t *cap, size_t cap_n, double seconds, int verify, long *commits_out)
{
	struct atkv_firehose *fh = atkv_firehose_new();
	struct atkv_commitcheck *cc = atkv_commitcheck_new();
	long commits = 0;
	double t0 = now(), took = 0;
	bool failed = false;
	while (!failed && (took = now() - t0) < seconds) {
		size_t off = (size_t)atkv_capture_start(cap, cap_n);
		const uint8_t *frame;
		size_t frame_n;
		while (atkv_capture_next(cap, cap_n, &off, &frame, &frame_n) == 1) {
			const struct atkv_event *ev;
			struct atkv_err err = {0};
			if (atkv_firehose_decode(fh, frame, frame_n, &ev, &err) || ev->type != ATKV_EVENT_COMMIT)
				continue;
			commits++;
			/* What the builder does with every commit already: each record to JSON. */
			for (size_t i = 0; i < ev->n_ops; i++) {
				const char *json;
				size_t len;
				atkv_firehose_record(fh, i, &json, &len, &err);
			}
			struct atkv_commit commit;
			if (verify && atkv_commitcheck_run(cc, fh, ev, verify == 2 ? NULL : key_of(&ev->did), NULL, &commit, &err)) {
				fprintf(stderr, "bench-verify: seq %lld fails its check (%s)\n", (long long)ev->seq,
				        err.where ? err.where : "?");
				failed = true;
				break;
			}
		}
	}
	atkv_commitcheck_free(cc);
	atkv_firehose_free(fh);
	*commits_out = commits;
	return failed ? -1 : (double)commits / took;
}

int main(int argc, char **argv)
{
	double seconds = 5;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--smoke")) {
			seconds = 0.5;
		} else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
			seconds = atof(argv[++i]);
		} else {
			fprintf(stderr, "usage: bench-verify [--seconds S] [--smoke]\n");
			return 2;
		}
	}
	size_t cap_n, docs_n;
	char *cap = read_file(CAPTURE, &cap_n), *docs = read_file(DOCS, &docs_n);
	if (!cap || !docs || atkv_capture_start((const uint8_t *)cap, cap_n) < 0) {
		fprintf(stderr, "bench-verify: run from the source or build directory (%s, %s)\n", CAPTURE, DOCS);
		return 1;
	}
	signed_keys_read(&keys, docs, docs_n);
	long plain_n, tree_n, verified_n;
	double plain = run((const uint8_t *)cap, cap_n, seconds, 0, &plain_n);
	double tree = run((const uint8_t *)cap, cap_n, seconds, 2, &tree_n);
	double verified = run((const uint8_t *)cap, cap_n, seconds, 1, &verified_n);
	int rc = verified > 0 && tree > 0 ? 0 : 1;
	if (!rc) {
		printf("baseline (decode, records to JSON): commits=%ld commits_per_s=%.0f\n", plain_n, plain);
		printf("+ prevData (ops undone on the tree): commits=%ld commits_per_s=%.0f (%.1f us per commit more)\n", tree_n,
		       tree, 1e6 / tree - 1e6 / plain);
		printf("+ prevData + signature: commits=%ld commits_per_s=%.0f (%.1f us per commit more)\n", verified_n,
		       verified, 1e6 / verified - 1e6 / plain);
		printf("ratio: verified / baseline commits per second = %.3f\n", verified / plain);
	}
	signed_keys_free(&keys);
	free(cap);
	free(docs);
	return rc;
}
