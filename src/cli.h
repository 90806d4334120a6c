/* cli.h — the commands of `atkv`, the admin and local-dev CLI. atkv.c parses the options and
 * dispatches; each command lives in a file of its own (cli-record.c, cli-watch.c, cli-status.c,
 * cli-top.c, cli-reset.c) and returns the process's exit status: 0, 1 (NATS or the data said no), or
 * 2 (bad usage). Each prints its own one-line errors, prefixed "atkv: ". */
#ifndef ATKV_CLI_H
#define ATKV_CLI_H
#include "config.h"

#include <nats/nats.h>
#include <signal.h>
#include <stdbool.h>

#define ATKV_CLI_PROGRAM "atkv"

enum { ATKV_CLI_OK = 0, ATKV_CLI_FAILED = 1, ATKV_CLI_USAGE = 2 };

struct atkv_cli {
	const struct atkv_config *cfg;
	int argc;              /* the command's arguments, after its name */
	const char *const *argv;
	natsConnection *nc;    /* set by atkv_cli_connect */
	jsCtx *js;
};

/* Set by SIGINT and SIGTERM: commands that run until stopped (watch, top) poll it. */
extern volatile sig_atomic_t atkv_cli_stop;

/* Connects to NATS as the configuration says and opens JetStream. Returns 0, or 1 after
 * printing why. */
int atkv_cli_connect(struct atkv_cli *c);
/* Prints "atkv: " and the message on stderr; returns code. */
int atkv_cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* now - stamp as "3 s", "4 min", "2 h" or "5 d" (stamp and now in Unix ns). */
void atkv_cli_age(char *out, size_t cap, int64_t stamp_ns, int64_t now_ns);
int64_t atkv_cli_now_ns(void);

int atkv_cli_put(struct atkv_cli *c);
int atkv_cli_get(struct atkv_cli *c);
int atkv_cli_del(struct atkv_cli *c);
int atkv_cli_watch(struct atkv_cli *c);
int atkv_cli_status(struct atkv_cli *c);
int atkv_cli_reset(struct atkv_cli *c);
int atkv_cli_top(struct atkv_cli *c);
#endif
