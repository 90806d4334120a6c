/* count-records.c — the smallest useful indexer on libatkv: how many records each collection
 * under an NSID namespace holds. It reads the record KV from the beginning (the store's
 * contents, then what changes live) until nothing new comes for --idle milliseconds, then
 * prints "COLLECTION COUNT" lines, sorted. Build it against an installed libatkv with
 *   cc count-records.c $(pkg-config --cflags --libs atkv) -o count-records
 * Usage: count-records [--nats URL] [--idle MS] [--partitions MASK] NAMESPACE   (e.g. app.bsky)
 * --partitions (a bit per partition 0-15, e.g. 0x00ff) counts only those partitions' accounts:
 * processes with complementary masks share the work, and their counts add up to the whole. */
#define _POSIX_C_SOURCE 200809L /* getpid */
#include <atkv/atkv.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tally {
	char collection[ATKV_NSID_MAX + 1];
	long count;
};

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct tally *)a)->collection, ((const struct tally *)b)->collection);
}

int main(int argc, char **argv)
{
	const char *url = "nats://127.0.0.1:4222", *ns = NULL;
	long idle_ms = 2000;
	unsigned long partitions = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--nats") && i + 1 < argc)
			url = argv[++i];
		else if (!strcmp(argv[i], "--idle") && i + 1 < argc)
			idle_ms = atol(argv[++i]);
		else if (!strcmp(argv[i], "--partitions") && i + 1 < argc && (partitions = strtoul(argv[i + 1], NULL, 0)) &&
		         partitions <= 0xffff)
			i++;
		else if (argv[i][0] != '-' && !ns)
			ns = argv[i];
		else {
			fprintf(stderr, "usage: count-records [--nats URL] [--idle MS] [--partitions MASK] NAMESPACE\n");
			return 2;
		}
	}
	if (!ns) {
		fprintf(stderr, "usage: count-records [--nats URL] [--idle MS] [--partitions MASK] NAMESPACE\n");
		return 2;
	}

	natsConnection *nc = NULL;
	if (natsConnection_ConnectTo(&nc, url) != NATS_OK) {
		fprintf(stderr, "count-records: cannot connect to NATS at %s\n", url);
		return 1;
	}
	/* A consumer of its own for this run, without acks: every record once, then it is deleted. */
	char name[64], why[512];
	snprintf(name, sizeof(name), "count-records-%ld", (long)getpid());
	const char *collections[] = {ns, NULL};
	struct atkv_consumer_options o;
	atkv_consumer_options_init(&o);
	o.name = name;
	o.collections = collections;
	o.ack_none = true;
	o.partitions = (uint16_t)partitions;
	struct atkv_consumer *c = NULL;
	if (atkv_consumer_open(nc, &o, &c, why, sizeof(why))) {
		fprintf(stderr, "count-records: %s\n", why);
		natsConnection_Destroy(nc);
		nats_Close();
		return 1;
	}

	/* The store holds each record's last state once: a put is a record, a delete is not. */
	struct tally *t = NULL;
	size_t n = 0;
	struct atkv_change *ch;
	int rc;
	while ((rc = atkv_consumer_next(c, idle_ms, &ch)) > 0) {
		if (ch->kind == ATKV_CHANGE_PUT) {
			size_t i = 0;
			while (i < n && strcmp(t[i].collection, ch->collection))
				i++;
			if (i == n) {
				struct tally *more = realloc(t, (n + 1) * sizeof(*t));
				if (!more)
					break;
				t = more;
				snprintf(t[n].collection, sizeof(t[n].collection), "%s", ch->collection);
				t[n++].count = 0;
			}
			t[i].count++;
		}
		atkv_change_free(ch);
	}
	atkv_consumer_close(c);
	if (atkv_consumer_delete(nc, &o, why, sizeof(why)))
		fprintf(stderr, "count-records: %s\n", why);
	natsConnection_Destroy(nc);
	nats_Close();
	if (rc < 0) {
		fprintf(stderr, "count-records: %s\n", atkv_strerror(rc));
		free(t);
		return 1;
	}
	qsort(t, n, sizeof(*t), by_name);
	for (size_t i = 0; i < n; i++)
		printf("%s %ld\n", t[i].collection, t[i].count);
	free(t);
	return 0;
}
