/* tap.c — TAP output and file helpers for the unit tests (see tap.h). */
#include "tap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int checks, failures;

static bool report(bool cond, const char *fmt, va_list ap)
{
	checks++;
	if (!cond)
		failures++;
	printf("%s %d - ", cond ? "ok" : "not ok", checks);
	vprintf(fmt, ap);
	putchar('\n');
	return cond;
}

bool tap_ok(bool cond, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report(cond, fmt, ap);
	va_end(ap);
	return cond;
}

bool tap_eq(long long got, long long want, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report(got == want, fmt, ap);
	va_end(ap);
	if (got != want)
		printf("#   got %lld, want %lld\n", got, want);
	return got == want;
}

void tap_skip(const char *reason)
{
	/* Counted in the plan; automake's driver reports it as SKIP, never as a pass. */
	printf("ok %d # SKIP %s\n", ++checks, reason);
}

void tap_note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("# ", stdout);
	vprintf(fmt, ap);
	putchar('\n');
	va_end(ap);
}

int tap_done(void)
{
	printf("1..%d\n", checks);
	if (checks == 0) {
		printf("Bail out! no checks ran\n");
		return 1;
	}
	return failures ? 1 : 0;
}

void tap_remove_dir(const char *dir)
{
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (getenv("ATKV_TEST_KEEP"))
		tap_note("kept %s", dir);
	else if (system(cmd) != 0)
		tap_note("could not remove %s", dir);
}

const char *tap_path(const char *rel)
{
	static char path[4096];
	const char *dir = getenv("srcdir");
	snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : ".", rel);
	return path;
}

uint8_t *tap_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		printf("Bail out! cannot open %s\n", path);
		exit(1);
	}
	size_t cap = 1 << 16, n = 0;
	uint8_t *buf = malloc(cap);
	size_t got;
	while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += got;
		if (cap - n - 1 == 0) {
			uint8_t *nb = realloc(buf, cap *= 2);
			if (!nb)
				free(buf);
			buf = nb;
		}
	}
	fclose(f);
	if (!buf) {
		printf("Bail out! out of memory reading %s\n", path);
		exit(1);
	}
	buf[n] = 0;
	*len = n;
	return buf;
}

uint8_t *tap_hex(const char *hex, size_t *len)
{
	size_t n = strlen(hex), o = 0;
	uint8_t *out = malloc(n / 2 + 1);
	int hi = -1;
	for (size_t i = 0; out && i < n; i++) {
		char c = hex[i];
		int v;
		if (c == ' ' || c == '\n' || c == '\t')
			continue;
		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v = c - 'A' + 10;
		else {
			printf("Bail out! bad hex in test: %s\n", hex);
			exit(1);
		}
		if (hi < 0) {
			hi = v;
		} else {
			out[o++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	if (!out || hi >= 0) {
		printf("Bail out! bad hex in test: %s\n", hex);
		exit(1);
	}
	*len = o;
	return out;
}

/* The file dir/name, or NULL when it is not there (a log a process has not written yet). */
static char *read_log(const char *dir, const char *name)
{
	char path[512];
	size_t n;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fclose(f);
	return (char *)tap_read_file(path, &n);
}

void tap_note_tail(const char *dir, const char *name, int lines)
{
	char *text = read_log(dir, name);
	if (!text)
		return;
	/* Back from the end over `lines` line breaks (a last line without one counts too). */
	char *p = text + strlen(text);
	if (p > text && p[-1] == '\n')
		p--;
	for (int k = 0; p > text; p--)
		if (p[-1] == '\n' && ++k >= lines)
			break;
	tap_note("--- end of %s:", name);
	for (char *line = p; *line;) {
		size_t n = strcspn(line, "\n");
		tap_note("%.*s", (int)n, line);
		line += n + (line[n] == '\n');
	}
	free(text);
}

int tap_count_in_file(const char *dir, const char *name, const char *needle)
{
	char *text = read_log(dir, name);
	int count = 0;
	for (char *p = text; p && (p = strstr(p, needle)); p++)
		count++;
	free(text);
	return count;
}
