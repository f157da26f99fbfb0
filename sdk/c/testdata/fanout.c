/*
 * A fan-out in C, for sdk/c/fanout_test.go, run on a real node. A request
 * "fanout TARGET BODY" is deferred (weft_defer), BODY is sent to TARGET on
 * its behalf with the token as the request's context, and when that
 * answer comes back through weft_await the deferred request is answered
 * with "fanned in: " and the answer's body (weft_respond_deferred). Any
 * other request is answered at once with its own body. What the page
 * says fails (weft_respond after weft_defer, a second
 * weft_respond_deferred) is checked, and logged at error level if it
 * does not.
 */
#include "weft.h"

WEFT_ABI_V2;

static int answer_later(int64_t token, const char *prefix, weft_bytes rest)
{
	weft_buf out = {0};
	int rc = weft_buf_append(&out, prefix, strlen(prefix));
	if (rc == 0)
		rc = weft_buf_append(&out, rest.ptr, rest.len);
	weft_response r = {0};
	r.body = weft_buf_bytes(&out);
	if (rc == 0)
		rc = weft_respond_deferred(token, &r);
	if (rc == 0 && weft_respond_deferred(token, &r) != WEFT_ENOREQUEST)
		weft_log(WEFT_LOG_ERROR, "fanout.c: a second weft_respond_deferred was not refused");
	weft_buf_free(&out);
	return rc;
}

/* fan_out defers the request being handled and sends arg's BODY to its
 * TARGET, the token in the context. */
static int fan_out(weft_bytes arg)
{
	const uint8_t *sp = (const uint8_t *)memchr(arg.ptr, ' ', arg.len);
	size_t tlen = sp ? (size_t)(sp - arg.ptr) : arg.len;
	int64_t token = weft_defer();
	if (token < 0)
		return (int)token;
	weft_response none = {0};
	if (weft_respond(&none) != WEFT_ENOREQUEST)
		weft_log(WEFT_LOG_ERROR, "fanout.c: weft_respond after weft_defer was not refused");

	weft_buf ctx = {0};
	weft_request q = {0};
	q.target = weft_bytes_of(arg.ptr, tlen);
	q.body = sp ? weft_bytes_of(sp + 1, arg.len - tlen - 1) : weft_str("");
	q.expects_response = 10000000000ull;
	int64_t rc = weft_put_u64(&ctx, (uint64_t)token);
	q.context = weft_buf_bytes(&ctx);
	if (rc == 0)
		rc = weft_send(&q);
	weft_buf_free(&ctx);
	if (rc < 0)
		return answer_later(token, "failed to send", weft_str(""));
	return 0;
}

/* fan_in answers the deferred request whose token the answer m brings
 * back in its context. */
static int fan_in(const weft_message *m)
{
	weft_reader r = weft_reader_of(m->context);
	int64_t token = (int64_t)weft_get_u64(&r);
	if (r.err || r.off != r.len)
		return WEFT_EINVAL;
	if (m->kind == WEFT_KIND_ERROR)
		return answer_later(token, "failed: ", m->error_detail);
	return answer_later(token, "fanned in: ", m->body);
}

WEFT_INIT
{
	weft_message m = {0};
	int rc;
	while ((rc = weft_await(&m)) == 0) {
		if (!weft_is_request(&m)) {
			rc = fan_in(&m);
		} else if (m.body.len >= 7 && memcmp(m.body.ptr, "fanout ", 7) == 0) {
			rc = fan_out(weft_bytes_of(m.body.ptr + 7, m.body.len - 7));
		} else if (weft_wants_response(&m)) {
			weft_response r = {0};
			r.body = m.body;
			rc = weft_respond(&r);
		}
		if (rc < 0 && rc != WEFT_ESTOPPED)
			weft_log(WEFT_LOG_ERROR, "fanout.c: a call failed");
	}
	weft_message_free(&m);
	return rc == WEFT_ESTOPPED ? 0 : 1;
}
