package p2p

import (
	"crypto/ed25519"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/internal/echoed"
)

// PeerID returns the libp2p peer id of a node id. It refuses anything
// identity.PublicKeyFromNodeID refuses.
func PeerID(node string) (peer.ID, error) {
	pub, err := identity.PublicKeyFromNodeID(node)
	if err != nil {
		return "", fmt.Errorf("p2p: %w", err)
	}
	pk, err := crypto.UnmarshalEd25519PublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("p2p: node %s: %w", node, err)
	}
	id, err := peer.IDFromPublicKey(pk)
	if err != nil {
		return "", fmt.Errorf("p2p: node %s: %w", node, err)
	}
	return id, nil
}

// NodeID returns the node id of a libp2p peer id. Only peers with Ed25519
// keys are nodes; another peer id is refused.
func NodeID(id peer.ID) (string, error) {
	pk, err := id.ExtractPublicKey()
	if err != nil {
		return "", fmt.Errorf("p2p: peer %s: no public key in its id: %w", id, err)
	}
	if pk.Type() != crypto.Ed25519 {
		return "", fmt.Errorf("p2p: peer %s has a %s key, not an Ed25519 key, so it is not a node", id, pk.Type())
	}
	raw, err := pk.Raw()
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return "", fmt.Errorf("p2p: peer %s: bad Ed25519 key", id)
	}
	return identity.NodeID(ed25519.PublicKey(raw)), nil
}

// formatAddr writes a multiaddr with every /p2p/ component as a node id
// (k51…) rather than libp2p's default base58 form; go-multiaddr parses
// both.
func formatAddr(a ma.Multiaddr) string {
	var b strings.Builder
	for _, c := range a {
		if c.Protocol().Code == ma.P_P2P {
			if id, err := peer.IDFromBytes(c.RawValue()); err == nil {
				if node, err := NodeID(id); err == nil {
					b.WriteString("/p2p/")
					b.WriteString(node)
					continue
				}
			}
		}
		b.WriteString(c.String())
	}
	return b.String()
}

// parsePeerAddr parses a full multiaddr ending in /p2p/NODEID into the
// peer's id and its address without the /p2p/ part. what names the
// address in errors (a config field, or "address").
func parsePeerAddr(what, s string) (peer.AddrInfo, error) {
	q := echoed.Truncate(s)
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		// go-multiaddr's errors repeat the input: shorten them too.
		return peer.AddrInfo{}, fmt.Errorf("p2p: %s %q: %s", what, q, echoed.Truncate(err.Error()))
	}
	ai, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("p2p: %s %q: want a full address ending in /p2p/NODEID: %s", what, q, echoed.Truncate(err.Error()))
	}
	if _, err := NodeID(ai.ID); err != nil {
		return peer.AddrInfo{}, fmt.Errorf("p2p: %s %q: %w", what, q, err)
	}
	return *ai, nil
}

// isRelayed reports whether a is an address through a relay.
func isRelayed(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// withoutPeer returns a without a final /p2p/ component (the peer's own
// id), leaving a relay's /p2p/RELAY/p2p-circuit alone.
func withoutPeer(a ma.Multiaddr) ma.Multiaddr {
	if len(a) > 0 && a[len(a)-1].Protocol().Code == ma.P_P2P {
		return a[:len(a)-1]
	}
	return a
}
