/* atkv.c — `atkv`, the admin and local-dev CLI: its options, its help, and the dispatch to the
 * commands (cli.h). The helpers every command shares (connecting, errors, ages) are here too. */
#include "cli.h"
#include "natsconn.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

volatile sig_atomic_t atkv_cli_stop;

static const struct atkv_option options[] = {
	ATKV_NATS_CONFIG_OPTIONS,
	{"json", ATKV_OPT_BOOL, "false", NULL, "status: one JSON object instead of text", 0, 0, NULL, true},
	{"interval", ATKV_OPT_INT, "1000", "MS", "status: how long to watch the consumers for their rates (0: no rates); top: how often to redraw", 0, 60000, NULL, true},
	{"did", ATKV_OPT_STRING, NULL, "DID", "watch: only this account's records", 0, 0, NULL, true},
	{"all", ATKV_OPT_BOOL, "false", NULL, "watch: from the first record in the store, not only new changes", 0, 0, NULL, true},
	{"yes", ATKV_OPT_BOOL, "false", NULL, "reset: do not ask", 0, 0, NULL, true},
	{"replicas", ATKV_OPT_INT, "1", "N", "put: replicas of the buckets when creating them (as atkv-builder)", 1, 5, NULL, false},
	{"record-max-bytes", ATKV_OPT_INT, "-1", "BYTES", "put: size limit of bucket record when creating it (-1: none)", -1, INT64_MAX, NULL, false},
	{"record-max-age", ATKV_OPT_INT, "0", "SECONDS", "put: age limit of records when creating the bucket (0: none)", 0, INT64_MAX, NULL, false},
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

static const char usage[] =
	ATKV_CLI_PROGRAM " [OPTION...] COMMAND [ARG...]\n"
	"   or: " ATKV_CLI_PROGRAM " status [--json] [--interval MS]\n"
	"   or: " ATKV_CLI_PROGRAM " top [--interval MS]\n"
	"   or: " ATKV_CLI_PROGRAM " put AT-URI [FILE|-]\n"
	"   or: " ATKV_CLI_PROGRAM " get AT-URI\n"
	"   or: " ATKV_CLI_PROGRAM " del AT-URI\n"
	"   or: " ATKV_CLI_PROGRAM " watch COLLECTION|NAMESPACE [--did DID] [--all]\n"
	"   or: " ATKV_CLI_PROGRAM " reset [--yes]";

static const char summary[] =
	"Looks at and changes atkv's store in NATS (DESIGN.md: buckets record, cursor, account).\n"
	"\n"
	"  status   the builder's cursor and its age, how far the last record written lags behind\n"
	"           its event, each bucket's entries and bytes, and every durable consumer of\n"
	"           bucket record (the like indexer and any other): pending changes, ack floor,\n"
	"           rate (measured over --interval)\n"
	"  top      the same, live: writes/s into bucket record and each consumer's rate and\n"
	"           backlog, with a chart of the last minute, redrawn every --interval; q quits\n"
	"  put      writes the record JSON in FILE (default: standard input) at AT-URI, as the\n"
	"           builder would from the firehose: the local-dev path for mock data. The JSON\n"
	"           must be an atproto record: an object whose $type is the URI's collection,\n"
	"           with no floating-point numbers. Creates the buckets when missing.\n"
	"  get      prints the record at AT-URI (its JSON, one line)\n"
	"  del      deletes the record at AT-URI (consumers see a KV delete)\n"
	"  watch    prints each change to the records of a collection, or of every collection in\n"
	"           an NSID namespace (watch blue.flashes), as 'put AT-URI JSON' or 'del AT-URI'\n"
	"           lines, until interrupted; --all starts from the first record stored\n"
	"  reset    deletes what atkv made in NATS: the buckets record, cursor, account and\n"
	"           backfill, and with them every consumer of them (like-indexer and yours);\n"
	"           asks first\n"
	"\n"
	"The NATS options are those of the services, from the same configuration file.\n"
	"Exit status: 0, 1 when NATS or the data says no (no such record, NATS down), 2 for bad\n"
	"arguments.";

static const struct {
	const char *name;
	int (*run)(struct atkv_cli *);
	int min_args, max_args;
} commands[] = {
	{"status", atkv_cli_status, 0, 0},
	{"top", atkv_cli_top, 0, 0},
	{"put", atkv_cli_put, 1, 2},
	{"get", atkv_cli_get, 1, 1},
	{"del", atkv_cli_del, 1, 1},
	{"watch", atkv_cli_watch, 1, 1},
	{"reset", atkv_cli_reset, 0, 0},
};

int atkv_cli_fail(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs(ATKV_CLI_PROGRAM ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return code;
}

int atkv_cli_connect(struct atkv_cli *c)
{
	char why[1024];
	struct atkv_nats_options no = atkv_nats_options_from_config(c->cfg, ATKV_CLI_PROGRAM);
	/* A person is waiting: a second to connect, not the services' patience. */
	if (atkv_nats_connect(&no, 1000, &c->nc, why, sizeof(why)))
		return atkv_cli_fail(ATKV_CLI_FAILED, "%s", why);
	natsStatus s = natsConnection_JetStream(&c->js, c->nc, NULL);
	if (s != NATS_OK) {
		atkv_nats_urls_shown(no.urls, why, sizeof(why));
		return atkv_cli_fail(ATKV_CLI_FAILED, "cannot use JetStream on %s: %s", why, atkv_nats_why(s));
	}
	return 0;
}

int64_t atkv_cli_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void atkv_cli_age(char *out, size_t cap, int64_t stamp_ns, int64_t now_ns)
{
	int64_t s = (now_ns - stamp_ns) / 1000000000;
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(out, cap, "%lld s", (long long)s);
	else if (s < 7200)
		snprintf(out, cap, "%lld min", (long long)(s / 60));
	else if (s < 172800)
		snprintf(out, cap, "%lld h", (long long)(s / 3600));
	else
		snprintf(out, cap, "%lld d", (long long)(s / 86400));
}

static void on_signal(int sig)
{
	(void)sig;
	atkv_cli_stop = 1;
}

int main(int argc, char **argv)
{
	struct atkv_config *cfg = NULL;
	int rc = atkv_config_start(ATKV_CLI_PROGRAM, usage, summary, options, N_OPTIONS, 3, argc, argv, &cfg);
	if (rc >= 0)
		return rc;
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL); /* a closed terminal: top still restores it */

	int n = atkv_config_positional_count(cfg);
	const char *name = n ? atkv_config_positional(cfg, 0) : NULL;
	size_t i = 0;
	while (name && i < sizeof(commands) / sizeof(commands[0]) && strcmp(commands[i].name, name))
		i++;
	const char *args[3] = {NULL, NULL, NULL};
	for (int k = 1; k < n; k++)
		args[k - 1] = atkv_config_positional(cfg, k);
	struct atkv_cli c = {.cfg = cfg, .argc = n - 1, .argv = args};
	if (!name)
		rc = atkv_cli_fail(ATKV_CLI_USAGE, "which command? status, top, put, get, del, watch or reset (see --help)");
	else if (i == sizeof(commands) / sizeof(commands[0]))
		rc = atkv_cli_fail(ATKV_CLI_USAGE, "no command \"%s\": status, top, put, get, del, watch or reset (see --help)", name);
	else if (c.argc < commands[i].min_args || c.argc > commands[i].max_args)
		rc = atkv_cli_fail(ATKV_CLI_USAGE, "%s takes %s (see --help)", name,
		                   commands[i].max_args == 0 ? "no argument" :
		                   commands[i].min_args == commands[i].max_args ? "one argument" : "one or two arguments");
	else
		rc = commands[i].run(&c);
	if (c.js)
		jsCtx_Destroy(c.js);
	natsConnection_Destroy(c.nc);
	nats_Close();
	atkv_config_free(cfg);
	return rc;
}
