/*
 * cprobe: the store probe in C, for procstore's tests and benchmarks. It
 * drives the store through sdk/c/weft.h's typed functions.
 *
 * Every request that waits for a response is answered:
 *   - an empty body: an empty body and metadata "ok" (the request is there
 *     to hand the probe the capabilities attached to it);
 *   - otherwise the body is an encoded store op (docs/abi.md, "The
 *     store"), done once when the metadata is empty, N times when it is a
 *     decimal N >= 1 (the last result answers). Success: body = the
 *     result (empty for an op without one), metadata "ok". Failure: an
 *     empty body and metadata "error CODE DETAIL", CODE the ABI code in
 *     decimal, DETAIL the text of last_error.
 *
 * The op is decoded here and dispatched through the typed function of its
 * kind (weft_kv_get, weft_file_write, ...). An op that the typed function
 * could not express byte for byte (a field it does not take set, a
 * malformed encoding) goes to the store as it came (weft_store_raw), so
 * that the node, not the probe, answers it.
 */
#include "weft.h"

WEFT_ABI_V1;

/* uses_ lists, per op, the fields its typed function takes; anything else
 * set sends the op raw. */
enum { U_PKG = 1, U_NAME = 2, U_KEY = 4, U_VALUE = 8, U_OFFSET = 16, U_LENGTH = 32 };

static int expressible(const weft_store_op *op)
{
	int uses;
	uint8_t maxflags = 0;
	switch (op->op) {
	case WEFT_STORE_KV_OPEN:
	case WEFT_STORE_KV_DROP:
	case WEFT_STORE_DRIVE_OPEN:
	case WEFT_STORE_DRIVE_REMOVE:
		uses = U_PKG | U_NAME;
		break;
	case WEFT_STORE_KV_LIST:
	case WEFT_STORE_DRIVE_LIST:
		uses = U_PKG;
		break;
	case WEFT_STORE_KV_GET:
	case WEFT_STORE_KV_DELETE:
	case WEFT_STORE_DIR_LIST:
	case WEFT_STORE_STAT:
	case WEFT_STORE_MKDIR:
		uses = U_PKG | U_NAME | U_KEY;
		break;
	case WEFT_STORE_KV_SET:
	case WEFT_STORE_RENAME:
		uses = U_PKG | U_NAME | U_KEY | U_VALUE;
		break;
	case WEFT_STORE_KV_SCAN:
		uses = U_PKG | U_NAME | U_KEY | U_VALUE | U_LENGTH;
		break;
	case WEFT_STORE_KV_TX:
		uses = U_PKG | U_NAME | U_VALUE;
		break;
	case WEFT_STORE_FILE_WRITE:
		uses = U_PKG | U_NAME | U_KEY | U_VALUE | U_OFFSET;
		maxflags = 255; /* weft_file_write passes flags and offset through */
		break;
	case WEFT_STORE_FILE_READ:
		uses = U_PKG | U_NAME | U_KEY | U_OFFSET | U_LENGTH;
		maxflags = 255;
		break;
	case WEFT_STORE_REMOVE:
		uses = U_PKG | U_NAME | U_KEY;
		maxflags = 255;
		break;
	default:
		return 0;
	}
	return op->flags <= maxflags && (uses & U_NAME || op->name.len == 0) && (uses & U_KEY || op->key.len == 0) &&
	       (uses & U_VALUE || op->value.len == 0) && (uses & U_OFFSET || op->offset == 0) &&
	       (uses & U_LENGTH || op->length == 0);
}

/* run performs op (encoded as raw) once through its typed function,
 * leaving its result in out; the result's length or an error. */
static int32_t run(const weft_store_op *op, weft_bytes raw, weft_buf *out)
{
	weft_db db = {op->package, op->name};
	weft_drive d = {op->package, op->name};
	weft_entry e;
	int32_t rc;
	out->len = 0;
	switch (op->op) {
	case WEFT_STORE_KV_OPEN:
		return weft_kv_open(&db);
	case WEFT_STORE_KV_GET:
		return weft_kv_get(&db, op->key, out);
	case WEFT_STORE_KV_SET:
		return weft_kv_set(&db, op->key, op->value);
	case WEFT_STORE_KV_DELETE:
		return weft_kv_delete(&db, op->key);
	case WEFT_STORE_KV_SCAN: {
		rc = weft_kv_scan(&db, op->key, op->value, op->length, out);
		weft_kv_pairs ps;
		if (rc >= 0 && weft_kv_pairs_decode(weft_buf_bytes(out), &ps) < 0)
			return WEFT_EINVAL;
		return rc;
	}
	case WEFT_STORE_KV_TX:
		return weft_kv_tx(&db, op->value);
	case WEFT_STORE_KV_DROP:
		return weft_kv_drop(&db);
	case WEFT_STORE_KV_LIST:
	case WEFT_STORE_DRIVE_LIST: {
		rc = op->op == WEFT_STORE_KV_LIST ? weft_kv_list(op->package, out) : weft_drive_list(op->package, out);
		weft_names ns;
		if (rc >= 0 && weft_names_decode(weft_buf_bytes(out), &ns) < 0)
			return WEFT_EINVAL;
		return rc;
	}
	case WEFT_STORE_DRIVE_OPEN:
		return weft_drive_open(&d);
	case WEFT_STORE_DRIVE_REMOVE:
		return weft_drive_remove(&d);
	case WEFT_STORE_FILE_WRITE:
		return weft_file_write(&d, op->key, op->value, op->flags, op->offset);
	case WEFT_STORE_FILE_READ:
		return weft_file_read(&d, op->key, op->flags, op->offset, op->length, out);
	case WEFT_STORE_DIR_LIST: {
		rc = weft_dir_list(&d, op->key, out);
		weft_entries es;
		if (rc >= 0 && weft_entries_decode(weft_buf_bytes(out), &es) < 0)
			return WEFT_EINVAL;
		return rc;
	}
	case WEFT_STORE_STAT:
		return weft_stat(&d, op->key, out, &e);
	case WEFT_STORE_MKDIR:
		return weft_mkdir(&d, op->key);
	case WEFT_STORE_RENAME:
		return weft_rename(&d, op->key, op->value);
	case WEFT_STORE_REMOVE:
		return weft_remove(&d, op->key, op->flags);
	default:
		return weft_store_raw(raw.ptr, raw.len, out);
	}
}

/* repeats parses the metadata: "" is 1, a decimal N >= 1 is N; 0 when it
 * is neither. */
static uint32_t repeats(weft_bytes md)
{
	if (md.len == 0)
		return 1;
	if (md.len > 9)
		return 0;
	uint32_t n = 0;
	for (size_t i = 0; i < md.len; i++) {
		if (md.ptr[i] < '0' || md.ptr[i] > '9')
			return 0;
		n = n * 10 + (uint32_t)(md.ptr[i] - '0');
	}
	return n;
}

/* put_error writes "error CODE DETAIL" to b. */
static void put_error(weft_buf *b, int32_t code, weft_bytes detail)
{
	char digits[16];
	int n = 0;
	uint32_t v = code < 0 ? (uint32_t)(-(int64_t)code) : (uint32_t)code;
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	b->len = 0;
	weft_buf_append(b, "error ", 6);
	if (code < 0)
		weft_buf_append(b, "-", 1);
	while (n > 0)
		weft_buf_append(b, &digits[--n], 1);
	weft_buf_append(b, " ", 1);
	weft_buf_append(b, detail.ptr, detail.len);
}

WEFT_INIT
{
	weft_message m = {0};
	weft_buf out = {0}, meta = {0}, lasterr = {0};
	int rc;
	while ((rc = weft_await(&m)) == 0) {
		if (!weft_is_request(&m) || !weft_wants_response(&m))
			continue;
		weft_response r = {0};
		int32_t res = 0;
		out.len = 0;
		if (m.body.len > 0) {
			weft_store_op op;
			uint32_t n = repeats(m.metadata);
			int typed = weft_store_op_decode(&op, m.body.ptr, m.body.len) == 0 && expressible(&op);
			if (n == 0) {
				res = WEFT_EINVAL;
				lasterr.len = 0;
				weft_buf_append(&lasterr, "cprobe: metadata is not empty or a count >= 1", 45);
			}
			for (uint32_t i = 0; i < n && res >= 0; i++)
				res = typed ? run(&op, m.body, &out) : weft_store_raw(m.body.ptr, m.body.len, &out);
			if (res < 0 && n > 0 && weft_last_error(&lasterr) < 0)
				lasterr.len = 0;
		}
		if (res >= 0) {
			r.body = weft_buf_bytes(&out);
			r.metadata = weft_str("ok");
		} else {
			put_error(&meta, res, weft_buf_bytes(&lasterr));
			r.metadata = weft_buf_bytes(&meta);
		}
		if (weft_respond(&r) < 0)
			weft_log(WEFT_LOG_WARN, "cprobe: respond failed");
	}
	weft_message_free(&m);
	weft_buf_free(&out);
	weft_buf_free(&meta);
	weft_buf_free(&lasterr);
	return rc == WEFT_ESTOPPED ? 0 : 1;
}
