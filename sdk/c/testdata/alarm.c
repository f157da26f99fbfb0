/*
 * Durable timers in C, for sdk/c/timer_test.go, run on a real node with
 * the in-tree timer driver. A request "set ID MS COLLECTOR" sets timer ID
 * (weft_timer_set, data {"to":"COLLECTOR"}) and is answered with the id
 * the driver stored, or with the driver's refusal; a firing
 * (weft_is_timer_firing) is passed on to COLLECTOR, read from the
 * firing's data, as a request whose body is the firing.
 */
#include "weft.h"

WEFT_ABI_V1;

/* field finds "KEY":"VALUE" in the JSON text b and returns VALUE (no
 * escapes: what this guest writes). */
static weft_bytes field(weft_bytes b, const char *key)
{
	size_t k = strlen(key);
	for (size_t i = 0; i + k + 4 <= b.len; i++) {
		if (b.ptr[i] == '"' && memcmp(b.ptr + i + 1, key, k) == 0 && b.ptr[i + 1 + k] == '"' &&
		    b.ptr[i + 2 + k] == ':' && b.ptr[i + 3 + k] == '"') {
			const uint8_t *v = b.ptr + i + 4 + k;
			const uint8_t *end = (const uint8_t *)memchr(v, '"', (size_t)(b.ptr + b.len - v));
			if (end)
				return weft_bytes_of(v, (size_t)(end - v));
		}
	}
	return weft_str("");
}

static int set(weft_bytes arg)
{
	/* ID MS COLLECTOR */
	const uint8_t *s1 = (const uint8_t *)memchr(arg.ptr, ' ', arg.len);
	if (!s1)
		return WEFT_EINVAL;
	const uint8_t *s2 = (const uint8_t *)memchr(s1 + 1, ' ', (size_t)(arg.ptr + arg.len - s1 - 1));
	if (!s2)
		return WEFT_EINVAL;
	uint64_t ms = 0;
	for (const uint8_t *p = s1 + 1; p < s2; p++)
		ms = ms * 10 + (uint64_t)(*p - '0');
	weft_buf data = {0}, id = {0};
	int rc = weft_buf_append(&data, "{\"to\":\"", 7);
	if (rc == 0)
		rc = weft_buf_append(&data, s2 + 1, (size_t)(arg.ptr + arg.len - s2 - 1));
	if (rc == 0)
		rc = weft_buf_append(&data, "\"}", 2);
	if (rc == 0) {
		rc = weft_timer_set(weft_bytes_of(arg.ptr, (size_t)(s1 - arg.ptr)), ms * 1000000ull, weft_buf_bytes(&data), &id);
		if (rc == 0 || rc == WEFT_EINVAL) {
			weft_response r = {0};
			r.body = weft_buf_bytes(&id);
			rc = weft_respond(&r);
		}
	}
	weft_buf_free(&data);
	weft_buf_free(&id);
	return rc;
}

static int pass_on(const weft_message *m)
{
	weft_request q = {0};
	q.target = field(m->body, "to");
	q.body = m->body;
	return (int)(weft_send(&q) < 0 ? WEFT_EINVAL : 0);
}

WEFT_INIT
{
	weft_message m = {0};
	int rc;
	while ((rc = weft_await(&m)) == 0) {
		if (weft_is_timer_firing(&m))
			rc = pass_on(&m);
		else if (m.body.len >= 4 && memcmp(m.body.ptr, "set ", 4) == 0)
			rc = set(weft_bytes_of(m.body.ptr + 4, m.body.len - 4));
		if (rc < 0 && rc != WEFT_ESTOPPED)
			weft_log(WEFT_LOG_ERROR, "alarm.c: a call failed");
	}
	weft_message_free(&m);
	return rc == WEFT_ESTOPPED ? 0 : 1;
}
