/* err.c — error codes of the decoding core: descriptions and formatting (see err.h). */
#include "err.h"

#include <stdio.h>

int atkv_fail(struct atkv_err *err, int code, size_t offset, const char *where)
{
	if (err) {
		err->code = code;
		err->offset = offset;
		err->where = where;
	}
	return code;
}

const char *atkv_strerror(int code)
{
	switch (code) {
	case ATKV_OK: return "success";
	case ATKV_E_NOMEM: return "out of memory";
	case ATKV_E_TRUNCATED: return "input truncated";
	case ATKV_E_TRAILING: return "trailing bytes after the end";
	case ATKV_E_VARINT: return "invalid varint";
	case ATKV_E_TOO_LARGE: return "length beyond the input or a limit";
	case ATKV_E_CBOR_MALFORMED: return "malformed CBOR";
	case ATKV_E_CBOR_FLOAT: return "CBOR float (not allowed in atproto data)";
	case ATKV_E_CBOR_INDEFINITE: return "CBOR indefinite length (not DAG-CBOR)";
	case ATKV_E_CBOR_KEY_TYPE: return "CBOR map key is not a text string";
	case ATKV_E_CBOR_KEY_DUP: return "CBOR map key repeated";
	case ATKV_E_CBOR_KEY_ORDER: return "CBOR map keys not in canonical order";
	case ATKV_E_CBOR_TAG: return "CBOR tag other than 42 (CID link)";
	case ATKV_E_CBOR_SIMPLE: return "CBOR undefined or simple value";
	case ATKV_E_CBOR_DEPTH: return "CBOR nested too deeply";
	case ATKV_E_CBOR_NONMINIMAL: return "CBOR integer or length not minimally encoded";
	case ATKV_E_CBOR_INT_RANGE: return "CBOR integer outside the signed 64-bit range";
	case ATKV_E_UTF8: return "invalid UTF-8 text";
	case ATKV_E_CID: return "invalid or unsupported CID";
	case ATKV_E_CID_MISMATCH: return "block hash does not match its CID";
	case ATKV_E_BASE32: return "invalid base32";
	case ATKV_E_CAR_HEADER: return "invalid CAR header";
	case ATKV_E_BLOCK_MISSING: return "block missing from CAR";
	case ATKV_E_FRAME: return "frame does not follow the event-stream schema";
	case ATKV_E_SYNTAX: return "invalid identifier syntax";
	case ATKV_E_KEY: return "not an atkv record key";
	case ATKV_E_BUFFER: return "output buffer too small";
	case ATKV_E_BASE64: return "invalid base64";
	case ATKV_E_NATS: return "NATS operation failed";
	case ATKV_E_WEBSOCKET: return "WebSocket protocol violation";
	case ATKV_E_ARG: return "invalid argument";
	case ATKV_E_TIMEOUT: return "timed out";
	case ATKV_E_DB: return "database error";
	case ATKV_E_STOPPED: return "stopped before finishing";
	case ATKV_E_MST: return "repository tree (MST) node breaks the MST rules";
	case ATKV_E_SIGNATURE: return "signature does not verify with the signing key";
	}
	return "unknown error";
}

char *atkv_err_format(const struct atkv_err *err, char *buf, size_t size)
{
	if (size == 0)
		return buf;
	snprintf(buf, size, "%s at offset %zu in %s", atkv_strerror(err->code), err->offset,
	         err->where ? err->where : "input");
	return buf;
}
