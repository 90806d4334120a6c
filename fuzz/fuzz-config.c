/* fuzz-config.c — libFuzzer target: the configuration file parser, with an option of every
 * type. The input is the file (through a memfd); a load either succeeds or fails with a
 * message, and never reads or writes out of bounds. */
#define _GNU_SOURCE /* memfd_create */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct atkv_option opts[] = {
	{"nats", ATKV_OPT_NATS_URLS, "nats://127.0.0.1:4222", "URL", "", 0, 0, "NATS_URL", false},
	{"relay", ATKV_OPT_WS_URL, "wss://bsky.network", "URL", "", 0, 0, NULL, false},
	{"db", ATKV_OPT_PATH, "/tmp/x", "FILE", "", 0, 0, NULL, false},
	{"name", ATKV_OPT_STRING, NULL, "NAME", "", 0, 0, NULL, false},
	{"batch", ATKV_OPT_INT, "5000", "N", "", 1, 1000000, NULL, false},
	{"json", ATKV_OPT_BOOL, "false", NULL, "", 0, 0, NULL, false},
	{"log-level", ATKV_OPT_LEVEL, "info", "LEVEL", "", 0, 0, NULL, false},
	{"metrics", ATKV_OPT_HOSTPORT, NULL, "ADDR:PORT", "", 0, 0, NULL, false},
	{"cursor", ATKV_OPT_INT, "-1", "SEQ", "", -1, INT64_MAX, NULL, true},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	if (fd < 0) {
		if ((fd = memfd_create("atkv.conf", 0)) < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		unsetenv("NATS_URL");
	}
	if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	char *argv[] = {"fuzz-config", "--config", path, NULL};
	struct atkv_config *c = NULL;
	char why[512];
	if (atkv_config_load(opts, sizeof(opts) / sizeof(opts[0]), 0, 3, argv, &c, why, sizeof(why)) == ATKV_CONFIG_OK) {
		atkv_config_str(c, "nats");
		atkv_config_int(c, "batch");
		atkv_config_bool(c, "json");
		atkv_config_free(c);
	}
	return 0;
}
