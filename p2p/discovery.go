package p2p

import (
	"context"
	"errors"
	"fmt"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
)

// mdnsServiceName is the mDNS service weft nodes announce and look for:
// weft's own rather than libp2p's _p2p._udp, so that a node finds only
// weft nodes on its network, not every libp2p program (IPFS nodes have
// Ed25519 keys too, so the gater would let them in).
const mdnsServiceName = "_weft._udp"

// dhtPrefix is the protocol prefix of weft's DHT: its protocol is
// /weft/kad/1.0.0, so weft nodes form a DHT of their own and never join
// IPFS's Amino DHT (/ipfs/kad/1.0.0), which would neither know weft nodes
// nor be asked about them.
const dhtPrefix protocol.ID = "/weft"

// foundQueue bounds the peers mDNS found that wait to be connected; past
// it a peer is dropped until it is announced again.
const foundQueue = 64

// discovery is what a Node runs to find other nodes beyond the book and
// the bootstrap peers: mDNS on the local network and the Kademlia DHT,
// each nil when off.
type discovery struct {
	mdns  mdns.Service
	dht   *dht.IpfsDHT
	found chan peer.AddrInfo // from mdnsNotifee to connectFound
}

// startDiscovery starts what cfg turns on: the DHT, bootstrapped from
// bootstrap, and mDNS. On an error what it started is left for
// stopDiscovery.
func (n *Node) startDiscovery(bootstrap []peer.AddrInfo) error {
	if n.cfg.DHT != DHTOff {
		mode := map[DHTMode]dht.ModeOpt{DHTClient: dht.ModeClient, DHTServer: dht.ModeServer, DHTAuto: dht.ModeAuto}[n.cfg.DHT]
		// Peer routing only: no provider records or values, which weft
		// does not use and which would let any peer store records here.
		// No address filter (kad-dht's default for a DHT of its own):
		// the addresses a server hands out come from identify, which
		// already keeps loopback addresses to peers met over loopback and
		// private ones to peers met over private networks.
		opts := []dht.Option{
			dht.Mode(mode),
			dht.ProtocolPrefix(dhtPrefix),
			dht.BootstrapPeers(bootstrap...),
			dht.DisableProviders(),
			dht.DisableValues(),
		}
		if n.cfg.dhtNoRefresh {
			opts = append(opts, dht.DisableAutoRefresh())
		}
		d, err := dht.New(n.h, opts...)
		if err != nil {
			return fmt.Errorf("p2p: start the DHT: %w", err)
		}
		n.disc.dht = d
	}
	if n.cfg.MDNS {
		name := mdnsServiceName
		if n.cfg.mdnsService != "" {
			name = n.cfg.mdnsService
		}
		n.disc.found = make(chan peer.AddrInfo, foundQueue)
		s := mdns.NewMdnsService(n.h, name, mdnsNotifee{n})
		if err := s.Start(); err != nil {
			s.Close()
			return fmt.Errorf("p2p: start mDNS (turn MDNS off on a host without a multicast interface): %w", err)
		}
		n.disc.mdns = s
		n.goRun(n.connectFound)
	}
	return nil
}

// stopDiscovery stops mDNS and the DHT. The Node calls it once its own
// goroutines, which look peers up in the DHT, have ended.
func (n *Node) stopDiscovery() error {
	var errs []error
	if n.disc.mdns != nil {
		errs = append(errs, n.disc.mdns.Close())
	}
	if n.disc.dht != nil {
		errs = append(errs, n.disc.dht.Close())
	}
	return errors.Join(errs...)
}

// mdnsNotifee hands the peers mDNS finds to connectFound. mDNS calls it
// on goroutines of its own, which Close does not wait for, so it never
// blocks: a peer that finds the queue full is dropped until it is
// announced again.
type mdnsNotifee struct{ n *Node }

func (f mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	select {
	case f.n.disc.found <- ai:
	default:
		f.n.log.Debug("p2p: mDNS: too many peers found at once; dropped one", "peer", ai.ID)
	}
}

// connectFound connects to the peers mDNS finds, one at a time, until the
// node closes.
func (n *Node) connectFound() {
	for {
		select {
		case <-n.ctx.Done():
			return
		case ai := <-n.disc.found:
			n.handleFound(ai)
		}
	}
}

// handleFound takes a peer found on the local network: if it is a node
// (an Ed25519 key) other than this one, its addresses go to the peerstore
// and it is connected, within DialTimeout, unless it already is. Once
// connected, identify puts its addresses in the book.
func (n *Node) handleFound(ai peer.AddrInfo) {
	node, err := NodeID(ai.ID)
	if err != nil || ai.ID == n.h.ID() || len(ai.Addrs) == 0 {
		return
	}
	n.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, knownAddrTTL)
	if n.h.Network().Connectedness(ai.ID) == network.Connected {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.DialTimeout)
	defer cancel()
	n.clearBackoff(ai.ID)
	if err := n.h.Connect(ctx, ai); err != nil {
		n.log.Debug("p2p: node found over mDNS unreachable", "node", node, "err", err)
		return
	}
	n.log.Info("p2p: connected to a node found over mDNS", "node", node)
}

// canLookUp reports whether a node with no known address may still be
// found: the DHT is on.
func (n *Node) canLookUp() bool { return n.disc.dht != nil }

// connect dials id at the addresses known for it. With the DHT on, a
// node with no known address, or one its known addresses no longer reach
// (it moved), is looked up and dialled at what the DHT finds, within the
// same ctx.
func (n *Node) connect(ctx context.Context, id peer.ID) error {
	known := len(n.h.Peerstore().Addrs(id)) > 0
	var dialErr error
	if known || n.disc.dht == nil {
		dialErr = n.h.Connect(ctx, peer.AddrInfo{ID: id})
		if dialErr == nil || n.disc.dht == nil || ctx.Err() != nil {
			return dialErr
		}
	}
	if dialErr != nil {
		// Out of this node's routing table, or the lookup would ask id
		// itself first, at the addresses that just failed, and give up on
		// it as unreachable rather than take its new addresses from the
		// others.
		n.disc.dht.RoutingTable().RemovePeer(id)
	}
	ai, err := n.disc.dht.FindPeer(ctx, id)
	if err != nil {
		if dialErr != nil {
			return fmt.Errorf("%w; and the DHT did not find it: %w", dialErr, err)
		}
		return fmt.Errorf("no address of it is known and the DHT did not find it: %w", err)
	}
	n.clearBackoff(id)
	return n.h.Connect(ctx, ai)
}
