package identity_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/multiformats/go-multibase"

	"github.com/weftos/weft/identity"
)

// Golden node ids, computed with go-libp2p v0.51.0 (TestNodeIDMatchesLibp2p
// checks the same for random keys).
var golden = []struct {
	pub string // hex
	id  string
}{
	{
		"0000000000000000000000000000000000000000000000000000000000000000",
		"k51qzi5uqu5dg6l7sg2ssb5uefnq8g7g1d6n6j2zsio0o0k7snyb11p8myhxxc",
	},
	{
		"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
		"k51qzi5uqu5dmkadisduutrwhobhcd351viuwscvsltkaymqovgho5slq61rlr",
	},
	{ // ed25519.NewKeyFromSeed(00 01 02 … 1f)
		"03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8",
		"k51qzi5uqu5dg9ufswxt229ntzdy7p4125xzv5rtyjso89ajdujg6csfxcj260",
	},
	{ // RFC 8410 section 10.1
		"19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1",
		rfc8410NodeID,
	},
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNodeIDGolden(t *testing.T) {
	for _, g := range golden {
		pub := ed25519.PublicKey(mustHex(t, g.pub))
		if got := identity.NodeID(pub); got != g.id {
			t.Errorf("NodeID(%s) = %q, want %q", g.pub, got, g.id)
		}
		got, err := identity.PublicKeyFromNodeID(g.id)
		if err != nil {
			t.Errorf("PublicKeyFromNodeID(%q): %v", g.id, err)
		} else if !got.Equal(pub) {
			t.Errorf("PublicKeyFromNodeID(%q) = %x, want %s", g.id, got, g.pub)
		}
	}
}

func TestNodeIDForm(t *testing.T) {
	for _, pub := range randomKeys(t, 200) {
		id := identity.NodeID(pub)
		if len(id) != identity.NodeIDLen {
			t.Errorf("NodeID(%x) = %q, %d characters, want %d", pub, id, len(id), identity.NodeIDLen)
		}
		if strings.Trim(id, "0123456789abcdefghijklmnopqrstuvwxyz") != "" || id[0] != 'k' {
			t.Errorf("NodeID(%x) = %q, want 'k' and lowercase letters and digits", pub, id)
		}
	}
}

func TestNodeIDPanicsOnBadKey(t *testing.T) {
	for _, n := range []int{0, 31, 33, 64} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NodeID of a %d-byte key did not panic", n)
				}
			}()
			identity.NodeID(make(ed25519.PublicKey, n))
		}()
	}
}

func TestPublicKeyFromNodeIDRoundTrip(t *testing.T) {
	for _, pub := range randomKeys(t, 200) {
		id := identity.NodeID(pub)
		got, err := identity.PublicKeyFromNodeID(id)
		if err != nil {
			t.Fatalf("PublicKeyFromNodeID(NodeID(%x)): %v", pub, err)
		}
		if !got.Equal(pub) {
			t.Fatalf("PublicKeyFromNodeID(NodeID(%x)) = %x", pub, got)
		}
	}
}

// encodeID writes b as multibase base36, with go-multibase as an
// independent encoder.
func encodeID(t testing.TB, b []byte) string {
	t.Helper()
	s, err := multibase.Encode(multibase.Base36, b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// idBytes returns the CID bytes of a node id with the given header and key.
func idBytes(header string, key []byte) []byte {
	return append([]byte(header), key...)
}

func TestPublicKeyFromNodeIDErrors(t *testing.T) {
	key := bytes.Repeat([]byte{0xa5}, 32)
	valid := identity.NodeID(key)
	flip := func(s string, i int, c byte) string { b := []byte(s); b[i] = c; return string(b) }

	tests := []struct {
		name string
		id   string
		want string // in the error
	}{
		{"empty", "", "empty"},
		{"no prefix", valid[1:], "multibase prefix \"5\""},
		{"upper prefix", "K" + valid[1:], "multibase prefix \"K\""},
		{"base32 prefix", "b" + valid[1:], "multibase prefix \"b\""},
		{"prefix only", "k", "wrong length: 0 bytes"},
		{"upper digit", flip(valid, 10, 'Q'), "bad base36 digit \"Q\" at offset 10"},
		{"punctuation", flip(valid, 61, '-'), "bad base36 digit \"-\" at offset 61"},
		{"space", valid + " ", "bad base36 digit \" \""},
		{"non-ASCII", valid[:20] + "é" + valid[22:], `bad base36 digit "\xc3" at offset 20`},
		{"NUL", flip(valid, 5, 0), `bad base36 digit "\x00"`},
		{"too long", valid + strings.Repeat("z", 100), "wrong length: 162 characters, want 62"},
		{"huge", "k" + strings.Repeat("1", 1<<20), "wrong length: 1048577 characters"},
		{"short", "k1", "wrong length: 1 bytes, want 40"},
		{"leading zero digit", "k0" + valid[1:], "CID version 0"},
		{"one digit more", valid + "0", "CID version"},
		{"one digit less", valid[:len(valid)-1], "CID version"},
		{"CID version 2", encodeID(t, idBytes("\x02\x72\x00\x24\x08\x01\x12\x20", key)), "CID version 2, want 1"},
		{"CIDv0 (bare multihash)", encodeID(t, idBytes("\x00\x24\x08\x01\x12\x20", key)), "CID version 0"},
		{"codec raw", encodeID(t, idBytes("\x01\x55\x00\x24\x08\x01\x12\x20", key)), "CID codec 0x55, want libp2p-key (0x72)"},
		{"codec dag-pb", encodeID(t, idBytes("\x01\x70\x00\x24\x08\x01\x12\x20", key)), "CID codec 0x70"},
		{"sha2-256 multihash", encodeID(t, idBytes("\x01\x72\x12\x20", key)), "multihash code 0x12, not an identity multihash"},
		{"multihash length short", encodeID(t, idBytes("\x01\x72\x00\x23\x08\x01\x12\x20", key)), "identity multihash says 35 bytes, holds 36"},
		{"multihash length long", encodeID(t, idBytes("\x01\x72\x00\x25\x08\x01\x12\x20", key)), "identity multihash says 37 bytes, holds 36"},
		{"not protobuf field 1", encodeID(t, idBytes("\x01\x72\x00\x24\x10\x01\x12\x20", key)), "not a libp2p public key"},
		{"not protobuf field 2", encodeID(t, idBytes("\x01\x72\x00\x24\x08\x01\x1a\x20", key)), "not a libp2p public key"},
		{"RSA key type", encodeID(t, idBytes("\x01\x72\x00\x24\x08\x00\x12\x20", key)), "key type 0, not an Ed25519 key"},
		{"secp256k1 key", encodeID(t, idBytes("\x01\x72\x00\x25\x08\x02\x12\x21", append([]byte{0x02}, key...))), "key type 2, not an Ed25519 key"},
		{"ECDSA key type", encodeID(t, idBytes("\x01\x72\x00\x24\x08\x03\x12\x20", key)), "key type 3, not an Ed25519 key"},
		{"key length byte", encodeID(t, idBytes("\x01\x72\x00\x24\x08\x01\x12\x1f", key)), "key says 31 bytes, holds 32"},
		{"31-byte key", encodeID(t, idBytes("\x01\x72\x00\x23\x08\x01\x12\x1f", key[:31])), "Ed25519 key of 31 bytes, want 32"},
		{"33-byte key", encodeID(t, idBytes("\x01\x72\x00\x25\x08\x01\x12\x21", append(key, 0))), "Ed25519 key of 33 bytes, want 32"},
		{"trailing protobuf field", encodeID(t, append(idBytes("\x01\x72\x00\x26\x08\x01\x12\x20", key), 0x18, 0x00)), "key says 32 bytes, holds 34"},
		{"empty key", encodeID(t, []byte("\x01\x72\x00\x04\x08\x01\x12\x00")), "Ed25519 key of 0 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := identity.PublicKeyFromNodeID(tt.id)
			if err == nil {
				t.Fatalf("PublicKeyFromNodeID(%q) = %x, want an error", tt.id, got)
			}
			if got != nil {
				t.Errorf("PublicKeyFromNodeID(%q) returned key %x with error %v", tt.id, got, err)
			}
			if !errors.Is(err, identity.ErrInvalidNodeID) {
				t.Errorf("error %v does not wrap ErrInvalidNodeID", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("PublicKeyFromNodeID(%q) error = %q, want it to say %q", tt.id, err, tt.want)
			}
			if len(err.Error()) > 300 {
				t.Errorf("error is %d bytes long, want the id shortened", len(err.Error()))
			}
		})
	}
}

// FuzzPublicKeyFromNodeID holds that PublicKeyFromNodeID accepts exactly
// the ids NodeID writes, and that it and Verify never panic.
func FuzzPublicKeyFromNodeID(f *testing.F) {
	k, err := identity.Generate()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(k.NodeID())
	for _, g := range golden {
		f.Add(g.id)
	}
	msg := []byte("fuzz")
	sig := k.Sign(msg)
	f.Fuzz(func(t *testing.T, id string) {
		pub, err := identity.PublicKeyFromNodeID(id)
		if err != nil {
			if pub != nil {
				t.Fatalf("PublicKeyFromNodeID(%q) returned key %x with error %v", id, pub, err)
			}
			if !errors.Is(err, identity.ErrInvalidNodeID) {
				t.Fatalf("PublicKeyFromNodeID(%q) error %v does not wrap ErrInvalidNodeID", id, err)
			}
			if len(err.Error()) > 300 {
				t.Fatalf("PublicKeyFromNodeID(%q) error is %d bytes long", id, len(err.Error()))
			}
		} else {
			if len(pub) != ed25519.PublicKeySize {
				t.Fatalf("PublicKeyFromNodeID(%q) = %d-byte key", id, len(pub))
			}
			if got := identity.NodeID(pub); got != id {
				t.Fatalf("PublicKeyFromNodeID(%q) = %x, whose NodeID is %q", id, pub, got)
			}
		}
		// Whatever the id, k's signature verifies only as k's.
		if got := k.Verify(id, msg, sig); got != (id == k.NodeID()) {
			t.Fatalf("Verify(%q, msg, signature by %s) = %v", id, k.NodeID(), got)
		}
		if k.Verify(id, msg, []byte(id)) {
			t.Fatalf("Verify(%q, msg, %q) = true", id, id)
		}
	})
}

func randomKeys(t testing.TB, n int) []ed25519.PublicKey {
	t.Helper()
	keys := make([]ed25519.PublicKey, n)
	for i := range keys {
		pub, _, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = pub
	}
	return keys
}
