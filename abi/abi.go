// Package abi owns the byte encodings of the guest ABI (docs/abi.md): the
// error codes and the message, request, response, spawn-spec and
// capability-list encodings. The Wasm host and the Go guest SDK share it,
// so it uses the standard library only and builds for GOOS=wasip1.
//
// Decoders are strict: unknown flag bits, non-zero reserved bytes, lengths
// past the end, invalid UTF-8 in a str field and trailing bytes are all
// errors (a *DecodeError naming the field). They never panic and take no
// copies: every []byte and string in a decoded value aliases the input,
// so the input must not be changed while the decoded value is in use.
// Copy the input first when it lives in memory someone else may write
// (a guest's linear memory, a reused read buffer).
package abi

import (
	"encoding/binary"
	"math/bits"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// Version is the newest ABI version this package encodes. Versions are
// additions, never changes: version 2 is version 1 with the functions
// defer and respond_deferred, so a node that speaks Version speaks every
// version from 1 to it, and a module declares each it was built for
// (export weft_abi_vN).
const Version = 2

// Error codes returned by the host functions.
const (
	EINVAL         int32 = -1
	ESTOPPED       int32 = -2
	ENOREQUEST     int32 = -3
	ENONE          int32 = -4
	ELIMIT         int32 = -5
	EPERM          int32 = -6
	ENOTFOUND      int32 = -7
	EEXIST         int32 = -8
	EINTERNAL      int32 = -9
	ETIMEOUT       int32 = -101
	EOFFLINE       int32 = -102
	ENOSUCHPROCESS int32 = -103
	ENOCAPABILITY  int32 = -104
	EMAILBOXFULL   int32 = -105
	EKILLED        int32 = -106
	ETOOLARGE      int32 = -107
)

// SendErrorCode is the code of a send error of the given error kind
// (1 timeout … 7 too_large): -100 - kind.
func SendErrorCode(kind uint8) int32 { return -100 - int32(kind) }

var errorNames = map[int32]string{
	EINVAL:         "WEFT_EINVAL",
	ESTOPPED:       "WEFT_ESTOPPED",
	ENOREQUEST:     "WEFT_ENOREQUEST",
	ENONE:          "WEFT_ENONE",
	ELIMIT:         "WEFT_ELIMIT",
	EPERM:          "WEFT_EPERM",
	ENOTFOUND:      "WEFT_ENOTFOUND",
	EEXIST:         "WEFT_EEXIST",
	EINTERNAL:      "WEFT_EINTERNAL",
	ETIMEOUT:       "WEFT_ETIMEOUT",
	EOFFLINE:       "WEFT_EOFFLINE",
	ENOSUCHPROCESS: "WEFT_ENOSUCHPROCESS",
	ENOCAPABILITY:  "WEFT_ENOCAPABILITY",
	EMAILBOXFULL:   "WEFT_EMAILBOXFULL",
	EKILLED:        "WEFT_EKILLED",
	ETOOLARGE:      "WEFT_ETOOLARGE",
}

// ErrorName returns the name docs/abi.md gives a code (WEFT_EINVAL, …),
// or "WEFT_E(n)" for a code it does not know.
func ErrorName(code int32) string {
	if s, ok := errorNames[code]; ok {
		return s
	}
	return "WEFT_E(" + strconv.Itoa(int(code)) + ")"
}

// Message kinds.
const (
	KindRequest  uint8 = 1
	KindResponse uint8 = 2
	KindError    uint8 = 3
)

// MaxErrorKind is the largest error kind (too_large).
const MaxErrorKind = 7

// Flag bits of a Message.
const (
	msgInherit       = 1 << 0
	msgWantsResponse = 1 << 1
	msgHasBlob       = 1 << 2
	msgFlags         = msgInherit | msgWantsResponse | msgHasBlob
)

// Flag bits of a Request and a Response.
const (
	outInherit = 1 << 0
	outHasBlob = 1 << 1
	outFlags   = outInherit | outHasBlob
)

// Capability is {issuer, params}: issuer an address
// node@name:package:publisher (node may be "our"), params JSON.
type Capability struct{ Issuer, Params string }

// Blob is a message's optional large payload.
type Blob struct {
	Mime  string
	Bytes []byte
}

// Message is a message as the node hands it to a guest (message_read).
// The blob's bytes are not part of it: blob_read copies them.
type Message struct {
	Kind          uint8 // KindRequest, KindResponse or KindError
	Inherit       bool
	WantsResponse bool // the sender of a request waits for a response
	HasBlob       bool
	ErrorKind     uint8 // 0, or on KindError 1 timeout … 7 too_large
	ID            uint64
	// ExpectsResponse is in nanoseconds; 0 when no response is expected.
	ExpectsResponse uint64
	Source, Target  string
	Body            []byte
	Metadata        string
	Context         []byte
	Capabilities    []Capability
	BlobMime        string
	BlobLen         uint32
	ErrorDetail     string
}

// Request is what a guest sends (send, send_and_await).
type Request struct {
	Inherit bool
	// ExpectsResponse is the timeout in nanoseconds; 0 for none.
	ExpectsResponse uint64
	Target          string
	Body            []byte
	Metadata        string
	Context         []byte
	Capabilities    []Capability
	Blob            *Blob
}

// Response is what a guest answers with (respond).
type Response struct {
	Inherit      bool
	Body         []byte
	Metadata     string
	Capabilities []Capability
	Blob         *Blob
}

// On-exit policies of a SpawnSpec.
const (
	OnExitNone    uint8 = 0
	OnExitRestart uint8 = 1
)

// SpawnSpec describes a child to spawn.
type SpawnSpec struct {
	Name     string // empty for a fresh one
	WasmPath string // relative to the package root
	OnExit   uint8  // OnExitNone or OnExitRestart
	Public   bool
	// Capabilities for the child; the parent must hold each.
	Capabilities []Capability
}

// DecodeError says which field of which encoding is wrong, and why.
type DecodeError struct {
	What   string // "message", "request", "response", "spawn spec", "caps"
	Field  string
	Reason string
}

func (e *DecodeError) Error() string {
	if e.Field == "" {
		return "abi: " + e.What + ": " + e.Reason
	}
	return "abi: " + e.What + ": " + e.Field + ": " + e.Reason
}

// ---- encoding

func appendU32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
func appendU64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }

// appendBytes and appendStr skip the append of an empty value: a Go
// guest would call memmove for it, and pay the CPU guard's check.
func appendBytes(b, v []byte) []byte {
	b = appendU32(b, uint32(len(v)))
	if len(v) == 0 {
		return b
	}
	return append(b, v...)
}

func appendStr(b []byte, v string) []byte {
	b = appendU32(b, uint32(len(v)))
	if len(v) == 0 {
		return b
	}
	return append(b, v...)
}

// AppendCap appends the encoding of one capability, str issuer then str
// params with no count: what cap_drop takes.
func AppendCap(b []byte, c Capability) []byte {
	b = appendStr(b, c.Issuer)
	return appendStr(b, c.Params)
}

// AppendCaps appends the caps encoding of cs to b.
func AppendCaps(b []byte, cs []Capability) []byte {
	b = appendU32(b, uint32(len(cs)))
	for i := range cs {
		b = appendStr(b, cs[i].Issuer)
		b = appendStr(b, cs[i].Params)
	}
	return b
}

// appendCaps is AppendCaps with its common case, none, inlined: a call
// costs a Go guest the CPU guard's check (docs/performance.md).
func appendCaps(b []byte, cs []Capability) []byte {
	if len(cs) == 0 {
		return append(b, 0, 0, 0, 0)
	}
	return AppendCaps(b, cs)
}

// AppendMessage appends the encoding of m to b. It writes what m says:
// flags from Inherit, WantsResponse and HasBlob, the blob fields as given.
func AppendMessage(b []byte, m *Message) []byte {
	var fl byte
	if m.Inherit {
		fl |= msgInherit
	}
	if m.WantsResponse {
		fl |= msgWantsResponse
	}
	if m.HasBlob {
		fl |= msgHasBlob
	}
	b = append(b, m.Kind, fl, m.ErrorKind, 0)
	b = appendU64(b, m.ID)
	b = appendU64(b, m.ExpectsResponse)
	b = appendStr(b, m.Source)
	b = appendStr(b, m.Target)
	b = appendBytes(b, m.Body)
	b = appendStr(b, m.Metadata)
	b = appendBytes(b, m.Context)
	b = appendCaps(b, m.Capabilities)
	b = appendStr(b, m.BlobMime)
	b = appendU32(b, m.BlobLen)
	return appendStr(b, m.ErrorDetail)
}

// AppendRequest appends the encoding of r to b; a non-nil Blob sets the
// blob flag.
func AppendRequest(b []byte, r *Request) []byte {
	b = appendOutHeader(b, r.Inherit, r.Blob)
	b = appendU64(b, r.ExpectsResponse)
	b = appendStr(b, r.Target)
	b = appendBytes(b, r.Body)
	b = appendStr(b, r.Metadata)
	b = appendBytes(b, r.Context)
	b = appendCaps(b, r.Capabilities)
	if r.Blob == nil {
		return b
	}
	return appendOutBlob(b, r.Blob)
}

// AppendResponse appends the encoding of r to b; a non-nil Blob sets the
// blob flag.
func AppendResponse(b []byte, r *Response) []byte {
	b = appendOutHeader(b, r.Inherit, r.Blob)
	b = appendBytes(b, r.Body)
	b = appendStr(b, r.Metadata)
	b = appendCaps(b, r.Capabilities)
	if r.Blob == nil {
		return b
	}
	return appendOutBlob(b, r.Blob)
}

// appendOutHeader appends the flags and reserved bytes that requests and
// responses start with.
func appendOutHeader(b []byte, inherit bool, blob *Blob) []byte {
	var fl byte
	if inherit {
		fl |= outInherit
	}
	if blob != nil {
		fl |= outHasBlob
	}
	return append(b, fl, 0, 0, 0)
}

// appendOutBlob appends the blob that requests and responses end with,
// when there is one.
func appendOutBlob(b []byte, blob *Blob) []byte {
	if blob == nil {
		return b
	}
	b = appendStr(b, blob.Mime)
	return appendBytes(b, blob.Bytes)
}

// AppendSpawn appends the encoding of s to b.
func AppendSpawn(b []byte, s *SpawnSpec) []byte {
	b = appendStr(b, s.Name)
	b = appendStr(b, s.WasmPath)
	var pub byte
	if s.Public {
		pub = 1
	}
	b = append(b, s.OnExit, pub, 0, 0)
	return AppendCaps(b, s.Capabilities)
}

// ---- decoding

// reader walks an encoding; the first failure sticks in err and every
// later read returns zero values.
type reader struct {
	b    []byte
	what string
	err  *DecodeError
	// fromNode: the bytes were encoded by the node, which writes only
	// valid UTF-8 in strings; str does not check them again.
	fromNode bool
}

func (r *reader) fail(field, reason string) {
	if r.err == nil {
		r.err = &DecodeError{What: r.what, Field: field, Reason: reason}
	}
}

func (r *reader) short(field string, need int) {
	r.fail(field, "needs "+strconv.Itoa(need)+" bytes, "+strconv.Itoa(len(r.b))+" left")
}

func (r *reader) u8(field string) uint8 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.short(field, 1)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u32(field string) uint32 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 4 {
		r.short(field, 4)
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) u64(field string) uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.short(field, 8)
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

// bytes returns a sub-slice of the input (capacity clipped, so appending
// to it never writes over the rest of the input).
func (r *reader) bytes(field string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < 4 {
		r.short(field+" length", 4)
		return nil
	}
	n := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	if uint64(n) > uint64(len(r.b)) {
		r.fail(field, "length "+strconv.FormatUint(uint64(n), 10)+" past the end ("+strconv.Itoa(len(r.b))+" bytes left)")
		return nil
	}
	if n == 0 {
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// str returns a string aliasing the input.
func (r *reader) str(field string) string {
	v := r.bytes(field)
	if len(v) == 0 {
		return ""
	}
	if !r.fromNode && !utf8.Valid(v) {
		r.fail(field, "not valid UTF-8")
		return ""
	}
	return unsafe.String(&v[0], len(v))
}

func (r *reader) reserved(field string, n int) {
	if r.err != nil {
		return
	}
	if len(r.b) < n {
		r.short(field, n)
		return
	}
	for _, c := range r.b[:n] {
		if c != 0 {
			r.fail(field, "must be zero")
			return
		}
	}
	r.b = r.b[n:]
}

func (r *reader) caps(field string) []Capability {
	if r.err != nil {
		return nil
	}
	if len(r.b) < 4 {
		r.short(field+" count", 4)
		return nil
	}
	n := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	// Each capability takes at least its two length words.
	if uint64(n) > uint64(len(r.b))/8 {
		r.fail(field, "count "+strconv.FormatUint(uint64(n), 10)+" past the end ("+strconv.Itoa(len(r.b))+" bytes left)")
		return nil
	}
	if n == 0 {
		return nil
	}
	cs := make([]Capability, n)
	for i := range cs {
		cs[i].Issuer = r.str("capabilities issuer")
		cs[i].Params = r.str("capabilities params")
		if r.err != nil {
			return nil
		}
	}
	return cs
}

func (r *reader) end() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("", strconv.Itoa(len(r.b))+" trailing bytes after the last field")
	}
	if r.err != nil {
		return r.err
	}
	return nil
}

// DecodeCap decodes the encoding of one capability (AppendCap); it must
// be the whole of b.
func DecodeCap(b []byte) (Capability, error) {
	r := reader{b: b, what: "capability"}
	var c Capability
	c.Issuer = r.str("issuer")
	c.Params = r.str("params")
	if err := r.end(); err != nil {
		return Capability{}, err
	}
	return c, nil
}

// DecodeCaps decodes a caps encoding; it must be the whole of b.
func DecodeCaps(b []byte) ([]Capability, error) {
	r := reader{b: b, what: "caps"}
	cs := r.caps("capabilities")
	if err := r.end(); err != nil {
		return nil, err
	}
	return cs, nil
}

// DecodeMessage decodes a message encoding, which the node wrote (a
// guest decodes what message_read gives it). Besides the layout it checks
// that the kind is known, that the error kind is 0 except on an error
// (where it is 1–7), and that a message without the blob flag has no blob
// mime or length. It does not check that strings are UTF-8, which the
// node guarantees (docs/abi.md): in a Go guest under the CPU guard the
// check cost a quarter of a round trip (docs/performance.md).
func DecodeMessage(b []byte) (Message, error) {
	var m Message
	err := DecodeMessageInto(b, &m)
	return m, err
}

// DecodeMessageInto is DecodeMessage writing into *m, every field of it
// (all zero on failure). A Message is some 200 bytes, which a Go guest
// copies with a call to memmove each time one is returned.
func DecodeMessageInto(b []byte, m *Message) error {
	if decodeMessageFast(b, m) {
		return nil
	}
	var err error
	*m, err = decodeMessage(b)
	return err
}

// decodeMessageFast decodes the common message — no capabilities — in
// straight-line code, and reports false for anything else, valid or not,
// which decodeMessage then decodes or explains. In a Go guest under the
// CPU guard every call that is not inlined and every loop iteration costs
// a check; the reader's way, a call or two per field, cost a sixth of a
// round trip (docs/performance.md). FuzzDecodeMessage holds the two
// to the same answers.
func decodeMessageFast(b []byte, m *Message) bool {
	// Where int has 32 bits a u32 length could overflow lengthPrefixed's
	// sum: the reader decodes there.
	if bits.UintSize < 64 || len(b) < 20 || b[3] != 0 {
		return false
	}
	kind, fl, ek := b[0], b[1], b[2]
	switch {
	case kind < KindRequest || kind > KindError, fl&^msgFlags != 0,
		kind == KindError && (ek == 0 || ek > MaxErrorKind),
		kind != KindError && ek != 0:
		return false
	}
	off := 20
	source, off, ok := lengthPrefixed(b, off)
	if !ok {
		return false
	}
	target, off, ok := lengthPrefixed(b, off)
	if !ok {
		return false
	}
	body, off, ok := lengthPrefixed(b, off)
	if !ok {
		return false
	}
	metadata, off, ok := lengthPrefixed(b, off)
	if !ok {
		return false
	}
	context, off, ok := lengthPrefixed(b, off)
	if !ok {
		return false
	}
	if len(b)-off < 4 || binary.LittleEndian.Uint32(b[off:]) != 0 { // capabilities: decodeMessage's
		return false
	}
	off += 4
	mime, off, ok := lengthPrefixed(b, off)
	if !ok || len(b)-off < 4 {
		return false
	}
	blobLen := binary.LittleEndian.Uint32(b[off:])
	off += 4
	detail, off, ok := lengthPrefixed(b, off)
	if !ok || off != len(b) {
		return false
	}
	hasBlob := fl&msgHasBlob != 0
	if !hasBlob && (len(mime) != 0 || blobLen != 0) {
		return false
	}
	if len(body) == 0 {
		body = nil // as reader.bytes has it
	}
	if len(context) == 0 {
		context = nil
	}
	m.Kind, m.ErrorKind = kind, ek
	m.Inherit = fl&msgInherit != 0
	m.WantsResponse = fl&msgWantsResponse != 0
	m.HasBlob = hasBlob
	m.ID = binary.LittleEndian.Uint64(b[4:])
	m.ExpectsResponse = binary.LittleEndian.Uint64(b[12:])
	m.Source, m.Target = text(source), text(target)
	m.Body, m.Metadata, m.Context = body, text(metadata), context
	m.Capabilities = nil
	m.BlobMime, m.BlobLen = text(mime), blobLen
	m.ErrorDetail = text(detail)
	return true
}

// lengthPrefixed reads a bytes field at off (capacity clipped, as
// reader.bytes does; empty but not nil when empty) and returns the offset
// after it. Small enough to be inlined.
func lengthPrefixed(b []byte, off int) ([]byte, int, bool) {
	if len(b)-off < 4 {
		return nil, 0, false
	}
	end := off + 4 + int(binary.LittleEndian.Uint32(b[off:])) // int has 64 bits: see decodeMessageFast
	if end > len(b) {
		return nil, 0, false
	}
	return b[off+4 : end : end], end, true
}

// text is a string aliasing v, as reader.str makes one.
func text(v []byte) string {
	if len(v) == 0 {
		return ""
	}
	return unsafe.String(&v[0], len(v))
}

// decodeMessage is DecodeMessage through the reader, which names what is
// wrong.
func decodeMessage(b []byte) (Message, error) {
	r := reader{b: b, what: "message", fromNode: true}
	var m Message
	m.Kind = r.u8("kind")
	fl := r.u8("flags")
	m.ErrorKind = r.u8("error kind")
	r.reserved("reserved", 1)
	if r.err == nil {
		switch {
		case m.Kind < KindRequest || m.Kind > KindError:
			r.fail("kind", "unknown kind "+strconv.Itoa(int(m.Kind)))
		case fl&^msgFlags != 0:
			r.fail("flags", "unknown bits 0x"+strconv.FormatUint(uint64(fl&^msgFlags), 16))
		case m.Kind == KindError && (m.ErrorKind == 0 || m.ErrorKind > MaxErrorKind):
			r.fail("error kind", "error kind "+strconv.Itoa(int(m.ErrorKind))+" on an error, want 1–7")
		case m.Kind != KindError && m.ErrorKind != 0:
			r.fail("error kind", "must be 0 on a message that is not an error")
		}
	}
	m.Inherit = fl&msgInherit != 0
	m.WantsResponse = fl&msgWantsResponse != 0
	m.HasBlob = fl&msgHasBlob != 0
	m.ID = r.u64("id")
	m.ExpectsResponse = r.u64("expects response")
	m.Source = r.str("source")
	m.Target = r.str("target")
	m.Body = r.bytes("body")
	m.Metadata = r.str("metadata")
	m.Context = r.bytes("context")
	m.Capabilities = r.caps("capabilities")
	m.BlobMime = r.str("blob mime")
	m.BlobLen = r.u32("blob length")
	m.ErrorDetail = r.str("error detail")
	if r.err == nil && !m.HasBlob && (m.BlobMime != "" || m.BlobLen != 0) {
		r.fail("blob mime", "blob fields set without the blob flag")
	}
	if err := r.end(); err != nil {
		return Message{}, err
	}
	return m, nil
}

// DecodeRequest decodes a request encoding.
func DecodeRequest(b []byte) (Request, error) {
	r := reader{b: b, what: "request"}
	var q Request
	fl := r.outHeader()
	q.Inherit = fl&outInherit != 0
	q.ExpectsResponse = r.u64("expects response")
	q.Target = r.str("target")
	q.Body = r.bytes("body")
	q.Metadata = r.str("metadata")
	q.Context = r.bytes("context")
	q.Capabilities = r.caps("capabilities")
	q.Blob = r.outBlob(fl)
	if err := r.end(); err != nil {
		return Request{}, err
	}
	return q, nil
}

// DecodeResponse decodes a response encoding.
func DecodeResponse(b []byte) (Response, error) {
	r := reader{b: b, what: "response"}
	var p Response
	fl := r.outHeader()
	p.Inherit = fl&outInherit != 0
	p.Body = r.bytes("body")
	p.Metadata = r.str("metadata")
	p.Capabilities = r.caps("capabilities")
	p.Blob = r.outBlob(fl)
	if err := r.end(); err != nil {
		return Response{}, err
	}
	return p, nil
}

// outHeader reads the flags and reserved bytes that requests and
// responses start with.
func (r *reader) outHeader() uint8 {
	fl := r.u8("flags")
	if r.err == nil && fl&^outFlags != 0 {
		r.fail("flags", "unknown bits 0x"+strconv.FormatUint(uint64(fl&^outFlags), 16))
	}
	r.reserved("reserved", 3)
	return fl
}

// outBlob reads the blob that requests and responses end with, when the
// flags say there is one.
func (r *reader) outBlob(fl uint8) *Blob {
	if fl&outHasBlob == 0 || r.err != nil {
		return nil
	}
	mime := r.str("blob mime")
	data := r.bytes("blob")
	if r.err != nil {
		return nil
	}
	return &Blob{Mime: mime, Bytes: data}
}

// DecodeSpawn decodes a spawn-spec encoding.
func DecodeSpawn(b []byte) (SpawnSpec, error) {
	r := reader{b: b, what: "spawn spec"}
	var s SpawnSpec
	s.Name = r.str("name")
	s.WasmPath = r.str("wasm path")
	s.OnExit = r.u8("on_exit")
	if r.err == nil && s.OnExit > OnExitRestart {
		r.fail("on_exit", "unknown policy "+strconv.Itoa(int(s.OnExit))+", want 0 or 1")
	}
	pub := r.u8("public")
	if r.err == nil && pub > 1 {
		r.fail("public", "must be 0 or 1, not "+strconv.Itoa(int(pub)))
	}
	s.Public = pub == 1
	r.reserved("reserved", 2)
	s.Capabilities = r.caps("capabilities")
	if err := r.end(); err != nil {
		return SpawnSpec{}, err
	}
	return s, nil
}
