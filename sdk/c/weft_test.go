package ctest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Error codes of docs/abi.md.
const (
	eINVAL     = -1
	eSTOPPED   = -2
	eNOREQUEST = -3
	eNONE      = -4
	eLIMIT     = -5
	ePERM      = -6
	eNOTFOUND  = -7
	eEXIST     = -8
	eTIMEOUT   = -101
)

// --- Encoding by hand, from docs/abi.md ----------------------------------
//
// Every encoding these tests feed or expect is written here byte by byte
// from docs/abi.md, independently of any Go encoder, so that they check
// the header against the document.

func u32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// str encodes `bytes`/`str`: a u32 length, then the bytes.
func str(s string) []byte { return append(u32(uint32(len(s))), s...) }

// code is an error code as the guest reports it: sign-extended to 64 bits.
func code(c int64) uint64 { return uint64(c) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

type capability struct{ issuer, params string }

// caps encodes `caps`: a u32 count, then str issuer and str params each.
func caps(cs ...capability) []byte {
	out := u32(uint32(len(cs)))
	for _, c := range cs {
		out = cat(out, str(c.issuer), str(c.params))
	}
	return out
}

// message is a Message (node → guest) before encoding.
type message struct {
	kind, flags, errorKind byte
	id, expects            uint64
	source, target         string
	body, metadata, ctx    string
	caps                   []capability
	blobMime               string
	blobLen                uint32
	errorDetail            string
	blob                   []byte // what blob_read hands out (not encoded)
}

// encode lays m out field by field as docs/abi.md's Message table says.
func (m message) encode() []byte {
	return cat(
		[]byte{m.kind, m.flags, m.errorKind, 0},
		u64(m.id),
		u64(m.expects),
		str(m.source),
		str(m.target),
		str(m.body),
		str(m.metadata),
		str(m.ctx),
		caps(m.caps...),
		str(m.blobMime),
		u32(m.blobLen),
		str(m.errorDetail),
	)
}

// --- Building guests ------------------------------------------------------

var (
	root       = filepath.Join("..", "..")
	buildMu    sync.Mutex
	buildCache = map[string][]byte{}
)

// clang is $CLANG, or clang on $PATH.
func clang(t testing.TB) string {
	t.Helper()
	c := os.Getenv("CLANG")
	if c == "" {
		c = "clang"
	}
	p, err := exec.LookPath(c)
	if err != nil {
		t.Fatalf("no C compiler for Wasm guests (%q: %v): run `make tools`", c, err)
	}
	return p
}

// build compiles the C files srcs (relative to the repository root) into
// a reactor module with sdk/c on the include path, once per test binary.
func build(t testing.TB, srcs ...string) []byte {
	t.Helper()
	key := strings.Join(srcs, " ")
	buildMu.Lock()
	defer buildMu.Unlock()
	if wasm, ok := buildCache[key]; ok {
		return wasm
	}
	out := filepath.Join(t.TempDir(), "guest.wasm")
	args := []string{"--target=wasm32-wasi", "-O2", "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror",
		"-mexec-model=reactor", "-Wl,--strip-all", "-I", filepath.Join(root, "sdk", "c"), "-o", out}
	for _, s := range srcs {
		args = append(args, filepath.Join(root, s))
	}
	cmd := exec.Command(clang(t), args...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s\n(the Wasm C toolchain comes with `make tools`)", cmd, err, msg)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	buildCache[key] = wasm
	return wasm
}

// compiled is shared by every runtime of the tests, so that each guest
// is compiled once.
var compiled = wazero.NewCompilationCache()

// --- The fake host --------------------------------------------------------

// report is one t.u64 or t.bytes call of the test guest.
type report struct {
	name string
	val  any // uint64 or string
}

// host is a fake node: it hands out queued messages and records what the
// guest does. Memory checks follow docs/abi.md: a range outside memory is
// WEFT_EINVAL, never a trap.
type host struct {
	t       testing.TB
	queue   []message
	current *message // the current message (message_read, blob_read)
	handled *message // the request being handled (respond)
	answer  func(req []byte) (int32, *message)

	messageReads []uint32 // the cap of each message_read
	sends        [][]byte
	responds     [][]byte
	state        []byte
	hasState     bool
	spawns       [][]byte
	childID      string
	held         []capability
	drops        [][]byte
	self         string
	lastErr      string
	logs         []string
	reports      []report

	// The store: every op the guest sent and the outcap it gave; answer
	// gives an op's code (< 0) or its result; kept is what store_result
	// hands out (dropKept: the host keeps nothing, as if it had lost it).
	storeOps        [][]byte
	storeOutcaps    []uint32
	storeResultCaps []uint32
	storeAnswer     func(op []byte) (int32, []byte)
	kept            []byte
	dropKept        bool

	// Version 2: the tokens defer gave and respond_deferred has not
	// spent, and the answers respond_deferred sent.
	tokens    map[int64]bool
	lastToken int64
	later     []deferredAnswer
}

type deferredAnswer struct {
	token int64
	resp  []byte
}

func (h *host) read(m api.Module, ptr, n uint32) ([]byte, bool) {
	b, ok := m.Memory().Read(ptr, n)
	if !ok {
		h.lastErr = fmt.Sprintf("range [%d, +%d) outside memory", ptr, n)
		return nil, false
	}
	return bytes.Clone(b), true
}

// copyOut writes data to ptr when it fits in cap; the full length either way.
func (h *host) copyOut(m api.Module, ptr, cap uint32, data []byte) int32 {
	if uint32(len(data)) <= cap && !m.Memory().Write(ptr, data) {
		h.lastErr = "output range outside memory"
		return eINVAL
	}
	return int32(len(data))
}

func (h *host) instantiate(t testing.TB, wasm []byte) (context.Context, api.Module) {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(compiled))
	t.Cleanup(func() { r.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, r)

	b := r.NewHostModuleBuilder("weft")
	fn := func(name string, f any) { b.NewFunctionBuilder().WithFunc(f).Export(name) }
	fn("await", func() int32 {
		if len(h.queue) == 0 {
			return eSTOPPED
		}
		m := h.queue[0]
		h.queue = h.queue[1:]
		h.current = &m
		if m.kind == 1 {
			h.handled = &m
		}
		return int32(len(m.encode()))
	})
	fn("message_read", func(_ context.Context, m api.Module, ptr, cap uint32) int32 {
		h.messageReads = append(h.messageReads, cap)
		if h.current == nil {
			h.lastErr = "no current message"
			return eINVAL
		}
		return h.copyOut(m, ptr, cap, h.current.encode())
	})
	fn("blob_read", func(_ context.Context, m api.Module, ptr, cap uint32) int32 {
		if h.current == nil || h.current.blob == nil {
			return eNONE
		}
		return h.copyOut(m, ptr, cap, h.current.blob)
	})
	fn("send", func(_ context.Context, m api.Module, ptr, n uint32) int64 {
		req, ok := h.read(m, ptr, n)
		if !ok {
			return eINVAL
		}
		h.sends = append(h.sends, req)
		return int64(100 + len(h.sends))
	})
	fn("send_and_await", func(_ context.Context, m api.Module, ptr, n uint32) int32 {
		req, ok := h.read(m, ptr, n)
		if !ok {
			return eINVAL
		}
		h.sends = append(h.sends, req)
		code, ans := h.answer(req)
		if ans != nil {
			h.current = ans
		}
		return code
	})
	fn("respond", func(_ context.Context, m api.Module, ptr, n uint32) int32 {
		resp, ok := h.read(m, ptr, n)
		if !ok {
			return eINVAL
		}
		if h.handled == nil || h.handled.flags&2 == 0 {
			return eNOREQUEST
		}
		h.handled = nil
		h.responds = append(h.responds, resp)
		return 0
	})
	fn("defer", func() int64 {
		if h.handled == nil || h.handled.flags&2 == 0 {
			return eNOREQUEST
		}
		h.handled = nil
		h.lastToken++
		if h.tokens == nil {
			h.tokens = map[int64]bool{}
		}
		h.tokens[h.lastToken] = true
		return h.lastToken
	})
	fn("respond_deferred", func(_ context.Context, m api.Module, token int64, ptr, n uint32) int32 {
		resp, ok := h.read(m, ptr, n)
		if !ok {
			return eINVAL
		}
		if !h.tokens[token] {
			return eNOREQUEST
		}
		delete(h.tokens, token)
		h.later = append(h.later, deferredAnswer{token, resp})
		return 0
	})
	fn("state_get", func(_ context.Context, m api.Module, ptr, cap uint32) int32 {
		if !h.hasState {
			return eNONE
		}
		return h.copyOut(m, ptr, cap, h.state)
	})
	fn("state_set", func(_ context.Context, m api.Module, ptr, n uint32) int32 {
		s, ok := h.read(m, ptr, n)
		if !ok {
			return eINVAL
		}
		h.state, h.hasState = s, true
		return 0
	})
	fn("state_clear", func() int32 {
		h.state, h.hasState = nil, false
		return 0
	})
	fn("spawn", func(_ context.Context, m api.Module, ptr, n, out, outcap uint32) int32 {
		spec, ok := h.read(m, ptr, n)
		if !ok {
			return eINVAL
		}
		h.spawns = append(h.spawns, spec)
		return h.copyOut(m, out, outcap, []byte(h.childID))
	})
	fn("caps_read", func(_ context.Context, m api.Module, ptr, cap uint32) int32 {
		return h.copyOut(m, ptr, cap, caps(h.held...))
	})
	fn("cap_drop", func(_ context.Context, m api.Module, ptr, n uint32) int32 {
		c, ok := h.read(m, ptr, n)
		if !ok {
			return eINVAL
		}
		h.drops = append(h.drops, c)
		return 0
	})
	fn("self_read", func(_ context.Context, m api.Module, ptr, cap uint32) int32 {
		return h.copyOut(m, ptr, cap, []byte(h.self))
	})
	fn("log", func(_ context.Context, m api.Module, level, ptr, n uint32) {
		s, ok := h.read(m, ptr, n)
		if ok {
			h.logs = append(h.logs, fmt.Sprintf("%d %s", level, s))
		}
	})
	fn("last_error", func(_ context.Context, m api.Module, ptr, cap uint32) int32 {
		return h.copyOut(m, ptr, cap, []byte(h.lastErr))
	})
	fn("store", func(_ context.Context, m api.Module, ptr, n, out, outcap uint32) int32 {
		h.kept = nil
		op, ok := h.read(m, ptr, n)
		if !ok {
			return eINVAL
		}
		h.storeOps = append(h.storeOps, op)
		h.storeOutcaps = append(h.storeOutcaps, outcap)
		var res []byte
		if h.storeAnswer != nil {
			var code int32
			if code, res = h.storeAnswer(op); code < 0 {
				return code
			}
		}
		l := h.copyOut(m, out, outcap, res)
		if l > 0 && uint32(l) > outcap && !h.dropKept {
			h.kept = res
		}
		return l
	})
	fn("store_result", func(_ context.Context, m api.Module, ptr, cap uint32) int32 {
		h.storeResultCaps = append(h.storeResultCaps, cap)
		if h.kept == nil {
			h.lastErr = "no kept store result"
			return eNONE
		}
		return h.copyOut(m, ptr, cap, h.kept)
	})
	if _, err := b.Instantiate(ctx); err != nil {
		t.Fatal(err)
	}

	tb := r.NewHostModuleBuilder("t")
	tb.NewFunctionBuilder().WithFunc(func(_ context.Context, m api.Module, name, n uint32, v uint64) {
		s, _ := h.read(m, name, n)
		h.reports = append(h.reports, report{string(s), v})
	}).Export("u64")
	tb.NewFunctionBuilder().WithFunc(func(_ context.Context, m api.Module, name, n, ptr, l uint32) {
		s, _ := h.read(m, name, n)
		v, ok := h.read(m, ptr, l)
		if !ok {
			h.t.Errorf("t.bytes %s: range [%d, +%d) outside memory", s, ptr, l)
		}
		h.reports = append(h.reports, report{string(s), string(v)})
	}).Export("bytes")
	if _, err := tb.Instantiate(ctx); err != nil {
		t.Fatal(err)
	}

	mod, err := r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithStartFunctions("_initialize"))
	if err != nil {
		t.Fatal(err)
	}
	return ctx, mod
}

// call calls the guest's export name and returns its one result as int64.
func call(t testing.TB, ctx context.Context, mod api.Module, name string, args ...uint64) int64 {
	t.Helper()
	f := mod.ExportedFunction(name)
	if f == nil {
		t.Fatalf("guest exports no %s", name)
	}
	res, err := f.Call(ctx, args...)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(res) == 0 {
		return 0
	}
	if f.Definition().ResultTypes()[0] == api.ValueTypeI64 {
		return int64(res[0])
	}
	return int64(int32(uint32(res[0])))
}

// messageReport is what report_message of testdata/guest.c reports for m.
func messageReport(m message) []report {
	r := []report{
		{"kind", uint64(m.kind)}, {"flags", uint64(m.flags)}, {"error_kind", uint64(m.errorKind)},
		{"id", m.id}, {"expects_response", m.expects},
		{"source", m.source}, {"target", m.target}, {"body", m.body},
		{"metadata", m.metadata}, {"context", m.ctx},
		{"caps", uint64(len(m.caps))},
	}
	for _, c := range m.caps {
		r = append(r, report{"issuer", c.issuer}, report{"params", c.params})
	}
	return append(r, report{"blob_mime", m.blobMime}, report{"blob_len", uint64(m.blobLen)},
		report{"error_detail", m.errorDetail})
}

func checkReports(t *testing.T, got, want []report) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("guest reported %d values, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
		return
	}
	for i := range want {
		if n, ok := want[i].val.(int); ok { // an untyped constant in a literal
			want[i].val = uint64(n)
		}
		if got[i] != want[i] {
			t.Errorf("report %d: got %s=%#v, want %s=%#v", i, got[i].name, got[i].val, want[i].name, want[i].val)
		}
	}
}

func guest(t testing.TB) (*host, context.Context, api.Module) {
	t.Helper()
	h := &host{t: t}
	ctx, mod := h.instantiate(t, build(t, "sdk/c/testdata/guest.c"))
	return h, ctx, mod
}

// full is a message with every field set, two capabilities among them.
var full = message{
	kind: 1, flags: 0b111, errorKind: 0, id: 0x0102030405060708, expects: 30_000_000_000,
	source: "node1@alice:chat:weft.os", target: "our@bob:chat:weft.os",
	body: "hello\x00world", metadata: `{"k":"v"}`, ctx: "\x01\x02",
	caps: []capability{
		{"our@echo:echo:examples", `{"read":true}`},
		{"n2@x:y:z", `"s"`},
	},
	blobMime: "text/plain", blobLen: 5, errorDetail: "",
	blob: []byte("abcde"),
}

// --- Tests ----------------------------------------------------------------

// TestMessageLayout pins the hand encoder itself to docs/abi.md with a
// literal: the tests below rely on it.
func TestMessageLayout(t *testing.T) {
	m := message{kind: 3, flags: 0, errorKind: 1, id: 9, expects: 0, source: "a", target: "bc",
		body: "", metadata: "", ctx: "x", caps: []capability{{"i", "p"}}, blobMime: "", blobLen: 0, errorDetail: "late"}
	want := []byte{
		3, 0, 1, 0, // kind, flags, error kind, reserved
		9, 0, 0, 0, 0, 0, 0, 0, // id
		0, 0, 0, 0, 0, 0, 0, 0, // expects response
		1, 0, 0, 0, 'a', // source
		2, 0, 0, 0, 'b', 'c', // target
		0, 0, 0, 0, // body
		0, 0, 0, 0, // metadata
		1, 0, 0, 0, 'x', // context
		1, 0, 0, 0, 1, 0, 0, 0, 'i', 1, 0, 0, 0, 'p', // caps
		0, 0, 0, 0, // blob mime
		0, 0, 0, 0, // blob length
		4, 0, 0, 0, 'l', 'a', 't', 'e', // error detail
	}
	if got := m.encode(); !bytes.Equal(got, want) {
		t.Fatalf("encode:\n got % x\nwant % x", got, want)
	}
}

// TestCechoAnswersWithBodyAndBlob runs examples/cecho's init: it answers
// the request that waits with its body, inheriting the blob, ignores the
// rest, and returns 0 when told to stop.
func TestCechoAnswersWithBodyAndBlob(t *testing.T) {
	h := &host{t: t}
	ctx, mod := h.instantiate(t, build(t, "examples/cecho/cecho.c"))
	h.queue = []message{
		{kind: 1, flags: 0b110, id: 7, expects: 5e9, source: "our@a:b:c", target: "our@cecho:cecho:examples",
			body: "hello, weft", metadata: "m", blobMime: "image/png", blobLen: 3, blob: []byte{1, 2, 3}},
		{kind: 1, flags: 0, id: 8, source: "our@a:b:c", target: "our@cecho:cecho:examples", body: "fire and forget"},
		{kind: 2, flags: 0, id: 3, source: "our@a:b:c", target: "our@cecho:cecho:examples", body: "a response"},
		{kind: 1, flags: 0b010, id: 9, expects: 1, source: "our@a:b:c", target: "our@cecho:cecho:examples"},
	}
	if rc := call(t, ctx, mod, "init"); rc != 0 {
		t.Fatalf("init returned %d, want 0 after WEFT_ESTOPPED", rc)
	}
	want := [][]byte{
		{
			0x01, 0, 0, 0, // flags: inherit, no blob of its own; reserved
			11, 0, 0, 0, 'h', 'e', 'l', 'l', 'o', ',', ' ', 'w', 'e', 'f', 't', // body
			0, 0, 0, 0, // metadata
			0, 0, 0, 0, // caps
		},
		{0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, // empty body
	}
	if len(h.responds) != len(want) {
		t.Fatalf("cecho responded %d times, want %d: %q", len(h.responds), len(want), h.responds)
	}
	for i := range want {
		if !bytes.Equal(h.responds[i], want[i]) {
			t.Errorf("response %d:\n got % x\nwant % x", i, h.responds[i], want[i])
		}
	}
	if len(h.logs) != 0 {
		t.Errorf("cecho logged %q", h.logs)
	}
}

// TestCechoExports checks the module examples/cecho builds into.
func TestCechoExports(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	cm, err := r.CompileModule(ctx, build(t, "examples/cecho/cecho.c"))
	if err != nil {
		t.Fatal(err)
	}
	fns := cm.ExportedFunctions()
	for name, sig := range map[string][2][]api.ValueType{
		"init":        {nil, {api.ValueTypeI32}},
		"weft_abi_v1": {nil, nil},
	} {
		f, ok := fns[name]
		if !ok {
			t.Errorf("cecho exports no %s", name)
			continue
		}
		if p, res := f.ParamTypes(), f.ResultTypes(); len(p) != len(sig[0]) || !bytes.Equal(res, sig[1]) {
			t.Errorf("%s: (%v) -> (%v), want (%v) -> (%v)", name, p, res, sig[0], sig[1])
		}
	}
	if _, ok := cm.ExportedMemories()["memory"]; !ok {
		t.Error("cecho exports no memory")
	}
	for _, f := range cm.ImportedFunctions() {
		if mod, _, _ := f.Import(); mod != "weft" {
			t.Errorf("cecho imports %s from %q; want only module weft", f.DebugName(), mod)
		}
	}
}

// TestDecodeEveryField feeds a message with every field set through
// await + message_read and checks each decoded field.
func TestDecodeEveryField(t *testing.T) {
	errMsg := message{kind: 3, errorKind: 6, id: 42, source: "our@me:p:q", target: "our@gone:p:q",
		errorDetail: "the target was killed"}
	for _, m := range []message{full, errMsg} {
		h, ctx, mod := guest(t)
		h.queue = []message{m}
		if rc := call(t, ctx, mod, "t_await"); rc != 0 {
			t.Fatalf("t_await = %d", rc)
		}
		got := h.reports
		if len(got) > 0 && got[len(got)-1].name == "buf_cap" {
			got = got[:len(got)-1]
		}
		checkReports(t, got, messageReport(m))
		h.reports = nil
		if rc := call(t, ctx, mod, "t_blob"); m.blob != nil {
			if rc != int64(len(m.blob)) {
				t.Errorf("t_blob = %d, want %d", rc, len(m.blob))
			}
			checkReports(t, h.reports, []report{{"blob", string(m.blob)}})
		} else if rc != eNONE {
			t.Errorf("t_blob without a blob = %d, want WEFT_ENONE", rc)
		}
		if rc := call(t, ctx, mod, "t_await"); rc != eSTOPPED {
			t.Errorf("t_await on an empty queue = %d, want WEFT_ESTOPPED", rc)
		}
	}
}

// placeAtEnd grows the guest's memory by a page and writes b so that it
// ends at the last byte of memory: a read past b's end traps.
func placeAtEnd(t *testing.T, mod api.Module, b []byte) uint32 {
	t.Helper()
	mem := mod.Memory()
	if _, ok := mem.Grow(1); !ok {
		t.Fatal("memory.grow failed")
	}
	ptr := mem.Size() - uint32(len(b))
	if !mem.Write(ptr, b) {
		t.Fatal("write failed")
	}
	return ptr
}

// TestDecodeRefusesOverruns checks that every truncation of a valid
// message, and messages whose lengths or counts run past the end, are
// refused with WEFT_EINVAL. Each is placed at the very end of memory, so
// an out-of-bounds read would trap the guest and fail the test.
func TestDecodeRefusesOverruns(t *testing.T) {
	h, ctx, mod := guest(t)
	good := full.encode()

	ptr := placeAtEnd(t, mod, good)
	if rc := call(t, ctx, mod, "t_decode", uint64(ptr), uint64(len(good))); rc != 0 {
		t.Fatalf("t_decode of a valid message at the end of memory = %d", rc)
	}
	checkReports(t, h.reports, messageReport(full))

	bad := map[string][]byte{
		"trailing byte": append(bytes.Clone(good), 0),
		"kind 0":        append([]byte{0}, good[1:]...),
		"kind 4":        append([]byte{4}, good[1:]...),
	}
	for n := 0; n < len(good); n++ {
		bad[fmt.Sprintf("truncated to %d", n)] = good[:n]
	}
	// Each length field set to more than what is left: source's length
	// sits at offset 20, and the others follow it.
	off := 20
	for _, field := range []string{"source", "target", "body", "metadata", "context"} {
		for _, l := range []uint32{uint32(len(good) - off - 3), 0x7fffffff, 0xffffffff} {
			b := bytes.Clone(good)
			binary.LittleEndian.PutUint32(b[off:], l)
			bad[fmt.Sprintf("%s length %#x", field, l)] = b
		}
		off += 4 + int(binary.LittleEndian.Uint32(good[off:]))
	}
	// The caps count, then the first issuer's length.
	for _, l := range []uint32{3, 1 << 28, 0xffffffff} {
		b := bytes.Clone(good)
		binary.LittleEndian.PutUint32(b[off:], l)
		bad[fmt.Sprintf("caps count %#x", l)] = b
	}
	b := bytes.Clone(good)
	binary.LittleEndian.PutUint32(b[off+4:], 0xfffffff0)
	bad["issuer length past the end"] = b

	for name, msg := range bad {
		h.reports = nil
		ptr := placeAtEnd(t, mod, msg)
		if rc := call(t, ctx, mod, "t_decode", uint64(ptr), uint64(len(msg))); rc != eINVAL {
			t.Errorf("%s: t_decode = %d, want WEFT_EINVAL", name, rc)
		}
		if len(h.reports) != 0 {
			t.Errorf("%s: refused message reported fields %v", name, h.reports)
		}
	}
}

// TestAwaitGrowsBuffer feeds a small then a 1 MiB message into the same
// weft_message: its buffer grows and the large body arrives whole.
func TestAwaitGrowsBuffer(t *testing.T) {
	h, ctx, mod := guest(t)
	large := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	small := message{kind: 1, id: 1, source: "our@a:b:c", target: "our@t:t:t", body: "s"}
	big := message{kind: 2, id: 2, source: "our@a:b:c", target: "our@t:t:t", body: string(large)}
	h.queue = []message{small, big}

	var caps []uint64
	for i, m := range []message{small, big} {
		h.reports = nil
		if rc := call(t, ctx, mod, "t_await"); rc != 0 {
			t.Fatalf("t_await %d = %d", i, rc)
		}
		got := h.reports
		if len(got) == 0 || got[len(got)-1].name != "buf_cap" {
			t.Fatalf("no buf_cap reported: %v", got)
		}
		caps = append(caps, got[len(got)-1].val.(uint64))
		checkReports(t, got[:len(got)-1], messageReport(m))
	}
	if n := uint64(len(big.encode())); caps[1] < n || caps[1] <= caps[0] {
		t.Errorf("buffer capacity %d after the small message, %d after the large one (%d bytes)", caps[0], caps[1], n)
	}
	// Each message was read once, into a buffer large enough.
	if len(h.messageReads) != 2 || h.messageReads[1] < uint32(len(big.encode())) {
		t.Errorf("message_read caps %v", h.messageReads)
	}
}

// TestSendEncoding checks the Request encoding byte by byte.
func TestSendEncoding(t *testing.T) {
	h, ctx, mod := guest(t)
	if id := call(t, ctx, mod, "t_send"); id != 101 {
		t.Fatalf("t_send = %d, want the id the node gave, 101", id)
	}
	if id := call(t, ctx, mod, "t_send_plain"); id != 102 {
		t.Fatalf("t_send_plain = %d, want 102", id)
	}
	want := [][]byte{
		cat(
			[]byte{0x02, 0, 0, 0}, // flags: has blob; reserved
			u64(5_000_000_000),    // expects response
			str("our@echo:echo:examples"),
			str("ping"),
			str(`{"m":1}`),
			str("\x00\x01\x02"),
			caps(capability{"our@echo:echo:examples", `{"read":true}`}, capability{"n1@x:y:z", "null"}),
			str("text/plain"),
			str("blob!"),
		),
		cat([]byte{0x01, 0, 0, 0}, u64(0), str("our@a:b:c"), str("x"), str(""), str(""), u32(0)),
	}
	for i := range want {
		if i >= len(h.sends) || !bytes.Equal(h.sends[i], want[i]) {
			t.Errorf("request %d:\n got % x\nwant % x", i, h.sends[i], want[i])
		}
	}
}

// TestSendAndAwait checks a reply; an error message that comes back with
// a send error (read with a buffer that has to grow from nothing); a send
// error with no error message; and an error that reads no message.
func TestSendAndAwait(t *testing.T) {
	reply := message{kind: 2, id: 101, source: "our@slow:slow:examples", target: "our@t:t:t", body: "answer"}
	failed := message{kind: 3, errorKind: 1, id: 101, source: "our@t:t:t", target: "our@slow:slow:examples",
		errorDetail: "no answer within 1µs"}
	for _, tc := range []struct {
		name  string
		code  int32
		ans   *message
		reads int // message_read calls
	}{
		{"reply", int32(len(reply.encode())), &reply, 1},
		{"timeout", eTIMEOUT, &failed, 2},
		{"timeout without a message", eTIMEOUT, nil, 1},
		{"not permitted", ePERM, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, ctx, mod := guest(t)
			h.answer = func([]byte) (int32, *message) { return tc.code, tc.ans }
			wantRC := int64(0)
			if tc.code < 0 {
				wantRC = int64(tc.code)
			}
			if rc := call(t, ctx, mod, "t_send_and_await"); rc != wantRC {
				t.Errorf("t_send_and_await = %d, want %d", rc, wantRC)
			}
			want := []report{{"rc", code(wantRC)}}
			if tc.ans != nil {
				want = append(want, messageReport(*tc.ans)...)
			}
			checkReports(t, h.reports, want)
			wantReq := cat([]byte{0, 0, 0, 0}, u64(1000), str("our@slow:slow:examples"), str("q"), str(""), str(""), u32(0))
			if len(h.sends) != 1 || !bytes.Equal(h.sends[0], wantReq) {
				t.Errorf("request:\n got % x\nwant % x", h.sends, wantReq)
			}
			if len(h.messageReads) != tc.reads {
				t.Errorf("message_read caps %v, want %d reads", h.messageReads, tc.reads)
			}
			if tc.reads == 2 && h.messageReads[0] != 0 {
				t.Errorf("message_read caps %v: want a first read with no room, then a grown one", h.messageReads)
			}
		})
	}
}

// TestRespondEncoding checks the Response encoding with caps and a blob,
// and WEFT_ENOREQUEST when nothing waits for an answer.
func TestRespondEncoding(t *testing.T) {
	h, ctx, mod := guest(t)
	if rc := call(t, ctx, mod, "t_respond"); rc != eNOREQUEST {
		t.Errorf("t_respond with no request = %d, want WEFT_ENOREQUEST", rc)
	}
	h.queue = []message{{kind: 1, flags: 2, id: 5, expects: 1e9, source: "our@a:b:c", target: "our@t:t:t"}}
	if rc := call(t, ctx, mod, "t_await"); rc != 0 {
		t.Fatalf("t_await = %d", rc)
	}
	if rc := call(t, ctx, mod, "t_respond"); rc != 0 {
		t.Fatalf("t_respond = %d", rc)
	}
	want := cat(
		[]byte{0x02, 0, 0, 0},
		str("pong"),
		str("meta"),
		caps(capability{"our@echo:echo:examples", `{"read":true}`}),
		str("application/octet-stream"),
		str("\xff\x00"),
	)
	if len(h.responds) != 1 || !bytes.Equal(h.responds[0], want) {
		t.Errorf("response:\n got % x\nwant % x", h.responds, want)
	}
}

// TestDeferAndRespondDeferred checks weft_defer's token and
// weft_respond_deferred's token (an i64) and encoding, the one respond
// uses; after defer, respond and a second defer find no request.
func TestDeferAndRespondDeferred(t *testing.T) {
	h, ctx, mod := guest(t)
	if rc := call(t, ctx, mod, "t_defer"); rc != eNOREQUEST {
		t.Errorf("t_defer with no request = %d, want WEFT_ENOREQUEST", rc)
	}
	h.queue = []message{{kind: 1, flags: 2, id: 5, expects: 1e9, source: "our@a:b:c", target: "our@t:t:t"}}
	if rc := call(t, ctx, mod, "t_await"); rc != 0 {
		t.Fatalf("t_await = %d", rc)
	}
	token := call(t, ctx, mod, "t_defer")
	if token != 1 {
		t.Fatalf("t_defer = %d, want the node's token 1", token)
	}
	if rc := call(t, ctx, mod, "t_respond"); rc != eNOREQUEST {
		t.Errorf("t_respond after defer = %d, want WEFT_ENOREQUEST", rc)
	}
	if rc := call(t, ctx, mod, "t_defer"); rc != eNOREQUEST {
		t.Errorf("a second t_defer = %d, want WEFT_ENOREQUEST", rc)
	}
	if rc := call(t, ctx, mod, "t_respond_deferred", uint64(token)); rc != 0 {
		t.Fatalf("t_respond_deferred = %d", rc)
	}
	want := cat(
		[]byte{0x02, 0, 0, 0},
		str("pong"),
		str("meta"),
		caps(capability{"our@echo:echo:examples", `{"read":true}`}),
		str("application/octet-stream"),
		str("\xff\x00"),
	)
	if len(h.later) != 1 || h.later[0].token != token || !bytes.Equal(h.later[0].resp, want) {
		t.Errorf("deferred answers %v, want token %d with\n% x", h.later, token, want)
	}
	for _, tok := range []int64{token, -1, 1 << 40} {
		if rc := call(t, ctx, mod, "t_respond_deferred", uint64(tok)); rc != eNOREQUEST {
			t.Errorf("t_respond_deferred(%d) = %d, want WEFT_ENOREQUEST", tok, rc)
		}
	}
	if len(h.responds) != 0 || len(h.later) != 1 {
		t.Errorf("%d responds and %d deferred answers, want 0 and 1", len(h.responds), len(h.later))
	}
}

// TestState checks state_get, state_set (binary bytes, NUL included) and
// state_clear.
func TestState(t *testing.T) {
	h, ctx, mod := guest(t)
	call(t, ctx, mod, "t_state")
	checkReports(t, h.reports, []report{
		{"get0", code(eNONE)},
		{"set", 0},
		{"get1", 12},
		{"state", "counter=41\x00!"},
		{"clear", 0},
		{"get2", code(eNONE)},
	})
	if h.hasState {
		t.Errorf("state %q left after state_clear", h.state)
	}
}

// TestSpawnEncoding checks the Spawn spec encoding byte by byte and the
// child's id coming back.
func TestSpawnEncoding(t *testing.T) {
	h, ctx, mod := guest(t)
	h.childID = "worker:pkg:pub"
	if n := call(t, ctx, mod, "t_spawn"); n != int64(len(h.childID)) {
		t.Fatalf("t_spawn = %d", n)
	}
	want := []byte{
		6, 0, 0, 0, 'w', 'o', 'r', 'k', 'e', 'r', // name
		11, 0, 0, 0, '/', 'c', 'h', 'i', 'l', 'd', '.', 'w', 'a', 's', 'm', // wasm path
		1,    // on_exit: restart
		1,    // public
		0, 0, // reserved
	}
	want = cat(want, caps(capability{"our@echo:echo:examples", `{"read":true}`}, capability{"n1@x:y:z", "null"}))
	if len(h.spawns) != 1 || !bytes.Equal(h.spawns[0], want) {
		t.Errorf("spawn spec:\n got % x\nwant % x", h.spawns, want)
	}
	checkReports(t, h.reports, []report{{"child", h.childID}})
}

// TestCapsSelfLogLastError covers caps_read, cap_drop, self_read, log and
// last_error.
func TestCapsSelfLogLastError(t *testing.T) {
	h, ctx, mod := guest(t)
	h.held = []capability{{"our@kv:kv:sys", `{"write":true}`}, {strings.Repeat("n", 300) + "@x:y:z", "{}"}}
	if rc := call(t, ctx, mod, "t_caps"); rc != 0 {
		t.Fatalf("t_caps = %d", rc)
	}
	checkReports(t, h.reports, []report{
		{"caps", 2},
		{"issuer", h.held[0].issuer}, {"params", h.held[0].params},
		{"issuer", h.held[1].issuer}, {"params", h.held[1].params},
	})
	if want := cat(str("our@kv:kv:sys"), str(`{"write":true}`)); len(h.drops) != 1 || !bytes.Equal(h.drops[0], want) {
		t.Errorf("cap_drop got % x, want % x", h.drops, want)
	}

	h.reports = nil
	h.self = "our@" + strings.Repeat("p", 100) + ":pkg:pub" // longer than the first buffer
	h.lastErr = "state too large"
	call(t, ctx, mod, "t_misc")
	checkReports(t, h.reports, []report{
		{"self_rc", uint64(len(h.self))}, {"self", h.self},
		{"last_error_rc", uint64(len(h.lastErr))}, {"last_error", h.lastErr},
	})
	if want := []string{"2 careful: no formatting"}; len(h.logs) != 1 || h.logs[0] != want[0] {
		t.Errorf("logs %q, want %q", h.logs, want)
	}
}

// TestHostRejectsBadRange checks the fake host itself: a range outside
// memory is WEFT_EINVAL (as docs/abi.md says), so the tests above would
// see a guest that passed one.
func TestHostRejectsBadRange(t *testing.T) {
	h, _, mod := guest(t)
	if _, ok := h.read(mod, mod.Memory().Size()-1, 2); ok {
		t.Fatal("read past the end of memory succeeded")
	}
	if rc := h.copyOut(mod, mod.Memory().Size()-1, 2, []byte("ab")); rc != eINVAL {
		t.Fatalf("copyOut past the end = %d", rc)
	}
}
