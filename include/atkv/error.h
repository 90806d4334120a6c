/* atkv/error.h — the error codes every atkv function returns: 0 for success, or one of these
 * negative values. atkv_strerror says what a code means; functions that can say more (which
 * option, which consumer) also fill a caller's `why` buffer. */
#ifndef ATKV_ERROR_H
#define ATKV_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum atkv_code {
	ATKV_OK = 0,
	ATKV_E_NOMEM = -1,          /* allocation failed */
	ATKV_E_TRUNCATED = -2,      /* input ends inside an item */
	ATKV_E_TRAILING = -3,       /* bytes left over after the last item */
	ATKV_E_VARINT = -4,         /* varint overflows 63 bits or is not minimal */
	ATKV_E_TOO_LARGE = -5,      /* a length or count beyond what the input or a limit allows */
	ATKV_E_CBOR_MALFORMED = -6, /* a byte sequence that is not CBOR at all */
	ATKV_E_CBOR_FLOAT = -7,     /* floats are not in the atproto data model */
	ATKV_E_CBOR_INDEFINITE = -8,/* indefinite-length items are not DAG-CBOR */
	ATKV_E_CBOR_KEY_TYPE = -9,  /* a map key that is not a text string */
	ATKV_E_CBOR_KEY_DUP = -10,  /* the same map key twice */
	ATKV_E_CBOR_KEY_ORDER = -11,/* map keys not in DAG-CBOR canonical order */
	ATKV_E_CBOR_TAG = -12,      /* a tag other than 42 (CID link) */
	ATKV_E_CBOR_SIMPLE = -13,   /* undefined or another simple value besides true/false/null */
	ATKV_E_CBOR_DEPTH = -14,    /* nesting deeper than ATKV_CBOR_MAX_DEPTH */
	ATKV_E_CBOR_NONMINIMAL = -15, /* an integer or length not in its shortest encoding */
	ATKV_E_CBOR_INT_RANGE = -16,/* an integer outside the signed 64-bit range */
	ATKV_E_UTF8 = -17,          /* text that is not valid UTF-8 */
	ATKV_E_CID = -18,           /* bytes that are not a CID atproto accepts */
	ATKV_E_CID_MISMATCH = -19,  /* a block whose hash differs from its CID */
	ATKV_E_BASE32 = -20,        /* text that is not lowercase unpadded base32 */
	ATKV_E_CAR_HEADER = -21,    /* a CAR header that is not {version: 1, roots: [...]} */
	ATKV_E_BLOCK_MISSING = -22, /* a CID that names no block in the CAR */
	ATKV_E_FRAME = -23,         /* a frame whose header or body breaks the event-stream schema */
	ATKV_E_SYNTAX = -24,        /* an identifier (DID, NSID, record key, ...) that is not valid */
	ATKV_E_KEY = -25,           /* a KV key that is not in the atkv key scheme */
	ATKV_E_BUFFER = -26,        /* the caller's output buffer is too small */
	ATKV_E_BASE64 = -27,        /* text that is not base64 */
	ATKV_E_NATS = -28,          /* NATS refused or failed an operation */
	ATKV_E_WEBSOCKET = -29,     /* a WebSocket handshake or frame that breaks RFC 6455 */
	ATKV_E_ARG = -30,           /* an argument or option the function cannot use */
	ATKV_E_TIMEOUT = -31,       /* nothing within the time given */
	ATKV_E_DB = -32,            /* the database (SQLite) failed */
	ATKV_E_STOPPED = -33,       /* stopped at the caller's request before finishing */
	ATKV_E_MST = -34,           /* a repository tree node that breaks the MST rules */
	ATKV_E_SIGNATURE = -35,     /* a signature that does not verify, or a key that is no key */
};

/* A short fixed description of code; never NULL. */
const char *atkv_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif
