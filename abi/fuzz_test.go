package abi

import (
	"bytes"
	"testing"
)

// The property of every decoder: it never panics, and what it accepts
// re-encodes to exactly its input (the encoding is canonical).

func FuzzDecodeMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			return
		}
		if out := AppendMessage(nil, &m); !bytes.Equal(out, b) {
			t.Fatalf("re-encoded\n %x\nfrom\n %x", out, b)
		}
	})
}

func FuzzDecodeRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodeRequest(b)
		if err != nil {
			return
		}
		if out := AppendRequest(nil, &q); !bytes.Equal(out, b) {
			t.Fatalf("re-encoded\n %x\nfrom\n %x", out, b)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeResponse(b)
		if err != nil {
			return
		}
		if out := AppendResponse(nil, &p); !bytes.Equal(out, b) {
			t.Fatalf("re-encoded\n %x\nfrom\n %x", out, b)
		}
	})
}

func FuzzDecodeSpawn(f *testing.F) {
	f.Add(AppendSpawn(nil, &SpawnSpec{Name: "kid", WasmPath: "k.wasm", OnExit: 1, Public: true, Capabilities: testCaps}))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSpawn(b)
		if err != nil {
			return
		}
		if out := AppendSpawn(nil, &s); !bytes.Equal(out, b) {
			t.Fatalf("re-encoded\n %x\nfrom\n %x", out, b)
		}
	})
}
