/*
 * cecho: the echo process in C. It answers every request that waits for a
 * response with the body it got, passing the request's blob on (inherit),
 * and ignores everything else. It stops when the node says so.
 */
#include "weft.h"

WEFT_ABI_V1;

WEFT_INIT
{
	weft_message m = {0};
	int rc;
	while ((rc = weft_await(&m)) == 0) {
		if (!weft_is_request(&m) || !weft_wants_response(&m))
			continue;
		weft_response r = {0};
		r.body = m.body;
		r.inherit = 1;
		if (weft_respond(&r) < 0)
			weft_log(WEFT_LOG_WARN, "cecho: respond failed");
	}
	weft_message_free(&m);
	return rc == WEFT_ESTOPPED ? 0 : 1;
}
