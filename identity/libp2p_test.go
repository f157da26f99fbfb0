package identity_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multibase"

	"github.com/weftos/weft/identity"
)

// libp2pNodeID is the peer id go-libp2p gives pub, in the CIDv1 base36 form.
func libp2pNodeID(t *testing.T, pub ed25519.PublicKey) string {
	t.Helper()
	pk, err := crypto.UnmarshalEd25519PublicKey(pub)
	if err != nil {
		t.Fatalf("UnmarshalEd25519PublicKey: %v", err)
	}
	pid, err := peer.IDFromPublicKey(pk)
	if err != nil {
		t.Fatalf("IDFromPublicKey: %v", err)
	}
	s, err := peer.ToCid(pid).StringOfBase(multibase.Base36)
	if err != nil {
		t.Fatalf("StringOfBase: %v", err)
	}
	if enc := peer.ToCid(pid).Encode(multibase.MustNewEncoder(multibase.Base36)); enc != s {
		t.Fatalf("go-libp2p disagrees with itself: Encode %q, StringOfBase %q", enc, s)
	}
	return s
}

func TestNodeIDMatchesLibp2p(t *testing.T) {
	keys := []ed25519.PublicKey{
		make(ed25519.PublicKey, ed25519.PublicKeySize),
		ed25519.PublicKey(strings.Repeat("\xff", ed25519.PublicKeySize)),
	}
	for range 64 {
		pub, _, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, pub)
	}
	for _, g := range golden {
		pub := ed25519.PublicKey(mustHex(t, g.pub))
		if want := libp2pNodeID(t, pub); g.id != want {
			t.Errorf("golden id of %s is %q, go-libp2p says %q", g.pub, g.id, want)
		}
	}
	for _, pub := range keys {
		got := identity.NodeID(pub)
		want := libp2pNodeID(t, pub)
		if got != want {
			t.Errorf("NodeID(%x) = %q, go-libp2p says %q", pub, got, want)
			continue
		}

		// And go-libp2p reads our id back to the same key.
		pid, err := peer.Decode(got)
		if err != nil {
			t.Errorf("peer.Decode(%q): %v", got, err)
			continue
		}
		pk, err := pid.ExtractPublicKey()
		if err != nil {
			t.Errorf("ExtractPublicKey(%q): %v", got, err)
			continue
		}
		raw, err := pk.Raw()
		if err != nil {
			t.Fatal(err)
		}
		if !pub.Equal(ed25519.PublicKey(raw)) {
			t.Errorf("go-libp2p reads %q as key %x, want %x", got, raw, pub)
		}
	}
}

// Peer ids of other key types are real libp2p ids but not node ids; the
// errors say why.
func TestPublicKeyFromNodeIDRejectsOtherLibp2pKeys(t *testing.T) {
	_, secp, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ecdsaPub, err := crypto.GenerateECDSAKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edPub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edID, err := peer.IDFromPublicKey(edPub)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		id   func() string
		want string
	}{
		{"secp256k1", func() string {
			return idOf(t, secp)
		}, "key type 2, not an Ed25519 key"},
		{"ecdsa (hashed, sha2-256 multihash)", func() string {
			return idOf(t, ecdsaPub)
		}, "not an identity multihash"},
		{"ed25519 in legacy base58", func() string {
			return edID.String()
		}, "multibase prefix \"1\""},
		{"ed25519 in base32 CID", func() string {
			s, err := peer.ToCid(edID).StringOfBase(multibase.Base32)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, "multibase prefix \"b\""},
		{"ed25519 in base36 upper", func() string {
			s, err := peer.ToCid(edID).StringOfBase(multibase.Base36Upper)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, "multibase prefix \"K\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.id()
			_, err := identity.PublicKeyFromNodeID(id)
			if err == nil {
				t.Fatalf("PublicKeyFromNodeID(%q) succeeded", id)
			}
			if !errors.Is(err, identity.ErrInvalidNodeID) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("PublicKeyFromNodeID(%q) = %v, want ErrInvalidNodeID saying %q", id, err, tt.want)
			}
		})
	}
}

func idOf(t *testing.T, pk crypto.PubKey) string {
	t.Helper()
	pid, err := peer.IDFromPublicKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	s, err := peer.ToCid(pid).StringOfBase(multibase.Base36)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
