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
