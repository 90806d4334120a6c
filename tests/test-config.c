/* test-config.c — the configuration layers (file < environment < flags), value checks with
 * their messages, --help/--version, positional arguments. */
#define _DEFAULT_SOURCE /* setenv, mkstemp */
#include "config.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct atkv_option opts[] = {
	{"nats", ATKV_OPT_NATS_URLS, "nats://127.0.0.1:4222", "URL[,URL...]", "NATS servers", 0, 0, "NATS_URL", false},
	{"relay", ATKV_OPT_WS_URL, "wss://bsky.network", "URL", "relay", 0, 0, NULL, false},
	{"replicas", ATKV_OPT_INT, "1", "N", "bucket replicas", 1, 5, NULL, false},
	{"log-level", ATKV_OPT_LEVEL, "info", "LEVEL", "log level", 0, 0, NULL, false},
	{"metrics", ATKV_OPT_HOSTPORT, NULL, "ADDR:PORT", "metrics listener", 0, 0, NULL, false},
	{"verify", ATKV_OPT_BOOL, "true", NULL, "verify", 0, 0, NULL, false},
	{"cursor", ATKV_OPT_INT, "-1", "SEQ", "one-off start", -1, 1000000, NULL, true},
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static int load(const char *file, int argc, char **argv, struct atkv_config **c, char *why)
{
	*c = NULL;
	if (file)
		setenv("ATKV_CONFIG", file, 1);
	else
		unsetenv("ATKV_CONFIG");
	return atkv_config_load(opts, NOPTS, 1, argc, argv, c, why, 512);
}

static char *write_file(const char *text)
{
	char *path = malloc(64);
	strcpy(path, "/tmp/atkv-test-config.XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		printf("Bail out! cannot write a temporary file\n");
		exit(1);
	}
	close(fd);
	return path;
}

int main(void)
{
	struct atkv_config *c = NULL;
	char why[512];
	unsetenv("ATKV_NATS");
	unsetenv("NATS_URL");
	unsetenv("ATKV_REPLICAS");

	char *argv0[] = {"prog", NULL};
	tap_eq(load("/nonexistent/atkv.conf", 1, argv0, &c, why), ATKV_CONFIG_ERROR, "an explicit missing file is an error");
	tap_ok(strstr(why, "/nonexistent/atkv.conf") != NULL, "which names the file: %s", why);

	char *file = write_file("# comment\n\nreplicas = 3\nrelay = \"ws://127.0.0.1:2583\"  # trailing comment\n"
	                        "db = /var/lib/atkv/x.sqlite\n");
	tap_eq(load(file, 1, argv0, &c, why), ATKV_CONFIG_OK, "file loads (%s)", why);
	tap_ok(c && atkv_config_int(c, "replicas") == 3 && !strcmp(atkv_config_str(c, "relay"), "ws://127.0.0.1:2583") &&
	       !strcmp(atkv_config_str(c, "nats"), "nats://127.0.0.1:4222") && atkv_config_str(c, "metrics") == NULL &&
	       atkv_config_bool(c, "verify"),
	       "file values over defaults; quotes and comments stripped; another program's key ignored");
	atkv_config_free(c);

	setenv("NATS_URL", "nats://a:1", 1);
	tap_ok(load(file, 1, argv0, &c, why) == 0 && !strcmp(atkv_config_str(c, "nats"), "nats://a:1"), "NATS_URL is read");
	atkv_config_free(c);
	setenv("ATKV_NATS", "nats://b:2,tls://c:3", 1);
	setenv("ATKV_REPLICAS", "2", 1);
	tap_ok(load(file, 1, argv0, &c, why) == 0 && !strcmp(atkv_config_str(c, "nats"), "nats://b:2,tls://c:3") &&
	       atkv_config_int(c, "replicas") == 2,
	       "ATKV_NATS wins over NATS_URL, the environment over the file");
	atkv_config_free(c);

	char *argv1[] = {"prog", "--replicas", "5", "--log-level=debug", "--verify", "false", "did:plc:x", NULL};
	tap_ok(load(file, 7, argv1, &c, why) == 0 && atkv_config_int(c, "replicas") == 5 &&
	       !strcmp(atkv_config_str(c, "log-level"), "debug") && !atkv_config_bool(c, "verify") &&
	       atkv_config_positional_count(c) == 1 && !strcmp(atkv_config_positional(c, 0), "did:plc:x"),
	       "flags win over everything; a positional argument is kept");
	atkv_config_free(c);
	unsetenv("ATKV_NATS");
	unsetenv("NATS_URL");

	static const struct {
		const char *flag, *value, *message;
	} bad[] = {
		{"--replicas", "0", "--replicas: expected an integer from 1 to 5, got \"0\""},
		{"--replicas", "two", "--replicas: expected an integer from 1 to 5, got \"two\""},
		{"--nats", "http://u:s3cret@x", "--nats: expected nats:// or tls:// URLs separated by commas (the value is not shown: it may hold a secret)"},
		{"--nats", "nats://a:1,", "--nats: expected nats:// or tls:// URLs separated by commas (the value is not shown: it may hold a secret)"},
		{"--relay", "https://bsky.network", "--relay: expected a ws:// or wss:// URL, got \"https://bsky.network\""},
		{"--log-level", "loud", "--log-level: expected one of error, warning, info, debug, got \"loud\""},
		{"--metrics", "9090", "--metrics: expected ADDRESS:PORT, got \"9090\""},
		{"--metrics", "127.0.0.1:70000", "--metrics: expected ADDRESS:PORT, got \"127.0.0.1:70000\""},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[] = {"prog", (char *)bad[i].flag, (char *)bad[i].value, NULL};
		int rc = load(file, 3, argv, &c, why);
		tap_ok(rc == ATKV_CONFIG_ERROR && !strcmp(why, bad[i].message), "%s %s: %s", bad[i].flag, bad[i].value, why);
	}
	char *unknown[] = {"prog", "--bogus", "1", NULL};
	tap_ok(load(file, 3, unknown, &c, why) == ATKV_CONFIG_ERROR && !strcmp(why, "unknown option --bogus (see --help)"),
	       "unknown flag: %s", why);
	char *missing[] = {"prog", "--relay", NULL};
	tap_ok(load(file, 2, missing, &c, why) == ATKV_CONFIG_ERROR && strstr(why, "--relay needs a value"),
	       "flag without its value: %s", why);
	char *two[] = {"prog", "a", "b", NULL};
	tap_ok(load(file, 3, two, &c, why) == ATKV_CONFIG_ERROR && strstr(why, "unexpected argument \"b\""),
	       "too many positional arguments: %s", why);

	char *badfile = write_file("replicas = 9\n");
	tap_ok(load(badfile, 1, argv0, &c, why) == ATKV_CONFIG_ERROR &&
	       strstr(why, ":1: replicas: expected an integer from 1 to 5, got \"9\""),
	       "a bad value in the file names file, line and key: %s", why);
	unlink(badfile);
	free(badfile);
	char *nokv = write_file("replicas\n");
	tap_ok(load(nokv, 1, argv0, &c, why) == ATKV_CONFIG_ERROR && strstr(why, ":1: expected \"key = value\""),
	       "a line without '=': %s", why);
	unlink(nokv);
	free(nokv);
	setenv("ATKV_REPLICAS", "x", 1);
	tap_ok(load(file, 1, argv0, &c, why) == ATKV_CONFIG_ERROR && strstr(why, "ATKV_REPLICAS: expected"),
	       "a bad environment value names the variable: %s", why);
	unsetenv("ATKV_REPLICAS");

	char *once = write_file("cursor = 5\n");
	tap_ok(load(once, 1, argv0, &c, why) == ATKV_CONFIG_ERROR && strstr(why, "cursor can only be given as --cursor"),
	       "a flag-only option in the file is refused: %s", why);
	unlink(once);
	free(once);
	setenv("ATKV_CURSOR", "5", 1);
	tap_ok(load(file, 1, argv0, &c, why) == ATKV_CONFIG_ERROR && strstr(why, "ATKV_CURSOR: cursor can only be given"),
	       "and in the environment: %s", why);
	unsetenv("ATKV_CURSOR");
	char *cursor_flag[] = {"prog", "--cursor", "7", NULL};
	tap_ok(load(file, 3, cursor_flag, &c, why) == 0 && atkv_config_int(c, "cursor") == 7, "but taken as a flag");
	atkv_config_free(c);
	char *spaced[] = {"prog", "--nats", "nats://a:1, tls://b", NULL};
	tap_ok(load(file, 3, spaced, &c, why) == 0, "URL lists may have spaces after commas (%s)", why);
	atkv_config_free(c);
	char *trailing[] = {"prog", "--config", NULL};
	unsetenv("ATKV_CONFIG");
	c = NULL;
	tap_ok(atkv_config_load(opts, NOPTS, 1, 2, trailing, &c, why, sizeof(why)) == ATKV_CONFIG_ERROR &&
	       strstr(why, "--config needs a value"), "--config without a file: %s", why);

	char *help[] = {"prog", "--help", NULL}, *version[] = {"prog", "--version", NULL};
	tap_eq(load(file, 2, help, &c, why), ATKV_CONFIG_HELP, "--help");
	tap_eq(load(file, 2, version, &c, why), ATKV_CONFIG_VERSION, "--version");
	char *cfgflag[] = {"prog", "--config", file, NULL};
	unsetenv("ATKV_CONFIG");
	c = NULL;
	tap_ok(atkv_config_load(opts, NOPTS, 0, 3, cfgflag, &c, why, sizeof(why)) == 0 &&
	       atkv_config_int(c, "replicas") == 3 && !strcmp(atkv_config_file(c), file),
	       "--config FILE is read first (%s)", why);
	atkv_config_free(c);
	unlink(file);
	free(file);
	return tap_done();
}
