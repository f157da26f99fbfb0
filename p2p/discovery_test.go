package p2p

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftos/weft/kernel"
)

// mdnsOn turns mDNS on under a service name of the test's own, so that
// its nodes find only each other, not those of a test running beside it.
func mdnsOn(t *testing.T) func(*Config) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "_wt" + hex.EncodeToString(b[:]) + "._udp"
	return func(c *Config) { c.MDNS = true; c.mdnsService = name }
}

// Two nodes with mDNS on, listening on loopback and given nothing about
// each other, find each other over multicast and exchange messages.
func TestMDNSFindsNodes(t *testing.T) {
	on := mdnsOn(t)
	a, b := startNode(t, on), startNode(t, on)
	waitUntil(t, "a and b to find each other over mDNS", func() bool {
		return a.h.Network().Connectedness(b.h.ID()) == network.Connected &&
			len(a.h.Peerstore().Addrs(b.h.ID())) > 0 && len(b.h.Peerstore().Addrs(a.h.ID())) > 0
	})
	mustEcho(t, a, b.echoAt(), "found you on the LAN")
	mustEcho(t, b, a.echoAt(), "and I you")
}

// What mDNS hands the node: a node is connected; this node itself and a
// peer that is not a node (not an Ed25519 key) are ignored.
func TestMDNSFoundPeerHandled(t *testing.T) {
	a := startNode(t)
	b := startNode(t)

	a.handleFound(peer.AddrInfo{ID: a.h.ID(), Addrs: a.h.Addrs()})
	if got := a.h.Network().Connectedness(a.h.ID()); got == network.Connected {
		t.Fatalf("a connected to itself")
	}

	sk, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := libp2p.New(libp2p.Identity(sk), libp2p.ListenAddrStrings(tcpListen...), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	a.handleFound(peer.AddrInfo{ID: other.ID(), Addrs: other.Addrs()})
	if addrs := a.h.Peerstore().Addrs(other.ID()); len(addrs) > 0 || a.h.Network().Connectedness(other.ID()) != network.NotConnected {
		t.Fatalf("a took a secp256k1 peer found over mDNS: addresses %v, %v", addrs, a.h.Network().Connectedness(other.ID()))
	}

	a.handleFound(peer.AddrInfo{ID: b.h.ID(), Addrs: b.h.Addrs()})
	if got := a.h.Network().Connectedness(b.h.ID()); got != network.Connected {
		t.Fatalf("a and the node it found: %v, want connected", got)
	}
	mustEcho(t, a, b.echoAt(), "found")
}

// mDNS starts and stops with the node: a node closed with it on can be
// started again on the same data dir, and the service is gone with it.
func TestMDNSStopsWithNode(t *testing.T) {
	on := mdnsOn(t)
	a := startNode(t, on)
	if a.disc.mdns == nil || a.disc.dht != nil {
		t.Fatalf("mDNS on, DHT off: mdns %v, dht %v", a.disc.mdns, a.disc.dht)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := restartNode(t, a.key, a.dir, on)
	c := startNode(t, on)
	waitUntil(t, "the restarted node to find another over mDNS", func() bool {
		return b.h.Network().Connectedness(c.h.ID()) == network.Connected
	})
	off := startNode(t)
	if off.disc.mdns != nil || off.disc.dht != nil || off.disc.found != nil {
		t.Fatalf("a node with the defaults runs discovery: %+v", off.disc)
	}
}

// dhtTriangle starts B, then A and C, each with B as its only bootstrap
// peer, all three with the DHT in mode (and opts), and returns them once A
// and C are connected to B.
func dhtTriangle(t *testing.T, mode DHTMode, opts ...func(*Config)) (a, b, c *testNode) {
	t.Helper()
	b = startNode(t, append(opts, func(cfg *Config) { cfg.DHT = mode })...)
	viaB := append(opts, func(cfg *Config) { cfg.DHT = mode; cfg.Bootstrap = []string{b.addr(t, "/tcp/")} })
	a, c = startNode(t, viaB...), startNode(t, viaB...)
	waitUntil(t, "A and C to reach their bootstrap peer B", func() bool {
		return b.h.Network().Connectedness(a.h.ID()) == network.Connected &&
			b.h.Network().Connectedness(c.h.ID()) == network.Connected
	})
	return a, b, c
}

// A finds C, of which it was given nothing but the node id in the
// message's address, through the DHT it and C joined by bootstrapping
// from B; the request is delivered and answered. The routing tables are
// not refreshed: a refresh looks up the nodes near each node, and in a
// DHT of three would have A meet C before the test sends; in a larger one
// a node knows only a few of the others and finds the rest as here.
func TestDHTFindsNode(t *testing.T) {
	a, b, c := dhtTriangle(t, DHTServer, func(c *Config) { c.dhtNoRefresh = true })
	waitUntil(t, "B in A's routing table and C in B's", func() bool {
		return a.disc.dht.RoutingTable().Find(b.h.ID()) != "" && b.disc.dht.RoutingTable().Find(c.h.ID()) != ""
	})
	if addrs := a.h.Peerstore().Addrs(c.h.ID()); len(addrs) > 0 || a.h.Network().Connectedness(c.h.ID()) != network.NotConnected {
		t.Fatalf("A already knows C: addresses %v, %v", addrs, a.h.Network().Connectedness(c.h.ID()))
	}
	mustEcho(t, a, c.echoAt(), "found you through B")
	if got := a.h.Network().Connectedness(c.h.ID()); got != network.Connected {
		t.Fatalf("A and C: %v, want a direct connection", got)
	}
	for _, addr := range a.h.Peerstore().Addrs(c.h.ID()) {
		if !strings.HasPrefix(addr.String(), "/ip4/127.0.0.1/") {
			t.Errorf("A learned address %s of C, want C's loopback listen address only", addr)
		}
	}
	mustEcho(t, c, a.echoAt(), "and back")
}

// A node that moved (C, back on another port) is found again through the
// DHT once the address A knew for it no longer reaches it.
func TestDHTFindsMovedNode(t *testing.T) {
	noRefresh := func(c *Config) { c.dhtNoRefresh = true }
	a, b, c := dhtTriangle(t, DHTServer, noRefresh)
	waitUntil(t, "B in A's routing table and C in B's", func() bool {
		return a.disc.dht.RoutingTable().Find(b.h.ID()) != "" && b.disc.dht.RoutingTable().Find(c.h.ID()) != ""
	})
	mustEcho(t, a, c.echoAt(), "where you were")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "A and B to see C gone", func() bool {
		return a.h.Network().Connectedness(c.h.ID()) == network.NotConnected &&
			b.h.Network().Connectedness(c.h.ID()) == network.NotConnected
	})
	c2 := restartNode(t, c.key, c.dir, noRefresh, func(cfg *Config) {
		cfg.DHT = DHTServer
		cfg.Bootstrap = []string{b.addr(t, "/tcp/")}
	})
	waitUntil(t, "C, moved, back in B's routing table at its new address", func() bool {
		return b.disc.dht.RoutingTable().Find(c2.h.ID()) != "" && slices.ContainsFunc(b.h.Peerstore().Addrs(c2.h.ID()), c2.h.Addrs()[0].Equal)
	})
	if len(a.h.Peerstore().Addrs(c2.h.ID())) == 0 {
		t.Fatal("A forgot C's old address; the test needs it to try that first")
	}
	mustEcho(t, a, c2.echoAt(), "where you are now")
}

// With the routing tables refreshed, as they are outside tests, a node
// joining a DHT meets those already in it: A, bootstrapping from B once C
// is in B's table, comes to know C without sending it anything. (A
// refresh that ran before C had joined would meet it only at the next,
// 10 min later: hence the order.)
func TestDHTRefreshMeetsNodes(t *testing.T) {
	b := startNode(t, func(cfg *Config) { cfg.DHT = DHTServer })
	viaB := func(cfg *Config) { cfg.DHT = DHTServer; cfg.Bootstrap = []string{b.addr(t, "/tcp/")} }
	c := startNode(t, viaB)
	waitUntil(t, "C in B's routing table", func() bool { return b.disc.dht.RoutingTable().Find(c.h.ID()) != "" })
	a := startNode(t, viaB)
	waitUntil(t, "A to meet C through the DHT's refresh", func() bool {
		return a.disc.dht.RoutingTable().Find(c.h.ID()) != ""
	})
	mustEcho(t, a, c.echoAt(), "met you already")
}

// The same three nodes with the DHT off: A knows no address of C, so a
// request to it fails offline at once.
func TestDHTOffNodeUnknown(t *testing.T) {
	a, _, c := dhtTriangle(t, DHTOff)
	if a.disc.dht != nil {
		t.Fatal("DHT off, yet A runs one")
	}
	_, err := a.call(c.echoAt(), "anyone?", 10*time.Second)
	if kind := sendErrKind(t, err); kind != kernel.ErrOffline || !strings.Contains(err.Error(), "no address of it is known") {
		t.Fatalf("request to a node never met with the DHT off: %v, want offline for no known address", err)
	}
}

// With the DHT on, a node nobody knows fails offline within DialTimeout,
// saying the DHT did not find it.
func TestDHTNodeNotFound(t *testing.T) {
	const dial = 2 * time.Second
	a, _, _ := dhtTriangle(t, DHTServer, func(c *Config) { c.DialTimeout = dial })
	nobody := kernel.Address{Node: mustKey(t).NodeID(), Process: echoID}
	start := time.Now()
	_, err := a.call(nobody, "anyone?", time.Minute)
	if kind := sendErrKind(t, err); kind != kernel.ErrOffline || !strings.Contains(err.Error(), "the DHT did not find it") {
		t.Fatalf("request to a node in no DHT: %v, want offline saying the DHT did not find it", err)
	}
	if took := time.Since(start); took > dial+5*time.Second {
		t.Fatalf("request failed after %v, want within the dial timeout %v", took, dial)
	}
}
