/* natsconn.c — NATS connection setup shared by atkv's programs (see natsconn.h). */
#include "natsconn.h"
#include "log.h"
#include "nkey.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int fail(natsStatus s, const char *what, char *why, size_t why_n)
{
	snprintf(why, why_n, "%s: %s (%s)", what, natsStatus_GetText(s), nats_GetLastError(NULL));
	return -1;
}

/* A service says when it loses NATS and when it has it back: without these lines a stalled
 * builder or indexer would look idle rather than cut off. nats.c calls them on its own thread. */
static void on_disconnected(natsConnection *nc, void *closure)
{
	(void)closure;
	if (natsConnection_IsClosed(nc))
		return; /* shutting down */
	/* The status only: the connection's error text may be rewritten by the reconnect thread. */
	const char *unused = NULL;
	natsStatus st = natsConnection_GetLastError(nc, &unused);
	atkv_log(ATKV_LOG_WARNING, "lost the connection to NATS (%s); reconnecting, work waits meanwhile",
	         st != NATS_OK ? natsStatus_GetText(st) : "server gone or not answering pings");
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	char url[256] = "", shown[300];
	(void)closure;
	natsConnection_GetConnectedUrl(nc, url, sizeof(url));
	atkv_nats_urls_shown(url, shown, sizeof(shown));
	atkv_log(ATKV_LOG_INFO, "reconnected to NATS at %s", shown);
}

/* Builds the options; the URL list is split on commas into the server list. */
static natsStatus make_options(const struct atkv_nats_options *o, natsOptions **out, char *why,
                               size_t why_n)
{
	natsOptions *opts = NULL;
	natsStatus s = natsOptions_Create(&opts);
	char list[2048];
	const char *servers[32];
	int n = 0;

	if (s == NATS_OK) {
		if (strlen(o->urls) >= sizeof(list)) {
			snprintf(why, why_n, "--nats: the server list is longer than %zu bytes", sizeof(list) - 1);
			natsOptions_Destroy(opts);
			return NATS_INVALID_ARG;
		}
		strcpy(list, o->urls);
		for (char *save = NULL, *u = strtok_r(list, ", ", &save); u && n < 32; u = strtok_r(NULL, ", ", &save))
			servers[n++] = u;
		s = natsOptions_SetServers(opts, servers, n);
	}
	if (s == NATS_OK && o->name)
		s = natsOptions_SetName(opts, o->name);
	/* A service keeps trying for as long as it runs; publishes wait in a bounded buffer. */
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(opts, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(opts, 500);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectJitter(opts, 100, 1000);
	if (s == NATS_OK)
		s = natsOptions_SetRetryOnFailedConnect(opts, false, NULL, NULL);
	/* A server that stops answering (paused, overloaded, half-open TCP) is given up on after
	 * about 15 s rather than nats.c's default of minutes, so the reconnect starts. */
	if (s == NATS_OK)
		s = natsOptions_SetPingInterval(opts, 5000);
	if (s == NATS_OK)
		s = natsOptions_SetMaxPingsOut(opts, 3);
	if (s == NATS_OK && o->log_events)
		s = natsOptions_SetDisconnectedCB(opts, on_disconnected, NULL);
	if (s == NATS_OK && o->log_events)
		s = natsOptions_SetReconnectedCB(opts, on_reconnected, NULL);
	if (s == NATS_OK && o->creds)
		s = natsOptions_SetUserCredentialsFromFiles(opts, o->creds, NULL);
	if (s == NATS_OK && o->nkey) {
		char pub[ATKV_NKEY_PUBLIC_LEN + 1];
		if (atkv_nkey_public_from_seed_file(o->nkey, pub, why, why_n)) {
			natsOptions_Destroy(opts);
			return NATS_INVALID_ARG;
		}
		s = natsOptions_SetNKeyFromSeed(opts, pub, o->nkey);
	}
	if (s == NATS_OK && (o->tls_ca || o->tls_cert))
		s = natsOptions_SetSecure(opts, true);
	if (s == NATS_OK && o->tls_ca)
		s = natsOptions_LoadCATrustedCertificates(opts, o->tls_ca);
	if (s == NATS_OK && o->tls_cert)
		s = natsOptions_LoadCertificatesChain(opts, o->tls_cert, o->tls_key);
	if (s != NATS_OK) {
		if (!why[0])
			fail(s, "NATS options (check --nats, --creds, --nkey and the --tls-* files)", why, why_n);
		natsOptions_Destroy(opts);
		return s;
	}
	*out = opts;
	return NATS_OK;
}

int atkv_nats_connect(const struct atkv_nats_options *o, long wait_ms, natsConnection **nc,
                      char *why, size_t why_n)
{
	natsOptions *opts = NULL;
	why[0] = '\0';
	if (make_options(o, &opts, why, why_n) != NATS_OK)
		return -1;
	natsStatus s = NATS_NO_SERVER;
	for (long waited = 0;; waited += 250) {
		s = natsConnection_Connect(nc, opts);
		if (s == NATS_OK || waited >= wait_ms || (s != NATS_NO_SERVER && s != NATS_TIMEOUT))
			break;
		nats_Sleep(250);
	}
	natsOptions_Destroy(opts);
	if (s != NATS_OK) {
		char what[256], shown[200];
		atkv_nats_urls_shown(o->urls, shown, sizeof(shown));
		snprintf(what, sizeof(what), "cannot connect to NATS at %s", shown);
		return fail(s, what, why, why_n);
	}
	return 0;
}

const char *atkv_nats_why(natsStatus s)
{
	const char *text = nats_GetLastError(NULL);
	/* Without nats.c's "(js.c:535): " source location, which tells an operator nothing. */
	if (text && text[0] == '(' && strstr(text, "): "))
		text = strstr(text, "): ") + 3;
	if (text && *text)
		return text;
	return s == NATS_TIMEOUT ? "NATS did not answer in time (is JetStream short of storage or overloaded?)"
	                         : natsStatus_GetText(s);
}

void atkv_nats_urls_shown(const char *urls, char *out, size_t cap)
{
	size_t len = 0;
	if (!cap)
		return;
	for (const char *u = urls; *u && len + 1 < cap;) {
		size_t n = strcspn(u, ",");
		const char *scheme = strstr(u, "://"), *at = NULL;
		if (scheme && scheme < u + n) {
			const char *host = scheme + 3;
			size_t auth = strcspn(host, "@/,");
			at = host + auth < u + n && host[auth] == '@' ? host + auth : NULL;
		}
		int w = at ? snprintf(out + len, cap - len, "%.*s***%.*s", (int)(scheme + 3 - u), u, (int)(u + n - at), at)
		           : snprintf(out + len, cap - len, "%.*s", (int)n, u);
		len += w < 0 ? 0 : (size_t)w < cap - len ? (size_t)w : cap - len - 1;
		u += n;
		if (*u == ',' && len + 1 < cap)
			out[len++] = *u++;
		else if (*u == ',')
			break;
	}
	out[len < cap ? len : cap - 1] = '\0';
}

struct atkv_nats_options atkv_nats_options_from_config(const struct atkv_config *c, const char *name)
{
	return (struct atkv_nats_options){
		.urls = atkv_config_str(c, "nats"), .name = name, .creds = atkv_config_str(c, "creds"),
		.nkey = atkv_config_str(c, "nkey"),
		.tls_ca = atkv_config_str(c, "tls-ca"), .tls_cert = atkv_config_str(c, "tls-cert"),
		.tls_key = atkv_config_str(c, "tls-key"),
	};
}
