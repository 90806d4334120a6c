/* cli-watch.c — atkv watch: the live changes to a collection, or to every collection of an NSID
 * namespace, decoded into "put AT-URI JSON" and "del AT-URI" lines. It reads through an ordered
 * consumer (ephemeral, no acknowledgements), which the server drops once atkv is gone. */
#include "cli.h"
#include "natsconn.h"

#include <atkv/atkv.h>

#include <stdio.h>
#include <string.h>

#define KV_PREFIX "$KV." ATKV_BUCKET_RECORD "."

/* An NSID or a namespace of one: dot-separated segments of letters, digits and hyphens. These
 * need no escaping, so the name goes into the subject as it is. */
static bool namespace_ok(const char *s)
{
	size_t seg = 0;
	for (const char *p = s;; p++) {
		if (*p == '.' || !*p) {
			if (seg == 0 || seg > 63)
				return false;
			if (!*p)
				return p - s <= ATKV_NSID_MAX;
			seg = 0;
		} else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-') {
			seg++;
		} else {
			return false;
		}
	}
}

/* The collection is the one watched or lies under it. */
static bool in_namespace(const char *collection, const char *ns, size_t ns_n)
{
	return !strncmp(collection, ns, ns_n) && (collection[ns_n] == '\0' || collection[ns_n] == '.');
}

static bool print_change(natsMsg *m, const char *ns, const char *did)
{
	struct atkv_key k;
	const char *subject = natsMsg_GetSubject(m), *op = NULL;
	size_t prefix = strlen(KV_PREFIX);
	if (strncmp(subject, KV_PREFIX, prefix) ||
	    atkv_key_parse(subject + prefix, strlen(subject + prefix), &k)) {
		fprintf(stderr, ATKV_CLI_PROGRAM ": skipped %s: not a record key\n", subject);
		return true;
	}
	if (!in_namespace(k.collection, ns, strlen(ns)) || (did && strcmp(did, k.did)))
		return true;
	natsMsgHeader_Get(m, "KV-Operation", &op);
	if (op && (!strcmp(op, "DEL") || !strcmp(op, "PURGE"))) {
		printf("del at://%s/%s/%s\n", k.did, k.collection, k.rkey);
	} else {
		printf("put at://%s/%s/%s ", k.did, k.collection, k.rkey);
		fwrite(natsMsg_GetData(m), 1, (size_t)natsMsg_GetDataLength(m), stdout);
		putchar('\n');
	}
	/* Line by line, so that `atkv watch … | grep …` shows each change as it comes. */
	return fflush(stdout) == 0;
}

int atkv_cli_watch(struct atkv_cli *c)
{
	const char *ns = c->argv[0], *did = atkv_config_str(c->cfg, "did");
	if (!namespace_ok(ns))
		return atkv_cli_fail(ATKV_CLI_USAGE, "\"%s\" is not a collection or namespace (an NSID such as "
		                     "app.bsky.feed.like, or its first segments, such as blue.flashes)", ns);
	if (did && !atkv_syntax_did(did, strlen(did)))
		return atkv_cli_fail(ATKV_CLI_USAGE, "--did %s: not a DID", did);
	char subject[32 + ATKV_NSID_MAX];
	snprintf(subject, sizeof(subject), KV_PREFIX "%c.%s.>", did ? atkv_key_partition(did, strlen(did)) : '*', ns);
	int rc = atkv_cli_connect(c);
	if (rc)
		return rc;
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Ordered = true;
	so.Stream = "KV_" ATKV_BUCKET_RECORD;
	so.Config.DeliverPolicy = atkv_config_bool(c->cfg, "all") ? js_DeliverAll : js_DeliverNew;
	natsSubscription *sub = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_SubscribeSync(&sub, c->js, subject, NULL, &so, &jerr);
	if (s != NATS_OK)
		return atkv_cli_fail(ATKV_CLI_FAILED, "cannot watch %s: %s%s", subject, atkv_nats_why(s),
		                     s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr
		                             ? " (bucket record does not exist yet: start atkv-builder, or atkv put a record)"
		                             : "");
	while (!atkv_cli_stop && !rc) {
		natsMsg *m = NULL;
		s = natsSubscription_NextMsg(&m, sub, 250);
		if (s == NATS_TIMEOUT)
			continue;
		if (s != NATS_OK)
			rc = atkv_cli_fail(ATKV_CLI_FAILED, "stopped watching: %s", atkv_nats_why(s));
		else if (!print_change(m, ns, did))
			rc = ATKV_CLI_FAILED; /* stdout closed: the reader has gone */
		natsMsg_Destroy(m);
	}
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	return rc;
}
