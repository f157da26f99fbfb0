// A lean weft guest for the benchmarks: a server that echoes each
// request's body, and a client ("call ADDR N") that sends N requests with
// send_and_await. It does as little guest work per message as a real
// guest could: no copies beyond the ABI's, no command table. Built with
// -mbulk-memory so that copies are memory.copy, not byte loops (every loop
// back-edge pays wazero's termination check when the CPU guard is on).
#include <stdint.h>

#define WEFT(n) __attribute__((import_module("weft"), import_name(n)))
WEFT("await") int32_t w_await(void);
WEFT("message_read") int32_t w_message_read(void *p, int32_t cap);
WEFT("send_and_await") int32_t w_send_and_await(const void *p, int32_t len);
WEFT("respond") int32_t w_respond(const void *p, int32_t len);

__attribute__((export_name("weft_abi_v1"))) void weft_abi_v1(void) {}

static uint8_t in[64 << 10], out[64 << 10], req[512];

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint8_t *wr32(uint8_t *p, uint32_t v) { p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24; return p + 4; }

/* body returns the body of the encoded message in m. */
static const uint8_t *body(const uint8_t *m, uint32_t *n) {
	uint32_t off = 20;
	off += 4 + rd32(m + off); /* source */
	off += 4 + rd32(m + off); /* target */
	*n = rd32(m + off);
	return m + off + 4;
}

static int32_t respond(const uint8_t *b, uint32_t n) {
	uint8_t *p = out;
	p = wr32(p, 0); /* flags, reserved */
	p = wr32(p, n);
	__builtin_memcpy(p, b, n);
	p += n;
	p = wr32(p, 0); /* metadata */
	p = wr32(p, 0); /* caps */
	return w_respond(out, p - out);
}

static uint32_t parse_uint(const uint8_t *s, uint32_t n) {
	uint32_t v = 0;
	for (uint32_t i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++) v = v * 10 + (s[i] - '0');
	return v;
}

static void call(const uint8_t *a, uint32_t n) {
	/* a = "ADDR N" */
	uint32_t sp = 0;
	while (sp < n && a[sp] != ' ') sp++;
	uint32_t count = parse_uint(a + sp + 1, n - sp - 1);
	uint8_t *p = req;
	p = wr32(p, 0);
	p = wr32(p, 5000000000u % 4294967296u); /* 5 s, low word */
	p = wr32(p, 5000000000ull >> 32);
	p = wr32(p, sp);
	__builtin_memcpy(p, a, sp);
	p += sp;
	p = wr32(p, 5);
	__builtin_memcpy(p, "hello", 5);
	p += 5;
	p = wr32(p, 0); /* metadata */
	p = wr32(p, 0); /* context */
	p = wr32(p, 0); /* caps */
	int32_t len = p - req, r = 0;
	for (uint32_t i = 0; i < count; i++) {
		r = w_send_and_await(req, len);
		if (r < 0 || r > (int32_t)sizeof in) { respond((const uint8_t *)"call failed", 11); return; }
		w_message_read(in, r);
	}
	uint32_t bn;
	const uint8_t *b = body(in, &bn);
	respond(b, bn);
}

__attribute__((export_name("init"))) int32_t init(void) {
	for (;;) {
		int32_t n = w_await();
		if (n < 0) return n == -2 ? 0 : 10;
		if (n > (int32_t)sizeof in || w_message_read(in, n) != n) return 11;
		if (in[0] != 1 || !(in[1] & 2)) continue; /* only requests that want an answer */
		uint32_t bn;
		const uint8_t *b = body(in, &bn);
		if (bn > 5 && __builtin_memcmp(b, "call ", 5) == 0) {
			/* copy out of in[]: call reuses it */
			static uint8_t cmd[512];
			if (bn - 5 > sizeof cmd) continue;
			__builtin_memcpy(cmd, b + 5, bn - 5);
			call(cmd, bn - 5);
			continue;
		}
		respond(b, bn);
	}
}
