package abi

import (
	"bytes"
	"reflect"
	"testing"
)

// The property of every decoder: it never panics, and what it accepts
// re-encodes to exactly its input (the encoding is canonical).

func FuzzDecodeMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		// The straight-line decoder agrees with the reader's wherever it
		// answers.
		var fm Message
		if decodeMessageFast(b, &fm) {
			sm, err := decodeMessage(b)
			if err != nil {
				t.Fatalf("fast decoder accepted what the reader refuses (%v):\n %x", err, b)
			}
			if !reflect.DeepEqual(fm, sm) {
				t.Fatalf("decoders disagree on %x:\n fast   %+v\n reader %+v", b, fm, sm)
			}
		}
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

func FuzzDecodeStoreOp(f *testing.F) {
	f.Add(AppendStoreOp(nil, &StoreOp{Op: StoreFsWrite, Flags: StoreAt, Package: "notes:examples", Name: "notes", Key: []byte("a/b.md"), Value: []byte("text"), Offset: 7}))
	f.Add(AppendStoreOp(nil, &StoreOp{Op: StoreKVTx, Name: "index", Value: AppendKVTx(nil, []KVTxOp{{Kind: KVTxSet, Key: []byte("k"), Value: []byte("v")}, {Kind: KVTxDelete, Key: []byte("j")}})}))
	f.Fuzz(func(t *testing.T, b []byte) {
		op, err := DecodeStoreOp(b)
		if err != nil {
			return
		}
		if out := AppendStoreOp(nil, &op); !bytes.Equal(out, b) {
			t.Fatalf("re-encoded\n %x\nfrom\n %x", out, b)
		}
	})
}

func FuzzDecodeKVTx(f *testing.F) {
	f.Add(AppendKVTx(nil, []KVTxOp{{Kind: KVTxSet, Key: []byte("k"), Value: []byte("v")}, {Kind: KVTxDelete, Key: []byte("j")}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		ops, err := DecodeKVTx(b)
		if err != nil {
			return
		}
		if out := AppendKVTx(nil, ops); !bytes.Equal(out, b) {
			t.Fatalf("re-encoded\n %x\nfrom\n %x", out, b)
		}
	})
}

// FuzzDecodeStoreResults covers the results a guest decodes: the first
// byte chooses the decoder, so one corpus reaches all four.
func FuzzDecodeStoreResults(f *testing.F) {
	f.Add(append([]byte{0}, AppendKVScan(nil, []KVPair{{[]byte("a"), []byte("1")}, {[]byte("b"), nil}}, true)...))
	f.Add(append([]byte{1}, AppendDirEntries(nil, []DirEntry{{Name: "x.md", Size: 3, ModTime: -5}, {Name: "d", Dir: true}})...))
	f.Add(append([]byte{2}, AppendDirEntry(nil, &DirEntry{Name: "x.md", Size: 3, ModTime: 1})...))
	f.Add(append([]byte{3}, AppendNames(nil, []string{"index", "tags"})...))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		in := b[1:]
		var out []byte
		switch b[0] % 4 {
		case 0:
			pairs, more, err := DecodeKVScan(in)
			if err != nil {
				return
			}
			out = AppendKVScan(nil, pairs, more)
		case 1:
			es, err := DecodeDirEntries(in)
			if err != nil {
				return
			}
			out = AppendDirEntries(nil, es)
		case 2:
			e, err := DecodeDirEntry(in)
			if err != nil {
				return
			}
			out = AppendDirEntry(nil, &e)
		case 3:
			names, err := DecodeNames(in)
			if err != nil {
				return
			}
			out = AppendNames(nil, names)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("re-encoded\n %x\nfrom\n %x", out, in)
		}
	})
}
