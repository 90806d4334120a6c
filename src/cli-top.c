/* cli-top.c — atkv top: a live terminal view of the pipeline, redrawn every --interval: the
 * builder's cursor and the writes into bucket record per second, every durable consumer's
 * pending changes and rate, each with a chart of the last minute. q or Ctrl-C quits and gives
 * the terminal back as it was. */
#define _DEFAULT_SOURCE /* usleep */
#include "buckets.h"
#include "cli.h"
#include "natsconn.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define HISTORY 60
#define MAX_CONSUMERS 8
#define RECORD_STREAM "KV_" ATKV_BUCKET_RECORD

struct series {
	double v[HISTORY];
	int n;               /* samples held, at most HISTORY; the newest is v[n - 1] */
};

struct watched {
	char name[256];
	uint64_t floor;      /* ack floor (consumer seq) at the last sample */
	uint64_t pending, ack_pending;
	struct series rate;
	bool seen;           /* in the last listing */
};

struct top {
	struct atkv_cli *c;
	int64_t t_ns;                 /* the last sample */
	uint64_t last_seq, entries;   /* bucket record */
	int64_t cursor;
	bool have_record, have_cursor;
	char error[256];              /* NATS could not tell: why ("" when it could) */
	struct series writes;
	struct watched consumers[MAX_CONSUMERS];
	int n_consumers;
};

static void push(struct series *s, double v)
{
	if (s->n == HISTORY)
		memmove(s->v, s->v + 1, (HISTORY - 1) * sizeof(s->v[0]));
	else
		s->n++;
	s->v[s->n - 1] = v;
}

/* The series as a line of block characters, scaled to its own maximum. */
static void chart(const struct series *s, char *out, size_t cap)
{
	static const char *const blocks[] = {" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
	double max = 0;
	for (int i = 0; i < s->n; i++)
		if (s->v[i] > max)
			max = s->v[i];
	size_t len = 0;
	out[0] = '\0';
	for (int i = 0; i < s->n && len + 4 < cap; i++) {
		int b = max > 0 ? (int)(s->v[i] / max * 8 + 0.5) : 0;
		if (s->v[i] > 0 && b == 0)
			b = 1;
		len += (size_t)snprintf(out + len, cap - len, "%s", blocks[b]);
	}
}

static struct watched *watched(struct top *t, const char *name)
{
	for (int i = 0; i < t->n_consumers; i++)
		if (!strcmp(t->consumers[i].name, name))
			return &t->consumers[i];
	if (t->n_consumers == MAX_CONSUMERS)
		return NULL;
	struct watched *w = &t->consumers[t->n_consumers++];
	memset(w, 0, sizeof(*w));
	snprintf(w->name, sizeof(w->name), "%s", name);
	return w;
}

static void sample(struct top *t)
{
	int64_t now = atkv_cli_now_ns();
	double dt = t->t_ns ? (double)(now - t->t_ns) / 1e9 : 0;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	bool had = t->have_record;
	uint64_t before = t->last_seq;
	natsStatus s = js_GetStreamInfo(&si, t->c->js, RECORD_STREAM, NULL, &jerr);
	t->have_record = s == NATS_OK;
	t->error[0] = '\0';
	if (s != NATS_OK && s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr)
		snprintf(t->error, sizeof(t->error), "%s", atkv_nats_why(s));
	if (t->have_record) {
		t->last_seq = si->State.LastSeq;
		t->entries = si->State.Msgs;
		jsStreamInfo_Destroy(si);
	}
	if (dt > 0)
		push(&t->writes, had && t->have_record && t->last_seq >= before ? (double)(t->last_seq - before) / dt : 0);

	kvStore *kv = NULL;
	kvEntry *e = NULL;
	t->have_cursor = js_KeyValue(&kv, t->c->js, ATKV_BUCKET_CURSOR) == NATS_OK &&
	                 kvStore_Get(&e, kv, "firehose") == NATS_OK;
	if (t->have_cursor)
		t->cursor = strtoll(kvEntry_ValueString(e), NULL, 10);
	kvEntry_Destroy(e);
	kvStore_Destroy(kv);

	jsConsumerInfoList *list = NULL;
	for (int i = 0; i < t->n_consumers; i++)
		t->consumers[i].seen = false;
	if (t->have_record && js_Consumers(&list, t->c->js, RECORD_STREAM, NULL, NULL) == NATS_OK && list) {
		for (int i = 0; i < list->Count; i++) {
			const jsConsumerInfo *ci = list->List[i];
			/* Durable ones only: an ordered consumer (atkv watch's) is nobody's progress. */
			if (!ci->Config || !ci->Config->Durable || !ci->Config->Durable[0] ||
			    strlen(ci->Name) >= sizeof(t->consumers[0].name))
				continue;
			struct watched *w = watched(t, ci->Name);
			if (!w)
				continue;
			if (dt > 0)
				push(&w->rate, w->floor && ci->AckFloor.Consumer >= w->floor
				                       ? (double)(ci->AckFloor.Consumer - w->floor) / dt : 0);
			w->floor = ci->AckFloor.Consumer;
			w->pending = ci->NumPending;
			w->ack_pending = (uint64_t)ci->NumAckPending;
			w->seen = true;
		}
	}
	jsConsumerInfoList_Destroy(list);
	/* A consumer deleted since frees its place. */
	int kept = 0;
	for (int i = 0; i < t->n_consumers; i++)
		if (t->consumers[i].seen)
			t->consumers[kept++] = t->consumers[i];
	t->n_consumers = kept;
	t->t_ns = now;
}

static double newest(const struct series *s) { return s->n ? s->v[s->n - 1] : 0; }

static void draw(const struct top *t, int64_t interval_ms)
{
	char line[HISTORY * 4 + 1];
	/* Home, then each line cleared to its end: no flicker from clearing the whole screen. */
	printf("\033[H");
	char shown[512];
	atkv_nats_urls_shown(atkv_config_str(t->c->cfg, "nats"), shown, sizeof(shown));
	printf("atkv top  %s  every %lld ms  q quits\033[K\n\033[K\n", shown, (long long)interval_ms);
	if (t->error[0]) {
		printf("NATS cannot tell: %s\033[K\n\033[J", t->error);
		fflush(stdout);
		return;
	}
	if (!t->have_record) {
		printf("bucket record does not exist yet: start atkv-builder (or atkv put a record)\033[K\n\033[J");
		fflush(stdout);
		return;
	}
	if (t->have_cursor)
		printf("builder   cursor %lld\033[K\n", (long long)t->cursor);
	else
		printf("builder   no cursor saved\033[K\n");
	chart(&t->writes, line, sizeof(line));
	printf("record    %llu entries   %.0f writes/s\033[K\n          %s\033[K\n\033[K\n",
	       (unsigned long long)t->entries, newest(&t->writes), line);
	printf("%-24s %12s %12s %10s\033[K\n", "consumer", "pending", "ack pending", "per s");
	for (int i = 0; i < t->n_consumers; i++) {
		const struct watched *w = &t->consumers[i];
		chart(&w->rate, line, sizeof(line));
		printf("%-24s %12llu %12llu %10.0f\033[K\n  %s\033[K\n", w->name, (unsigned long long)w->pending,
		       (unsigned long long)w->ack_pending, newest(&w->rate), line);
	}
	printf("\033[J");
	fflush(stdout);
}

/* True when q (or Q) was typed within ms milliseconds, or the terminal is gone. */
static bool quit_typed(int ms)
{
	struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
	if (poll(&p, 1, ms) <= 0)
		return false;
	char ch;
	ssize_t got = read(STDIN_FILENO, &ch, 1);
	return got <= 0 || ch == 'q' || ch == 'Q';
}

int atkv_cli_top(struct atkv_cli *c)
{
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
		return atkv_cli_fail(ATKV_CLI_USAGE, "top draws on a terminal; for scripts, atkv status --json");
	int64_t interval = atkv_config_int(c->cfg, "interval");
	if (interval < 100)
		interval = 100;
	int rc = atkv_cli_connect(c);
	if (rc)
		return rc;
	struct termios saved, raw;
	if (tcgetattr(STDIN_FILENO, &saved))
		return atkv_cli_fail(ATKV_CLI_FAILED, "cannot read the terminal's settings");
	raw = saved;
	raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	raw.c_cc[VMIN] = 0;
	raw.c_cc[VTIME] = 0;
	tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	printf("\033[?1049h\033[?25l\033[2J"); /* the alternate screen, no cursor */
	struct top *t = calloc(1, sizeof(*t));
	if (t) {
		t->c = c;
		while (!atkv_cli_stop) {
			sample(t);
			draw(t, interval);
			int64_t waited = 0;
			while (!atkv_cli_stop && waited < interval && !quit_typed(50))
				waited += 50;
			if (waited < interval && !atkv_cli_stop)
				break; /* q */
		}
	}
	printf("\033[?25h\033[?1049l"); /* the cursor and the screen as they were */
	fflush(stdout);
	tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	rc = t ? 0 : atkv_cli_fail(ATKV_CLI_FAILED, "out of memory");
	free(t);
	return rc;
}
