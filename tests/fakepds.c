/* fakepds.c — the tests' PDS and PLC directory (see fakepds.h). */
#define _DEFAULT_SOURCE
#include "fakepds.h"
#include "cbuild.h"
#include "httpserver.h"
#include "natsserver.h"
#include "repobuild.h"

#include <atkv/recordkey.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char b32[] = "234567abcdefghijklmnopqrstuvwxyz";

/* v as 13 base32-sortable characters: a TID when v < 2^63. */
static void tid(uint64_t v, char out[14])
{
	for (int i = 12; i >= 0; i--, v >>= 5)
		out[i] = b32[v & 31];
	out[13] = '\0';
}

static long did_index(const struct fakepds *p, const char *did)
{
	if (strlen(did) != 32 || strncmp(did, "did:plc:fakepds2222", 19))
		return -1;
	uint64_t v = 0;
	for (const char *c = did + 19; *c; c++) {
		const char *at = strchr(b32, *c);
		if (!at)
			return -1;
		/* It only grows: past the last repository it is none (and cannot overflow). */
		if ((v = v * 32 + (uint64_t)(at - b32)) >= (uint64_t)p->n_repos)
			return -1;
	}
	return (long)v;
}

/* The compact JSON of v, which it takes. */
static char *dump(json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	return s;
}

static int cmp_record(const void *a, const void *b)
{
	return strcmp(((const struct fakepds_record *)a)->path, ((const struct fakepds_record *)b)->path);
}

/* Record i of repository r: a like, a post or a follow, as DAG-CBOR (keys in canonical order)
 * and as the JSON expected. */
static void make_record(const struct fakepds *p, long r, long i, struct fakepds_record *rec)
{
	char rkey[14], when[32], text[96];
	const char *other = p->repos[(r * 7919 + i) % p->n_repos].did;
	tid(((uint64_t)1700000000000000 + (uint64_t)i * 1000) << 10 | (uint64_t)(r & 1023), rkey);
	snprintf(when, sizeof(when), "2026-11-27T%02ld:%02ld:%02ld.%03ldZ", i / 3600 % 24, i / 60 % 60, i % 60, r % 1000);
	struct atkv_buf *b = &rec->cbor;
	cb_head(b, 5, 3);
	switch (i % 5) {
	case 0: case 1: case 2: {
		char uri[128];
		const char *cid = "bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
		snprintf(rec->path, sizeof(rec->path), "app.bsky.feed.like/%s", rkey);
		snprintf(uri, sizeof(uri), "at://%s/app.bsky.feed.post/%s", other, rkey);
		cb_text(b, "$type");
		cb_text(b, "app.bsky.feed.like");
		cb_text(b, "subject");
		cb_head(b, 5, 2);
		cb_text(b, "cid");
		cb_text(b, cid);
		cb_text(b, "uri");
		cb_text(b, uri);
		rec->json = dump(json_pack("{s:s, s:{s:s, s:s}, s:s}", "$type", "app.bsky.feed.like", "subject", "cid", cid,
		                           "uri", uri, "createdAt", when));
		break;
	}
	case 3:
		snprintf(rec->path, sizeof(rec->path), "app.bsky.feed.post/%s", rkey);
		snprintf(text, sizeof(text), "post %ld of account %ld, written for the backfill tests", i, r);
		cb_text(b, "text");
		cb_text(b, text);
		cb_text(b, "$type");
		cb_text(b, "app.bsky.feed.post");
		rec->json = dump(json_pack("{s:s, s:s, s:s}", "text", text, "$type", "app.bsky.feed.post", "createdAt", when));
		break;
	default:
		snprintf(rec->path, sizeof(rec->path), "app.bsky.graph.follow/%s", rkey);
		cb_text(b, "$type");
		cb_text(b, "app.bsky.graph.follow");
		cb_text(b, "subject");
		cb_text(b, other);
		rec->json = dump(json_pack("{s:s, s:s, s:s}", "$type", "app.bsky.graph.follow", "subject", other, "createdAt",
		                           when));
	}
	cb_text(b, "createdAt");
	cb_text(b, when);
}

static void make_repos(struct fakepds *p, long total)
{
	struct atkv_sha256 *h = atkv_sha256_new();
	p->repos = calloc((size_t)p->n_repos, sizeof(*p->repos));
	for (long r = 0; r < p->n_repos; r++) {
		char t[14];
		tid((uint64_t)r, t);
		snprintf(p->repos[r].did, sizeof(p->repos[r].did), "did:plc:fakepds2222%s", t);
		tid(((uint64_t)1764000000000000 + (uint64_t)r) << 10, p->repos[r].rev);
	}
	for (long r = 0; r < p->n_repos; r++) {
		struct fakepds_repo *rp = &p->repos[r];
		rp->n = (size_t)(total / p->n_repos + (r < total % p->n_repos));
		rp->records = calloc(rp->n ? rp->n : 1, sizeof(*rp->records));
		for (size_t i = 0; i < rp->n; i++)
			make_record(p, r, (long)i, &rp->records[i]);
		qsort(rp->records, rp->n, sizeof(*rp->records), cmp_record);
		const char **paths = malloc((rp->n ? rp->n : 1) * sizeof(*paths));
		struct atkv_buf *cbor = malloc((rp->n ? rp->n : 1) * sizeof(*cbor));
		for (size_t i = 0; i < rp->n; i++) {
			paths[i] = rp->records[i].path;
			cbor[i] = rp->records[i].cbor;
		}
		rb_repo_car(h, rp->did, rp->rev, paths, cbor, rp->n, &rp->car);
		p->car_bytes += rp->car.len;
		free(paths);
		free(cbor);
	}
	atkv_sha256_free(h);
}

static bool list_page(struct fakepds *p, int fd, const char *path)
{
	const char *c = strstr(path, "cursor="), *l = strstr(path, "limit=");
	long from = c ? atol(c + 7) : 0, limit = l ? atol(l + 6) : 500;
	if (p->page_limit && limit > p->page_limit)
		limit = p->page_limit;
	if (__atomic_fetch_add(&p->list_requests, 1, __ATOMIC_SEQ_CST) == 0 && c)
		snprintf(p->first_cursor, sizeof(p->first_cursor), "%ld", from);
	struct atkv_buf page = ATKV_BUF_INIT;
	atkv_buf_puts(&page, "{\"repos\":[");
	long r = from;
	for (; r >= 0 && r < p->n_repos && r < from + limit; r++) {
		char one[192];
		int n = snprintf(one, sizeof(one),
		                 "%s{\"did\":\"%s\",\"head\":\"bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454\","
		                 "\"rev\":\"%s\",\"active\":true}",
		                 r > from ? "," : "", p->repos[r].did, p->repos[r].rev);
		atkv_buf_append(&page, one, (size_t)n);
	}
	char tail[64];
	int n = r < p->n_repos ? snprintf(tail, sizeof(tail), "],\"cursor\":\"%ld\"}", r) : snprintf(tail, sizeof(tail), "]}");
	atkv_buf_append(&page, tail, (size_t)n);
	bool ok = httpserver_reply(fd, 200, "Content-Type: application/json\r\n", page.data, page.len);
	atkv_buf_free(&page);
	return ok;
}

/* Read-only but for the counters, so any number of threads may serve. */
static bool serve(int fd, const char *path, void *arg)
{
	struct fakepds *p = arg;
	const char *list = "/xrpc/com.atproto.sync.listRepos", *get = "/xrpc/com.atproto.sync.getRepo?did=";
	if (!strncmp(path, "/did:plc:", 9)) {
		char doc[512];
		int n = snprintf(doc, sizeof(doc),
		                 "{\"id\":\"%s\",\"service\":[{\"id\":\"#atproto_pds\",\"type\":\"AtprotoPersonalDataServer\","
		                 "\"serviceEndpoint\":\"%s\"}]}",
		                 path + 1, p->url);
		return httpserver_reply(fd, did_index(p, path + 1) >= 0 ? 200 : 404, "", doc, (size_t)n);
	}
	if (!strncmp(path, list, strlen(list)))
		return list_page(p, fd, path);
	if (!strncmp(path, get, strlen(get))) {
		long r = did_index(p, path + strlen(get));
		__atomic_add_fetch(&p->get_requests, 1, __ATOMIC_SEQ_CST);
		if (r < 0)
			return httpserver_reply(fd, 400, "", "{\"error\":\"RepoNotFound\"}", 24);
		if (r == p->busy_repo && __atomic_fetch_sub(&p->busy_times, 1, __ATOMIC_SEQ_CST) > 0)
			return httpserver_reply(fd, 429, "Retry-After: 1\r\n", "{\"error\":\"RateLimitExceeded\"}", 29);
		if (p->delay_ms)
			usleep((useconds_t)p->delay_ms * 1000);
		return httpserver_reply(fd, 200, "Content-Type: application/vnd.ipld.car\r\n", p->repos[r].car.data,
		                        p->repos[r].car.len);
	}
	return httpserver_reply(fd, 404, "", "", 0);
}

struct fakepds *fakepds_start(long repos, long records, int threads)
{
	struct fakepds *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->n_repos = repos;
	p->busy_repo = -1;
	make_repos(p, records);
	if (!(p->http = httpserver_start_threads(serve, p, &p->port, threads))) {
		fakepds_stop(p);
		return NULL;
	}
	snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%d", p->port);
	return p;
}

void fakepds_stop(struct fakepds *p)
{
	if (!p)
		return;
	httpserver_stop(p->http);
	for (long r = 0; r < p->n_repos; r++) {
		for (size_t i = 0; i < p->repos[r].n; i++) {
			atkv_buf_free(&p->repos[r].records[i].cbor);
			free(p->repos[r].records[i].json);
		}
		free(p->repos[r].records);
		atkv_buf_free(&p->repos[r].car);
	}
	free(p->repos);
	free(p);
}

void fakepds_key(const struct fakepds_repo *rp, const struct fakepds_record *r, char *key, size_t key_n)
{
	const char *slash = strchr(r->path, '/');
	atkv_key_build(key, key_n, rp->did, strlen(rp->did), r->path, (size_t)(slash - r->path), slash + 1,
	               strlen(slash + 1));
}

long fakepds_wrong_in_store(const struct fakepds *p, jsCtx *js)
{
	long wrong = 0;
	for (long r = 0; r < p->n_repos; r++)
		for (size_t i = 0; i < p->repos[r].n; i++) {
			const struct fakepds_record *rec = &p->repos[r].records[i];
			char key[ATKV_KEY_MAX + 1];
			fakepds_key(&p->repos[r], rec, key, sizeof(key));
			natsMsg *m = kv_last_msg(js, "record", key);
			const char *rev = NULL;
			if (m)
				natsMsgHeader_Get(m, "Atkv-Rev", &rev);
			json_t *got = m ? json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, NULL) : NULL;
			json_t *want = json_loads(rec->json, 0, NULL);
			if ((!json_equal(got, want) || !rev || strcmp(rev, p->repos[r].rev)) && wrong++ < 3)
				printf("# %s %s: %s\n", p->repos[r].did, rec->path, !m ? "missing" : "differs");
			json_decref(got);
			json_decref(want);
			natsMsg_Destroy(m);
		}
	return wrong;
}
