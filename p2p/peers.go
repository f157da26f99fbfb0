package p2p

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/weftos/weft/internal/echoed"
)

// PeerInfo describes a connected peer.
type PeerInfo struct {
	// Node is the peer's node id.
	Node string
	// Addrs are the addresses of the connections to it.
	Addrs []string
	// Relayed is true when every connection to it goes through a relay.
	Relayed bool
	// Latency is the peerstore's moving average of its round trips; zero
	// before one was measured.
	Latency time.Duration
	// ConnectedSince is when its oldest open connection opened.
	ConnectedSince time.Time
	// Traffic counts what went to and came from it since it connected.
	Traffic PeerStats
}

// Connect connects to the peer at addr, a full multiaddr ending in
// /p2p/NODEID (possibly through a relay: RELAYADDR/p2p-circuit/p2p/NODEID),
// and returns its node id once identify has run. The address is kept in
// the book of known peers.
func (n *Node) Connect(ctx context.Context, addr string) (string, error) {
	ai, err := parsePeerAddr("address", addr)
	if err != nil {
		return "", err
	}
	node, _ := NodeID(ai.ID)
	if ai.ID == n.h.ID() {
		return "", fmt.Errorf("p2p: connect %s: that is this node", echoed.Truncate(addr))
	}
	n.clearBackoff(ai.ID)
	if err := n.h.Connect(network.WithAllowLimitedConn(ctx, "weft connect"), ai); err != nil {
		return "", fmt.Errorf("p2p: connect %s: %w", echoed.Truncate(addr), err)
	}
	n.book.put(ai.ID, ai.Addrs)
	n.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, knownAddrTTL)
	return node, nil
}

// Disconnect closes every connection to node. It is not an error if there
// is none.
func (n *Node) Disconnect(node string) error {
	id, err := PeerID(node)
	if err != nil {
		return err
	}
	if err := n.h.Network().ClosePeer(id); err != nil {
		return fmt.Errorf("p2p: disconnect %s: %w", node, err)
	}
	return nil
}

// Ping measures one round trip to node with the libp2p ping protocol,
// connecting to it first if needed.
func (n *Node) Ping(ctx context.Context, node string) (time.Duration, error) {
	id, err := PeerID(node)
	if err != nil {
		return 0, err
	}
	if id == n.h.ID() {
		return 0, fmt.Errorf("p2p: ping %s: that is this node", node)
	}
	n.addKnownAddrs(id)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops ping's loop
	select {
	case r := <-ping.Ping(ctx, n.h, id):
		if r.Error != nil {
			return 0, fmt.Errorf("p2p: ping %s: %w", node, r.Error)
		}
		return r.RTT, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("p2p: ping %s: %w", node, ctx.Err())
	}
}

// Peers returns the connected peers, by node id.
func (n *Node) Peers() []PeerInfo {
	var out []PeerInfo
	for _, id := range n.h.Network().Peers() {
		node, err := NodeID(id)
		if err != nil {
			continue
		}
		conns := n.h.Network().ConnsToPeer(id)
		if len(conns) == 0 {
			continue
		}
		pi := PeerInfo{Node: node, Relayed: true, Latency: n.h.Peerstore().LatencyEWMA(id)}
		for _, c := range conns {
			a := c.RemoteMultiaddr()
			pi.Addrs = append(pi.Addrs, formatAddr(a))
			if !isRelayed(a) {
				pi.Relayed = false
			}
			if o := c.Stat().Opened; pi.ConnectedSince.IsZero() || o.Before(pi.ConnectedSince) {
				pi.ConnectedSince = o
			}
		}
		slices.Sort(pi.Addrs)
		pi.Addrs = slices.Compact(pi.Addrs)
		if ps := n.peerIfKnown(id); ps != nil {
			pi.Traffic = ps.stats.snapshot()
		}
		out = append(out, pi)
	}
	slices.SortFunc(out, func(a, b PeerInfo) int { return strings.Compare(a.Node, b.Node) })
	return out
}

// ListenAddrs returns the full multiaddrs others reach this node at,
// ending in /p2p/NODEID: the host's own and, for each relay holding a
// reservation for it, RELAYADDR/p2p-circuit.
func (n *Node) ListenAddrs() []string {
	var out []string
	seen := map[string]bool{}
	add := func(a ma.Multiaddr) {
		s := formatAddr(withoutPeer(a)) + "/p2p/" + n.node
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, a := range n.h.Addrs() {
		add(a)
	}
	for _, a := range n.relays.circuitAddrs() {
		add(a)
	}
	return out
}

// SetAlias makes name stand for node in addresses (name@proc:pkg:pub),
// in the kernel and, across restarts, in aliases.json.
func (n *Node) SetAlias(name, node string) error {
	old, had := n.k.Aliases()[name]
	if err := n.k.SetAlias(name, node); err != nil {
		return fmt.Errorf("p2p: alias %s: %w", name, err)
	}
	if err := n.aliases.update(func(m map[string]string) { m[name] = node }); err != nil {
		if had {
			n.k.SetAlias(name, old)
		} else {
			n.k.RemoveAlias(name)
		}
		return err
	}
	return nil
}

// RemoveAlias forgets an alias, in the kernel and in aliases.json, and
// reports whether it existed.
func (n *Node) RemoveAlias(name string) (bool, error) {
	if _, had := n.k.Aliases()[name]; !had {
		return false, nil
	}
	if err := n.aliases.update(func(m map[string]string) { delete(m, name) }); err != nil {
		return false, err
	}
	n.k.RemoveAlias(name)
	return true, nil
}

// Aliases returns the aliases, name → node id.
func (n *Node) Aliases() map[string]string { return n.k.Aliases() }

// addKnownAddrs gives the peerstore the book's addresses of id before a
// dial.
func (n *Node) addKnownAddrs(id peer.ID) {
	if addrs := n.book.addrs(id); len(addrs) > 0 {
		n.h.Peerstore().AddAddrs(id, addrs, knownAddrTTL)
	}
}

// clearBackoff forgets the swarm's dial backoff for id: a dial asked for
// now (a message, a connect, a reconnect) is tried, so a node that comes
// back is reached at once rather than after libp2p's backoff.
func (n *Node) clearBackoff(id peer.ID) {
	if s, ok := n.h.Network().(*swarm.Swarm); ok {
		s.Backoff().Clear(id)
	}
}

// keepConnected keeps a connection to a bootstrap peer: it dials at start
// and again, with backoff, whenever the peer is not connected.
func (n *Node) keepConnected(ai peer.AddrInfo) {
	node, _ := NodeID(ai.ID)
	sub, err := n.h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		n.log.Error("p2p: bootstrap: subscribe to connectedness", "err", err)
		return
	}
	defer sub.Close()
	var b backoff
	for {
		if n.h.Network().Connectedness(ai.ID) != network.Connected {
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.DialTimeout)
			n.clearBackoff(ai.ID)
			err := n.h.Connect(ctx, ai)
			cancel()
			if err != nil {
				n.log.Debug("p2p: bootstrap peer unreachable", "node", node, "err", err)
				if !n.sleep(&b) {
					return
				}
				continue
			}
			n.log.Info("p2p: connected to bootstrap peer", "node", node)
			b = backoff{}
		}
		if !n.waitLost(sub, ai.ID, nil) {
			return
		}
	}
}

// backoff spaces retries: 1 s after the first failure, twice as long
// after each further one, at most a minute. Its zero value is the first.
type backoff struct{ last time.Duration }

// sleep waits for b's next interval; false if the node closed meanwhile.
func (n *Node) sleep(b *backoff) bool {
	b.last = min(max(b.last*2, time.Second), time.Minute)
	t := time.NewTimer(b.last)
	defer t.Stop()
	select {
	case <-n.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// waitLost waits, on sub (connectedness events), until id is no longer
// connected or until the timer fires (nil: never); false if the node
// closed meanwhile.
func (n *Node) waitLost(sub event.Subscription, id peer.ID, timer <-chan time.Time) bool {
	for {
		select {
		case <-n.ctx.Done():
			return false
		case <-timer:
			return true
		case e, ok := <-sub.Out():
			if !ok {
				return false
			}
			if ev := e.(event.EvtPeerConnectednessChanged); ev.Peer == id && ev.Connectedness != network.Connected {
				return true
			}
		}
	}
}
