package repo

import (
	"bytes"
	"testing"
)

// The decoders of every object's plaintext, fuzzed. Sealed objects meet
// the AEAD first, which a fuzzer cannot get past; FuzzPack and FuzzBlob
// fuzz the layers around it with a fixed key. Seeds are under
// testdata/fuzz/.

// fuzzKey is a fixed master key, so seeds stay valid.
var fuzzKey = &MasterKey{enc: [32]byte{1, 2, 3}, mac: [32]byte{4, 5, 6}}

func FuzzConfig(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		c, p, err := decodeConfig(b)
		if err != nil {
			return
		}
		if c.Version != Version || p.check() != nil {
			t.Fatalf("accepted %+v, %+v", c, p)
		}
	})
}

func FuzzKeyFile(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		mk, err := decodeKeyFile(b)
		if err != nil {
			return
		}
		again, err := decodeKeyFile(encodeKeyFile(mk))
		if err != nil || *again != *mk {
			t.Fatalf("key file does not round-trip: %v", err)
		}
	})
}

func FuzzPackHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, headerAt uint64) {
		es, err := decodePackHeader(b, headerAt)
		if err != nil {
			return
		}
		if !bytes.Equal(encodePackHeader(es), b) {
			t.Fatal("pack header does not round-trip")
		}
	})
}

func FuzzPack(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		es, err := fuzzKey.parsePack(raw)
		if err != nil {
			return
		}
		for _, e := range es {
			if uint64(e.Offset)+uint64(e.Length) > uint64(len(raw)) {
				t.Fatalf("entry %+v past the pack's %d bytes", e, len(raw))
			}
			fuzzKey.openBlob(e.Type, e.ID, int(e.RawLen), raw[e.Offset:e.Offset+e.Length])
		}
	})
}

func FuzzIndex(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, err := decodeIndex(b)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeIndex(ps), b) {
			t.Fatal("index does not round-trip")
		}
	})
}

func FuzzTree(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := decodeTree(b)
		if err != nil {
			return
		}
		if _, err := decodeTree(encodeTree(tr)); err != nil {
			t.Fatalf("a tree accepted does not decode once encoded: %v", err)
		}
	})
}

func FuzzManifest(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeManifest(b)
		if err != nil {
			return
		}
		if _, err := ParseID(m.Tree); err != nil {
			t.Fatal(err)
		}
		if m.RootMode&^0o777 != 0 {
			t.Fatalf("accepted root mode %#o", m.RootMode)
		}
	})
}

func FuzzLock(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeLock(b)
	})
}

// FuzzBlob fuzzes a blob's flagged plaintext: flag, zstd and the length
// the index records, bounded to 1 MiB so each run stays fast.
func FuzzBlob(f *testing.F) {
	f.Fuzz(func(t *testing.T, flagged []byte, rawLen uint32) {
		n := int(rawLen % (1 << 20))
		p, err := decompress(nil, flagged, n)
		if err != nil {
			return
		}
		if len(p) != n {
			t.Fatalf("decompressed %d bytes, want %d", len(p), n)
		}
	})
}
