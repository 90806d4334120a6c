/* signedkeys.c — the signed capture's keys (see signedkeys.h). */
#include "signedkeys.h"
#include "diddoc.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

void signed_keys_read(struct signed_keys *k, const char *text, size_t n)
{
	k->n = 0;
	for (const char *line = text, *end; line < text + n && k->n < SIGNED_KEYS_MAX; line = end + 1) {
		end = memchr(line, '\n', (size_t)(text + n - line));
		if (!end)
			end = text + n;
		json_t *doc = json_loadb(line, (size_t)(end - line), 0, NULL);
		const char *did = json_string_value(json_object_get(doc, "id"));
		struct atkv_pubkey pk;
		char why[256];
		if (did && !atkv_diddoc_key(line, (size_t)(end - line), did, &pk, why, sizeof(why)) &&
		    !atkv_sigkey_load(&pk, &k->a[k->n].key)) {
			snprintf(k->a[k->n].did, sizeof(k->a[0].did), "%s", did);
			k->n++;
		}
		json_decref(doc);
	}
}

const struct atkv_sigkey *signed_keys_of(const struct signed_keys *k, const struct atkv_str *did)
{
	for (int i = 0; i < k->n; i++)
		if (strlen(k->a[i].did) == did->n && !memcmp(k->a[i].did, did->p, did->n))
			return k->a[i].key;
	return NULL;
}

void signed_keys_free(struct signed_keys *k)
{
	for (int i = 0; i < k->n; i++)
		atkv_sigkey_free(k->a[i].key);
	k->n = 0;
}
