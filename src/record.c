/* record.c — records by AT-URI, and the messages that write them (see atkv/record.h). */
#include <atkv/record.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int atkv_record_uri_parse(const char *uri, size_t n, struct atkv_record_uri *out)
{
	struct atkv_aturi p;
	if (!atkv_syntax_aturi(uri, n, &p) || !p.collection_n || !p.rkey_n ||
	    !atkv_syntax_did(p.authority, p.authority_n))
		return ATKV_E_SYNTAX;
	memcpy(out->did, p.authority, p.authority_n);
	out->did[p.authority_n] = '\0';
	memcpy(out->collection, p.collection, p.collection_n);
	out->collection[p.collection_n] = '\0';
	memcpy(out->rkey, p.rkey, p.rkey_n);
	out->rkey[p.rkey_n] = '\0';
	return 0;
}

long atkv_record_uri_build(char *out, size_t cap, const char *did, const char *collection, const char *rkey)
{
	int n = snprintf(out, cap, "at://%s/%s/%s", did, collection, rkey);
	return n < 0 || (size_t)n >= cap ? ATKV_E_BUFFER : n;
}

/* Sets header name to v[0..n) unless v is NULL, adding its wire size to *size. */
static int set_header(natsMsg *m, const char *name, const char *v, size_t n, size_t *size)
{
	char text[256];
	if (!v)
		return 0;
	if (n >= sizeof(text))
		return ATKV_E_TOO_LARGE;
	memcpy(text, v, n);
	text[n] = '\0';
	*size += strlen(name) + 2 + n + 2;
	return natsMsgHeader_Set(m, name, text) == NATS_OK ? 0 : ATKV_E_NOMEM;
}

int atkv_record_msg(natsMsg **out, const char *bucket, const char *key, const void *value, size_t n, bool del,
                    const struct atkv_record_meta *meta, size_t *header_bytes)
{
	char subject[4 + 64 + ATKV_KEY_MAX + 2];
	int sn = snprintf(subject, sizeof(subject), "$KV.%s.%s", bucket, key);
	if (sn < 0 || (size_t)sn >= sizeof(subject) || n > INT32_MAX)
		return ATKV_E_TOO_LARGE;
	natsMsg *m = NULL;
	if (natsMsg_Create(&m, subject, NULL, del ? NULL : value, del ? 0 : (int)n) != NATS_OK)
		return ATKV_E_NOMEM;
	/* The header block as it goes on the wire: "NATS/1.0\r\n", "Name: value\r\n" each, "\r\n". */
	size_t size = 10 + 2;
	int rc = 0;
	char seq[24];
	if (meta && meta->seq >= 0) {
		int k = snprintf(seq, sizeof(seq), "%" PRId64, meta->seq);
		rc = set_header(m, "Atkv-Seq", seq, (size_t)k, &size);
	}
	if (!rc && del)
		rc = set_header(m, "KV-Operation", "DEL", 3, &size);
	if (!rc && meta && !(rc = set_header(m, "Atkv-Cid", meta->cid, meta->cid_n, &size)) &&
	    !(rc = set_header(m, "Atkv-Rev", meta->rev, meta->rev_n, &size)))
		rc = set_header(m, "Atkv-Time", meta->time, meta->time_n, &size);
	if (rc) {
		natsMsg_Destroy(m);
		return rc;
	}
	if (header_bytes)
		*header_bytes = size;
	*out = m;
	return 0;
}

static int write_sync(jsCtx *js, const char *uri, const char *json, size_t n, bool del,
                      const struct atkv_record_meta *meta, char *why, size_t why_n)
{
	struct atkv_record_uri u;
	char key[ATKV_KEY_MAX + 1];
	if (atkv_record_uri_parse(uri, strlen(uri), &u) ||
	    atkv_key_build(key, sizeof(key), u.did, strlen(u.did), u.collection, strlen(u.collection), u.rkey,
	                   strlen(u.rkey)) < 0) {
		snprintf(why, why_n, "not the AT-URI of a record (at://DID/COLLECTION/RKEY): %.200s", uri);
		return ATKV_E_SYNTAX;
	}
	natsMsg *m = NULL;
	int rc = atkv_record_msg(&m, ATKV_BUCKET_RECORD, key, json, n, del, meta, NULL);
	if (rc) {
		snprintf(why, why_n, "%s", atkv_strerror(rc));
		return rc;
	}
	jsPubAck *pa = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_PublishMsg(&pa, js, m, NULL, &jerr);
	natsMsg_Destroy(m);
	jsPubAck_Destroy(pa);
	if (s != NATS_OK) {
		snprintf(why, why_n, "%s (%s)", natsStatus_GetText(s), nats_GetLastError(NULL));
		return ATKV_E_NATS;
	}
	return 0;
}

int atkv_record_put(jsCtx *js, const char *uri, const char *json, size_t n, const struct atkv_record_meta *meta,
                    char *why, size_t why_n)
{
	return write_sync(js, uri, json, n, false, meta, why, why_n);
}

int atkv_record_delete(jsCtx *js, const char *uri, const struct atkv_record_meta *meta, char *why, size_t why_n)
{
	return write_sync(js, uri, NULL, 0, true, meta, why, why_n);
}
