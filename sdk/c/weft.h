/*
 * weft.h: the weft guest ABI, version 1, for C (C99, clang --target=wasm32-wasi).
 *
 * One header, nothing to link: the imports of module "weft", the error
 * codes, the encodings of docs/abi.md (the contract; this header follows
 * it field by field) and small wrappers so that a process reads naturally:
 *
 *     #include "weft.h"
 *
 *     WEFT_ABI_V1;
 *
 *     WEFT_INIT {
 *         weft_message m = {0};
 *         while (weft_await(&m) == 0) {
 *             ... handle m, weft_respond(...) ...
 *         }
 *         weft_message_free(&m);
 *         return 0;
 *     }
 *
 * Build: clang --target=wasm32-wasi -O2 -mexec-model=reactor \
 *            -Wl,--strip-all -I sdk/c -o x.wasm x.c
 *
 * Needs <stdint.h>, <stddef.h>, <string.h> and, for weft_buf's growth,
 * malloc/realloc/free from <stdlib.h> (wasi-libc has them all). Every
 * function returning int/int32_t/int64_t returns a WEFT_E* code (< 0) on
 * failure; running out of memory while growing a buffer is WEFT_ELIMIT.
 * Pointers inside a decoded weft_message point into its buffer: they are
 * valid until the next call that reads into that message.
 */
#ifndef WEFT_H
#define WEFT_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__wasm__)
#error "weft.h is for WebAssembly guests: build with clang --target=wasm32-wasi"
#endif

/* ------------------------------------------------------------------------ */
/* Error codes (docs/abi.md, "Error codes").                                 */

#define WEFT_EINVAL (-1)          /* bad encoding, pointer or length, name or address */
#define WEFT_ESTOPPED (-2)        /* the process must stop: return from init */
#define WEFT_ENOREQUEST (-3)      /* no request to respond to */
#define WEFT_ENONE (-4)           /* no state, no blob */
#define WEFT_ELIMIT (-5)          /* a limit was reached (also: out of memory here) */
#define WEFT_EPERM (-6)           /* capability not held, or not permitted */
#define WEFT_ENOTFOUND (-7)       /* no such process or module */
#define WEFT_EEXIST (-8)          /* a process of that name exists */
#define WEFT_EINTERNAL (-9)       /* the node failed (its log says why) */
#define WEFT_ETIMEOUT (-101)      /* send error: timeout */
#define WEFT_EOFFLINE (-102)      /* send error: offline */
#define WEFT_ENOSUCHPROCESS (-103) /* send error: no such process */
#define WEFT_ENOCAPABILITY (-104) /* send error: no capability */
#define WEFT_EMAILBOXFULL (-105)  /* send error: mailbox full */
#define WEFT_EKILLED (-106)       /* send error: killed */
#define WEFT_ETOOLARGE (-107)     /* send error: too large */

/* Message kinds (weft_message.kind). */
#define WEFT_KIND_REQUEST 1
#define WEFT_KIND_RESPONSE 2
#define WEFT_KIND_ERROR 3

/* Message flags (weft_message.flags). */
#define WEFT_MSG_INHERIT 0x01        /* the message inherited its blob */
#define WEFT_MSG_EXPECTS_RESPONSE 0x02 /* the sender waits: respond to it */
#define WEFT_MSG_HAS_BLOB 0x04       /* read the blob with weft_blob_read */

/* Request and response flags, as encoded (set through the structs' fields). */
#define WEFT_OUT_INHERIT 0x01
#define WEFT_OUT_HAS_BLOB 0x02

/* Error kinds of an error message (weft_message.error_kind). */
#define WEFT_ERR_TIMEOUT 1
#define WEFT_ERR_OFFLINE 2
#define WEFT_ERR_NO_SUCH_PROCESS 3
#define WEFT_ERR_NO_CAPABILITY 4
#define WEFT_ERR_MAILBOX_FULL 5
#define WEFT_ERR_KILLED 6
#define WEFT_ERR_TOO_LARGE 7

/* Log levels for weft_log. */
#define WEFT_LOG_DEBUG 0
#define WEFT_LOG_INFO 1
#define WEFT_LOG_WARN 2
#define WEFT_LOG_ERROR 3

/* ------------------------------------------------------------------------ */
/* Exports.                                                                  */

/* WEFT_EXPORT(name) exports the function it precedes as `name`. */
#define WEFT_EXPORT(name) __attribute__((export_name(name)))

/* WEFT_ABI_V1; at file scope declares ABI version 1 (the `weft_abi_v1`
 * export, never called). Every module needs it. */
#define WEFT_ABI_V1                                          \
	WEFT_EXPORT("weft_abi_v1") void weft_abi_v1(void) {} \
	typedef int weft_abi_v1_declared_

/* WEFT_INIT { body } defines the process, the `init` export: it runs once,
 * loops on weft_await, and returns 0 for a clean exit, anything else for an
 * exit with an error. */
#define WEFT_INIT WEFT_EXPORT("init") int32_t weft_init(void)

/* ------------------------------------------------------------------------ */
/* Raw imports of module "weft" (docs/abi.md, "What the node provides").     */
/* Prefer the wrappers below; these are the functions exactly as the node    */
/* provides them.                                                            */

#define WEFT_IMPORT_(name) __attribute__((import_module("weft"), import_name(name)))

/* Block until the next message; returns its encoded length or WEFT_ESTOPPED. */
WEFT_IMPORT_("await") int32_t weft_sys_await(void);
/* Copy the current message (at most cap bytes); returns its full length. */
WEFT_IMPORT_("message_read") int32_t weft_sys_message_read(uint8_t *ptr, int32_t cap);
/* Copy the current message's blob; full length, or WEFT_ENONE. */
WEFT_IMPORT_("blob_read") int32_t weft_sys_blob_read(uint8_t *ptr, int32_t cap);
/* Send an encoded request; its id (>= 0) or an error. */
WEFT_IMPORT_("send") int64_t weft_sys_send(const uint8_t *ptr, int32_t len);
/* Send an encoded request and block for the answer; its encoded length or an error. */
WEFT_IMPORT_("send_and_await") int32_t weft_sys_send_and_await(const uint8_t *ptr, int32_t len);
/* Answer the request being handled with an encoded response; 0 or an error. */
WEFT_IMPORT_("respond") int32_t weft_sys_respond(const uint8_t *ptr, int32_t len);
/* Copy the persisted state; full length, or WEFT_ENONE. */
WEFT_IMPORT_("state_get") int32_t weft_sys_state_get(uint8_t *ptr, int32_t cap);
/* Replace the persisted state; 0 or an error. */
WEFT_IMPORT_("state_set") int32_t weft_sys_state_set(const uint8_t *ptr, int32_t len);
/* Remove the persisted state; 0 or an error. */
WEFT_IMPORT_("state_clear") int32_t weft_sys_state_clear(void);
/* Start a child from an encoded spawn spec; writes its id to out, returns its length. */
WEFT_IMPORT_("spawn") int32_t weft_sys_spawn(const uint8_t *ptr, int32_t len, uint8_t *out, int32_t outcap);
/* Copy the encoded capabilities the process holds; full length. */
WEFT_IMPORT_("caps_read") int32_t weft_sys_caps_read(uint8_t *ptr, int32_t cap);
/* Give up the process's own copy of one encoded capability; 0 or an error. */
WEFT_IMPORT_("cap_drop") int32_t weft_sys_cap_drop(const uint8_t *ptr, int32_t len);
/* Copy the process's own address; full length. */
WEFT_IMPORT_("self_read") int32_t weft_sys_self_read(uint8_t *ptr, int32_t cap);
/* Write a line to the node's log at level 0..3. */
WEFT_IMPORT_("log") void weft_sys_log(int32_t level, const uint8_t *ptr, int32_t len);
/* Copy the text of the last error; full length. */
WEFT_IMPORT_("last_error") int32_t weft_sys_last_error(uint8_t *ptr, int32_t cap);

/* ------------------------------------------------------------------------ */
/* Byte strings and buffers.                                                 */

/* weft_bytes is a borrowed byte string: ptr may be NULL when len is 0. */
typedef struct {
	const uint8_t *ptr;
	size_t len;
} weft_bytes;

/* weft_bytes_of returns the bytes ptr[0:len]. */
static inline weft_bytes weft_bytes_of(const void *ptr, size_t len)
{
	weft_bytes b;
	b.ptr = (const uint8_t *)ptr;
	b.len = len;
	return b;
}

/* weft_str returns the bytes of a NUL-terminated string (without the NUL);
 * NULL gives the empty string. */
static inline weft_bytes weft_str(const char *s)
{
	return weft_bytes_of(s, s ? strlen(s) : 0);
}

/* weft_bytes_eq reports whether a and b hold the same bytes. */
static inline int weft_bytes_eq(weft_bytes a, weft_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* weft_buf is an owned, growable byte buffer. Start from {0}; release with
 * weft_buf_free. */
typedef struct {
	uint8_t *ptr;
	size_t len;
	size_t cap;
} weft_buf;

/* weft_buf_free releases b's memory and leaves it empty. */
static inline void weft_buf_free(weft_buf *b)
{
	free(b->ptr);
	b->ptr = NULL;
	b->len = 0;
	b->cap = 0;
}

/* weft_buf_reserve makes room for at least n bytes in total (not counting
 * len); 0, or WEFT_ELIMIT when memory runs out. */
static inline int weft_buf_reserve(weft_buf *b, size_t n)
{
	if (n <= b->cap)
		return 0;
	size_t c = b->cap ? b->cap : 64;
	while (c < n) {
		if (c > SIZE_MAX / 2) {
			c = n;
			break;
		}
		c *= 2;
	}
	uint8_t *p = (uint8_t *)realloc(b->ptr, c);
	if (!p)
		return WEFT_ELIMIT;
	b->ptr = p;
	b->cap = c;
	return 0;
}

/* weft_buf_append appends n bytes from p; 0 or WEFT_ELIMIT. */
static inline int weft_buf_append(weft_buf *b, const void *p, size_t n)
{
	if (n > SIZE_MAX - b->len)
		return WEFT_ELIMIT;
	int rc = weft_buf_reserve(b, b->len + n);
	if (rc < 0)
		return rc;
	if (n)
		memcpy(b->ptr + b->len, p, n);
	b->len += n;
	return 0;
}

/* weft_buf_bytes returns b's contents as borrowed bytes. */
static inline weft_bytes weft_buf_bytes(const weft_buf *b)
{
	return weft_bytes_of(b->ptr, b->len);
}

/* ------------------------------------------------------------------------ */
/* Encoding (docs/abi.md, "Encodings"): little-endian integers, `bytes` and   */
/* `str` as a u32 length and the bytes.                                      */

/* weft_put_u8 appends v; 0 or WEFT_ELIMIT. */
static inline int weft_put_u8(weft_buf *b, uint8_t v)
{
	return weft_buf_append(b, &v, 1);
}

/* weft_put_u16 appends v, little-endian; 0 or WEFT_ELIMIT. */
static inline int weft_put_u16(weft_buf *b, uint16_t v)
{
	uint8_t s[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
	return weft_buf_append(b, s, sizeof s);
}

/* weft_put_u32 appends v, little-endian; 0 or WEFT_ELIMIT. */
static inline int weft_put_u32(weft_buf *b, uint32_t v)
{
	uint8_t s[4];
	for (int i = 0; i < 4; i++)
		s[i] = (uint8_t)(v >> (8 * i));
	return weft_buf_append(b, s, sizeof s);
}

/* weft_put_u64 appends v, little-endian; 0 or WEFT_ELIMIT. */
static inline int weft_put_u64(weft_buf *b, uint64_t v)
{
	uint8_t s[8];
	for (int i = 0; i < 8; i++)
		s[i] = (uint8_t)(v >> (8 * i));
	return weft_buf_append(b, s, sizeof s);
}

/* weft_put_bytes appends v as `bytes` (u32 length, then the bytes); also
 * for `str`. 0, WEFT_EINVAL when longer than a u32 can say, or WEFT_ELIMIT. */
static inline int weft_put_bytes(weft_buf *b, weft_bytes v)
{
	if ((uint64_t)v.len > UINT32_MAX)
		return WEFT_EINVAL;
	int rc = weft_put_u32(b, (uint32_t)v.len);
	return rc < 0 ? rc : weft_buf_append(b, v.ptr, v.len);
}

/* A capability: the issuer's address (`node@name:package:publisher`, node
 * may be `our`) and its params (JSON). */
typedef struct {
	weft_bytes issuer;
	weft_bytes params;
} weft_cap;

/* weft_put_cap appends one capability (str issuer, str params): the
 * encoding weft_cap_drop takes. 0 or an error. */
static inline int weft_put_cap(weft_buf *b, const weft_cap *c)
{
	int rc = weft_put_bytes(b, c->issuer);
	return rc < 0 ? rc : weft_put_bytes(b, c->params);
}

/* weft_put_caps appends `caps`: a u32 count, then each capability. caps
 * may be NULL when n is 0. 0 or an error. */
static inline int weft_put_caps(weft_buf *b, const weft_cap *caps, size_t n)
{
	if ((uint64_t)n > UINT32_MAX)
		return WEFT_EINVAL;
	int rc = weft_put_u32(b, (uint32_t)n);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = weft_put_cap(b, &caps[i]);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Decoding. A weft_reader walks a buffer; every read checks the bytes left  */
/* and, once one fails, the reader stays failed (err is WEFT_EINVAL).        */

/* weft_reader reads encoded fields from p[0:len]. */
typedef struct {
	const uint8_t *p;
	size_t len;
	size_t off;
	int err;
} weft_reader;

/* weft_reader_of returns a reader of b. */
static inline weft_reader weft_reader_of(weft_bytes b)
{
	weft_reader r;
	r.p = b.ptr;
	r.len = b.len;
	r.off = 0;
	r.err = 0;
	return r;
}

/* weft_take returns the next n bytes, or fails the reader (and returns
 * empty bytes) when fewer are left. */
static inline weft_bytes weft_take(weft_reader *r, size_t n)
{
	if (r->err || n > r->len - r->off) {
		r->err = WEFT_EINVAL;
		return weft_bytes_of(NULL, 0);
	}
	weft_bytes b = weft_bytes_of(r->p + r->off, n);
	r->off += n;
	return b;
}

/* weft_get_u8 reads a u8 (0 on failure). */
static inline uint8_t weft_get_u8(weft_reader *r)
{
	weft_bytes b = weft_take(r, 1);
	return b.len ? b.ptr[0] : 0;
}

/* weft_get_u16 reads a little-endian u16 (0 on failure). */
static inline uint16_t weft_get_u16(weft_reader *r)
{
	weft_bytes b = weft_take(r, 2);
	return b.len ? (uint16_t)(b.ptr[0] | (b.ptr[1] << 8)) : 0;
}

/* weft_get_u32 reads a little-endian u32 (0 on failure). */
static inline uint32_t weft_get_u32(weft_reader *r)
{
	weft_bytes b = weft_take(r, 4);
	uint32_t v = 0;
	for (size_t i = 0; i < b.len; i++)
		v |= (uint32_t)b.ptr[i] << (8 * i);
	return v;
}

/* weft_get_u64 reads a little-endian u64 (0 on failure). */
static inline uint64_t weft_get_u64(weft_reader *r)
{
	weft_bytes b = weft_take(r, 8);
	uint64_t v = 0;
	for (size_t i = 0; i < b.len; i++)
		v |= (uint64_t)b.ptr[i] << (8 * i);
	return v;
}

/* weft_get_bytes reads `bytes` or `str`: a u32 length and that many bytes,
 * pointing into the reader's buffer. */
static inline weft_bytes weft_get_bytes(weft_reader *r)
{
	uint32_t n = weft_get_u32(r);
	return weft_take(r, n);
}

/* weft_caps is a decoded, validated `caps` field: count capabilities whose
 * encodings (str issuer, str params each) are the bytes of raw. Walk it
 * with weft_caps_next. */
typedef struct {
	uint32_t count;
	weft_bytes raw;
} weft_caps;

/* weft_get_caps reads and validates a `caps` field. */
static inline weft_caps weft_get_caps(weft_reader *r)
{
	weft_caps c = {0, {NULL, 0}};
	uint32_t n = weft_get_u32(r);
	/* Each capability takes at least 8 bytes: refuse a count that cannot
	 * fit before walking it. */
	if (r->err || n > (r->len - r->off) / 8) {
		r->err = WEFT_EINVAL;
		return c;
	}
	size_t start = r->off;
	for (uint32_t i = 0; i < n && !r->err; i++) {
		weft_get_bytes(r);
		weft_get_bytes(r);
	}
	if (r->err)
		return c;
	c.count = n;
	c.raw = weft_bytes_of(r->p + start, r->off - start);
	return c;
}

/* weft_caps_next takes the next capability off c into *out: 1 when it did,
 * 0 when c is used up. c must come from a decode (it is trusted). */
static inline int weft_caps_next(weft_caps *c, weft_cap *out)
{
	if (c->count == 0)
		return 0;
	weft_reader r = weft_reader_of(c->raw);
	out->issuer = weft_get_bytes(&r);
	out->params = weft_get_bytes(&r);
	if (r.err) {
		c->count = 0;
		return 0;
	}
	c->count--;
	c->raw = weft_bytes_of(c->raw.ptr + r.off, c->raw.len - r.off);
	return 1;
}

/* ------------------------------------------------------------------------ */
/* Message (node -> guest).                                                  */

/* weft_message is a decoded message; its weft_bytes point into buf, which
 * it owns. Start from {0}; reuse it across weft_await calls (buf grows as
 * needed); release with weft_message_free. */
typedef struct {
	uint8_t kind;              /* WEFT_KIND_REQUEST, _RESPONSE or _ERROR */
	uint8_t flags;             /* WEFT_MSG_* bits */
	uint8_t error_kind;        /* 0, or WEFT_ERR_* on an error */
	uint64_t id;               /* the request's id (an answer carries its request's) */
	uint64_t expects_response; /* nanoseconds; 0 when no response is expected */
	weft_bytes source;         /* sender's address (on an error: the process itself) */
	weft_bytes target;         /* the address it was sent to (on an error: the failed target) */
	weft_bytes body;
	weft_bytes metadata;       /* empty when none */
	weft_bytes context;        /* on an answer: the context kept with the request */
	weft_caps caps;            /* attached; the process now holds them */
	weft_bytes blob_mime;      /* empty when no blob */
	uint32_t blob_len;         /* read the bytes with weft_blob_read */
	weft_bytes error_detail;   /* on an error: a sentence for people */
	weft_buf buf;              /* the encoded message */
} weft_message;

/* weft_message_decode decodes the encoded message p[0:len] into the fields
 * of *m (m->buf is left alone; the fields point into p). 0, or WEFT_EINVAL
 * when a length or count runs past the end, bytes trail, or the kind is
 * not 1..3: no byte outside p[0:len] is ever read. The reserved byte is
 * ignored. On failure the fields are zeroed. */
static inline int weft_message_decode(weft_message *m, const uint8_t *p, size_t len)
{
	weft_reader r = weft_reader_of(weft_bytes_of(p, len));
	m->kind = weft_get_u8(&r);
	m->flags = weft_get_u8(&r);
	m->error_kind = weft_get_u8(&r);
	weft_get_u8(&r); /* reserved */
	m->id = weft_get_u64(&r);
	m->expects_response = weft_get_u64(&r);
	m->source = weft_get_bytes(&r);
	m->target = weft_get_bytes(&r);
	m->body = weft_get_bytes(&r);
	m->metadata = weft_get_bytes(&r);
	m->context = weft_get_bytes(&r);
	m->caps = weft_get_caps(&r);
	m->blob_mime = weft_get_bytes(&r);
	m->blob_len = weft_get_u32(&r);
	m->error_detail = weft_get_bytes(&r);
	if (!r.err && (r.off != r.len || m->kind < WEFT_KIND_REQUEST || m->kind > WEFT_KIND_ERROR))
		r.err = WEFT_EINVAL;
	if (r.err) {
		weft_buf keep = m->buf;
		memset(m, 0, sizeof *m);
		m->buf = keep;
		return r.err;
	}
	return 0;
}

/* weft_message_free releases m's buffer and zeroes it. */
static inline void weft_message_free(weft_message *m)
{
	weft_buf_free(&m->buf);
	memset(m, 0, sizeof *m);
}

/* weft_is_request reports whether m is a request. */
static inline int weft_is_request(const weft_message *m)
{
	return m->kind == WEFT_KIND_REQUEST;
}

/* weft_wants_response reports whether m's sender waits for a response
 * (answer it with weft_respond). */
static inline int weft_wants_response(const weft_message *m)
{
	return (m->flags & WEFT_MSG_EXPECTS_RESPONSE) != 0;
}

/* weft_read_grow_ calls read(ptr, cap) into b until the full length fits,
 * growing b; b->len is that length. The length, or read's error. */
static inline int32_t weft_read_grow_(int32_t (*read)(uint8_t *, int32_t), weft_buf *b, size_t hint)
{
	b->len = 0;
	if (weft_buf_reserve(b, hint) < 0)
		return WEFT_ELIMIT;
	for (;;) {
		int32_t cap = b->cap > INT32_MAX ? INT32_MAX : (int32_t)b->cap;
		int32_t n = read(b->ptr, cap);
		if (n < 0)
			return n;
		if (n <= cap) {
			b->len = (size_t)n;
			return n;
		}
		if (weft_buf_reserve(b, (size_t)n) < 0)
			return WEFT_ELIMIT;
	}
}

/* weft_message_read_current reads and decodes the current message into m
 * (hint: its length when known, else 0). 0 or an error. */
static inline int weft_message_read_current(weft_message *m, size_t hint)
{
	int32_t n = weft_read_grow_(weft_sys_message_read, &m->buf, hint);
	if (n < 0)
		return n;
	return weft_message_decode(m, m->buf.ptr, m->buf.len);
}

/* weft_await blocks until the next message arrives and decodes it into m.
 * 0, WEFT_ESTOPPED when the process must stop (return from init then), or
 * another error. */
static inline int weft_await(weft_message *m)
{
	int32_t n = weft_sys_await();
	if (n < 0)
		return n;
	return weft_message_read_current(m, (size_t)n);
}

/* ------------------------------------------------------------------------ */
/* Request and response (guest -> node).                                     */

/* weft_request is a request to send. Zero fields are empty; set has_blob
 * to attach blob (with blob_mime), inherit to pass on the blob of the
 * message being handled. */
typedef struct {
	weft_bytes target;         /* address, node may be `our` */
	weft_bytes body;
	weft_bytes metadata;       /* empty for none */
	weft_bytes context;        /* handed back with the answer */
	const weft_cap *caps;      /* to attach: ncaps of them */
	size_t ncaps;
	uint64_t expects_response; /* timeout in nanoseconds; 0 for none */
	int inherit;
	int has_blob;
	weft_bytes blob_mime;
	weft_bytes blob;
} weft_request;

/* weft_response is an answer to the request being handled; fields as in
 * weft_request. */
typedef struct {
	weft_bytes body;
	weft_bytes metadata;
	const weft_cap *caps;
	size_t ncaps;
	int inherit;
	int has_blob;
	weft_bytes blob_mime;
	weft_bytes blob;
} weft_response;

/* weft_put_out_flags_ appends the flags and 3 reserved bytes that start a
 * request and a response. */
static inline int weft_put_out_flags_(weft_buf *b, int inherit, int has_blob)
{
	uint8_t s[4] = {(uint8_t)((inherit ? WEFT_OUT_INHERIT : 0) | (has_blob ? WEFT_OUT_HAS_BLOB : 0)), 0, 0, 0};
	return weft_buf_append(b, s, sizeof s);
}

/* weft_encode_request appends the encoding of r to b; 0 or an error. */
static inline int weft_encode_request(weft_buf *b, const weft_request *r)
{
	int rc = weft_put_out_flags_(b, r->inherit, r->has_blob);
	if (rc == 0) rc = weft_put_u64(b, r->expects_response);
	if (rc == 0) rc = weft_put_bytes(b, r->target);
	if (rc == 0) rc = weft_put_bytes(b, r->body);
	if (rc == 0) rc = weft_put_bytes(b, r->metadata);
	if (rc == 0) rc = weft_put_bytes(b, r->context);
	if (rc == 0) rc = weft_put_caps(b, r->caps, r->ncaps);
	if (rc == 0 && r->has_blob) rc = weft_put_bytes(b, r->blob_mime);
	if (rc == 0 && r->has_blob) rc = weft_put_bytes(b, r->blob);
	return rc;
}

/* weft_encode_response appends the encoding of r to b; 0 or an error. */
static inline int weft_encode_response(weft_buf *b, const weft_response *r)
{
	int rc = weft_put_out_flags_(b, r->inherit, r->has_blob);
	if (rc == 0) rc = weft_put_bytes(b, r->body);
	if (rc == 0) rc = weft_put_bytes(b, r->metadata);
	if (rc == 0) rc = weft_put_caps(b, r->caps, r->ncaps);
	if (rc == 0 && r->has_blob) rc = weft_put_bytes(b, r->blob_mime);
	if (rc == 0 && r->has_blob) rc = weft_put_bytes(b, r->blob);
	return rc;
}

/* weft_len_ returns b's length as an i32, or -1 when it does not fit. */
static inline int32_t weft_len_(const weft_buf *b)
{
	return b->len > INT32_MAX ? -1 : (int32_t)b->len;
}

/* weft_send sends r. Its id (>= 0), or an error. An answer, if r expects
 * one, comes later through weft_await with r's context. */
static inline int64_t weft_send(const weft_request *r)
{
	weft_buf b = {0};
	int64_t rc = weft_encode_request(&b, r);
	if (rc == 0)
		rc = weft_len_(&b) < 0 ? WEFT_EINVAL : weft_sys_send(b.ptr, weft_len_(&b));
	weft_buf_free(&b);
	return rc;
}

/* weft_send_and_await sends r (expects_response required; the target must
 * not be the process itself) and blocks until its answer, decoded into out.
 * 0, or an error: when the failure came back as an error message (a send
 * error, WEFT_ETIMEOUT to WEFT_ETOOLARGE) out holds that error message too
 * (kind WEFT_KIND_ERROR; kind 0 if the node made none current). On other
 * errors out is left as it was.
 * The message being handled (what weft_respond answers) does not change. */
static inline int weft_send_and_await(const weft_request *r, weft_message *out)
{
	weft_buf b = {0};
	int32_t rc = weft_encode_request(&b, r);
	if (rc == 0)
		rc = weft_len_(&b) < 0 ? WEFT_EINVAL : weft_sys_send_and_await(b.ptr, weft_len_(&b));
	weft_buf_free(&b);
	if (rc >= 0)
		return weft_message_read_current(out, (size_t)rc);
	if (rc <= WEFT_ETIMEOUT && rc >= WEFT_ETOOLARGE && weft_message_read_current(out, 0) < 0)
		weft_message_decode(out, NULL, 0); /* no error message after all: zero out's fields */
	return rc;
}

/* weft_respond answers the request being handled with r. 0, or
 * WEFT_ENOREQUEST when there is none, it expects no response, or it was
 * answered already; or another error. */
static inline int weft_respond(const weft_response *r)
{
	weft_buf b = {0};
	int32_t rc = weft_encode_response(&b, r);
	if (rc == 0)
		rc = weft_len_(&b) < 0 ? WEFT_EINVAL : weft_sys_respond(b.ptr, weft_len_(&b));
	weft_buf_free(&b);
	return rc;
}

/* weft_blob_read reads the current message's blob into out (replacing its
 * contents). Its length, or WEFT_ENONE when the message has none. */
static inline int32_t weft_blob_read(weft_buf *out)
{
	return weft_read_grow_(weft_sys_blob_read, out, 0);
}

/* ------------------------------------------------------------------------ */
/* State.                                                                    */

/* weft_state_get reads the persisted state into out (replacing its
 * contents). Its length, or WEFT_ENONE when there is none. */
static inline int32_t weft_state_get(weft_buf *out)
{
	return weft_read_grow_(weft_sys_state_get, out, 0);
}

/* weft_state_set replaces the persisted state with p[0:len]; durable when
 * it returns 0. */
static inline int weft_state_set(const void *p, size_t len)
{
	if (len > INT32_MAX)
		return WEFT_EINVAL;
	return weft_sys_state_set((const uint8_t *)p, (int32_t)len);
}

/* weft_state_clear removes the persisted state; 0 or an error. */
static inline int weft_state_clear(void)
{
	return weft_sys_state_clear();
}

/* ------------------------------------------------------------------------ */
/* Spawn.                                                                    */

/* Spawn on_exit values. */
#define WEFT_ON_EXIT_NONE 0
#define WEFT_ON_EXIT_RESTART 1

/* weft_spawn_spec describes a child process. */
typedef struct {
	weft_bytes name;      /* the child's process name; empty for a fresh one */
	weft_bytes wasm_path; /* a module of the process's own package, from its root */
	uint8_t on_exit;      /* WEFT_ON_EXIT_NONE or WEFT_ON_EXIT_RESTART */
	int public_;          /* nonzero: anyone may message it */
	const weft_cap *caps; /* for the child (the parent must hold each): ncaps */
	size_t ncaps;
} weft_spawn_spec;

/* weft_encode_spawn appends the encoding of s to b; 0 or an error. */
static inline int weft_encode_spawn(weft_buf *b, const weft_spawn_spec *s)
{
	int rc = weft_put_bytes(b, s->name);
	if (rc == 0) rc = weft_put_bytes(b, s->wasm_path);
	if (rc == 0) rc = weft_put_u8(b, s->on_exit);
	if (rc == 0) rc = weft_put_u8(b, s->public_ ? 1 : 0);
	if (rc == 0) rc = weft_put_u16(b, 0); /* reserved */
	if (rc == 0) rc = weft_put_caps(b, s->caps, s->ncaps);
	return rc;
}

/* WEFT_ID_MAX is the room weft_spawn leaves for a child's process id. */
#define WEFT_ID_MAX 1024

/* weft_spawn starts a child from s and reads its process id (text) into
 * child (replacing its contents). The id's length, or an error. The node
 * starts the child before it writes the id, so an id longer than
 * WEFT_ID_MAX (which the node does not make) gives WEFT_ELIMIT without
 * spawning again. */
static inline int32_t weft_spawn(const weft_spawn_spec *s, weft_buf *child)
{
	weft_buf b = {0};
	int32_t rc = weft_encode_spawn(&b, s);
	if (rc == 0 && weft_len_(&b) < 0)
		rc = WEFT_EINVAL;
	if (rc == 0)
		rc = weft_buf_reserve(child, WEFT_ID_MAX);
	if (rc == 0) {
		rc = weft_sys_spawn(b.ptr, weft_len_(&b), child->ptr, WEFT_ID_MAX);
		if (rc > WEFT_ID_MAX)
			rc = WEFT_ELIMIT;
		child->len = rc < 0 ? 0 : (size_t)rc;
	}
	weft_buf_free(&b);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Capabilities, identity, log, errors.                                      */

/* weft_caps_read reads the encoded capabilities the process holds into buf
 * and decodes them into *caps (which points into buf). 0 or an error. */
static inline int weft_caps_read(weft_buf *buf, weft_caps *caps)
{
	int32_t n = weft_read_grow_(weft_sys_caps_read, buf, 0);
	if (n < 0)
		return n;
	weft_reader r = weft_reader_of(weft_buf_bytes(buf));
	*caps = weft_get_caps(&r);
	if (!r.err && r.off != r.len)
		r.err = WEFT_EINVAL;
	return r.err;
}

/* weft_cap_drop gives up the process's own copy of c; 0 or an error
 * (WEFT_ENOTFOUND when it holds no such capability). */
static inline int weft_cap_drop(const weft_cap *c)
{
	weft_buf b = {0};
	int32_t rc = weft_put_cap(&b, c);
	if (rc == 0)
		rc = weft_len_(&b) < 0 ? WEFT_EINVAL : weft_sys_cap_drop(b.ptr, weft_len_(&b));
	weft_buf_free(&b);
	return rc;
}

/* weft_self reads the process's own address (text) into out (replacing its
 * contents); its length or an error. */
static inline int32_t weft_self(weft_buf *out)
{
	return weft_read_grow_(weft_sys_self_read, out, 64);
}

/* weft_log writes the NUL-terminated line s to the node's log at level
 * (WEFT_LOG_DEBUG .. WEFT_LOG_ERROR). No formatting: build the line first. */
static inline void weft_log(int level, const char *s)
{
	weft_bytes b = weft_str(s);
	weft_sys_log(level, b.ptr, b.len > INT32_MAX ? INT32_MAX : (int32_t)b.len);
}

/* weft_last_error reads the text of the last error into out (replacing its
 * contents); its length or an error. */
static inline int32_t weft_last_error(weft_buf *out)
{
	return weft_read_grow_(weft_sys_last_error, out, 64);
}

#endif /* WEFT_H */
