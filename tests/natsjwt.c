/* natsjwt.c — a test helper, not a test: makes what `nsc` would for a nats-server in operator
 * mode, so tests/test-natsauth.sh can try --creds with no nsc and no network. Ed25519 NKeys
 * (OpenSSL) for an operator, its system account, an account and its user, and a stranger account
 * the server does not know with a user of its own; JWTs signed the NATS v2 way (nats-io/jwt v2:
 * base64url without padding of header and claims, the issuer's Ed25519 signature of both).
 *
 * Usage: natsjwt DIR. Writes DIR/operator.conf (the server's operator, system account and
 * memory resolver, to include beside a jetstream block), DIR/user.creds and DIR/stranger.creds.
 * Exit 0, or 1 with one line on stderr. */
#include "base32.h"
#include "base64.h"
#include "nkey.h"

#include <ctype.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* NKey prefix bytes (nats-io/nkeys): the letter's base32 value in the top five bits. */
#define PREFIX_SEED (18u << 3)     /* 'S' */
#define PREFIX_OPERATOR (14u << 3) /* 'O' */
#define PREFIX_ACCOUNT 0u          /* 'A' */
#define PREFIX_USER (20u << 3)     /* 'U' */

#define PUBLIC_LEN 56 /* base32 of 1 + 32 + 2 bytes */
#define SEED_LEN 58   /* base32 of 2 + 32 + 2 bytes */
#define JWT_MAX 4096

/* One NKey pair: the OpenSSL key that signs, and both texts. */
struct nkey {
	EVP_PKEY *pkey;
	char pub[PUBLIC_LEN + 1];
	char seed[SEED_LEN + 1];
};

/* The NKey text of prefix[0..np) and 32 key bytes: upper-case base32 with the checksum
 * (CRC-16/XMODEM, little-endian) after them. out holds ATKV_BASE32_LEN(np + 34) + 1 bytes. */
static void nkey_text(const uint8_t *prefix, size_t np, const uint8_t key[32], char *out)
{
	uint8_t raw[2 + 32 + 2];
	memcpy(raw, prefix, np);
	memcpy(raw + np, key, 32);
	uint16_t c = atkv_nkey_crc16(raw, np + 32);
	raw[np + 32] = (uint8_t)c;
	raw[np + 33] = (uint8_t)(c >> 8);
	atkv_base32_encode(raw, np + 34, out);
	for (char *p = out; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	OPENSSL_cleanse(raw, sizeof(raw));
}

/* Makes a random key pair of the type prefix (PREFIX_OPERATOR, ...). Returns 0 or -1. */
static int nkey_make(struct nkey *k, uint8_t type)
{
	uint8_t seed[32], pub[32];
	size_t pub_n = sizeof(pub);
	int rc = -1;
	k->pkey = NULL;
	if (RAND_bytes(seed, sizeof(seed)) != 1)
		goto out;
	k->pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
	if (!k->pkey || EVP_PKEY_get_raw_public_key(k->pkey, pub, &pub_n) != 1 || pub_n != sizeof(pub))
		goto out;
	nkey_text(&type, 1, pub, k->pub);
	/* A seed's two prefix bytes pack 'S' and the type's five bits together. */
	uint8_t sp[2] = { (uint8_t)(PREFIX_SEED | type >> 5), (uint8_t)((type & 31) << 3) };
	nkey_text(sp, 2, seed, k->seed);
	rc = 0;
out:
	OPENSSL_cleanse(seed, sizeof(seed));
	return rc;
}

static void nkey_free(struct nkey *k)
{
	EVP_PKEY_free(k->pkey);
	k->pkey = NULL;
	OPENSSL_cleanse(k->seed, sizeof(k->seed));
}

/* base64url without padding (RFC 7515's form, which JWTs use) of p[0..n), NUL-terminated, at out
 * (ATKV_BASE64_LEN(n) + 1 bytes). Returns the length. */
static size_t b64url(const void *p, size_t n, char *out)
{
	size_t len = atkv_base64_encode(p, n, out);
	for (size_t i = 0; i < len; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	out[len] = '\0';
	return len;
}

/* snprintf into out[0..cap), -1 when it does not fit. */
static int format(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int format(char *out, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(out, cap, fmt, ap);
	va_end(ap);
	return w < 0 || (size_t)w >= cap ? -1 : w;
}

/* A JWT for subject sub issued by issuer, its "nats" member the JSON object nats. The jti is
 * what nats-io/jwt puts there, base32 of SHA-512/256 of the standard claims without it; the
 * server does not check it, but a token that looks like nsc's is a fairer test. Returns 0 or -1. */
static int jwt_sign(const struct nkey *issuer, const char *sub, const char *name, const char *nats,
                    char out[JWT_MAX])
{
	char ids[512], jti[ATKV_BASE32_LEN(32) + 1], claims[2048], sig64[ATKV_BASE64_LEN(64) + 1];
	uint8_t digest[32], sig[64];
	unsigned digest_n = 0;
	size_t sig_n = sizeof(sig);
	long long iat = (long long)time(NULL);
	static const char header[] = "{\"typ\":\"JWT\",\"alg\":\"ed25519-nkey\"}";

	/* The order of Go's ClaimsData fields, which json.Marshal keeps. */
	if (format(ids, sizeof(ids), "{\"iat\":%lld,\"iss\":\"%s\",\"name\":\"%s\",\"sub\":\"%s\"}", iat,
	           issuer->pub, name, sub) < 0 ||
	    EVP_Digest(ids, strlen(ids), digest, &digest_n, EVP_sha512_256(), NULL) != 1 || digest_n != 32)
		return -1;
	atkv_base32_encode(digest, sizeof(digest), jti);
	for (char *p = jti; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	if (format(claims, sizeof(claims),
	           "{\"jti\":\"%s\",\"iat\":%lld,\"iss\":\"%s\",\"name\":\"%s\",\"sub\":\"%s\",\"nats\":%s}", jti, iat,
	           issuer->pub, name, sub, nats) < 0 ||
	    ATKV_BASE64_LEN(sizeof(header)) + ATKV_BASE64_LEN(strlen(claims)) + sizeof(sig64) + 3 > JWT_MAX)
		return -1;
	size_t len = b64url(header, sizeof(header) - 1, out);
	out[len++] = '.';
	len += b64url(claims, strlen(claims), out + len);

	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md && EVP_DigestSignInit(md, NULL, NULL, NULL, issuer->pkey) == 1 &&
	         EVP_DigestSign(md, sig, &sig_n, (const uint8_t *)out, len) == 1 && sig_n == sizeof(sig);
	EVP_MD_CTX_free(md);
	if (!ok)
		return -1;
	b64url(sig, sig_n, sig64);
	out[len++] = '.';
	strcpy(out + len, sig64);
	return 0;
}

/* Writes text to dir/name, readable by its owner only (it may hold a seed). Returns 0 or -1. */
static int write_file(const char *dir, const char *name, const char *text)
{
	char path[4096];
	if (format(path, sizeof(path), "%s/%s", dir, name) < 0)
		return -1;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	size_t n = strlen(text);
	ssize_t w = write(fd, text, n);
	return close(fd) == 0 && w == (ssize_t)n ? 0 : -1;
}

/* A creds file as nsc writes it: the user's JWT, then its seed, each between marker lines. */
static int write_creds(const char *dir, const char *name, const char *jwt, const struct nkey *user)
{
	char text[JWT_MAX + 512];
	int rc = format(text, sizeof(text),
	                "-----BEGIN NATS USER JWT-----\n%s\n------END NATS USER JWT------\n\n"
	                "************************* IMPORTANT *************************\n"
	                "NKEY Seed printed below can be used to sign and prove identity.\n"
	                "NKEYs are sensitive and should be treated as secrets.\n\n"
	                "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n\n"
	                "*************************************************************\n",
	                jwt, user->seed) < 0
	                 ? -1
	                 : write_file(dir, name, text);
	OPENSSL_cleanse(text, sizeof(text));
	return rc;
}

/* Every limit off, JetStream's included: the account the tests write their buckets in. */
static const char account_nats[] =
	"{\"limits\":{\"subs\":-1,\"data\":-1,\"payload\":-1,\"imports\":-1,\"exports\":-1,\"wildcards\":true,"
	"\"conn\":-1,\"leaf\":-1,\"mem_storage\":-1,\"disk_storage\":-1,\"streams\":-1,\"consumer\":-1},"
	"\"default_permissions\":{\"pub\":{},\"sub\":{}},\"type\":\"account\",\"version\":2}";
/* The system account may not have JetStream. */
static const char system_nats[] =
	"{\"limits\":{\"subs\":-1,\"data\":-1,\"payload\":-1,\"imports\":-1,\"exports\":-1,\"wildcards\":true,"
	"\"conn\":-1,\"leaf\":-1},\"default_permissions\":{\"pub\":{},\"sub\":{}},\"type\":\"account\",\"version\":2}";
static const char user_nats[] =
	"{\"pub\":{},\"sub\":{},\"subs\":-1,\"data\":-1,\"payload\":-1,\"type\":\"user\",\"version\":2}";

enum { OPERATOR, SYSTEM, ACCOUNT, USER, STRANGER, STRANGER_USER, NKEYS };

/* Makes the keys and JWTs and writes the three files; keys[] is freed by the caller. */
static const char *make(const char *dir, struct nkey keys[NKEYS])
{
	static const uint8_t types[NKEYS] = { PREFIX_OPERATOR, PREFIX_ACCOUNT, PREFIX_ACCOUNT,
		                              PREFIX_USER,     PREFIX_ACCOUNT, PREFIX_USER };
	char op_nats[256], op[JWT_MAX], sys[JWT_MAX], acc[JWT_MAX], user[JWT_MAX], conf[4 * JWT_MAX];
	for (int i = 0; i < NKEYS; i++)
		if (nkey_make(&keys[i], types[i]))
			return "OpenSSL cannot make an Ed25519 key";
	if (format(op_nats, sizeof(op_nats), "{\"system_account\":\"%s\",\"type\":\"operator\",\"version\":2}",
	           keys[SYSTEM].pub) < 0 ||
	    jwt_sign(&keys[OPERATOR], keys[OPERATOR].pub, "atkv-test-operator", op_nats, op) ||
	    jwt_sign(&keys[OPERATOR], keys[SYSTEM].pub, "SYS", system_nats, sys) ||
	    jwt_sign(&keys[OPERATOR], keys[ACCOUNT].pub, "atkv", account_nats, acc))
		return "cannot sign the operator's and accounts' JWTs";
	if (format(conf, sizeof(conf),
	           "operator: %s\nsystem_account: %s\nresolver: MEMORY\nresolver_preload: {\n  %s: %s\n  %s: %s\n}\n", op,
	           keys[SYSTEM].pub, keys[SYSTEM].pub, sys, keys[ACCOUNT].pub, acc) < 0 ||
	    write_file(dir, "operator.conf", conf))
		return "cannot write operator.conf";
	if (jwt_sign(&keys[ACCOUNT], keys[USER].pub, "atkv-user", user_nats, user) ||
	    write_creds(dir, "user.creds", user, &keys[USER]))
		return "cannot sign or write user.creds";
	/* The stranger's account is not in the resolver: the server cannot trust its user. */
	if (jwt_sign(&keys[STRANGER], keys[STRANGER_USER].pub, "stranger", user_nats, user) ||
	    write_creds(dir, "stranger.creds", user, &keys[STRANGER_USER]))
		return "cannot sign or write stranger.creds";
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: natsjwt DIR\n");
		return 1;
	}
	struct nkey keys[NKEYS] = { 0 };
	const char *why = make(argv[1], keys);
	for (int i = 0; i < NKEYS; i++)
		nkey_free(&keys[i]);
	if (why) {
		fprintf(stderr, "natsjwt: %s (in %s)\n", why, argv[1]);
		return 1;
	}
	return 0;
}
