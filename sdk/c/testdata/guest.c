/*
 * The test guest of sdk/c/weft_test.go: each t_* export exercises a part
 * of weft.h against the test's fake "weft" host and reports what it saw
 * through the test-only import module "t".
 */
#include "weft.h"

__attribute__((import_module("t"), import_name("u64"))) void t_u64(const char *name, int32_t len, uint64_t v);
__attribute__((import_module("t"), import_name("bytes"))) void t_bytes_(const char *name, int32_t len, const uint8_t *p, int32_t n);

static void report_u64(const char *name, uint64_t v)
{
	t_u64(name, (int32_t)strlen(name), v);
}

static void report_bytes(const char *name, weft_bytes b)
{
	t_bytes_(name, (int32_t)strlen(name), b.ptr, (int32_t)b.len);
}

static void report_message(const weft_message *m)
{
	report_u64("kind", m->kind);
	report_u64("flags", m->flags);
	report_u64("error_kind", m->error_kind);
	report_u64("id", m->id);
	report_u64("expects_response", m->expects_response);
	report_bytes("source", m->source);
	report_bytes("target", m->target);
	report_bytes("body", m->body);
	report_bytes("metadata", m->metadata);
	report_bytes("context", m->context);
	report_u64("caps", m->caps.count);
	weft_caps it = m->caps;
	weft_cap c;
	while (weft_caps_next(&it, &c)) {
		report_bytes("issuer", c.issuer);
		report_bytes("params", c.params);
	}
	report_bytes("blob_mime", m->blob_mime);
	report_u64("blob_len", m->blob_len);
	report_bytes("error_detail", m->error_detail);
}

WEFT_ABI_V1;
WEFT_ABI_V2;

WEFT_INIT
{
	return 0;
}

/* t_decode decodes p[0:len] (placed by the test) and reports it. */
WEFT_EXPORT("t_decode") int32_t t_decode(const uint8_t *p, int32_t len)
{
	weft_message m = {0};
	int rc = weft_message_decode(&m, p, (size_t)len);
	if (rc == 0)
		report_message(&m);
	return rc;
}

/* One message, reused across t_await calls so that its buffer grows. */
static weft_message current;

/* t_await awaits a message, reports it and its buffer's capacity. */
WEFT_EXPORT("t_await") int32_t t_await(void)
{
	int rc = weft_await(&current);
	if (rc < 0)
		return rc;
	report_message(&current);
	report_u64("buf_cap", current.buf.cap);
	return 0;
}

static const weft_cap two_caps[2] = {
	{{(const uint8_t *)"our@echo:echo:examples", 22}, {(const uint8_t *)"{\"read\":true}", 13}},
	{{(const uint8_t *)"n1@x:y:z", 8}, {(const uint8_t *)"null", 4}},
};

/* t_send sends a request with every field set, and a blob. */
WEFT_EXPORT("t_send") int64_t t_send(void)
{
	weft_request r = {0};
	r.target = weft_str("our@echo:echo:examples");
	r.body = weft_str("ping");
	r.metadata = weft_str("{\"m\":1}");
	r.context = weft_bytes_of("\x00\x01\x02", 3);
	r.caps = two_caps;
	r.ncaps = 2;
	r.expects_response = 5000000000ull;
	r.has_blob = 1;
	r.blob_mime = weft_str("text/plain");
	r.blob = weft_str("blob!");
	return weft_send(&r);
}

/* t_send_plain sends a bare request: target and body only, inheriting. */
WEFT_EXPORT("t_send_plain") int64_t t_send_plain(void)
{
	weft_request r = {0};
	r.target = weft_str("our@a:b:c");
	r.body = weft_str("x");
	r.inherit = 1;
	return weft_send(&r);
}

/* t_send_and_await sends a request, waits, and reports the answer. */
WEFT_EXPORT("t_send_and_await") int32_t t_send_and_await(void)
{
	weft_request r = {0};
	r.target = weft_str("our@slow:slow:examples");
	r.body = weft_str("q");
	r.expects_response = 1000;
	weft_message out = {0};
	int rc = weft_send_and_await(&r, &out);
	report_u64("rc", (uint64_t)(int64_t)rc);
	if (out.kind)
		report_message(&out);
	weft_message_free(&out);
	return rc;
}

/* t_respond answers the current request with caps and a blob. */
WEFT_EXPORT("t_respond") int32_t t_respond(void)
{
	weft_response r = {0};
	r.body = weft_str("pong");
	r.metadata = weft_str("meta");
	r.caps = two_caps;
	r.ncaps = 1;
	r.has_blob = 1;
	r.blob_mime = weft_str("application/octet-stream");
	r.blob = weft_bytes_of("\xff\x00", 2);
	return weft_respond(&r);
}

/* t_defer defers the request being handled: its token or an error. */
WEFT_EXPORT("t_defer") int64_t t_defer(void)
{
	return weft_defer();
}

/* t_respond_deferred answers the request token stands for as t_respond
 * answers the current one. */
WEFT_EXPORT("t_respond_deferred") int32_t t_respond_deferred(int64_t token)
{
	weft_response r = {0};
	r.body = weft_str("pong");
	r.metadata = weft_str("meta");
	r.caps = two_caps;
	r.ncaps = 1;
	r.has_blob = 1;
	r.blob_mime = weft_str("application/octet-stream");
	r.blob = weft_bytes_of("\xff\x00", 2);
	return weft_respond_deferred(token, &r);
}

/* t_blob reads the current message's blob and reports it. */
WEFT_EXPORT("t_blob") int32_t t_blob(void)
{
	weft_buf b = {0};
	int32_t n = weft_blob_read(&b);
	if (n >= 0)
		report_bytes("blob", weft_buf_bytes(&b));
	weft_buf_free(&b);
	return n;
}

/* t_state sets, gets, clears and gets the state again, reporting each. */
WEFT_EXPORT("t_state") int32_t t_state(void)
{
	weft_buf b = {0};
	report_u64("get0", (uint64_t)(int64_t)weft_state_get(&b));
	report_u64("set", (uint64_t)(int64_t)weft_state_set("counter=41\0!", 12));
	report_u64("get1", (uint64_t)(int64_t)weft_state_get(&b));
	report_bytes("state", weft_buf_bytes(&b));
	report_u64("clear", (uint64_t)(int64_t)weft_state_clear());
	report_u64("get2", (uint64_t)(int64_t)weft_state_get(&b));
	weft_buf_free(&b);
	return 0;
}

/* t_spawn spawns a child with a capability and reports its id. */
WEFT_EXPORT("t_spawn") int32_t t_spawn(void)
{
	weft_spawn_spec s = {0};
	s.name = weft_str("worker");
	s.wasm_path = weft_str("/child.wasm");
	s.on_exit = WEFT_ON_EXIT_RESTART;
	s.public_ = 1;
	s.caps = two_caps;
	s.ncaps = 2;
	weft_buf id = {0};
	int32_t n = weft_spawn(&s, &id);
	if (n >= 0)
		report_bytes("child", weft_buf_bytes(&id));
	weft_buf_free(&id);
	return n;
}

/* t_caps reads the held capabilities, reports them, drops the first. */
WEFT_EXPORT("t_caps") int32_t t_caps(void)
{
	weft_buf b = {0};
	weft_caps caps;
	int rc = weft_caps_read(&b, &caps);
	if (rc < 0) {
		weft_buf_free(&b);
		return rc;
	}
	report_u64("caps", caps.count);
	weft_cap c, first = {{0, 0}, {0, 0}};
	int i = 0;
	while (weft_caps_next(&caps, &c)) {
		if (i++ == 0)
			first = c;
		report_bytes("issuer", c.issuer);
		report_bytes("params", c.params);
	}
	rc = i > 0 ? weft_cap_drop(&first) : 0;
	weft_buf_free(&b);
	return rc;
}

/* t_misc reports weft_self and weft_last_error, and logs a line. */
WEFT_EXPORT("t_misc") int32_t t_misc(void)
{
	weft_buf b = {0};
	int32_t n = weft_self(&b);
	report_u64("self_rc", (uint64_t)(int64_t)n);
	report_bytes("self", weft_buf_bytes(&b));
	n = weft_last_error(&b);
	report_u64("last_error_rc", (uint64_t)(int64_t)n);
	report_bytes("last_error", weft_buf_bytes(&b));
	weft_buf_free(&b);
	weft_log(WEFT_LOG_WARN, "careful: no formatting");
	return 0;
}

/* ------------------------------------------------------------------------ */
/* The store.                                                                */

/* report_rc reports a result code under name. */
static void report_rc(const char *name, int64_t rc)
{
	report_u64(name, (uint64_t)rc);
}

/* t_store_ops calls every typed store function once, in the order of
 * docs/abi.md's op table, reporting each result code and each result. One
 * result buffer serves them all. */
WEFT_EXPORT("t_store_ops") int32_t t_store_ops(void)
{
	weft_db own = weft_db_of(NULL, "notes");
	weft_db other = weft_db_of("chat:weft.os", "rooms");
	weft_drive dr = weft_drive_of("", "media");
	weft_drive odr = weft_drive_of("pics:alice", "photos");
	weft_buf out = {0}, tx = {0};
	weft_entry e;
	memset(&e, 0, sizeof e);

	report_rc("kv_open", weft_kv_open(&own));
	report_rc("kv_get", weft_kv_get(&other, weft_bytes_of("k\x00" "1", 3), &out));
	report_bytes("value", weft_buf_bytes(&out));
	report_rc("kv_set", weft_kv_set(&own, weft_str("k"), weft_bytes_of("v\x00", 2)));
	report_rc("kv_delete", weft_kv_delete(&own, weft_str("gone")));
	report_rc("kv_scan", weft_kv_scan(&other, weft_str("user/"), weft_str("user/7"), 10, &out));
	report_bytes("pairs", weft_buf_bytes(&out));
	int rc = weft_kv_tx_init(&tx);
	if (rc == 0) rc = weft_kv_tx_set(&tx, weft_str("a"), weft_str("1"));
	if (rc == 0) rc = weft_kv_tx_delete(&tx, weft_str("bb"));
	if (rc == 0) rc = weft_kv_tx_set(&tx, weft_str("c"), weft_bytes_of(NULL, 0));
	report_rc("tx_build", rc);
	report_rc("kv_tx", weft_kv_tx(&own, weft_buf_bytes(&tx)));
	report_rc("kv_drop", weft_kv_drop(&own));
	report_rc("kv_list", weft_kv_list(weft_str(""), &out));
	report_bytes("names", weft_buf_bytes(&out));
	report_rc("drive_open", weft_drive_open(&dr));
	report_rc("drive_list", weft_drive_list(weft_str(NULL), &out));
	report_bytes("names", weft_buf_bytes(&out));
	report_rc("drive_remove", weft_drive_remove(&dr));
	report_rc("write_whole", weft_file_write(&dr, weft_str("a/b.txt"), weft_str("hello"), WEFT_WRITE_WHOLE, 0));
	report_rc("write_append", weft_file_write(&odr, weft_str("log"), weft_str("+"), WEFT_WRITE_APPEND, 0));
	report_rc("write_at", weft_file_write(&dr, weft_str("f"), weft_str("xy"), WEFT_WRITE_AT, 0x0102030405ull));
	report_rc("read_whole", weft_file_read(&dr, weft_str("a/b.txt"), WEFT_READ_WHOLE, 0, 0, &out));
	report_bytes("data", weft_buf_bytes(&out));
	report_rc("read_range", weft_file_read(&odr, weft_str("f"), WEFT_READ_RANGE, 7, 4096, &out));
	report_bytes("data", weft_buf_bytes(&out));
	report_rc("dir_list", weft_dir_list(&dr, weft_str("/"), &out));
	report_bytes("entries", weft_buf_bytes(&out));
	report_rc("stat", weft_stat(&dr, weft_str("a"), &out, &e));
	report_bytes("entry", weft_buf_bytes(&out));
	report_bytes("stat_name", e.name);
	report_u64("stat_dir", (uint64_t)e.dir);
	report_u64("stat_size", e.size);
	report_u64("stat_mtime", (uint64_t)e.mtime);
	report_rc("mkdir", weft_mkdir(&dr, weft_str("x/y")));
	report_rc("rename", weft_rename(&dr, weft_str("x/y"), weft_str("z")));
	report_rc("remove", weft_remove(&dr, weft_str("a/b.txt"), WEFT_REMOVE_ONE));
	report_rc("remove_all", weft_remove(&odr, weft_str("x"), WEFT_REMOVE_RECURSIVE));
	weft_buf_free(&out);
	weft_buf_free(&tx);
	return 0;
}

/* One result buffer, kept across t_kv_get calls so that it grows. */
static weft_buf kv_value;

/* t_kv_get gets key "k" of database "d" into kv_value; it reports the
 * result code, the value and kv_value's capacity. */
WEFT_EXPORT("t_kv_get") int32_t t_kv_get(void)
{
	weft_db db = weft_db_of(NULL, "d");
	int32_t n = weft_kv_get(&db, weft_str("k"), &kv_value);
	report_rc("rc", n);
	report_bytes("value", weft_buf_bytes(&kv_value));
	report_u64("cap", kv_value.cap);
	return n;
}

/* t_store_null performs kv_set with no result buffer. */
WEFT_EXPORT("t_store_null") int32_t t_store_null(void)
{
	weft_store_op op = {0};
	op.op = WEFT_STORE_KV_SET;
	op.name = weft_str("d");
	op.key = weft_str("k");
	op.value = weft_str("v");
	return weft_store(&op, NULL);
}

/* t_decode_store_op decodes a store op and reports its fields. */
WEFT_EXPORT("t_decode_store_op") int32_t t_decode_store_op(const uint8_t *p, int32_t len)
{
	weft_store_op op;
	int rc = weft_store_op_decode(&op, p, (size_t)len);
	if (rc < 0)
		return rc;
	report_u64("op", op.op);
	report_u64("flags", op.flags);
	report_bytes("package", op.package);
	report_bytes("name", op.name);
	report_bytes("key", op.key);
	report_bytes("value", op.value);
	report_u64("offset", op.offset);
	report_u64("length", op.length);
	return 0;
}

/* t_decode_pairs decodes a kv_scan result and reports its pairs. */
WEFT_EXPORT("t_decode_pairs") int32_t t_decode_pairs(const uint8_t *p, int32_t len)
{
	weft_kv_pairs ps;
	int rc = weft_kv_pairs_decode(weft_bytes_of(p, (size_t)len), &ps);
	if (rc < 0)
		return rc;
	report_u64("count", ps.count);
	weft_bytes k, v;
	while (weft_kv_pairs_next(&ps, &k, &v)) {
		report_bytes("key", k);
		report_bytes("value", v);
	}
	report_u64("more", (uint64_t)ps.more);
	return 0;
}

static void report_entry(const weft_entry *e)
{
	report_bytes("name", e->name);
	report_u64("dir", (uint64_t)e->dir);
	report_u64("size", e->size);
	report_u64("mtime", (uint64_t)e->mtime);
}

/* t_decode_entries decodes a dir_list result and reports its entries. */
WEFT_EXPORT("t_decode_entries") int32_t t_decode_entries(const uint8_t *p, int32_t len)
{
	weft_entries es;
	int rc = weft_entries_decode(weft_bytes_of(p, (size_t)len), &es);
	if (rc < 0)
		return rc;
	report_u64("count", es.count);
	weft_entry e;
	while (weft_entries_next(&es, &e))
		report_entry(&e);
	return 0;
}

/* t_decode_entry decodes a stat result and reports it. */
WEFT_EXPORT("t_decode_entry") int32_t t_decode_entry(const uint8_t *p, int32_t len)
{
	weft_entry e;
	int rc = weft_entry_decode(weft_bytes_of(p, (size_t)len), &e);
	if (rc < 0)
		return rc;
	report_entry(&e);
	return 0;
}

/* t_decode_names decodes a kv_list or drive_list result and reports it. */
WEFT_EXPORT("t_decode_names") int32_t t_decode_names(const uint8_t *p, int32_t len)
{
	weft_names ns;
	int rc = weft_names_decode(weft_bytes_of(p, (size_t)len), &ns);
	if (rc < 0)
		return rc;
	report_u64("count", ns.count);
	weft_bytes n;
	while (weft_names_next(&ns, &n))
		report_bytes("name", n);
	return 0;
}

/* t_store_caps reports the store capabilities the helpers make, and the
 * codes of refused ones. */
WEFT_EXPORT("t_store_caps") int32_t t_store_caps(void)
{
	weft_buf params = {0};
	weft_cap c = {{0, 0}, {0, 0}};
	weft_db own = weft_db_of("", "notes"), other = weft_db_of("chat:weft.os", "rooms");
	weft_drive dr = weft_drive_of(NULL, "media"), odr = weft_drive_of("pics:alice", "photos");
	weft_db bad = weft_db_of("", "a\"b");
	report_rc("kv_own", weft_kv_cap(&c, &params, &own, WEFT_CAP_READ));
	report_bytes("issuer", c.issuer);
	report_bytes("params", c.params);
	report_rc("kv_other", weft_kv_cap(&c, &params, &other, WEFT_CAP_WRITE));
	report_bytes("issuer", c.issuer);
	report_bytes("params", c.params);
	report_rc("drive_own", weft_drive_cap(&c, &params, &dr, WEFT_CAP_WRITE));
	report_bytes("issuer", c.issuer);
	report_bytes("params", c.params);
	report_rc("drive_other", weft_drive_cap(&c, &params, &odr, WEFT_CAP_READ));
	report_bytes("issuer", c.issuer);
	report_bytes("params", c.params);
	report_rc("bad_kind", weft_kv_cap(&c, &params, &own, "admin"));
	report_rc("bad_name", weft_kv_cap(&c, &params, &bad, WEFT_CAP_READ));
	report_u64("params_len", params.len);
	weft_buf_free(&params);
	return 0;
}
