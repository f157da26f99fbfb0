package ctest

import (
	"bytes"
	"testing"
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

	// One instance serves every input: its memory grows once, and each
	// input is written to end exactly at the end of memory, where the
	// guest (which does not allocate in t_decode) never looks otherwise.
	const maxInput = 1 << 16
	h, ctx, mod := guest(f)
	mem := mod.Memory()
	if _, ok := mem.Grow(maxInput>>16 + 1); !ok {
		f.Fatal("memory.grow failed")
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > maxInput {
			t.Skip("longer than maxInput")
		}
		h.t, h.reports = t, nil
		ptr := mem.Size() - uint32(len(in))
		if !mem.Write(ptr, in) {
			t.Fatal("write failed")
		}
		rc := call(t, ctx, mod, "t_decode", uint64(ptr), uint64(len(in)))
		switch rc {
		case eINVAL:
			if len(h.reports) != 0 {
				t.Fatalf("refused, yet reported %v", h.reports)
			}
		case 0:
			// The reserved byte (offset 3) is the sender's to zero and
			// the reader's to ignore, so that it can gain a meaning.
			want := bytes.Clone(in)
			want[3] = 0
			if got := fromReports(t, h.reports).encode(); !bytes.Equal(got, want) {
				t.Fatalf("accepted % x\nbut its fields encode to % x", in, got)
			}
		default:
			t.Fatalf("t_decode = %d, want 0 or WEFT_EINVAL", rc)
		}
	})
}
