/* config.h — configuration of atkv's programs, in three layers: the file (/etc/atkv/atkv.conf
 * or --config, "key = value" lines, # comments), then the environment (ATKV_<KEY>, upper case
 * with '-' → '_'; some options accept another name too, e.g. NATS_URL), then the command line
 * (--key VALUE or --key=VALUE). One name links the three (DESIGN.md "Programs"). Every value is
 * checked when loaded; a bad one yields one line that names where it came from and what is
 * expected. */
#ifndef ATKV_CONFIG_H
#define ATKV_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* $(sysconfdir)/atkv/atkv.conf, from the build (/etc/atkv/atkv.conf in the packages). */
#ifndef ATKV_CONFIG_DEFAULT_FILE
#define ATKV_CONFIG_DEFAULT_FILE "/etc/atkv/atkv.conf"
#endif

enum atkv_opt_type {
	ATKV_OPT_STRING,
	ATKV_OPT_PATH,
	ATKV_OPT_INT,        /* within [min, max] */
	ATKV_OPT_BOOL,       /* true/false/yes/no/1/0; a bare flag means true */
	ATKV_OPT_LEVEL,      /* error, warning, info, debug */
	ATKV_OPT_NATS_URLS,  /* nats:// or tls:// URLs separated by commas */
	ATKV_OPT_WS_URL,     /* ws:// or wss:// */
	ATKV_OPT_HOSTPORT,   /* ADDR:PORT */
};

struct atkv_option {
	const char *name;        /* "log-level": --log-level, log-level =, ATKV_LOG_LEVEL */
	enum atkv_opt_type type;
	const char *def;         /* the default, as text; NULL when unset by default */
	const char *arg;         /* what --help shows for the value, e.g. "URL[,URL...]" */
	const char *help;
	int64_t min, max;        /* ATKV_OPT_INT only */
	const char *env_alias;   /* another variable read when ATKV_<NAME> is unset, or NULL */
	bool flag_only;          /* a one-off for this run (e.g. --cursor): not from file or environment */
};

enum {
	ATKV_CONFIG_OK = 0,
	ATKV_CONFIG_HELP = 1,     /* --help was given: print atkv_config_help and exit 0 */
	ATKV_CONFIG_VERSION = 2,  /* --version was given */
	ATKV_CONFIG_ERROR = -1,   /* why holds the line to print; exit 2 */
};

struct atkv_config;

/* Loads the options opts[0..n) (plus --config, --help and --version, which every program has)
 * from the three layers. Arguments that are not options are kept as positional when
 * max_positional allows. Returns an ATKV_CONFIG_* value; *out is set for OK only. */
int atkv_config_load(const struct atkv_option *opts, size_t n, int max_positional, int argc,
                     char **argv, struct atkv_config **out, char *why, size_t why_n);
void atkv_config_free(struct atkv_config *c);

/* The value of option name (NULL when unset); the name must be one of the loaded options. */
const char *atkv_config_str(const struct atkv_config *c, const char *name);
int64_t atkv_config_int(const struct atkv_config *c, const char *name);
bool atkv_config_bool(const struct atkv_config *c, const char *name);
/* The configuration file that was read, or NULL when none was. */
const char *atkv_config_file(const struct atkv_config *c);
int atkv_config_positional_count(const struct atkv_config *c);
const char *atkv_config_positional(const struct atkv_config *c, int i);

/* What every program's main does first: loads the options, answers --help and --version on
 * stdout, and reports a bad value as "PROGRAM: why" on stderr. Returns -1 with *out set when
 * the program should go on, else the exit status (0, or 2 for a bad configuration). */
int atkv_config_start(const char *program, const char *usage, const char *summary, const struct atkv_option *opts,
                      size_t n, int max_positional, int argc, char **argv, struct atkv_config **out);

/* Writes --help: usage, summary, then each option with its default and variable. */
void atkv_config_help(FILE *f, const char *usage, const char *summary,
                      const struct atkv_option *opts, size_t n);

#endif
