/* config.c — the three configuration layers and their checks (see config.h). */
#include "config.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct atkv_config {
	const struct atkv_option *opts;
	size_t n;
	char **values;         /* one per option, owned */
	char **positional;     /* borrowed from argv */
	int n_positional;
	char *file;            /* the file read, owned, or NULL */
};

static char *dup_string(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

static bool ieq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return false;
	return *a == *b;
}

static int parse_bool(const char *v)
{
	if (ieq(v, "true") || ieq(v, "yes") || !strcmp(v, "1") || ieq(v, "on"))
		return 1;
	if (ieq(v, "false") || ieq(v, "no") || !strcmp(v, "0") || ieq(v, "off"))
		return 0;
	return -1;
}

static bool parse_int(const char *v, int64_t *out)
{
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno || end == v || *end)
		return false;
	*out = x;
	return true;
}

/* nats:// or tls:// URLs separated by commas (spaces around them allowed). */
static bool url_list_ok(const char *v)
{
	const char *p = v;
	if (!*v)
		return false;
	for (;;) {
		while (*p == ' ')
			p++;
		size_t scheme = !strncmp(p, "nats://", 7) ? 7 : !strncmp(p, "tls://", 6) ? 6 : 0;
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if (!scheme || len <= scheme)
			return false;
		if (!comma)
			return true;
		p = comma + 1;
	}
}

static bool hostport_ok(const char *v)
{
	const char *colon = strrchr(v, ':');
	int64_t port;
	return colon && colon != v && parse_int(colon + 1, &port) && port >= 0 && port <= 65535;
}

/* Checks value for o; on failure writes "SOURCE: expected ..., got "VALUE"" into why. */
static bool check(const struct atkv_option *o, const char *value, const char *source, char *why,
                  size_t why_n)
{
	const char *expected = NULL;
	int64_t x;
	char range[96];
	switch (o->type) {
	case ATKV_OPT_STRING:
	case ATKV_OPT_PATH:
		if (!*value)
			expected = "a non-empty value";
		break;
	case ATKV_OPT_INT:
		if (!parse_int(value, &x) || x < o->min || x > o->max) {
			snprintf(range, sizeof(range), "an integer from %lld to %lld", (long long)o->min,
			         (long long)o->max);
			expected = range;
		}
		break;
	case ATKV_OPT_BOOL:
		if (parse_bool(value) < 0)
			expected = "true or false";
		break;
	case ATKV_OPT_LEVEL:
		if (atkv_log_level_parse(value) < 0)
			expected = "one of error, warning, info, debug";
		break;
	case ATKV_OPT_NATS_URLS:
		if (!url_list_ok(value))
			expected = "nats:// or tls:// URLs separated by commas";
		break;
	case ATKV_OPT_WS_URL:
		if (strncmp(value, "ws://", 5) && strncmp(value, "wss://", 6))
			expected = "a ws:// or wss:// URL";
		break;
	case ATKV_OPT_HOSTPORT:
		if (!hostport_ok(value))
			expected = "ADDRESS:PORT";
		break;
	}
	if (!expected)
		return true;
	if (o->type == ATKV_OPT_NATS_URLS) /* it may carry user:password@ or token@ */
		snprintf(why, why_n, "%s: expected %s (the value is not shown: it may hold a secret)", source, expected);
	else
		snprintf(why, why_n, "%s: expected %s, got \"%s\"", source, expected, value);
	return false;
}

static int find(const struct atkv_config *c, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->opts[i].name, name))
			return (int)i;
	return -1;
}

static bool set(struct atkv_config *c, int i, const char *value, const char *source, char *why,
                size_t why_n)
{
	if (!check(&c->opts[i], value, source, why, why_n))
		return false;
	char *v = dup_string(value);
	if (!v) {
		snprintf(why, why_n, "out of memory");
		return false;
	}
	free(c->values[i]);
	c->values[i] = v;
	return true;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static bool read_file(struct atkv_config *c, const char *path, bool required, char *why, size_t why_n)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		if (!required && errno == ENOENT)
			return true;
		snprintf(why, why_n, "cannot read the configuration file %s: %s", path, strerror(errno));
		return false;
	}
	char line[4096];
	int lineno = 0;
	bool ok = true;
	while (ok && fgets(line, sizeof(line), f)) {
		lineno++;
		/* A comment starts at a '#' at the beginning or after white space. */
		for (char *h = strchr(line, '#'); h; h = strchr(h + 1, '#')) {
			if (h == line || isspace((unsigned char)h[-1])) {
				*h = '\0';
				break;
			}
		}
		char *s = trim(line);
		if (!*s)
			continue;
		char *eq = strchr(s, '=');
		char source[600];
		if (!eq) {
			snprintf(why, why_n, "%s:%d: expected \"key = value\", got \"%s\"", path, lineno, s);
			ok = false;
			break;
		}
		*eq = '\0';
		char *key = trim(s), *value = trim(eq + 1);
		size_t vn = strlen(value);
		if (vn >= 2 && value[0] == '"' && value[vn - 1] == '"') {
			value[vn - 1] = '\0';
			value++;
		}
		int i = find(c, key);
		if (i >= 0 && c->opts[i].flag_only) {
			snprintf(why, why_n, "%s:%d: %s can only be given as --%s, for one run", path, lineno, key, key);
			ok = false;
			break;
		}
		if (i < 0) {
			/* The file is shared by every atkv program: a key another one reads is fine. */
			atkv_log(ATKV_LOG_DEBUG, "%s:%d: ignoring \"%s\", not an option of this program", path, lineno, key);
			continue;
		}
		snprintf(source, sizeof(source), "%s:%d: %s", path, lineno, key);
		ok = set(c, i, value, source, why, why_n);
	}
	fclose(f);
	if (ok && !(c->file = dup_string(path))) {
		snprintf(why, why_n, "out of memory");
		ok = false;
	}
	return ok;
}

/* ATKV_ + upper-cased name with '-' → '_'. */
static void env_name(const char *name, char *out, size_t n)
{
	size_t o = (size_t)snprintf(out, n, "ATKV_");
	for (; *name && o + 1 < n; name++)
		out[o++] = *name == '-' ? '_' : (char)toupper((unsigned char)*name);
	out[o] = '\0';
}

static bool read_env(struct atkv_config *c, char *why, size_t why_n)
{
	for (size_t i = 0; i < c->n; i++) {
		char var[128];
		env_name(c->opts[i].name, var, sizeof(var));
		const char *v = getenv(var);
		if (!v && c->opts[i].env_alias && (v = getenv(c->opts[i].env_alias)))
			snprintf(var, sizeof(var), "%s", c->opts[i].env_alias);
		if (v && c->opts[i].flag_only) {
			snprintf(why, why_n, "%s: %s can only be given as --%s, for one run", var, c->opts[i].name,
			         c->opts[i].name);
			return false;
		}
		if (v && !set(c, (int)i, v, var, why, why_n))
			return false;
	}
	return true;
}

/* Finds --config before anything else is read: the file is the lowest layer. */
static const char *config_path(int argc, char **argv, bool *required)
{
	const char *path = getenv("ATKV_CONFIG");
	*required = path != NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--config") && i + 1 < argc) {
			path = argv[i + 1];
			*required = true;
		} else if (!strncmp(argv[i], "--config=", 9)) {
			path = argv[i] + 9;
			*required = true;
		}
	}
	return path ? path : ATKV_CONFIG_DEFAULT_FILE;
}

static int read_flags(struct atkv_config *c, int max_positional, int argc, char **argv, char *why,
                      size_t why_n)
{
	bool options_done = false;
	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		if (options_done || a[0] != '-' || !a[1]) {
			if (c->n_positional >= max_positional) {
				snprintf(why, why_n, "unexpected argument \"%s\" (see --help)", a);
				return ATKV_CONFIG_ERROR;
			}
			c->positional[c->n_positional++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			options_done = true;
			continue;
		}
		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			return ATKV_CONFIG_HELP;
		if (!strcmp(a, "--version"))
			return ATKV_CONFIG_VERSION;
		if (strncmp(a, "--", 2)) {
			snprintf(why, why_n, "unknown option %s (see --help)", a);
			return ATKV_CONFIG_ERROR;
		}
		char name[128];
		const char *value = NULL, *eq = strchr(a, '=');
		size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		snprintf(name, sizeof(name), "%.*s", (int)len, a + 2);
		if (eq)
			value = eq + 1;
		if (!strcmp(name, "config")) {
			if (!eq && i + 1 >= argc) {
				snprintf(why, why_n, "--config needs a value (FILE)");
				return ATKV_CONFIG_ERROR;
			}
			i += !eq; /* read first, in config_path */
			continue;
		}
		int k = find(c, name);
		if (k < 0) {
			snprintf(why, why_n, "unknown option --%s (see --help)", name);
			return ATKV_CONFIG_ERROR;
		}
		if (!value) {
			if (c->opts[k].type == ATKV_OPT_BOOL && (i + 1 >= argc || parse_bool(argv[i + 1]) < 0))
				value = "true";
			else if (i + 1 < argc)
				value = argv[++i];
			else {
				snprintf(why, why_n, "--%s needs a value (%s)", name,
				         c->opts[k].arg ? c->opts[k].arg : "see --help");
				return ATKV_CONFIG_ERROR;
			}
		}
		char source[160];
		snprintf(source, sizeof(source), "--%s", name);
		if (!set(c, k, value, source, why, why_n))
			return ATKV_CONFIG_ERROR;
	}
	return ATKV_CONFIG_OK;
}

int atkv_config_load(const struct atkv_option *opts, size_t n, int max_positional, int argc,
                     char **argv, struct atkv_config **out, char *why, size_t why_n)
{
	struct atkv_config *c = calloc(1, sizeof(*c));
	int rc = ATKV_CONFIG_ERROR;
	why[0] = '\0';
	if (!c || !(c->values = calloc(n ? n : 1, sizeof(char *))) ||
	    !(c->positional = calloc((size_t)max_positional + 1, sizeof(char *)))) {
		snprintf(why, why_n, "out of memory");
		atkv_config_free(c);
		return ATKV_CONFIG_ERROR;
	}
	c->opts = opts;
	c->n = n;
	for (size_t i = 0; i < n; i++) {
		if (opts[i].def && !set(c, (int)i, opts[i].def, opts[i].name, why, why_n))
			goto done;
	}
	bool required;
	const char *path = config_path(argc, argv, &required);
	if (!read_file(c, path, required, why, why_n) || !read_env(c, why, why_n))
		goto done;
	rc = read_flags(c, max_positional, argc, argv, why, why_n);
done:
	if (rc == ATKV_CONFIG_OK)
		*out = c;
	else
		atkv_config_free(c);
	return rc;
}

void atkv_config_free(struct atkv_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; c->values && i < c->n; i++)
		free(c->values[i]);
	free(c->values);
	free(c->positional);
	free(c->file);
	free(c);
}

const char *atkv_config_str(const struct atkv_config *c, const char *name)
{
	int i = find(c, name);
	return i < 0 ? NULL : c->values[i];
}

int64_t atkv_config_int(const struct atkv_config *c, const char *name)
{
	const char *v = atkv_config_str(c, name);
	int64_t x = 0;
	if (v)
		parse_int(v, &x);
	return x;
}

bool atkv_config_bool(const struct atkv_config *c, const char *name)
{
	const char *v = atkv_config_str(c, name);
	return v && parse_bool(v) == 1;
}

const char *atkv_config_file(const struct atkv_config *c) { return c->file; }
int atkv_config_positional_count(const struct atkv_config *c) { return c->n_positional; }
const char *atkv_config_positional(const struct atkv_config *c, int i) { return c->positional[i]; }

void atkv_config_help(FILE *f, const char *usage, const char *summary,
                      const struct atkv_option *opts, size_t n)
{
	fprintf(f, "Usage: %s\n\n%s\n\nOptions (each also settable as \"key = value\" in the configuration\n"
	           "file and as the environment variable ATKV_<KEY>; flags win over the environment,\n"
	           "which wins over the file):\n", usage, summary);
	for (size_t i = 0; i < n; i++) {
		char flag[160], var[128];
		env_name(opts[i].name, var, sizeof(var));
		snprintf(flag, sizeof(flag), "--%s%s%s", opts[i].name, opts[i].arg ? " " : "",
		         opts[i].arg ? opts[i].arg : "");
		fprintf(f, "  %-28s %s\n", flag, opts[i].help);
		if (opts[i].flag_only)
			fprintf(f, "  %-28s (this run only: no file key or variable; default: %s)\n", "",
			        opts[i].def ? opts[i].def : "none");
		else
			fprintf(f, "  %-28s (%s%s%s; default: %s)\n", "", var, opts[i].env_alias ? " or " : "",
			        opts[i].env_alias ? opts[i].env_alias : "", opts[i].def ? opts[i].def : "none");
	}
	fprintf(f, "  %-28s %s\n", "--config FILE", "configuration file (ATKV_CONFIG; default: " ATKV_CONFIG_DEFAULT_FILE
	           ", skipped when absent)");
	fprintf(f, "  %-28s %s\n", "--help", "this text");
	fprintf(f, "  %-28s %s\n", "--version", "the version");
}

int atkv_config_start(const char *program, const char *usage, const char *summary, const struct atkv_option *opts,
                      size_t n, int max_positional, int argc, char **argv, struct atkv_config **out)
{
	char why[1024];
	switch (atkv_config_load(opts, n, max_positional, argc, argv, out, why, sizeof(why))) {
	case ATKV_CONFIG_OK:
		return -1;
	case ATKV_CONFIG_HELP:
		atkv_config_help(stdout, usage, summary, opts, n);
		return 0;
	case ATKV_CONFIG_VERSION:
		printf("%s %s\n", program, PACKAGE_VERSION);
		return 0;
	default:
		fprintf(stderr, "%s: %s\n", program, why);
		return 2;
	}
}
