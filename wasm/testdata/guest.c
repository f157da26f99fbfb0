// A weft test guest in C, written against the raw imports of docs/abi.md.
// One module, many behaviours: each request's body is a command.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <fcntl.h>
#include <errno.h>
#include <wasi/api.h>

#define WEFT(n) __attribute__((import_module("weft"), import_name(n)))
WEFT("await") int32_t w_await(void);
WEFT("message_read") int32_t w_message_read(void *p, int32_t cap);
WEFT("blob_read") int32_t w_blob_read(void *p, int32_t cap);
WEFT("send") int64_t w_send(const void *p, int32_t len);
WEFT("send_and_await") int32_t w_send_and_await(const void *p, int32_t len);
WEFT("respond") int32_t w_respond(const void *p, int32_t len);
WEFT("state_get") int32_t w_state_get(void *p, int32_t cap);
WEFT("state_set") int32_t w_state_set(const void *p, int32_t len);
WEFT("state_clear") int32_t w_state_clear(void);
WEFT("spawn") int32_t w_spawn(const void *p, int32_t len, void *out, int32_t outcap);
WEFT("caps_read") int32_t w_caps_read(void *p, int32_t cap);
WEFT("cap_drop") int32_t w_cap_drop(const void *p, int32_t len);
WEFT("self_read") int32_t w_self_read(void *p, int32_t cap);
WEFT("log") void w_log(int32_t level, const void *p, int32_t len);
WEFT("last_error") int32_t w_last_error(void *p, int32_t cap);

__attribute__((export_name("weft_abi_v1"))) void weft_abi_v1(void) {}

static uint8_t inbuf[64 << 10];
static uint8_t outbuf[64 << 10];
static uint8_t reqbuf[4096];
static char text[16 << 10];

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint8_t *wr32(uint8_t *p, uint32_t v) { p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24; return p + 4; }
static uint8_t *wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v); return wr32(p + 4, (uint32_t)(v >> 32)); }
static uint8_t *wrbytes(uint8_t *p, const void *b, uint32_t n) { p = wr32(p, n); memcpy(p, b, n); return p + n; }

typedef struct {
	uint8_t kind, flags, errkind;
	const uint8_t *body;
	uint32_t body_len;
	uint32_t blob_len;
} msg_t;

static void parse(const uint8_t *b, msg_t *m) {
	m->kind = b[0];
	m->flags = b[1];
	m->errkind = b[2];
	uint32_t off = 20, l;
	l = rd32(b + off); off += 4 + l; /* source */
	l = rd32(b + off); off += 4 + l; /* target */
	l = rd32(b + off); m->body = b + off + 4; m->body_len = l; off += 4 + l;
	l = rd32(b + off); off += 4 + l; /* metadata */
	l = rd32(b + off); off += 4 + l; /* context */
	uint32_t ncaps = rd32(b + off); off += 4;
	for (uint32_t i = 0; i < 2 * ncaps; i++) { l = rd32(b + off); off += 4 + l; }
	l = rd32(b + off); off += 4 + l; /* blob mime */
	m->blob_len = rd32(b + off);
}

static int32_t enc_request(uint8_t *b, uint64_t timeout, const char *target, const void *body, uint32_t n) {
	uint8_t *p = b;
	*p++ = 0; *p++ = 0; *p++ = 0; *p++ = 0;
	p = wr64(p, timeout);
	p = wrbytes(p, target, strlen(target));
	p = wrbytes(p, body, n);
	p = wr32(p, 0); /* metadata */
	p = wr32(p, 0); /* context */
	p = wr32(p, 0); /* caps */
	return p - b;
}

static int32_t respond(const void *body, uint32_t n) {
	uint8_t *buf = n + 16 > sizeof outbuf ? malloc(n + 16) : outbuf, *p = buf;
	*p++ = 0; *p++ = 0; *p++ = 0; *p++ = 0;
	p = wrbytes(p, body, n);
	p = wr32(p, 0); /* metadata */
	p = wr32(p, 0); /* caps */
	int32_t r = w_respond(buf, p - buf);
	if (buf != outbuf) free(buf);
	return r;
}

static int32_t respond_text(void) { return respond(text, strlen(text)); }

static int starts(const msg_t *m, const char *cmd) {
	size_t n = strlen(cmd);
	return m->body_len >= n && memcmp(m->body, cmd, n) == 0;
}

static const char *arg(const msg_t *m, const char *cmd) {
	size_t n = strlen(cmd);
	static char a[4096];
	uint32_t l = m->body_len - n;
	if (l >= sizeof a) l = sizeof a - 1;
	memcpy(a, m->body + n, l);
	a[l] = 0;
	return a;
}

static void last_error(char *dst, size_t cap) {
	int32_t n = w_last_error(dst, cap - 1);
	if (n < 0 || (size_t)n >= cap) n = 0;
	dst[n] = 0;
}

static volatile uint64_t sink;

/* probe calls every import with bad pointers and garbage and reports. */
static void probe(void) {
	char e[512];
	uint32_t memsize = __builtin_wasm_memory_size(0) * 65536;
	char *t = text;
	t += sprintf(t, "memsize=%u\n", memsize);
	t += sprintf(t, "message_read=%d\n", w_message_read((void *)(uintptr_t)0xFFFFFF00u, 0x1000));
	last_error(e, sizeof e);
	t += sprintf(t, "message_read_error=%s\n", e);
	t += sprintf(t, "state_set=%d\n", w_state_set((void *)0, -1));
	t += sprintf(t, "send=%lld\n", (long long)w_send((void *)(uintptr_t)(memsize - 2), 10));
	last_error(e, sizeof e);
	t += sprintf(t, "send_error=%s\n", e);
	t += sprintf(t, "blob_read=%d\n", w_blob_read((void *)(uintptr_t)memsize, 1));
	t += sprintf(t, "self_read=%d\n", w_self_read((void *)(uintptr_t)(memsize + 100), 0));
	w_log(1, (void *)(uintptr_t)0xFFFFFFF0u, 100);
	t += sprintf(t, "spawn_out=%d\n", w_spawn(reqbuf, 4, (void *)(uintptr_t)memsize, 10));
	t += sprintf(t, "send_garbage=%lld\n", (long long)w_send("abc", 3));
	last_error(e, sizeof e);
	t += sprintf(t, "send_garbage_error=%s\n", e);
	uint8_t bad[64];
	int32_t n = enc_request(bad, 0, "our@x:y:z", "hi", 2);
	bad[1] = 7; /* reserved byte */
	t += sprintf(t, "send_reserved=%lld\n", (long long)w_send(bad, n));
	last_error(e, sizeof e);
	t += sprintf(t, "send_reserved_error=%s\n", e);
	n = enc_request(bad, 0, "not an address", "hi", 2);
	t += sprintf(t, "send_badtarget=%lld\n", (long long)w_send(bad, n));
	t += sprintf(t, "send_and_await_garbage=%d\n", w_send_and_await("\xff\xff\xff\xff", 4));
	t += sprintf(t, "spawn_garbage=%d\n", w_spawn("\x01", 1, reqbuf, 10));
	t += sprintf(t, "respond_garbage=%d\n", w_respond("\x00\x00\x00\x00\xff\xff", 6));
	last_error(e, sizeof e);
	t += sprintf(t, "respond_garbage_error=%s\n", e);
	respond_text();
}

/* call sends n requests to target with send_and_await, 5-byte bodies. */
static void call(const char *a) {
	char target[256];
	unsigned n = 0;
	if (sscanf(a, "%255s %u", target, &n) != 2) {
		respond("bad call", 8);
		return;
	}
	int32_t len = enc_request(reqbuf, 5000000000ull, target, "hello", 5);
	for (unsigned i = 0; i < n; i++) {
		int32_t r = w_send_and_await(reqbuf, len);
		if (r < 0) {
			char e[256];
			last_error(e, sizeof e);
			sprintf(text, "call %u failed: %d %s", i, r, e);
			respond_text();
			return;
		}
		if (r > (int32_t)sizeof inbuf || w_message_read(inbuf, sizeof inbuf) != r) {
			respond("bad answer", 10);
			return;
		}
	}
	/* Hand back the last answer's body. */
	msg_t m;
	parse(inbuf, &m);
	respond(m.body, m.body_len);
}

__attribute__((export_name("init"))) int32_t init(void) {
	for (;;) {
		int32_t n = w_await();
		if (n == -2) return 0;
		if (n < 0) return 10;
		uint8_t *buf = inbuf;
		if (n > (int32_t)sizeof inbuf) buf = malloc(n);
		if (w_message_read(buf, n) != n) return 11;
		/* Everything below may call into the node again, which replaces the
		   current message: copy the request first. */
		static uint8_t cur[64 << 10];
		if (n > (int32_t)sizeof cur) { if (buf != inbuf) free(buf); continue; }
		memcpy(cur, buf, n);
		if (buf != inbuf) free(buf);
		msg_t m;
		parse(cur, &m);
		if (m.kind != 1) continue;

		if (starts(&m, "trap")) {
			__builtin_trap();
		} else if (starts(&m, "spin")) {
			for (;;) sink++;
		} else if (starts(&m, "exit")) {
			return 3;
		} else if (starts(&m, "oom")) {
			for (;;) {
				char *p = malloc(1 << 20);
				if (!p) return 12;
				memset(p, 1, 1 << 20);
				sink += (uintptr_t)p;
			}
		} else if (starts(&m, "burn ")) {
			/* Compute for about the given milliseconds, calling in between. */
			unsigned ms = atoi(arg(&m, "burn "));
			for (unsigned i = 0; i < ms; i++) {
				__wasi_timestamp_t now = 0, end;
				(void)__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &now);
				end = now + 1000000;
				do {
					for (int j = 0; j < 1000; j++) sink++;
					(void)__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &now);
				} while (now < end);
				w_self_read(text, 0);
			}
			respond("burned", 6);
		} else if (starts(&m, "hostcalls ")) {
			/* N calls of a cheap host function: the cost of one call. */
			unsigned k = atoi(arg(&m, "hostcalls "));
			for (unsigned i = 0; i < k; i++) w_self_read(text, 0);
			respond("done", 4);
		} else if (starts(&m, "blob")) {
			int32_t bl = w_blob_read(NULL, 0);
			if (bl < 0) { sprintf(text, "blob_read=%d", bl); respond_text(); continue; }
			char *b = malloc(bl + 64);
			int32_t got = w_blob_read(b, bl);
			int32_t hdr = sprintf(b + bl, "|msglen=%d", n);
			respond(b, got + hdr);
			free(b);
		} else if (starts(&m, "state-set ")) {
			const char *v = arg(&m, "state-set ");
			sprintf(text, "%d", w_state_set(v, strlen(v)));
			respond_text();
		} else if (starts(&m, "state-get")) {
			int32_t l = w_state_get(text, sizeof text - 1);
			if (l < 0) sprintf(text, "none %d", l); else text[l] = 0;
			respond_text();
		} else if (starts(&m, "state-clear")) {
			sprintf(text, "%d", w_state_clear());
			respond_text();
		} else if (starts(&m, "self")) {
			int32_t l = w_self_read(text, sizeof text - 1);
			text[l < 0 ? 0 : l] = 0;
			respond_text();
		} else if (starts(&m, "caps")) {
			int32_t l = w_caps_read(inbuf, sizeof inbuf);
			sprintf(text, "caps=%d count=%u", l, l >= 4 ? rd32(inbuf) : 0);
			respond_text();
		} else if (starts(&m, "drop ")) {
			/* drop ISSUER: give up the messaging capability ISSUER issued */
			const char *issuer = arg(&m, "drop ");
			uint8_t enc[512], *p = enc;
			p = wrbytes(p, issuer, strlen(issuer));
			p = wrbytes(p, "\"messaging\"", 11);
			int32_t r = w_cap_drop(enc, p - enc);
			int32_t l = w_caps_read(inbuf, sizeof inbuf);
			sprintf(text, "drop=%d count=%u", r, l >= 4 ? rd32(inbuf) : 0);
			respond_text();
		} else if (starts(&m, "spawn ")) {
			/* spawn NAME: a child from guest.wasm, restart on exit */
			const char *name = arg(&m, "spawn ");
			uint8_t spec[512], *p = spec;
			p = wrbytes(p, name, strlen(name));
			p = wrbytes(p, "guest.wasm", 10);
			*p++ = 1; *p++ = 0; *p++ = 0; *p++ = 0;
			p = wr32(p, 0);
			char out[256];
			int32_t l = w_spawn(spec, p - spec, out, sizeof out - 1);
			if (l < 0) { char e[256]; last_error(e, sizeof e); sprintf(text, "spawn=%d %s", l, e); }
			else { out[l] = 0; sprintf(text, "%s", out); }
			respond_text();
		} else if (starts(&m, "calltimeout ")) {
			/* send_and_await with a 50 ms timeout; report the code and the
			   error message it made current. */
			int32_t len = enc_request(reqbuf, 50000000ull, arg(&m, "calltimeout "), "hello", 5);
			int32_t r = w_send_and_await(reqbuf, len);
			int32_t l = w_message_read(inbuf, sizeof inbuf);
			msg_t a;
			parse(inbuf, &a);
			sprintf(text, "code=%d kind=%d errkind=%d len=%d", r, a.kind, a.errkind, l);
			respond_text();
		} else if (starts(&m, "call ")) {
			call(arg(&m, "call "));
		} else if (starts(&m, "probe")) {
			probe();
		} else if (starts(&m, "sandbox")) {
			char *t = text;
			int fd = open("/etc/passwd", O_RDONLY);
			t += sprintf(t, "open=%d errno=%d\n", fd, fd < 0 ? errno : 0);
			fd = open("passwd", O_RDONLY);
			t += sprintf(t, "open_rel=%d\n", fd);
			const char *home = getenv("HOME"), *path = getenv("PATH");
			t += sprintf(t, "env=%s,%s\n", home ? home : "null", path ? path : "null");
			__wasi_size_t envc = 99, envsz = 99;
			(void)__wasi_environ_sizes_get(&envc, &envsz);
			t += sprintf(t, "environ=%u\n", (unsigned)envc);
			__wasi_size_t argc = 99, argsz = 99;
			(void)__wasi_args_sizes_get(&argc, &argsz);
			t += sprintf(t, "args=%u\n", (unsigned)argc);
			__wasi_fd_t nfd = 0;
			int r = __wasi_sock_accept(3, 0, &nfd);
			t += sprintf(t, "sock_accept3=%d\n", r);
			r = __wasi_sock_accept(0, 0, &nfd);
			t += sprintf(t, "sock_accept0=%d\n", r);
			__wasi_prestat_t ps;
			r = __wasi_fd_prestat_get(3, &ps);
			t += sprintf(t, "prestat3=%d\n", r);
			uint64_t rnd = 0;
			(void)__wasi_random_get((uint8_t *)&rnd, sizeof rnd);
			t += sprintf(t, "random_nonzero=%d\n", rnd != 0);
			__wasi_timestamp_t now = 0;
			(void)__wasi_clock_time_get(__WASI_CLOCKID_REALTIME, 1, &now);
			t += sprintf(t, "realtime_s=%llu\n", (unsigned long long)(now / 1000000000ull));
			printf("hello from stdout\n");
			fflush(stdout);
			fprintf(stderr, "hello from stderr\n");
			respond_text();
		} else if (starts(&m, "dirty")) {
			/* Fill 1 MiB of fresh heap with a pattern that the next
			   instance must not find (TestMemoryReuse). */
			uint8_t *p = malloc(1 << 20);
			if (!p) { respond("nomem", 5); continue; }
			for (uint32_t j = 0; j < 1 << 20; j++) p[j] = (uint8_t)((j * 7 + 3) % 251);
			sink += (uintptr_t)p;
			respond("dirty", 5);
		} else if (starts(&m, "scan")) {
			/* Grow the memory by 2 MiB, then look through all of it for
			   the start of "dirty"'s pattern. */
			uint8_t want[16];
			for (uint32_t j = 0; j < sizeof want; j++) want[j] = (uint8_t)((j * 7 + 3) % 251);
			__builtin_wasm_memory_grow(0, 32);
			const uint8_t *lo = (const uint8_t *)(uintptr_t)16, *hi = (const uint8_t *)(__builtin_wasm_memory_size(0) * 65536);
			unsigned found = 0;
			const uint8_t *at = 0;
			for (const uint8_t *q = lo; q + sizeof want <= hi; q++) {
				q = memchr(q, want[0], hi - sizeof want - q + 1);
				if (!q) break;
				if (q != want && memcmp(q, want, sizeof want) == 0) { if (!found) at = q; found++; }
			}
			char out[64];
			int k = found ? snprintf(out, sizeof out, "found %u at %lu", found, (unsigned long)(uintptr_t)at) : snprintf(out, sizeof out, "clean");
			respond(out, k);
		} else if (starts(&m, "log ")) {
			const char *v = arg(&m, "log ");
			w_log(2, v, strlen(v));
			respond("logged", 6);
		} else if (m.flags & 2) {
			respond(m.body, m.body_len);
		}
	}
}
