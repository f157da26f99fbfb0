package ctest

import (
	"bytes"
	"context"
	"testing"

	"github.com/tetratelabs/wazero/api"
)

// fromReports rebuilds the message that report_message of
// testdata/guest.c reported, in its order.
func fromReports(t *testing.T, rs []report) message {
	t.Helper()
	var m message
	next := func(name string) any {
		if len(rs) == 0 || rs[0].name != name {
			t.Fatalf("want a report %s, have %v", name, rs)
		}
		v := rs[0].val
		rs = rs[1:]
		return v
	}
	m.kind = byte(next("kind").(uint64))
	m.flags = byte(next("flags").(uint64))
	m.errorKind = byte(next("error_kind").(uint64))
	m.id = next("id").(uint64)
	m.expects = next("expects_response").(uint64)
	m.source = next("source").(string)
	m.target = next("target").(string)
	m.body = next("body").(string)
	m.metadata = next("metadata").(string)
	m.ctx = next("context").(string)
	n := next("caps").(uint64)
	for range n {
		m.caps = append(m.caps, capability{next("issuer").(string), next("params").(string)})
	}
	m.blobMime = next("blob_mime").(string)
	m.blobLen = uint32(next("blob_len").(uint64))
	m.errorDetail = next("error_detail").(string)
	if len(rs) != 0 {
		t.Fatalf("reports left over: %v", rs)
	}
	return m
}

// fuzzGuest is one guest instance serving every input of a fuzz target:
// its memory grows once, and each input is written to end exactly at the
// end of memory, where the guest (which does not allocate in its
// t_decode* exports) never looks otherwise.
type fuzzGuest struct {
	h   *host
	ctx context.Context
	mod api.Module
}

// maxFuzzInput is the longest input a fuzzGuest takes.
const maxFuzzInput = 1 << 16

func newFuzzGuest(f *testing.F) *fuzzGuest {
	h, ctx, mod := guest(f)
	if _, ok := mod.Memory().Grow(maxFuzzInput>>16 + 1); !ok {
		f.Fatal("memory.grow failed")
	}
	return &fuzzGuest{h: h, ctx: ctx, mod: mod}
}

// decode runs export on in and returns its result and what it reported.
func (g *fuzzGuest) decode(t *testing.T, export string, in []byte) (int64, []report) {
	g.h.t, g.h.reports = t, nil
	mem := g.mod.Memory()
	ptr := mem.Size() - uint32(len(in))
	if !mem.Write(ptr, in) {
		t.Fatal("write failed")
	}
	rc := call(t, g.ctx, g.mod, export, uint64(ptr), uint64(len(in)))
	return rc, g.h.reports
}

// FuzzDecode runs weft_message_decode of weft.h on arbitrary bytes placed
// at the very end of the guest's memory: it must never read past them (a
// trap), must answer 0 or WEFT_EINVAL, and what it accepts must encode
// back to the same bytes (docs/abi.md has one encoding per message, but
// for the reserved byte, which a reader ignores).
func FuzzDecode(f *testing.F) {
	f.Add(full.encode())
	f.Add(message{kind: 3, errorKind: 7, id: 1, errorDetail: "too large"}.encode())
	f.Add([]byte{1, 0, 0, 0})
	f.Add(append(full.encode(), 0))

	g := newFuzzGuest(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > maxFuzzInput {
			t.Skip("longer than maxFuzzInput")
		}
		rc, reports := g.decode(t, "t_decode", in)
		switch rc {
		case eINVAL:
			if len(reports) != 0 {
				t.Fatalf("refused, yet reported %v", reports)
			}
		case 0:
			// The reserved byte (offset 3) is the sender's to zero and
			// the reader's to ignore, so that it can gain a meaning.
			want := bytes.Clone(in)
			want[3] = 0
			if got := fromReports(t, reports).encode(); !bytes.Equal(got, want) {
				t.Fatalf("accepted % x\nbut its fields encode to % x", in, got)
			}
		default:
			t.Fatalf("t_decode = %d, want 0 or WEFT_EINVAL", rc)
		}
	})
}

// storeDecoders are the store-result (and store-op) decoders of weft.h,
// by the t_decode_* export of testdata/guest.c that runs each.
var storeDecoders = []string{"t_decode_store_op", "t_decode_pairs", "t_decode_entries", "t_decode_entry", "t_decode_names"}

// reencode rebuilds, from what a t_decode_* export reported, the encoding
// it decoded, with reserved bytes zeroed; ok is false when the reports do
// not have the export's shape.
func reencode(export string, rs []report) (out []byte, ok bool) {
	defer func() {
		if recover() != nil { // a report of the wrong type or missing
			out, ok = nil, false
		}
	}()
	next := func(name string) any {
		if len(rs) == 0 || rs[0].name != name {
			panic(name)
		}
		v := rs[0].val
		rs = rs[1:]
		return v
	}
	nextEntry := func() []byte {
		name := next("name").(string)
		dir := byte(next("dir").(uint64))
		return entry(name, dir, next("size").(uint64), next("mtime").(uint64))
	}
	switch export {
	case "t_decode_store_op":
		op, flags := byte(next("op").(uint64)), byte(next("flags").(uint64))
		pkg, name := next("package").(string), next("name").(string)
		key, value := next("key").(string), next("value").(string)
		out = storeOp(op, flags, pkg, name, key, value, next("offset").(uint64), next("length").(uint64))
	case "t_decode_pairs":
		n := next("count").(uint64)
		var kv []string
		for range n {
			kv = append(kv, next("key").(string), next("value").(string))
		}
		out = pairs(byte(next("more").(uint64)), kv...)
	case "t_decode_entries":
		n := next("count").(uint64)
		var es [][]byte
		for range n {
			es = append(es, nextEntry())
		}
		out = entries(es...)
	case "t_decode_entry":
		out = nextEntry()
	case "t_decode_names":
		n := next("count").(uint64)
		var ns []string
		for range n {
			ns = append(ns, next("name").(string))
		}
		out = names(ns...)
	}
	return out, len(rs) == 0
}

// zeroReserved zeroes the reserved bytes of the encoding b of export's
// kind, whose layout matches want (the reencoding of what was decoded).
func zeroReserved(export string, b []byte) []byte {
	b = bytes.Clone(b)
	entryAt := func(off int) int { // zero one entry's reserved bytes; its end
		n := int(b[off]) | int(b[off+1])<<8 | int(b[off+2])<<16 | int(b[off+3])<<24
		off += 4 + n
		b[off+1], b[off+2], b[off+3] = 0, 0, 0
		return off + 20
	}
	switch export {
	case "t_decode_store_op":
		b[2], b[3] = 0, 0
	case "t_decode_entry":
		entryAt(0)
	case "t_decode_entries":
		off := 4
		for off < len(b) {
			off = entryAt(off)
		}
	}
	return b
}

// FuzzStoreDecoders runs weft.h's store decoders (chosen by the first
// byte) on arbitrary bytes placed at the very end of the guest's memory:
// they must never read past them (a trap), must answer 0 or WEFT_EINVAL,
// and what they accept must encode back to the same bytes, but for
// reserved bytes, which a reader ignores.
func FuzzStoreDecoders(f *testing.F) {
	for i, d := range storeDecoders {
		for _, tc := range decoderCases() {
			if tc.export == d {
				f.Add(append([]byte{byte(i)}, tc.in...))
			}
		}
	}
	f.Add([]byte{2, 1, 0, 0, 0})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0})

	g := newFuzzGuest(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 || len(in) > maxFuzzInput {
			t.Skip("empty or longer than maxFuzzInput")
		}
		export := storeDecoders[int(in[0])%len(storeDecoders)]
		in = in[1:]
		switch rc, reports := g.decode(t, export, in); rc {
		case eINVAL:
			if len(reports) != 0 {
				t.Fatalf("%s refused, yet reported %v", export, reports)
			}
		case 0:
			got, ok := reencode(export, reports)
			if !ok {
				t.Fatalf("%s reported %v", export, reports)
			}
			if want := zeroReserved(export, in); !bytes.Equal(got, want) {
				t.Fatalf("%s accepted % x\nbut its fields encode to % x", export, in, got)
			}
		default:
			t.Fatalf("%s = %d, want 0 or WEFT_EINVAL", export, rc)
		}
	})
}
