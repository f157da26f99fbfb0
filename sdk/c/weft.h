/*
 * weft.h: the weft guest ABI, versions 1 and 2, for C (C99, clang --target=wasm32-wasi).
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
 * The store (databases and drives, docs/abi.md "The store") has typed
 * functions, weft_kv_get, weft_file_write, ..., below the raw weft_store.
 *
 * Version 2 adds answering a request later: weft_defer and
 * weft_respond_deferred. A module that calls them declares version 2 with
 * WEFT_ABI_V2 (in place of WEFT_ABI_V1, or beside it).
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
#define WEFT_ENONE (-4)           /* no state, no blob, no such key (kv_get), no kept store result */
#define WEFT_ELIMIT (-5)          /* a limit was reached: sizes, quota (also: out of memory here) */
#define WEFT_EPERM (-6)           /* capability not held, or not permitted */
#define WEFT_ENOTFOUND (-7)       /* no such process or module; no such database, drive, file or directory */
#define WEFT_EEXIST (-8)          /* a process of that name exists; a file or directory is in the way */
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
 * export, never called). Every module needs it or WEFT_ABI_V2. */
#define WEFT_ABI_V1                                          \
	WEFT_EXPORT("weft_abi_v1") void weft_abi_v1(void) {} \
	typedef int weft_abi_v1_declared_

/* WEFT_ABI_V2; at file scope declares ABI version 2 (the `weft_abi_v2`
 * export, never called), which a module that calls weft_defer or
 * weft_respond_deferred needs: the node refuses one that imports them
 * without it, naming the import and WEFT_ABI_V2's export. A module may
 * declare both versions; one that declares version 2 only is refused by a
 * node that speaks version 1 only. */
#define WEFT_ABI_V2                                          \
	WEFT_EXPORT("weft_abi_v2") void weft_abi_v2(void) {} \
	typedef int weft_abi_v2_declared_

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
/* Perform one encoded store op; its result's length (copied to out when at
 * most outcap, else kept for store_result), or an error. */
WEFT_IMPORT_("store") int32_t weft_sys_store(const uint8_t *ptr, int32_t len, uint8_t *out, int32_t outcap);
/* Copy the result the last store call kept; full length, or WEFT_ENONE. */
WEFT_IMPORT_("store_result") int32_t weft_sys_store_result(uint8_t *ptr, int32_t cap);

/* Version 2 (WEFT_ABI_V2). A module imports a function only if it calls
 * it, so these cost a module of version 1 nothing. */
/* Take the request being handled off the process's hands; a token (> 0) or an error. */
WEFT_IMPORT_("defer") int64_t weft_sys_defer(void);
/* Answer the request a token stands for with an encoded response; 0 or an error. */
WEFT_IMPORT_("respond_deferred") int32_t weft_sys_respond_deferred(int64_t token, const uint8_t *ptr, int32_t len);

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

/* weft_response is an answer to the request being handled (weft_respond)
 * or to a deferred one (weft_respond_deferred); fields as in weft_request. */
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
 * answered (or deferred) already; or another error. */
static inline int weft_respond(const weft_response *r)
{
	weft_buf b = {0};
	int32_t rc = weft_encode_response(&b, r);
	if (rc == 0)
		rc = weft_len_(&b) < 0 ? WEFT_EINVAL : weft_sys_respond(b.ptr, weft_len_(&b));
	weft_buf_free(&b);
	return rc;
}

/* weft_defer takes the request being handled off the process's hands, to
 * answer it later with weft_respond_deferred, while the process takes and
 * answers other messages (docs/abi.md, "Version 2: answering a request
 * later"). Its token (> 0; the instance never gives the same one twice),
 * or WEFT_ENOREQUEST when there is no request being handled, it expects
 * no response, or it was answered or deferred already; WEFT_ELIMIT when
 * the process holds max_pending_requests deferred requests already;
 * WEFT_ESTOPPED. After it weft_respond no longer answers that request:
 * keep the token where the answer will find it, such as in the context of
 * a request sent on its behalf (weft_put_u64, weft_get_u64). The
 * requester's timeout still runs. Needs WEFT_ABI_V2. */
static inline int64_t weft_defer(void)
{
	return weft_sys_defer();
}

/* weft_respond_deferred answers the request token stands for with r,
 * once. 0 (also when the requester's timeout has passed: the node drops
 * the answer), or WEFT_ENOREQUEST when the token was answered already or
 * weft_defer did not return it; after WEFT_EINVAL, WEFT_ETOOLARGE or
 * WEFT_ENOCAPABILITY the request is still owed: answer it again.
 * Needs WEFT_ABI_V2. */
static inline int weft_respond_deferred(int64_t token, const weft_response *r)
{
	weft_buf b = {0};
	int32_t rc = weft_encode_response(&b, r);
	if (rc == 0)
		rc = weft_len_(&b) < 0 ? WEFT_EINVAL : weft_sys_respond_deferred(token, b.ptr, weft_len_(&b));
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

/* ------------------------------------------------------------------------ */
/* The store (docs/abi.md, "The store"): the package's key-value databases   */
/* and file drives. Every operation is one store op; results are read into   */
/* a weft_buf the caller owns (its contents replaced, its capacity kept, so  */
/* that a loop reusing one buffer does not allocate). A result larger than   */
/* the buffer is fetched with store_result after growing it.                 */

/* Store ops (weft_store_op.op). */
#define WEFT_STORE_KV_OPEN 1       /* create-or-open a database of the own package */
#define WEFT_STORE_KV_GET 2        /* a key's value */
#define WEFT_STORE_KV_SET 3        /* set a key */
#define WEFT_STORE_KV_DELETE 4     /* delete a key (missing is fine) */
#define WEFT_STORE_KV_SCAN 5       /* pairs under a prefix */
#define WEFT_STORE_KV_TX 6         /* a transaction: all of its writes or none */
#define WEFT_STORE_KV_DROP 7       /* delete a database of the own package */
#define WEFT_STORE_KV_LIST 8       /* names of the own package's databases */
#define WEFT_STORE_DRIVE_OPEN 16   /* create-or-open a drive of the own package */
#define WEFT_STORE_DRIVE_LIST 17   /* names of the own package's drives */
#define WEFT_STORE_DRIVE_REMOVE 18 /* delete a drive of the own package, with its files */
#define WEFT_STORE_FILE_WRITE 19   /* write a file (WEFT_WRITE_*) */
#define WEFT_STORE_FILE_READ 20    /* read a file (WEFT_READ_*) */
#define WEFT_STORE_DIR_LIST 21     /* a directory's entries */
#define WEFT_STORE_STAT 22         /* one entry */
#define WEFT_STORE_MKDIR 23        /* make a directory and its parents */
#define WEFT_STORE_RENAME 24       /* rename a file or directory */
#define WEFT_STORE_REMOVE 25       /* remove a file or directory (WEFT_REMOVE_*) */

/* Store op flags. */
#define WEFT_WRITE_WHOLE 0      /* file_write: replace the file atomically */
#define WEFT_WRITE_APPEND 1     /* file_write: append */
#define WEFT_WRITE_AT 2         /* file_write: write at offset */
#define WEFT_READ_WHOLE 0       /* file_read: the whole file */
#define WEFT_READ_RANGE 1       /* file_read: length bytes from offset */
#define WEFT_REMOVE_ONE 0       /* remove: a file or an empty directory */
#define WEFT_REMOVE_RECURSIVE 1 /* remove: a directory and everything in it */

/* Transaction write kinds. */
#define WEFT_TX_SET 1
#define WEFT_TX_DELETE 2

/* weft_store_op is one store op before encoding. Zero fields are empty;
 * the fields an op does not use must stay so (else WEFT_EINVAL). */
typedef struct {
	uint8_t op;         /* WEFT_STORE_* */
	uint8_t flags;      /* WEFT_WRITE_*, WEFT_READ_*, WEFT_REMOVE_*; else 0 */
	weft_bytes package; /* "package:publisher" owning name; empty for the caller's own */
	weft_bytes name;    /* the database or drive */
	weft_bytes key;     /* databases: key (kv_scan: prefix); drives: path */
	weft_bytes value;   /* databases: value (kv_scan: key to continue after; kv_tx: a transaction); drives: data (rename: new path) */
	uint64_t offset;    /* drives: where a WEFT_WRITE_AT write or a WEFT_READ_RANGE read starts */
	uint64_t length;    /* WEFT_READ_RANGE: bytes; kv_scan: most pairs, 0 for as many as allowed */
} weft_store_op;

/* weft_store_op_size_ returns the encoded size of op, or 0 when a field is
 * longer than a u32 can say. */
static inline size_t weft_store_op_size_(const weft_store_op *op)
{
	if ((uint64_t)op->package.len > UINT32_MAX || (uint64_t)op->name.len > UINT32_MAX ||
	    (uint64_t)op->key.len > UINT32_MAX || (uint64_t)op->value.len > UINT32_MAX)
		return 0;
	size_t n = 4 + 16 + 16, parts[4] = {op->package.len, op->name.len, op->key.len, op->value.len};
	for (int i = 0; i < 4; i++) {
		if (parts[i] > SIZE_MAX - n)
			return 0;
		n += parts[i];
	}
	return n;
}

/* weft_encode_store_op appends the encoding of op to b: u8 op, u8 flags,
 * u16 reserved, str package, str name, bytes key, bytes value, u64 offset,
 * u64 length. 0 or an error. */
static inline int weft_encode_store_op(weft_buf *b, const weft_store_op *op)
{
	size_t n = weft_store_op_size_(op);
	if (n == 0 || n > SIZE_MAX - b->len)
		return WEFT_EINVAL;
	int rc = weft_buf_reserve(b, b->len + n);
	uint8_t head[4] = {op->op, op->flags, 0, 0};
	if (rc == 0) rc = weft_buf_append(b, head, sizeof head);
	if (rc == 0) rc = weft_put_bytes(b, op->package);
	if (rc == 0) rc = weft_put_bytes(b, op->name);
	if (rc == 0) rc = weft_put_bytes(b, op->key);
	if (rc == 0) rc = weft_put_bytes(b, op->value);
	if (rc == 0) rc = weft_put_u64(b, op->offset);
	if (rc == 0) rc = weft_put_u64(b, op->length);
	return rc;
}

/* weft_store_op_decode decodes the store op p[0:len] into *op (whose
 * fields then point into p): for a process that receives ops, as a
 * driver or a test probe does. 0, or WEFT_EINVAL when a length runs past
 * the end or bytes trail (op is zeroed then). Whether op and flags make
 * sense is the node's to say; the reserved u16 is ignored. */
static inline int weft_store_op_decode(weft_store_op *op, const uint8_t *p, size_t len)
{
	weft_reader r = weft_reader_of(weft_bytes_of(p, len));
	op->op = weft_get_u8(&r);
	op->flags = weft_get_u8(&r);
	weft_get_u16(&r); /* reserved */
	op->package = weft_get_bytes(&r);
	op->name = weft_get_bytes(&r);
	op->key = weft_get_bytes(&r);
	op->value = weft_get_bytes(&r);
	op->offset = weft_get_u64(&r);
	op->length = weft_get_u64(&r);
	if (!r.err && r.off != r.len)
		r.err = WEFT_EINVAL;
	if (r.err)
		memset(op, 0, sizeof *op);
	return r.err;
}

/* weft_store_raw performs the encoded store op p[0:len] and reads its
 * result into out (replacing its contents; out may be NULL for an op
 * whose result is not wanted). The result's length, or an error. A
 * result larger than out's capacity is read with store_result once out
 * has grown. */
static inline int32_t weft_store_raw(const uint8_t *p, size_t len, weft_buf *out)
{
	if (len > INT32_MAX)
		return WEFT_EINVAL;
	int32_t cap = 0;
	uint8_t *dst = NULL;
	if (out) {
		out->len = 0;
		cap = out->cap > INT32_MAX ? INT32_MAX : (int32_t)out->cap;
		dst = out->ptr;
	}
	int32_t n = weft_sys_store(p, (int32_t)len, dst, cap);
	if (n < 0 || !out)
		return n;
	if (n <= cap) {
		out->len = (size_t)n;
		return n;
	}
	return weft_read_grow_(weft_sys_store_result, out, (size_t)n);
}

/* weft_store encodes op, performs it and reads its result into out
 * (replacing its contents; NULL when not wanted). The result's length
 * (0 for ops without one), or an error: WEFT_ENONE (kv_get of a missing
 * key), WEFT_EPERM (capability not held), WEFT_ENOTFOUND, WEFT_EEXIST,
 * WEFT_ELIMIT, WEFT_EINVAL, ...; weft_last_error says more. */
static inline int32_t weft_store(const weft_store_op *op, weft_buf *out)
{
	weft_buf b = {0};
	int32_t rc = weft_encode_store_op(&b, op);
	if (rc == 0)
		rc = weft_store_raw(b.ptr, b.len, out);
	weft_buf_free(&b);
	return rc;
}

/* weft_store_none_ performs op, which has no result: 0 or an error. */
static inline int weft_store_none_(const weft_store_op *op)
{
	int32_t rc = weft_store(op, NULL);
	return rc < 0 ? rc : 0;
}

/* weft_db names a database: its package ("package:publisher"; empty for
 * the caller's own) and its name (1-64 bytes of [a-z0-9-]). */
typedef struct {
	weft_bytes package;
	weft_bytes name;
} weft_db;

/* weft_drive names a drive, as weft_db a database. */
typedef struct {
	weft_bytes package;
	weft_bytes name;
} weft_drive;

/* weft_db_of returns database name of package (NULL or "" for the
 * caller's own package). */
static inline weft_db weft_db_of(const char *package, const char *name)
{
	weft_db d;
	d.package = weft_str(package);
	d.name = weft_str(name);
	return d;
}

/* weft_drive_of returns drive name of package (NULL or "" for the
 * caller's own package). */
static inline weft_drive weft_drive_of(const char *package, const char *name)
{
	weft_drive d;
	d.package = weft_str(package);
	d.name = weft_str(name);
	return d;
}

/* weft_store_op_of_ returns an op on package/name with every other field
 * empty. */
static inline weft_store_op weft_store_op_of_(uint8_t code, weft_bytes package, weft_bytes name)
{
	weft_store_op op;
	memset(&op, 0, sizeof op);
	op.op = code;
	op.package = package;
	op.name = name;
	return op;
}

/* --- Databases ---------------------------------------------------------- */

/* weft_kv_open creates database db of the caller's own package when
 * missing (every process of the package then holds its read and write
 * capabilities), or gives the caller those capabilities when it lacks
 * them. 0 or an error (WEFT_EPERM for another package's database). */
static inline int weft_kv_open(const weft_db *db)
{
	weft_store_op op = weft_store_op_of_(WEFT_STORE_KV_OPEN, db->package, db->name);
	return weft_store_none_(&op);
}

/* weft_kv_get reads key's value into value (replacing its contents). Its
 * length, WEFT_ENONE when db has no such key, or another error. Needs
 * db's read capability. */
static inline int32_t weft_kv_get(const weft_db *db, weft_bytes key, weft_buf *value)
{
	weft_store_op op = weft_store_op_of_(WEFT_STORE_KV_GET, db->package, db->name);
	op.key = key;
	return weft_store(&op, value);
}

/* weft_kv_set sets key (1-1024 bytes) to value (at most 1 MiB). 0 or an
 * error. Needs db's write capability. */
static inline int weft_kv_set(const weft_db *db, weft_bytes key, weft_bytes value)
{
	weft_store_op op = weft_store_op_of_(WEFT_STORE_KV_SET, db->package, db->name);
	op.key = key;
	op.value = value;
	return weft_store_none_(&op);
}

/* weft_kv_delete deletes key; a missing key is not an error. 0 or an
 * error. Needs db's write capability. */
static inline int weft_kv_delete(const weft_db *db, weft_bytes key)
{
	weft_store_op op = weft_store_op_of_(WEFT_STORE_KV_DELETE, db->package, db->name);
	op.key = key;
	return weft_store_none_(&op);
}

/* weft_kv_scan reads into pairs (replacing its contents) the encoded pairs
 * whose keys start with prefix and sort after the key after (empty: from
 * the first), at most max of them (0: as many as allowed, up to 1,000
 * pairs and 16 MiB). Walk them with weft_kv_pairs_decode and
 * weft_kv_pairs_next; when more is set, scan again with after = the last
 * key. The result's length or an error. Needs db's read capability. */
static inline int32_t weft_kv_scan(const weft_db *db, weft_bytes prefix, weft_bytes after, uint64_t max,
				   weft_buf *pairs)
{
	weft_store_op op = weft_store_op_of_(WEFT_STORE_KV_SCAN, db->package, db->name);
	op.key = prefix;
	op.value = after;
	op.length = max;
	return weft_store(&op, pairs);
}

/* weft_kv_pairs is a decoded, validated kv_scan result: count pairs
 * (bytes key, bytes value each) in raw, and more (1 when further pairs
 * match). */
typedef struct {
	uint32_t count;
	int more;
	weft_bytes raw;
} weft_kv_pairs;

/* weft_kv_pairs_decode decodes and validates the kv_scan result b (u32
 * count, each bytes key and bytes value, u8 more) into *ps, which points
 * into b. 0, or WEFT_EINVAL (ps zeroed) when a length or count runs past
 * the end, more is not 0 or 1, or bytes trail. */
static inline int weft_kv_pairs_decode(weft_bytes b, weft_kv_pairs *ps)
{
	weft_reader r = weft_reader_of(b);
	memset(ps, 0, sizeof *ps);
	uint32_t n = weft_get_u32(&r);
	if (r.err || n > (r.len - r.off) / 9) /* 8 bytes of lengths each, and more */
		return WEFT_EINVAL;
	size_t start = r.off;
	for (uint32_t i = 0; i < n && !r.err; i++) {
		weft_get_bytes(&r);
		weft_get_bytes(&r);
	}
	size_t end = r.off;
	uint8_t more = weft_get_u8(&r);
	if (r.err || more > 1 || r.off != r.len)
		return WEFT_EINVAL;
	ps->count = n;
	ps->more = more;
	ps->raw = weft_bytes_of(r.p + start, end - start);
	return 0;
}

/* weft_kv_pairs_next takes the next pair off ps into *key and *value
 * (pointing into the result): 1 when it did, 0 when ps is used up. ps must
 * come from weft_kv_pairs_decode. */
static inline int weft_kv_pairs_next(weft_kv_pairs *ps, weft_bytes *key, weft_bytes *value)
{
	if (ps->count == 0)
		return 0;
	weft_reader r = weft_reader_of(ps->raw);
	*key = weft_get_bytes(&r);
	*value = weft_get_bytes(&r);
	if (r.err) {
		ps->count = 0;
		return 0;
	}
	ps->count--;
	ps->raw = weft_bytes_of(ps->raw.ptr + r.off, ps->raw.len - r.off);
	return 1;
}

/* weft_kv_tx_init empties tx and starts a transaction in it (a u32 count
 * of 0). Add writes with weft_kv_tx_set and weft_kv_tx_delete, commit it
 * with weft_kv_tx. 0 or WEFT_ELIMIT. */
static inline int weft_kv_tx_init(weft_buf *tx)
{
	tx->len = 0;
	return weft_put_u32(tx, 0);
}

/* weft_kv_tx_add_ appends one write (u8 kind, 3 reserved bytes, bytes
 * key, bytes value) to the transaction tx and counts it. */
static inline int weft_kv_tx_add_(weft_buf *tx, uint8_t kind, weft_bytes key, weft_bytes value)
{
	if (tx->len < 4)
		return WEFT_EINVAL; /* not started with weft_kv_tx_init */
	uint32_t n = (uint32_t)tx->ptr[0] | (uint32_t)tx->ptr[1] << 8 | (uint32_t)tx->ptr[2] << 16 |
		     (uint32_t)tx->ptr[3] << 24;
	if (n == UINT32_MAX)
		return WEFT_ELIMIT;
	size_t len = tx->len;
	uint8_t head[4] = {kind, 0, 0, 0};
	int rc = weft_buf_append(tx, head, sizeof head);
	if (rc == 0) rc = weft_put_bytes(tx, key);
	if (rc == 0) rc = weft_put_bytes(tx, value);
	if (rc < 0) {
		tx->len = len; /* leave tx as it was */
		return rc;
	}
	n++;
	for (int i = 0; i < 4; i++)
		tx->ptr[i] = (uint8_t)(n >> (8 * i));
	return 0;
}

/* weft_kv_tx_set adds "set key to value" to the transaction tx. 0 or an
 * error. */
static inline int weft_kv_tx_set(weft_buf *tx, weft_bytes key, weft_bytes value)
{
	return weft_kv_tx_add_(tx, WEFT_TX_SET, key, value);
}

/* weft_kv_tx_delete adds "delete key" to the transaction tx. 0 or an
 * error. */
static inline int weft_kv_tx_delete(weft_buf *tx, weft_bytes key)
{
	return weft_kv_tx_add_(tx, WEFT_TX_DELETE, key, weft_bytes_of(NULL, 0));
}

/* weft_kv_tx commits the encoded transaction tx (from weft_kv_tx_init
 * and friends: at most 10,000 writes and 64 MiB): every write of it, or
 * none. 0 or an error. Needs db's write capability. */
static inline int weft_kv_tx(const weft_db *db, weft_bytes tx)
{
	weft_store_op op = weft_store_op_of_(WEFT_STORE_KV_TX, db->package, db->name);
	op.value = tx;
	return weft_store_none_(&op);
}

/* weft_kv_drop deletes database db of the caller's own package and
 * revokes every copy of its capabilities. 0 or an error. Needs db's write
 * capability. */
static inline int weft_kv_drop(const weft_db *db)
{
	weft_store_op op = weft_store_op_of_(WEFT_STORE_KV_DROP, db->package, db->name);
	return weft_store_none_(&op);
}

/* weft_kv_list reads into names (replacing its contents) the encoded
 * names of the databases of package (empty: the caller's own; another is
 * WEFT_EPERM). Walk them with weft_names_decode and weft_names_next. The
 * result's length or an error. */
static inline int32_t weft_kv_list(weft_bytes package, weft_buf *names)
{
	weft_store_op op = weft_store_op_of_(WEFT_STORE_KV_LIST, package, weft_bytes_of(NULL, 0));
	return weft_store(&op, names);
}

/* weft_names is a decoded, validated kv_list or drive_list result: count
 * names (str each) in raw. */
typedef struct {
	uint32_t count;
	weft_bytes raw;
} weft_names;

/* weft_names_decode decodes and validates the names b (u32 count, each
 * str) into *ns, which points into b. 0, or WEFT_EINVAL (ns zeroed) when a
 * length or count runs past the end or bytes trail. */
static inline int weft_names_decode(weft_bytes b, weft_names *ns)
{
	weft_reader r = weft_reader_of(b);
	memset(ns, 0, sizeof *ns);
	uint32_t n = weft_get_u32(&r);
	if (r.err || n > (r.len - r.off) / 4)
		return WEFT_EINVAL;
	size_t start = r.off;
	for (uint32_t i = 0; i < n && !r.err; i++)
		weft_get_bytes(&r);
	if (r.err || r.off != r.len)
		return WEFT_EINVAL;
	ns->count = n;
	ns->raw = weft_bytes_of(r.p + start, r.off - start);
	return 0;
}

/* weft_names_next takes the next name off ns into *name: 1 when it did, 0
 * when ns is used up. ns must come from weft_names_decode. */
static inline int weft_names_next(weft_names *ns, weft_bytes *name)
{
	if (ns->count == 0)
		return 0;
	weft_reader r = weft_reader_of(ns->raw);
	*name = weft_get_bytes(&r);
	if (r.err) {
		ns->count = 0;
		return 0;
	}
	ns->count--;
	ns->raw = weft_bytes_of(ns->raw.ptr + r.off, ns->raw.len - r.off);
	return 1;
}

/* --- Drives ------------------------------------------------------------- */

/* weft_drive_open creates drive d of the caller's own package when
 * missing, or gives the caller its capabilities, as weft_kv_open. 0 or an
 * error. */
static inline int weft_drive_open(const weft_drive *d)
{
	weft_store_op op = weft_store_op_of_(WEFT_STORE_DRIVE_OPEN, d->package, d->name);
	return weft_store_none_(&op);
}

/* weft_drive_list reads into names (replacing its contents) the encoded
 * names of the drives of package (empty: the caller's own), as
 * weft_kv_list. The result's length or an error. */
static inline int32_t weft_drive_list(weft_bytes package, weft_buf *names)
{
	weft_store_op op = weft_store_op_of_(WEFT_STORE_DRIVE_LIST, package, weft_bytes_of(NULL, 0));
	return weft_store(&op, names);
}

/* weft_drive_remove deletes drive d of the caller's own package with its
 * files and revokes its capabilities. 0 or an error. Needs d's write
 * capability. */
static inline int weft_drive_remove(const weft_drive *d)
{
	weft_store_op op = weft_store_op_of_(WEFT_STORE_DRIVE_REMOVE, d->package, d->name);
	return weft_store_none_(&op);
}

/* weft_file_write writes data (at most 64 MiB) to the file at path in d,
 * making parent directories: how WEFT_WRITE_WHOLE replaces the file
 * atomically, WEFT_WRITE_APPEND appends, WEFT_WRITE_AT writes at offset
 * (offset must be 0 otherwise). 0 or an error (WEFT_ELIMIT past the
 * package's quota, nothing changed). Needs d's write capability. */
static inline int weft_file_write(const weft_drive *d, weft_bytes path, weft_bytes data, uint8_t how,
				  uint64_t offset)
{
	weft_store_op op = weft_store_op_of_(WEFT_STORE_FILE_WRITE, d->package, d->name);
	op.flags = how;
	op.key = path;
	op.value = data;
	op.offset = offset;
	return weft_store_none_(&op);
}

/* weft_file_read reads the file at path in d into data (replacing its
 * contents): how WEFT_READ_WHOLE the whole file (at most 64 MiB),
 * WEFT_READ_RANGE length bytes from offset (short or empty past the end;
 * offset and length must be 0 otherwise). The length read, or an error.
 * Needs d's read capability. */
static inline int32_t weft_file_read(const weft_drive *d, weft_bytes path, uint8_t how, uint64_t offset,
				     uint64_t length, weft_buf *data)
{
	weft_store_op op = weft_store_op_of_(WEFT_STORE_FILE_READ, d->package, d->name);
	op.flags = how;
	op.key = path;
	op.offset = offset;
	op.length = length;
	return weft_store(&op, data);
}

/* weft_entry is a decoded file or directory. */
typedef struct {
	weft_bytes name; /* base name; empty for a drive's root */
	int dir;         /* 1 for a directory */
	uint64_t size;   /* bytes of a file; 0 for a directory */
	int64_t mtime;   /* last modification, nanoseconds since 1970 UTC */
} weft_entry;

/* weft_get_entry_ reads one entry: str name, u8 dir (0 or 1), 3 reserved
 * bytes (ignored), u64 size, u64 modification time. */
static inline void weft_get_entry_(weft_reader *r, weft_entry *e)
{
	e->name = weft_get_bytes(r);
	uint8_t dir = weft_get_u8(r);
	weft_take(r, 3); /* reserved */
	e->size = weft_get_u64(r);
	e->mtime = (int64_t)weft_get_u64(r);
	if (dir > 1)
		r->err = WEFT_EINVAL;
	e->dir = dir;
}

/* weft_entry_decode decodes the stat result b into *e (whose name points
 * into b). 0, or WEFT_EINVAL (e zeroed) when it is short, its dir byte is
 * not 0 or 1, or bytes trail. */
static inline int weft_entry_decode(weft_bytes b, weft_entry *e)
{
	weft_reader r = weft_reader_of(b);
	weft_get_entry_(&r, e);
	if (!r.err && r.off != r.len)
		r.err = WEFT_EINVAL;
	if (r.err)
		memset(e, 0, sizeof *e);
	return r.err;
}

/* weft_entries is a decoded, validated dir_list result: count entries in
 * raw. */
typedef struct {
	uint32_t count;
	weft_bytes raw;
} weft_entries;

/* weft_entries_decode decodes and validates the dir_list result b (u32
 * count, then each entry) into *es, which points into b. 0, or WEFT_EINVAL
 * (es zeroed) when an entry is bad or short, a count runs past the end,
 * or bytes trail. */
static inline int weft_entries_decode(weft_bytes b, weft_entries *es)
{
	weft_reader r = weft_reader_of(b);
	memset(es, 0, sizeof *es);
	uint32_t n = weft_get_u32(&r);
	if (r.err || n > (r.len - r.off) / 24)
		return WEFT_EINVAL;
	size_t start = r.off;
	weft_entry e;
	for (uint32_t i = 0; i < n && !r.err; i++)
		weft_get_entry_(&r, &e);
	if (r.err || r.off != r.len)
		return WEFT_EINVAL;
	es->count = n;
	es->raw = weft_bytes_of(r.p + start, r.off - start);
	return 0;
}

/* weft_entries_next takes the next entry off es into *e: 1 when it did, 0
 * when es is used up. es must come from weft_entries_decode. */
static inline int weft_entries_next(weft_entries *es, weft_entry *e)
{
	if (es->count == 0)
		return 0;
	weft_reader r = weft_reader_of(es->raw);
	weft_get_entry_(&r, e);
	if (r.err) {
		es->count = 0;
		return 0;
	}
	es->count--;
	es->raw = weft_bytes_of(es->raw.ptr + r.off, es->raw.len - r.off);
	return 1;
}

/* weft_dir_list reads into entries (replacing its contents) the encoded
 * entries of the directory at path in d ("" or "/" for the root), sorted
 * by name. Walk them with weft_entries_decode and weft_entries_next. The
 * result's length or an error. Needs d's read capability. */
static inline int32_t weft_dir_list(const weft_drive *d, weft_bytes path, weft_buf *entries)
{
	weft_store_op op = weft_store_op_of_(WEFT_STORE_DIR_LIST, d->package, d->name);
	op.key = path;
	return weft_store(&op, entries);
}

/* weft_stat reads the encoded entry of path in d into out (replacing its
 * contents) and, when e is not NULL, decodes it into *e (its name points
 * into out). The result's length, or an error (WEFT_ENOTFOUND when
 * nothing is at path; WEFT_EINVAL when the result does not decode). Needs
 * d's read capability. */
static inline int32_t weft_stat(const weft_drive *d, weft_bytes path, weft_buf *out, weft_entry *e)
{
	weft_store_op op = weft_store_op_of_(WEFT_STORE_STAT, d->package, d->name);
	op.key = path;
	int32_t n = weft_store(&op, out);
	if (n >= 0 && e) {
		int rc = weft_entry_decode(weft_buf_bytes(out), e);
		if (rc < 0)
			return rc;
	}
	return n;
}

/* weft_mkdir makes the directory at path in d and its parents; an
 * existing directory is fine. 0 or an error (WEFT_EEXIST when a file is
 * in the way). Needs d's write capability. */
static inline int weft_mkdir(const weft_drive *d, weft_bytes path)
{
	weft_store_op op = weft_store_op_of_(WEFT_STORE_MKDIR, d->package, d->name);
	op.key = path;
	return weft_store_none_(&op);
}

/* weft_rename renames from to to, both paths in d. 0 or an error. Needs
 * d's write capability. */
static inline int weft_rename(const weft_drive *d, weft_bytes from, weft_bytes to)
{
	weft_store_op op = weft_store_op_of_(WEFT_STORE_RENAME, d->package, d->name);
	op.key = from;
	op.value = to;
	return weft_store_none_(&op);
}

/* weft_remove removes the file or directory at path in d: how
 * WEFT_REMOVE_ONE a file or an empty directory, WEFT_REMOVE_RECURSIVE a
 * directory and everything in it. 0 or an error. Needs d's write
 * capability. */
static inline int weft_remove(const weft_drive *d, weft_bytes path, uint8_t how)
{
	weft_store_op op = weft_store_op_of_(WEFT_STORE_REMOVE, d->package, d->name);
	op.flags = how;
	op.key = path;
	return weft_store_none_(&op);
}

/* --- Store capabilities ------------------------------------------------- */
/* A process shares a database or a drive by attaching its capability to a  */
/* message (weft_request.caps); docs/abi.md, "Capabilities", gives them.     */

/* The issuers of store capabilities, on the process's own node. */
#define WEFT_KV_ISSUER "our@kv:sys:weft"
#define WEFT_VFS_ISSUER "our@vfs:sys:weft"

/* Kinds of store capability: a write capability does not let its holder
 * read. */
#define WEFT_CAP_READ "read"
#define WEFT_CAP_WRITE "write"

/* weft_put_json_safe_ appends s when it needs no escape inside a JSON
 * string (names and packages never do); WEFT_EINVAL otherwise. */
static inline int weft_put_json_safe_(weft_buf *b, weft_bytes s)
{
	for (size_t i = 0; i < s.len; i++)
		if (s.ptr[i] < 0x20 || s.ptr[i] == '"' || s.ptr[i] == '\\' || s.ptr[i] >= 0x80)
			return WEFT_EINVAL;
	return weft_buf_append(b, s.ptr, s.len);
}

/* weft_put_cap_package_ appends package to b, or for an empty one the
 * caller's own: the "package:publisher" of its address
 * node@name:package:publisher. 0 or an error. */
static inline int weft_put_cap_package_(weft_buf *b, weft_bytes package)
{
	if (package.len)
		return weft_put_json_safe_(b, package);
	weft_buf self = {0};
	int32_t n = weft_self(&self);
	int rc = n < 0 ? n : WEFT_EINVAL;
	if (n > 0) {
		const uint8_t *end = self.ptr + self.len;
		const uint8_t *at = (const uint8_t *)memchr(self.ptr, '@', self.len);
		const uint8_t *colon = at ? (const uint8_t *)memchr(at, ':', (size_t)(end - at)) : NULL;
		if (colon && colon + 1 < end)
			rc = weft_put_json_safe_(b, weft_bytes_of(colon + 1, (size_t)(end - colon - 1)));
	}
	weft_buf_free(&self);
	return rc;
}

/* weft_kind_ok_ reports whether kind is "read" or "write". */
static inline int weft_kind_ok_(const char *kind)
{
	return kind && (strcmp(kind, WEFT_CAP_READ) == 0 || strcmp(kind, WEFT_CAP_WRITE) == 0);
}

/* weft_append_str_ appends the NUL-terminated s to b. */
static inline int weft_append_str_(weft_buf *b, const char *s)
{
	return weft_buf_append(b, s, strlen(s));
}

/* weft_kv_cap makes in *c the capability of kind (WEFT_CAP_READ or
 * WEFT_CAP_WRITE) on database db: issuer WEFT_KV_ISSUER, params
 * {"db":"DB","kind":"KIND","package":"PKG"} (canonical JSON) written to
 * params (replacing its contents; c->params points into it). An empty
 * db->package is the caller's own, read from its address. 0, or
 * WEFT_EINVAL for another kind or a name that would need escaping in
 * JSON, or another error. */
static inline int weft_kv_cap(weft_cap *c, weft_buf *params, const weft_db *db, const char *kind)
{
	if (!weft_kind_ok_(kind))
		return WEFT_EINVAL;
	params->len = 0;
	int rc = weft_append_str_(params, "{\"db\":\"");
	if (rc == 0) rc = weft_put_json_safe_(params, db->name);
	if (rc == 0) rc = weft_append_str_(params, "\",\"kind\":\"");
	if (rc == 0) rc = weft_append_str_(params, kind);
	if (rc == 0) rc = weft_append_str_(params, "\",\"package\":\"");
	if (rc == 0) rc = weft_put_cap_package_(params, db->package);
	if (rc == 0) rc = weft_append_str_(params, "\"}");
	if (rc < 0) {
		params->len = 0;
		return rc;
	}
	c->issuer = weft_str(WEFT_KV_ISSUER);
	c->params = weft_buf_bytes(params);
	return 0;
}

/* weft_drive_cap makes in *c the capability of kind on drive d: issuer
 * WEFT_VFS_ISSUER, params {"drive":"/PKG/DRIVE","kind":"KIND"} written to
 * params, as weft_kv_cap. */
static inline int weft_drive_cap(weft_cap *c, weft_buf *params, const weft_drive *d, const char *kind)
{
	if (!weft_kind_ok_(kind))
		return WEFT_EINVAL;
	params->len = 0;
	int rc = weft_append_str_(params, "{\"drive\":\"/");
	if (rc == 0) rc = weft_put_cap_package_(params, d->package);
	if (rc == 0) rc = weft_append_str_(params, "/");
	if (rc == 0) rc = weft_put_json_safe_(params, d->name);
	if (rc == 0) rc = weft_append_str_(params, "\",\"kind\":\"");
	if (rc == 0) rc = weft_append_str_(params, kind);
	if (rc == 0) rc = weft_append_str_(params, "\"}");
	if (rc < 0) {
		params->len = 0;
		return rc;
	}
	c->issuer = weft_str(WEFT_VFS_ISSUER);
	c->params = weft_buf_bytes(params);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Timers, through the in-tree timer driver (docs/drivers.md, "The timer    */
/* driver").                                                                */

/* The timer driver's address, and the metadata of the request that
 * delivers a firing. */
#define WEFT_TIMER_DRIVER "our@timer:drivers:weft"
#define WEFT_TIMER_METADATA "timer"

/* WEFT_TIMER_ACK_NS bounds how long weft_timer_set waits for the driver
 * to say the timer is stored: 10 s. */
#define WEFT_TIMER_ACK_NS 10000000000ull

/* weft_put_u64_dec_ appends v in decimal. */
static inline int weft_put_u64_dec_(weft_buf *b, uint64_t v)
{
	char d[20];
	size_t n = 0;
	do {
		d[sizeof d - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return weft_buf_append(b, d + sizeof d - n, n);
}

/* weft_timer_set asks the timer driver for a durable timer that fires
 * in_ns nanoseconds from now, and returns once the driver has stored it:
 * from then on it outlives restarts of the driver and of the node, and
 * fires once, late if it must. When it fires, the driver sends this
 * process a request that expects no response, with metadata
 * WEFT_TIMER_METADATA and the firing as its JSON body
 * ({"id","due","fired","late_ms","data"}): see weft_is_timer_firing.
 *
 * id names the timer among this process's (empty: the driver names it);
 * data_json is a JSON value handed back in the firing (empty for none),
 * sent as it is. id must need no escaping in JSON (WEFT_EINVAL
 * otherwise). The process's messaging capability is attached, so that
 * the driver may deliver the firing; for the driver to reach the process
 * after a restart of the node, its package grants it in its manifest
 * ("grant_capabilities": ["timer:drivers:weft"]).
 *
 * On success (0) id_out holds the timer's id. When the driver refused
 * (an id already pending, too many timers, a bad data_json), id_out
 * holds its answer, {"error":"…"}, and WEFT_EINVAL is returned; a send
 * error (WEFT_ETIMEOUT … WEFT_ETOOLARGE) or another error otherwise. */
static inline int weft_timer_set(weft_bytes id, uint64_t in_ns, weft_bytes data_json, weft_buf *id_out)
{
	weft_buf body = {0}, self = {0};
	int rc = weft_append_str_(&body, "{\"op\":\"set\",\"ack\":true,\"in\":\"");
	if (rc == 0)
		rc = weft_put_u64_dec_(&body, in_ns);
	if (rc == 0)
		rc = weft_append_str_(&body, "ns\"");
	if (rc == 0 && id.len) {
		rc = weft_append_str_(&body, ",\"id\":\"");
		if (rc == 0)
			rc = weft_put_json_safe_(&body, id);
		if (rc == 0)
			rc = weft_append_str_(&body, "\"");
	}
	if (rc == 0 && data_json.len) {
		rc = weft_append_str_(&body, ",\"data\":");
		if (rc == 0)
			rc = weft_buf_append(&body, data_json.ptr, data_json.len);
	}
	if (rc == 0)
		rc = weft_append_str_(&body, "}");
	int32_t n = rc == 0 ? weft_self(&self) : rc;
	if (n < 0)
		rc = n;
	weft_message ans = {0};
	if (rc == 0) {
		weft_cap cap = {weft_buf_bytes(&self), weft_str("\"messaging\"")};
		weft_request r = {0};
		r.target = weft_str(WEFT_TIMER_DRIVER);
		r.body = weft_buf_bytes(&body);
		r.caps = &cap;
		r.ncaps = 1;
		r.expects_response = WEFT_TIMER_ACK_NS;
		rc = weft_send_and_await(&r, &ans);
	}
	if (rc == 0) {
		/* {"due":"…","id":"ID"} or {"error":"…"}, as the driver writes
		 * them: JSON, keys in order, an id that needed no escaping. */
		static const char key[] = "\"id\":\"";
		const size_t k = sizeof key - 1;
		weft_bytes b = ans.body;
		const uint8_t *v = NULL, *end = NULL;
		for (size_t i = 0; !v && b.len >= k && i <= b.len - k; i++)
			if (memcmp(b.ptr + i, key, k) == 0)
				v = b.ptr + i + k;
		if (v)
			end = (const uint8_t *)memchr(v, '"', (size_t)(b.ptr + b.len - v));
		id_out->len = 0;
		if (end && !(b.len > 9 && memcmp(b.ptr, "{\"error\":", 9) == 0))
			rc = weft_buf_append(id_out, v, (size_t)(end - v));
		else
			rc = weft_buf_append(id_out, b.ptr, b.len) < 0 ? WEFT_ELIMIT : WEFT_EINVAL;
	}
	weft_message_free(&ans);
	weft_buf_free(&self);
	weft_buf_free(&body);
	return rc;
}

/* weft_is_timer_firing reports whether m is a firing delivered by the
 * timer driver: a request from timer:drivers:weft with metadata
 * WEFT_TIMER_METADATA. Its body is the firing's JSON. */
static inline int weft_is_timer_firing(const weft_message *m)
{
	static const char drv[] = "@timer:drivers:weft";
	size_t n = sizeof drv - 1;
	return weft_is_request(m) && weft_bytes_eq(m->metadata, weft_str(WEFT_TIMER_METADATA)) &&
	       m->source.len > n && memcmp(m->source.ptr + m->source.len - n, drv, n) == 0;
}

#endif /* WEFT_H */
