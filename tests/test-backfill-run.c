/* test-backfill-run.c — the atkv-backfill program against a PDS and PLC of the test
 * (fakepds.h, 240 repositories in pages of 20) and a real nats-server: killed with -9 halfway
 * and started again, it resumes the listing after the pages already done and ends with every
 * record stored once (no gap: each value checked; no duplicate: KV_record holds one message per
 * record), the accounts added, the resume point forgotten. Run again, it fetches nothing; DIDs
 * on standard input are fetched alone; progress reaches STATUS= with an ETA; a repository the
 * PDS lacks is given up (exit 3); after atkv reset, everything is fetched again; SIGTERM
 * stops it at once and a restart resumes; a 429 is waited out; bad options exit 2. */
#define _DEFAULT_SOURCE
#include "fakepds.h"
#include "natsserver.h"
#include "notify.h"
#include "spawn.h"
#include "tap.h"

#include <atkv/atkv.h>

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BACKFILL "src/atkv-backfill"
#define REPOS 240
#define RECORDS 4800

static struct nats_server server;
static struct fakepds *pds;
static char dir[] = "/tmp/atkv-test-backfill-run.XXXXXX";


/* Starts atkv-backfill with the test's PDS as source and PLC, and extra arguments. */
static pid_t start(const char *log, const char *const extra[], char *const env[])
{
	char *argv[32] = {BACKFILL, "--config", "/dev/null", "--nats", server.url, "--source", pds->url, "--plc", pds->url,
	                  "--concurrency", "2", "--log-level", "debug"};
	int n = 13;
	for (int i = 0; extra && extra[i] && n < 31; i++)
		argv[n++] = (char *)extra[i];
	argv[n] = NULL;
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, log);
	return spawn(argv, env, path);
}

/* Waits for the program to exit; its exit code, or -1 after 60 s (it is then killed). */
static int finish(pid_t p)
{
	int status = 0;
	for (int i = 0; i < 6000; i++) {
		if (!spawn_running(p, &status))
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		sleep_ms(10);
	}
	spawn_stop(p, SIGKILL, 5000);
	return -1;
}

static uint64_t stream_msgs(jsCtx *js, const char *stream)
{
	jsStreamInfo *si = NULL;
	if (js_GetStreamInfo(&si, js, stream, NULL, NULL) != NATS_OK)
		return 0;
	uint64_t n = si->State.Msgs;
	jsStreamInfo_Destroy(si);
	return n;
}

static void reset_counts(void)
{
	__atomic_store_n(&pds->list_requests, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&pds->get_requests, 0, __ATOMIC_SEQ_CST);
	pds->first_cursor[0] = '\0';
}

/* The resume point kept for the test's PDS ("" when none). */
static void resume_point(jsCtx *js, char *out, size_t n)
{
	char key[256] = "list.";
	atkv_key_escape(pds->url, strlen(pds->url), key + 5, sizeof(key) - 5);
	natsMsg *m = kv_last_msg(js, "backfill", key);
	const char *op = NULL;
	out[0] = '\0';
	if (m && natsMsgHeader_Get(m, "KV-Operation", &op) != NATS_OK) {
		json_t *v = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, NULL);
		snprintf(out, n, "%s", json_string_value(json_object_get(v, "cursor")) ? json_string_value(json_object_get(v, "cursor")) : "?");
		json_decref(v);
	}
	natsMsg_Destroy(m);
}

static void kill_and_resume(jsCtx *js)
{
	char notify[512], env_notify[600];
	if (notify_start(dir, notify, sizeof(notify)))
		return;
	snprintf(env_notify, sizeof(env_notify), "NOTIFY_SOCKET=%s", notify);
	char *env[] = {env_notify, NULL};
	pds->delay_ms = 40; /* 3 s to the kill: a progress report or more before it */
	pid_t p = start("first.log", NULL, env);
	/* Halfway: kill it with -9 once 120 repositories were asked for. */
	bool saw_eta = false;
	for (int i = 0; i < 3000 && __atomic_load_n(&pds->get_requests, __ATOMIC_SEQ_CST) < REPOS / 2; i++) {
		saw_eta = saw_eta || notify_said("ETA");
		sleep_ms(10);
	}
	int asked = __atomic_load_n(&pds->get_requests, __ATOMIC_SEQ_CST);
	spawn_stop(p, SIGKILL, 5000);
	saw_eta = saw_eta || notify_said("ETA");
	char cursor[64];
	resume_point(js, cursor, sizeof(cursor));
	uint64_t before = stream_msgs(js, "KV_record");
	tap_ok(asked >= REPOS / 2 && asked < REPOS && before > 0 && before < RECORDS,
	       "killed with -9 halfway: %d of %d repositories asked for, %llu of %d records stored", asked, REPOS,
	       (unsigned long long)before, RECORDS);
	tap_ok(atoi(cursor) > 0 && atoi(cursor) <= asked, "the listing's resume point was kept in NATS: cursor %s", cursor);
	tap_ok(saw_eta, "progress with an ETA reached STATUS= while it ran");
	notify_stop();

	reset_counts();
	pds->delay_ms = 0;
	p = start("second.log", NULL, NULL);
	int rc = finish(p);
	if (!tap_eq(rc, 0, "started again, it runs to its end (exit 0)"))
		tap_note_tail(dir, "second.log", 20);
	tap_ok(!strcmp(pds->first_cursor, cursor), "it resumed the listing at cursor %s (its first listRepos asked from %s)",
	       cursor, pds->first_cursor[0] ? pds->first_cursor : "the start");
	int again = __atomic_load_n(&pds->get_requests, __ATOMIC_SEQ_CST);
	tap_ok(again <= REPOS - atoi(cursor), "it fetched %d repositories, none before the resume point", again);
	long wrong = fakepds_wrong_in_store(pds, js);
	tap_eq(wrong, 0, "no gap: each of the %d records is stored with its value and Atkv-Rev", RECORDS);
	tap_eq((long long)stream_msgs(js, "KV_record"), RECORDS,
	       "no duplicate: KV_record holds exactly one message per record");
	tap_eq((long long)stream_msgs(js, "KV_account"), REPOS, "bucket account has each of the %d accounts", REPOS);
	natsMsg *m = NULL;
	char key[128];
	atkv_key_escape(pds->repos[7].did, strlen(pds->repos[7].did), key, sizeof(key));
	m = kv_last_msg(js, "account", key);
	char want[128];
	snprintf(want, sizeof(want), "{\"did\":\"%s\",\"active\":true}", pds->repos[7].did);
	tap_ok(m && natsMsg_GetDataLength(m) == (int)strlen(want) && !memcmp(natsMsg_GetData(m), want, strlen(want)),
	       "an account's value: %s", want);
	natsMsg_Destroy(m);
	resume_point(js, cursor, sizeof(cursor));
	tap_ok(!cursor[0], "the listing went to its end: no resume point kept");
	char line[64];
	snprintf(line, sizeof(line), "%d/%d repositories (", REPOS - atoi(pds->first_cursor), REPOS - atoi(pds->first_cursor));
	tap_ok(tap_count_in_file(dir, "second.log", line) > 0, "its last progress line: %s...", line);
}

static void run_again(jsCtx *js)
{
	reset_counts();
	uint64_t before = stream_msgs(js, "KV_record");
	int rc = finish(start("third.log", NULL, NULL));
	tap_ok(rc == 0 && pds->get_requests == 0 && !pds->first_cursor[0] && stream_msgs(js, "KV_record") == before,
	       "run again: listed from the start, nothing fetched, nothing written (exit %d, %d fetched)", rc,
	       pds->get_requests);
	tap_ok(tap_count_in_file(dir, "third.log", "(240 already current)") > 0, "and it says all 240 are already current");
}

static void from_stdin(jsCtx *js)
{
	reset_counts();
	char cmd[2048];
	snprintf(cmd, sizeof(cmd),
	         "printf '%%s\\nnot-a-did\\n' %s | %s --config /dev/null --nats %s --pds %s --force - >%s/stdin.log 2>&1",
	         pds->repos[3].did, BACKFILL, server.url, pds->url, dir);
	int rc = system(cmd);
	tap_ok(rc == 0 && pds->get_requests == 1 && pds->list_requests == 0,
	       "DIDs on standard input: only that repository fetched, nothing listed (exit %d, %d fetched)", rc,
	       pds->get_requests);
	tap_ok(tap_count_in_file(dir, "stdin.log", "not a DID, skipped: not-a-did") > 0, "a line that is no DID is named and skipped");
	tap_ok(tap_count_in_file(dir, "stdin.log", "1/1 repositories") > 0 && tap_count_in_file(dir, "stdin.log", "0 written, 20 kept") > 0,
	       "--force fetched it again and kept the 20 records in place");
	(void)js;
}

static void given_up(void)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
	         "echo did:plc:fakepds2222zzzzzzzzzzzzz | %s --config /dev/null --nats %s --pds %s - >%s/gone.log 2>&1",
	         BACKFILL, server.url, pds->url, dir);
	int rc = system(cmd);
	tap_ok(WIFEXITED(rc) && WEXITSTATUS(rc) == 3 && tap_count_in_file(dir, "gone.log", "RepoNotFound") > 0 &&
	           tap_count_in_file(dir, "gone.log", "given up on did:plc:fakepds2222zzzzzzzzzzzzz") > 0,
	       "a repository the PDS does not have: named with the PDS's answer, given up, exit 3 (status %d)",
	       WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
}

/* atkv reset deletes bucket backfill with the records: a backfill after it fetches everything
 * again instead of trusting a record of work whose results are gone. */
static void after_reset(jsCtx *js)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "src/atkv --config /dev/null --nats %s reset --yes >%s/reset.log 2>&1", server.url, dir);
	int rc = system(cmd);
	tap_ok(rc == 0 && tap_count_in_file(dir, "reset.log", "bucket backfill") > 0,
	       "atkv reset --yes names bucket backfill among what it deletes");
	reset_counts();
	rc = finish(start("after-reset.log", NULL, NULL));
	tap_ok(rc == 0 && pds->get_requests == REPOS && fakepds_wrong_in_store(pds, js) == 0,
	       "a backfill after the reset fetches all %d repositories again and stores every record (exit %d, %d fetched)",
	       REPOS, rc, pds->get_requests);
}

/* SIGTERM halfway: it stops within seconds (exit 1) with the resume point behind every
 * repository it did not finish; started again, it completes the store, each record once. */
static void term_and_resume(jsCtx *js)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "src/atkv --config /dev/null --nats %s reset --yes >/dev/null 2>&1", server.url);
	if (system(cmd) != 0)
		tap_note("atkv reset failed");
	reset_counts();
	pds->delay_ms = 40;
	pid_t p = start("term1.log", NULL, NULL);
	for (int i = 0; i < 3000 && __atomic_load_n(&pds->get_requests, __ATOMIC_SEQ_CST) < REPOS / 3; i++)
		sleep_ms(10);
	kill(p, SIGTERM);
	int64_t t0 = (int64_t)time(NULL);
	int rc = finish(p);
	char cursor[64];
	resume_point(js, cursor, sizeof(cursor));
	int asked = __atomic_load_n(&pds->get_requests, __ATOMIC_SEQ_CST);
	tap_ok(rc == 1 && time(NULL) - t0 <= 5 && atoi(cursor) > 0 && atoi(cursor) <= asked,
	       "SIGTERM after %d repositories: exit %d within 5 s, resume point %s", asked, rc, cursor);
	reset_counts();
	pds->delay_ms = 0;
	rc = finish(start("term2.log", NULL, NULL));
	tap_ok(rc == 0 && !strcmp(pds->first_cursor, cursor) && fakepds_wrong_in_store(pds, js) == 0 &&
	           stream_msgs(js, "KV_record") == RECORDS,
	       "started again: resumed at %s, every record stored once (exit %d)", pds->first_cursor, rc);
}

/* A PDS answering 429 for one repository twice: the others go on meanwhile, and it is done on
 * the third try, after the Retry-After asked. */
static void rate_limited(jsCtx *js)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "src/atkv --config /dev/null --nats %s reset --yes >/dev/null 2>&1", server.url);
	if (system(cmd) != 0)
		tap_note("atkv reset failed");
	reset_counts();
	pds->busy_repo = 5;
	pds->busy_times = 2;
	const char *const one[] = {"--concurrency", "1", NULL};
	int rc = finish(start("busy.log", one, NULL));
	int retried = tap_count_in_file(dir, "busy.log", "HTTP 429");
	tap_ok(rc == 0 && retried == 2 && pds->get_requests == REPOS + 2 && fakepds_wrong_in_store(pds, js) == 0,
	       "429 twice for one repository: tried again after Retry-After, done on the third try, every record stored "
	       "(exit %d, %d answers 429 logged, %d fetches)", rc, retried, pds->get_requests);
	pds->busy_repo = -1;
}

static void bad_options(void)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "%s --config /dev/null --nats %s --source ftp://example.com >%s/bad.log 2>&1", BACKFILL,
	         server.url, dir);
	int rc = system(cmd);
	tap_ok(WIFEXITED(rc) && WEXITSTATUS(rc) == 2 &&
	       tap_count_in_file(dir, "bad.log", "--source, --pds and --plc take http:// or https:// URLs") > 0,
	       "--source ftp://...: exit 2 and the reason");
}

int main(void)
{
	/* The test's PDS serves repositories it cannot sign: every atkv-backfill here skips the
	 * signature check (the reference PDS's, in test-pds.sh, are checked). */
	setenv("ATKV_VERIFY", "false", 1);
	if (!mkdtemp(dir) || nats_server_start(&server, 0)) {
		printf("Bail out! cannot set up nats-server\n");
		return 1;
	}
	pds = fakepds_start(REPOS, RECORDS, 4);
	if (!pds) {
		printf("Bail out! cannot start the test's PDS\n");
		return 1;
	}
	pds->page_limit = 20;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	if (natsConnection_ConnectTo(&nc, server.url) != NATS_OK || natsConnection_JetStream(&js, nc, NULL) != NATS_OK) {
		printf("Bail out! cannot connect to nats-server\n");
		return 1;
	}
	kill_and_resume(js);
	run_again(js);
	from_stdin(js);
	given_up();
	after_reset(js);
	term_and_resume(js);
	rate_limited(js);
	bad_options();
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	fakepds_stop(pds);
	nats_server_destroy(&server);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	return tap_done();
}
