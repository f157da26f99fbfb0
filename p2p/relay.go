package p2p

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"
)

// relayClient holds reservations on the static relays: for each, a loop
// connects, reserves a slot (circuit relay v2), renews it before it
// expires and starts over, with backoff, when the relay is lost. While a
// reservation holds, the node advertises RELAYADDR/p2p-circuit.
type relayClient struct {
	n      *Node
	relays []peer.AddrInfo

	mu      sync.Mutex
	active  map[peer.ID]bool
	expires map[peer.ID]time.Time // of the reservation held on each relay
}

func newRelayClient(n *Node, relays []peer.AddrInfo) *relayClient {
	return &relayClient{n: n, relays: relays, active: map[peer.ID]bool{}, expires: map[peer.ID]time.Time{}}
}

func (rc *relayClient) start() {
	for _, ai := range rc.relays {
		rc.n.h.ConnManager().Protect(ai.ID, protectTag)
		rc.n.goRun(func() { rc.keepReserved(ai) })
	}
}

// circuitAddrs returns this node's addresses through the relays it holds
// a reservation on, each RELAYADDR/p2p/RELAY/p2p-circuit.
func (rc *relayClient) circuitAddrs() []ma.Multiaddr {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []ma.Multiaddr
	for _, ai := range rc.relays {
		if !rc.active[ai.ID] {
			continue
		}
		p2p, err := ma.NewComponent("p2p", ai.ID.String())
		if err != nil {
			continue
		}
		circuit, err := ma.NewComponent("p2p-circuit", "")
		if err != nil {
			continue
		}
		for _, a := range ai.Addrs {
			out = append(out, a.AppendComponent(p2p, circuit))
		}
	}
	return out
}

// addrsFactory is the host's: its own addresses and the relayed ones, so
// that identify tells peers both.
func (rc *relayClient) addrsFactory(addrs []ma.Multiaddr) []ma.Multiaddr {
	return append(addrs, rc.circuitAddrs()...)
}

func (rc *relayClient) setActive(id peer.ID, on bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.active[id] = on
}

// keepReserved holds a reservation on one relay until the node closes:
// it connects and reserves, renews when three quarters of the reservation
// have passed, and starts over at once when the relay is lost, with
// backoff after a failure.
func (rc *relayClient) keepReserved(ai peer.AddrInfo) {
	n := rc.n
	node, _ := NodeID(ai.ID)
	sub, err := n.h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		n.log.Error("p2p: relay: subscribe to connectedness", "err", err)
		return
	}
	defer sub.Close()
	var b backoff
	for {
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.DialTimeout)
		n.clearBackoff(ai.ID)
		var rsvp *client.Reservation
		err := n.h.Connect(ctx, ai)
		if err == nil {
			rsvp, err = client.Reserve(ctx, n.h, ai)
		}
		cancel()
		if err != nil {
			rc.setActive(ai.ID, false)
			if n.ctx.Err() == nil {
				n.log.Warn("p2p: relay reservation failed", "relay", node, "err", err)
			}
			if !n.sleep(&b) {
				return
			}
			continue
		}
		b = backoff{}
		rc.setActive(ai.ID, true)
		rc.mu.Lock()
		rc.expires[ai.ID] = rsvp.Expiration
		rc.mu.Unlock()
		n.log.Info("p2p: reserved a slot on relay", "relay", node, "until", rsvp.Expiration)
		renew := time.NewTimer(time.Until(rsvp.Expiration) * 3 / 4)
		ok := n.waitLost(sub, ai.ID, renew.C)
		renew.Stop()
		if !ok {
			return
		}
		if n.h.Network().Connectedness(ai.ID) != network.Connected {
			rc.setActive(ai.ID, false)
		}
	}
}
