package p2p

import (
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// nodesOnly is the host's connection gater: only nodes, peers whose ids
// are Ed25519 keys (node ids), are dialled or let past the security
// handshake. Another libp2p peer costs a refused handshake and nothing
// more.
type nodesOnly struct{}

func isNode(p peer.ID) bool {
	_, err := NodeID(p)
	return err == nil
}

func (nodesOnly) InterceptPeerDial(p peer.ID) bool                 { return isNode(p) }
func (nodesOnly) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return isNode(p) }
func (nodesOnly) InterceptAccept(network.ConnMultiaddrs) bool      { return true }
func (nodesOnly) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return isNode(p)
}
func (nodesOnly) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
