package p2p

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/weftos/weft/identity"
)

func TestNodeIDPeerIDRoundTrip(t *testing.T) {
	for range 32 {
		k, err := identity.Generate()
		if err != nil {
			t.Fatal(err)
		}
		id, err := PeerID(k.NodeID())
		if err != nil {
			t.Fatal(err)
		}
		// libp2p derives the same peer id from the key itself.
		sk, err := crypto.UnmarshalEd25519PrivateKey(k.PrivateKey())
		if err != nil {
			t.Fatal(err)
		}
		want, err := peer.IDFromPrivateKey(sk)
		if err != nil {
			t.Fatal(err)
		}
		if id != want {
			t.Fatalf("PeerID(%s) = %s, libp2p says %s", k.NodeID(), id, want)
		}
		node, err := NodeID(id)
		if err != nil || node != k.NodeID() {
			t.Fatalf("NodeID(PeerID(%s)) = %q, %v", k.NodeID(), node, err)
		}
	}
}

func TestNodeIDRefusesOtherKeys(t *testing.T) {
	_, secp, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(secp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NodeID(id); err == nil || !strings.Contains(err.Error(), "not an Ed25519 key") {
		t.Fatalf("NodeID of a secp256k1 peer: %v, want a refusal naming the key type", err)
	}
	for _, bad := range []string{"", "our", "k51", id.String(), strings.Repeat("k", 1000)} {
		if _, err := PeerID(bad); !errors.Is(err, identity.ErrInvalidNodeID) {
			t.Errorf("PeerID(%.20q) = %v, want identity.ErrInvalidNodeID", bad, err)
		}
	}
}

func TestFormatAddrWritesNodeIDs(t *testing.T) {
	relay, node := mustKey(t), mustKey(t)
	rid, _ := PeerID(relay.NodeID())
	nid, _ := PeerID(node.NodeID())
	// go-multiaddr writes peer ids in base58.
	a := ma.StringCast("/ip4/127.0.0.1/tcp/9047/p2p/" + rid.String() + "/p2p-circuit/p2p/" + nid.String())
	want := "/ip4/127.0.0.1/tcp/9047/p2p/" + relay.NodeID() + "/p2p-circuit/p2p/" + node.NodeID()
	if got := formatAddr(a); got != want {
		t.Fatalf("formatAddr = %s, want %s", got, want)
	}
	ai, err := parsePeerAddr("address", want)
	if err != nil {
		t.Fatal(err)
	}
	if ai.ID != nid || len(ai.Addrs) != 1 || !isRelayed(ai.Addrs[0]) {
		t.Fatalf("parsePeerAddr(%s) = %v, want node %s through a relay", want, ai, nid)
	}
	if got := withoutPeer(ai.Addrs[0]); !got.Equal(ai.Addrs[0]) {
		t.Fatalf("withoutPeer stripped the relay from %s: %s", ai.Addrs[0], got)
	}
	if isRelayed(ma.StringCast("/ip4/127.0.0.1/tcp/1")) {
		t.Fatal("a direct address counts as relayed")
	}
}

func TestParsePeerAddrRefuses(t *testing.T) {
	_, secp, _ := crypto.GenerateSecp256k1Key(rand.Reader)
	secpID, _ := peer.IDFromPublicKey(secp)
	tests := []struct{ addr, want string }{
		{"", "address"},
		{"not a multiaddr", "address"},
		{"/ip4/127.0.0.1/tcp/1", "want a full address ending in /p2p/NODEID"},
		{"/ip4/127.0.0.1/tcp/1/p2p/" + secpID.String(), "not an Ed25519 key"},
		{"/ip4/127.0.0.1/tcp/1/p2p/" + strings.Repeat("x", 5000), "address"},
	}
	for _, tt := range tests {
		_, err := parsePeerAddr("address", tt.addr)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parsePeerAddr(%.30q) = %v, want an error saying %q", tt.addr, err, tt.want)
		}
		if err != nil && len(err.Error()) > 1000 {
			t.Errorf("parsePeerAddr's error repeats %d bytes of its input", len(err.Error()))
		}
	}
}
