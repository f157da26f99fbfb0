package ctest

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// --- Store encodings by hand, from docs/abi.md ("The store") --------------

// storeOp lays a store op out as docs/abi.md's table says: u8 op, u8
// flags, u16 reserved, str package, str name, bytes key, bytes value, u64
// offset, u64 length.
func storeOp(op, flags byte, pkg, name, key, value string, offset, length uint64) []byte {
	return cat([]byte{op, flags, 0, 0}, str(pkg), str(name), str(key), str(value), u64(offset), u64(length))
}

// names encodes *names*: a u32 count, then each str.
func names(ns ...string) []byte {
	out := u32(uint32(len(ns)))
	for _, n := range ns {
		out = cat(out, str(n))
	}
	return out
}

// pairs encodes *pairs*: a u32 count, each bytes key and bytes value, and
// last u8 more.
func pairs(more byte, kv ...string) []byte {
	out := u32(uint32(len(kv) / 2))
	for _, s := range kv {
		out = cat(out, str(s))
	}
	return append(out, more)
}

// entry encodes an *entry*: str name, u8 dir, 3 reserved bytes, u64 size,
// u64 modification time.
func entry(name string, dir byte, size, mtime uint64) []byte {
	return cat(str(name), []byte{dir, 0, 0, 0}, u64(size), u64(mtime))
}

// entries encodes *entries*: a u32 count, then each entry.
func entries(es ...[]byte) []byte {
	return cat(append([][]byte{u32(uint32(len(es)))}, es...)...)
}

// TestStoreLayout pins the hand encoders to docs/abi.md with literals.
func TestStoreLayout(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want []byte
	}{
		{"op", storeOp(20, 1, "p", "dr", "f", "", 7, 0x0102), []byte{
			20, 1, 0, 0, // op, flags, reserved
			1, 0, 0, 0, 'p', // package
			2, 0, 0, 0, 'd', 'r', // name
			1, 0, 0, 0, 'f', // key
			0, 0, 0, 0, // value
			7, 0, 0, 0, 0, 0, 0, 0, // offset
			2, 1, 0, 0, 0, 0, 0, 0, // length
		}},
		{"pairs", pairs(1, "k", ""), []byte{1, 0, 0, 0, 1, 0, 0, 0, 'k', 0, 0, 0, 0, 1}},
		{"entry", entry("a", 1, 2, 3), []byte{1, 0, 0, 0, 'a', 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0}},
		{"names", names("x"), []byte{1, 0, 0, 0, 1, 0, 0, 0, 'x'}},
	} {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s:\n got % x\nwant % x", tc.name, tc.got, tc.want)
		}
	}
}

// --- Typed functions ------------------------------------------------------

// storeCall is one call of t_store_ops: the op the guest must send, the
// result the host answers with, and the report name of that result.
type storeCall struct {
	name   string
	op     []byte
	result []byte
	report string // the report of the result ("" when none)
}

var (
	scanResult    = pairs(1, "user/8", "x", "user/9", "")
	dirResult     = entries(entry("a", 1, 0, 1_700_000_000_000_000_000), entry("f", 0, 12, 5))
	statResult    = entry("a", 1, 0, 1<<63|5) // a negative time comes back as it was
	txEncoding    = cat(u32(3), []byte{1, 0, 0, 0}, str("a"), str("1"), []byte{2, 0, 0, 0}, str("bb"), str(""), []byte{1, 0, 0, 0}, str("c"), str(""))
	storeOpsCalls = []storeCall{
		{"kv_open", storeOp(1, 0, "", "notes", "", "", 0, 0), nil, ""},
		{"kv_get", storeOp(2, 0, "chat:weft.os", "rooms", "k\x001", "", 0, 0), []byte("value!"), "value"},
		{"kv_set", storeOp(3, 0, "", "notes", "k", "v\x00", 0, 0), nil, ""},
		{"kv_delete", storeOp(4, 0, "", "notes", "gone", "", 0, 0), nil, ""},
		{"kv_scan", storeOp(5, 0, "chat:weft.os", "rooms", "user/", "user/7", 0, 10), scanResult, "pairs"},
		{"kv_tx", storeOp(6, 0, "", "notes", "", string(txEncoding), 0, 0), nil, ""},
		{"kv_drop", storeOp(7, 0, "", "notes", "", "", 0, 0), nil, ""},
		{"kv_list", storeOp(8, 0, "", "", "", "", 0, 0), names("notes", "rooms"), "names"},
		{"drive_open", storeOp(16, 0, "", "media", "", "", 0, 0), nil, ""},
		{"drive_list", storeOp(17, 0, "", "", "", "", 0, 0), names("media"), "names"},
		{"drive_remove", storeOp(18, 0, "", "media", "", "", 0, 0), nil, ""},
		{"write_whole", storeOp(19, 0, "", "media", "a/b.txt", "hello", 0, 0), nil, ""},
		{"write_append", storeOp(19, 1, "pics:alice", "photos", "log", "+", 0, 0), nil, ""},
		{"write_at", storeOp(19, 2, "", "media", "f", "xy", 0x0102030405, 0), nil, ""},
		{"read_whole", storeOp(20, 0, "", "media", "a/b.txt", "", 0, 0), []byte("hello"), "data"},
		{"read_range", storeOp(20, 1, "pics:alice", "photos", "f", "", 7, 4096), []byte("rest"), "data"},
		{"dir_list", storeOp(21, 0, "", "media", "/", "", 0, 0), dirResult, "entries"},
		{"stat", storeOp(22, 0, "", "media", "a", "", 0, 0), statResult, "entry"},
		{"mkdir", storeOp(23, 0, "", "media", "x/y", "", 0, 0), nil, ""},
		{"rename", storeOp(24, 0, "", "media", "x/y", "z", 0, 0), nil, ""},
		{"remove", storeOp(25, 0, "", "media", "a/b.txt", "", 0, 0), nil, ""},
		{"remove_all", storeOp(25, 1, "pics:alice", "photos", "x", "", 0, 0), nil, ""},
	}
)

// storeOpsReports is what t_store_ops reports when each call returns
// code (0: success, with the calls' results).
func storeOpsReports(code int64) []report {
	var r []report
	for _, c := range storeOpsCalls {
		if c.name == "kv_tx" {
			r = append(r, report{"tx_build", 0})
		}
		rc := code
		if code == 0 {
			rc = int64(len(c.result))
		}
		r = append(r, report{c.name, uint64(rc)})
		if c.report == "" {
			continue
		}
		res := string(c.result)
		if code < 0 {
			res = ""
		}
		r = append(r, report{c.report, res})
		if c.name == "stat" {
			if code < 0 {
				r = append(r, report{"stat_name", ""}, report{"stat_dir", 0}, report{"stat_size", 0}, report{"stat_mtime", 0})
			} else {
				r = append(r, report{"stat_name", "a"}, report{"stat_dir", 1}, report{"stat_size", 0}, report{"stat_mtime", uint64(1<<63 | 5)})
			}
		}
	}
	return r
}

// TestStoreOpEncodings calls every typed store function and checks the op
// each sends byte by byte, and the result each reads.
func TestStoreOpEncodings(t *testing.T) {
	h, ctx, mod := guest(t)
	h.storeAnswer = func(op []byte) (int32, []byte) {
		for _, c := range storeOpsCalls {
			if bytes.Equal(op, c.op) {
				return 0, c.result
			}
		}
		return eINVAL, nil
	}
	if rc := call(t, ctx, mod, "t_store_ops"); rc != 0 {
		t.Fatalf("t_store_ops = %d", rc)
	}
	if len(h.storeOps) != len(storeOpsCalls) {
		t.Fatalf("guest sent %d store ops, want %d", len(h.storeOps), len(storeOpsCalls))
	}
	for i, c := range storeOpsCalls {
		if !bytes.Equal(h.storeOps[i], c.op) {
			t.Errorf("%s:\n got % x\nwant % x", c.name, h.storeOps[i], c.op)
		}
	}
	checkReports(t, h.reports, storeOpsReports(0))
	if len(h.kept) != 0 {
		t.Errorf("host kept %q", h.kept)
	}
}

// TestStoreErrors checks that the codes the node answers come back from
// every typed function, with results left empty.
func TestStoreErrors(t *testing.T) {
	for _, code := range []int32{eINVAL, eNONE, eLIMIT, ePERM, eNOTFOUND, eEXIST, -9} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			h, ctx, mod := guest(t)
			h.storeAnswer = func([]byte) (int32, []byte) { return code, nil }
			call(t, ctx, mod, "t_store_ops")
			checkReports(t, h.reports, storeOpsReports(int64(code)))
			if len(h.storeResultCaps) != 0 {
				t.Errorf("store_result called after an error: %v", h.storeResultCaps)
			}
		})
	}
}

// TestStoreResultRetry checks the store_result rule: a result larger than
// the buffer is read with store_result once the buffer has grown; a later
// result that fits needs no second call; a 1 MiB one grows it again.
func TestStoreResultRetry(t *testing.T) {
	h, ctx, mod := guest(t)
	var value []byte
	h.storeAnswer = func([]byte) (int32, []byte) { return 0, value }
	want := storeOp(2, 0, "", "d", "k", "", 0, 0)
	for i, tc := range []struct {
		value       []byte
		storeResult bool
	}{
		{bytes.Repeat([]byte("v"), 100), true}, // the buffer starts empty
		{bytes.Repeat([]byte("w"), 100), false},
		{[]byte("short"), false},
		{bytes.Repeat([]byte("0123456789abcdef"), 1<<16), true},
		{[]byte{}, false},
	} {
		value = tc.value
		h.reports, h.storeResultCaps = nil, nil
		if rc := call(t, ctx, mod, "t_kv_get"); rc != int64(len(value)) {
			t.Fatalf("%d: t_kv_get = %d, want %d", i, rc, len(value))
		}
		if got := h.reports[1].val.(string); got != string(value) {
			t.Errorf("%d: value of %d bytes, want %d", i, len(got), len(value))
		}
		if cap := h.reports[2].val.(uint64); cap < uint64(len(value)) {
			t.Errorf("%d: buffer capacity %d < %d", i, cap, len(value))
		}
		if !bytes.Equal(h.storeOps[len(h.storeOps)-1], want) {
			t.Errorf("%d: op % x, want % x", i, h.storeOps[len(h.storeOps)-1], want)
		}
		if tc.storeResult {
			if len(h.storeResultCaps) != 1 || h.storeResultCaps[0] < uint32(len(value)) {
				t.Errorf("%d: store_result caps %v, want one call with room for %d", i, h.storeResultCaps, len(value))
			}
		} else if len(h.storeResultCaps) != 0 {
			t.Errorf("%d: store_result called (%v) for a result that fit", i, h.storeResultCaps)
		}
	}
	if len(h.storeOps) != 5 {
		t.Errorf("%d store calls, want 5 (a retry goes through store_result, not store)", len(h.storeOps))
	}
	if h.storeOutcaps[0] != 0 {
		t.Errorf("first outcap %d, want 0 (an empty buffer)", h.storeOutcaps[0])
	}

	// A node that kept nothing: store_result's WEFT_ENONE comes back.
	h.dropKept, value, h.reports = true, bytes.Repeat([]byte("x"), 5<<20), nil
	if rc := call(t, ctx, mod, "t_kv_get"); rc != eNONE {
		t.Errorf("t_kv_get with no kept result = %d, want WEFT_ENONE", rc)
	}
	// kv_get of a missing key.
	h.dropKept = false
	h.storeAnswer = func([]byte) (int32, []byte) { return eNONE, nil }
	h.reports = nil
	if rc := call(t, ctx, mod, "t_kv_get"); rc != eNONE {
		t.Errorf("t_kv_get of a missing key = %d, want WEFT_ENONE", rc)
	}
	if h.reports[1].val.(string) != "" {
		t.Errorf("value %q after WEFT_ENONE, want empty", h.reports[1].val)
	}
}

// TestStoreNoBuffer checks weft_store with no result buffer: it offers no
// room, and reports the result's length.
func TestStoreNoBuffer(t *testing.T) {
	h, ctx, mod := guest(t)
	h.storeAnswer = func([]byte) (int32, []byte) { return 0, nil }
	if rc := call(t, ctx, mod, "t_store_null"); rc != 0 {
		t.Errorf("t_store_null = %d", rc)
	}
	h.storeAnswer = func([]byte) (int32, []byte) { return 0, []byte("odd") }
	if rc := call(t, ctx, mod, "t_store_null"); rc != 3 {
		t.Errorf("t_store_null with a result = %d, want its length", rc)
	}
	want := storeOp(3, 0, "", "d", "k", "v", 0, 0)
	for i, op := range h.storeOps {
		if !bytes.Equal(op, want) || h.storeOutcaps[i] != 0 {
			t.Errorf("call %d: op % x outcap %d, want % x and 0", i, op, h.storeOutcaps[i], want)
		}
	}
	if len(h.storeResultCaps) != 0 {
		t.Errorf("store_result called: %v", h.storeResultCaps)
	}
}

// TestStoreCaps checks the capability helpers against docs/abi.md's
// table: canonical params, the caller's own package from its address.
func TestStoreCaps(t *testing.T) {
	h, ctx, mod := guest(t)
	h.self = "our@me:mine:alice"
	call(t, ctx, mod, "t_store_caps")
	checkReports(t, h.reports, []report{
		{"kv_own", 0}, {"issuer", "our@kv:sys:weft"}, {"params", `{"db":"notes","kind":"read","package":"mine:alice"}`},
		{"kv_other", 0}, {"issuer", "our@kv:sys:weft"}, {"params", `{"db":"rooms","kind":"write","package":"chat:weft.os"}`},
		{"drive_own", 0}, {"issuer", "our@vfs:sys:weft"}, {"params", `{"drive":"/mine:alice/media","kind":"write"}`},
		{"drive_other", 0}, {"issuer", "our@vfs:sys:weft"}, {"params", `{"drive":"/pics:alice/photos","kind":"read"}`},
		{"bad_kind", code(eINVAL)}, {"bad_name", code(eINVAL)}, {"params_len", 0},
	})
}

// --- Decoders ---------------------------------------------------------------

// decoderCase is a valid input of one of guest.c's t_decode_* exports and
// what it reports.
type decoderCase struct {
	export  string
	in      []byte
	reports []report
	bad     map[string][]byte // invalid inputs besides truncations and a trailing byte
}

func entryReports(name string, dir, size, mtime uint64) []report {
	return []report{{"name", name}, {"dir", dir}, {"size", size}, {"mtime", mtime}}
}

func decoderCases() []decoderCase {
	op := storeOp(19, 2, "pkg:pub", "dr", "a/b", "data\x00", 1<<40, 3)
	dir := entries(entry("", 1, 0, 9), entry("file", 0, 1<<33, 1<<63))
	return []decoderCase{
		{"t_decode_store_op", op, []report{
			{"op", 19}, {"flags", 2}, {"package", "pkg:pub"}, {"name", "dr"}, {"key", "a/b"},
			{"value", "data\x00"}, {"offset", 1 << 40}, {"length", 3},
		}, map[string][]byte{
			"key length past the end": cat(op[:17], u32(0xfffffff0), op[21:]),
		}},
		{"t_decode_pairs", scanResult, []report{
			{"count", 2}, {"key", "user/8"}, {"value", "x"}, {"key", "user/9"}, {"value", ""}, {"more", 1},
		}, map[string][]byte{
			"more 2":         append(bytes.Clone(scanResult[:len(scanResult)-1]), 2),
			"count 3":        cat(u32(3), scanResult[4:]),
			"count huge":     cat(u32(0xffffffff), scanResult[4:]),
			"no more byte":   scanResult[:len(scanResult)-1],
			"key length big": cat(u32(1), u32(0x7fffffff), []byte{0}),
		}},
		{"t_decode_pairs", pairs(0), []report{{"count", 0}, {"more", 0}}, nil},
		{"t_decode_entries", dir, append(append([]report{{"count", 2}}, entryReports("", 1, 0, 9)...),
			entryReports("file", 0, 1<<33, 1<<63)...), map[string][]byte{
			"dir 2":      cat(u32(1), entry("x", 2, 0, 0)),
			"count 3":    cat(u32(3), dir[4:]),
			"count huge": cat(u32(0x0fffffff), dir[4:]),
		}},
		{"t_decode_entries", entries(), []report{{"count", 0}}, nil},
		{"t_decode_entry", statResult, entryReports("a", 1, 0, 1<<63|5), map[string][]byte{
			"dir 7":       entry("a", 7, 0, 0),
			"two entries": cat(statResult, statResult),
		}},
		{"t_decode_names", names("notes", "", "x-1"), []report{
			{"count", 3}, {"name", "notes"}, {"name", ""}, {"name", "x-1"},
		}, map[string][]byte{
			"count 4":    cat(u32(4), names("notes", "", "x-1")[4:]),
			"count huge": cat(u32(0x40000000), names("notes", "", "x-1")[4:]),
		}},
		{"t_decode_names", names(), []report{{"count", 0}}, nil},
	}
}

// TestStoreDecoders checks the result decoders on valid results, and that
// every truncation, a trailing byte and each bad input is refused with
// WEFT_EINVAL before anything is reported. Each input ends at the very
// end of memory, so a read past it would trap the guest.
func TestStoreDecoders(t *testing.T) {
	h, ctx, mod := guest(t)
	for _, tc := range decoderCases() {
		h.reports = nil
		ptr := placeAtEnd(t, mod, tc.in)
		if rc := call(t, ctx, mod, tc.export, uint64(ptr), uint64(len(tc.in))); rc != 0 {
			t.Fatalf("%s of % x = %d", tc.export, tc.in, rc)
		}
		checkReports(t, h.reports, tc.reports)

		bad := map[string][]byte{"trailing byte": append(bytes.Clone(tc.in), 0)}
		for n := 0; n < len(tc.in); n++ {
			bad[fmt.Sprintf("truncated to %d", n)] = tc.in[:n]
		}
		for name, b := range tc.bad {
			bad[name] = b
		}
		for name, b := range bad {
			h.reports = nil
			ptr := placeAtEnd(t, mod, b)
			if rc := call(t, ctx, mod, tc.export, uint64(ptr), uint64(len(b))); rc != eINVAL {
				t.Errorf("%s, %s: = %d, want WEFT_EINVAL", tc.export, name, rc)
			}
			if len(h.reports) != 0 {
				t.Errorf("%s, %s: refused input reported %v", tc.export, name, h.reports)
			}
		}
	}
}

// --- The C store probe (procstore/testdata/cprobe.c) -------------------------

// response encodes a Response as docs/abi.md lays it out: flags, 3
// reserved bytes, body, metadata, no caps, no blob.
func response(body, metadata string) []byte {
	return cat([]byte{0, 0, 0, 0}, str(body), str(metadata), u32(0))
}

// TestCProbe runs procstore's C probe against the fake host: its
// protocol, and weft.h's typed functions under it.
func TestCProbe(t *testing.T) {
	req := func(body []byte, metadata string) message {
		return message{kind: 1, flags: 2, id: 1, expects: 5e9, source: "our@t:t:t", target: "our@probe:p:q",
			body: string(body), metadata: metadata}
	}
	get := storeOp(2, 0, "", "db", "k", "", 0, 0)
	set := storeOp(3, 0, "", "db", "k", strings.Repeat("v", 4096), 0, 0)
	read := storeOp(20, 1, "pics:alice", "photos", "big", "", 0, 1<<20+1)
	scan := storeOp(5, 0, "", "db", "user/", "", 0, 0)
	odd := storeOp(2, 0, "", "db", "k", "x", 0, 0) // kv_get with a value: sent as it came
	big := bytes.Repeat([]byte("b"), 1<<20+1)
	for _, tc := range []struct {
		name     string
		msg      message
		answer   func([]byte) (int32, []byte)
		lastErr  string
		wantOps  [][]byte
		wantResp []byte // nil: no response
	}{
		{"empty body", req(nil, ""), nil, "", nil, response("", "ok")},
		{"kv_get", req(get, ""), func([]byte) (int32, []byte) { return 0, []byte("val") }, "",
			[][]byte{get}, response("val", "ok")},
		{"kv_set 3 times", req(set, "3"), nil, "", [][]byte{set, set, set}, response("", "ok")},
		{"file_read via store_result", req(read, ""), func([]byte) (int32, []byte) { return 0, big }, "",
			[][]byte{read}, response(string(big), "ok")},
		{"kv_scan", req(scan, "1"), func([]byte) (int32, []byte) { return 0, scanResult }, "",
			[][]byte{scan}, response(string(scanResult), "ok")},
		{"bad scan result", req(scan, ""), func([]byte) (int32, []byte) { return 0, scanResult[:5] }, "",
			[][]byte{scan}, response("", "error -1 ")},
		{"no capability", req(get, "2"), func([]byte) (int32, []byte) { return ePERM, nil },
			"store: kv_get: capability not held", [][]byte{get}, response("", "error -6 store: kv_get: capability not held")},
		{"odd op sent as is", req(odd, ""), func([]byte) (int32, []byte) { return eINVAL, nil },
			"store: kv_get: value must be empty", [][]byte{odd}, response("", "error -1 store: kv_get: value must be empty")},
		{"malformed op sent as is", req(append(bytes.Clone(get), 0), ""), func([]byte) (int32, []byte) { return eINVAL, nil },
			"trailing bytes", [][]byte{append(bytes.Clone(get), 0)}, response("", "error -1 trailing bytes")},
		{"unknown op sent as is", req(storeOp(99, 0, "", "", "", "", 0, 0), ""), func([]byte) (int32, []byte) { return eINVAL, nil },
			"unknown op 99", [][]byte{storeOp(99, 0, "", "", "", "", 0, 0)}, response("", "error -1 unknown op 99")},
		{"metadata 0", req(get, "0"), nil, "", nil, response("", "error -1 cprobe: metadata is not empty or a count >= 1")},
		{"metadata x", req(get, "x"), nil, "", nil, response("", "error -1 cprobe: metadata is not empty or a count >= 1")},
		{"no response wanted", message{kind: 1, id: 2, source: "our@t:t:t", target: "our@probe:p:q", body: string(get)},
			nil, "", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &host{t: t}
			ctx, mod := h.instantiate(t, build(t, "procstore/testdata/cprobe.c"))
			h.queue = []message{tc.msg}
			h.storeAnswer, h.lastErr = tc.answer, tc.lastErr
			if rc := call(t, ctx, mod, "init"); rc != 0 {
				t.Fatalf("init = %d, want 0 after WEFT_ESTOPPED", rc)
			}
			if len(h.storeOps) != len(tc.wantOps) {
				t.Fatalf("%d store calls, want %d", len(h.storeOps), len(tc.wantOps))
			}
			for i := range tc.wantOps {
				if !bytes.Equal(h.storeOps[i], tc.wantOps[i]) {
					t.Errorf("store op %d:\n got % x\nwant % x", i, h.storeOps[i], tc.wantOps[i])
				}
			}
			switch {
			case tc.wantResp == nil && len(h.responds) != 0:
				t.Errorf("responded %q, want no response", h.responds)
			case tc.wantResp != nil && (len(h.responds) != 1 || !bytes.Equal(h.responds[0], tc.wantResp)):
				if len(h.responds) == 1 && len(h.responds[0]) < 200 {
					t.Errorf("response:\n got % x\nwant % x", h.responds[0], tc.wantResp)
				} else {
					t.Errorf("%d responses (first of %d bytes), want one of %d bytes", len(h.responds), len(firstOr(h.responds)), len(tc.wantResp))
				}
			}
			if len(h.logs) != 0 {
				t.Errorf("probe logged %q", h.logs)
			}
		})
	}
}

func firstOr(bs [][]byte) []byte {
	if len(bs) == 0 {
		return nil
	}
	return bs[0]
}

// TestCProbeExports checks that the probe builds with the examples' flags
// into a module docs/abi.md accepts.
func TestCProbeExports(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	cm, err := r.CompileModule(ctx, build(t, "procstore/testdata/cprobe.c"))
	if err != nil {
		t.Fatal(err)
	}
	fns := cm.ExportedFunctions()
	if f, ok := fns["init"]; !ok || len(f.ParamTypes()) != 0 || !bytes.Equal(f.ResultTypes(), []api.ValueType{api.ValueTypeI32}) {
		t.Errorf("init missing or not () -> i32")
	}
	if f, ok := fns["weft_abi_v1"]; !ok || len(f.ParamTypes())+len(f.ResultTypes()) != 0 {
		t.Errorf("weft_abi_v1 missing or not () -> ()")
	}
	if _, ok := cm.ExportedMemories()["memory"]; !ok {
		t.Error("no memory export")
	}
	for _, f := range cm.ImportedFunctions() {
		if mod, _, _ := f.Import(); mod != "weft" && mod != "wasi_snapshot_preview1" {
			t.Errorf("probe imports %s from %q", f.DebugName(), mod)
		}
	}
}
