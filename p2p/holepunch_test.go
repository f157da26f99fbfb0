package p2p

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	"github.com/marcopolo/simnet"
)

// Hole punching is tested as go-libp2p tests it (holepunch_test.go,
// TestEndToEndSimConnect): the nodes speak QUIC over simnet's packet
// network in memory, where a SimpleFirewallRouter lets a private node
// receive only from addresses it has sent to, as a NAT does. B, public,
// relays; A and C are private, so they meet only through B, and DCUtR is
// what can connect them directly.

// simNet is one simulated network of QUIC hosts.
type simNet struct {
	router *simnet.SimpleFirewallRouter
	// up is what the nodes' packets go to: the router, or a filter in
	// front of it.
	up simnet.PacketReceiver
}

// newSimNet makes a network on which the packets keep allows (all, if
// keep is nil) reach the router, and the others are lost.
func newSimNet(keep func(p *simnet.Packet) bool) *simNet {
	r := &simnet.SimpleFirewallRouter{}
	sn := &simNet{router: r, up: r}
	if keep != nil {
		sn.up = filteredRouter{r, keep}
	}
	return sn
}

// filteredRouter passes to the router the packets keep allows and drops
// the others.
type filteredRouter struct {
	r    simnet.PacketReceiver
	keep func(p *simnet.Packet) bool
}

func (f filteredRouter) RecvPacket(p *simnet.Packet) {
	if f.keep(p) {
		f.r.RecvPacket(p)
	}
}

// sourceIP is quicreuse's SourceIPSelector on simnet: a node's one
// address.
type sourceIP struct{ ip atomic.Pointer[net.IP] }

func (s *sourceIP) PreferredSourceIPForDestination(*net.UDPAddr) (net.IP, error) {
	return *s.ip.Load(), nil
}

// options are the libp2p options that put a host on sn: QUIC sockets that
// are simnet connections, public (anyone may send to it) or behind the
// firewall; a private host is told it is private, and its hole punching
// reports to tr and gives up a dial after half a second.
func (sn *simNet) options(public bool, tr holepunch.EventTracer) []libp2p.Option {
	src := &sourceIP{}
	opts := []libp2p.Option{
		libp2p.QUICReuse(
			quicreuse.NewConnManager,
			quicreuse.OverrideSourceIPSelector(func() (quicreuse.SourceIPSelector, error) { return src, nil }),
			quicreuse.OverrideListenUDP(func(_ string, addr *net.UDPAddr) (net.PacketConn, error) {
				src.ip.Store(&addr.IP)
				if public {
					sn.router.SetAddrPubliclyReachable(addr)
				}
				c := simnet.NewSimConn(addr)
				c.SetUpPacketReceiver(sn.up)
				sn.router.AddNode(addr, c)
				return c, nil
			}),
		),
	}
	if !public {
		opts = append(opts,
			libp2p.ForceReachabilityPrivate(),
			libp2p.EnableHolePunching(holepunch.WithTracer(tr), holepunch.DirectDialTimeout(500*time.Millisecond)),
		)
	}
	return opts
}

// startSimNode starts a node on sn listening on QUIC at listen, public or
// not; tr (nil on a public node) records its hole punching.
func (sn *simNet) startSimNode(t *testing.T, listen string, public bool, tr holepunch.EventTracer, opts ...func(*Config)) *testNode {
	t.Helper()
	hostOptions = func(Config) []libp2p.Option { return sn.options(public, tr) }
	defer func() { hostOptions = nil }()
	return startNode(t, append([]func(*Config){func(c *Config) { c.Listen = []string{listen} }}, opts...)...)
}

// punchTracer keeps the hole punching events of one node.
type punchTracer struct {
	mu     sync.Mutex
	events []*holepunch.Event
}

func (pt *punchTracer) Trace(e *holepunch.Event) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	pt.events = append(pt.events, e)
}

// ended returns the outcomes of the hole punches that ended.
func (pt *punchTracer) ended() []holepunch.EndHolePunchEvt {
	return eventsOf[holepunch.EndHolePunchEvt](pt)
}

// directDials returns the outcomes of the direct dials tried before a
// hole punch.
func (pt *punchTracer) directDials() []holepunch.DirectDialEvt {
	return eventsOf[holepunch.DirectDialEvt](pt)
}

func eventsOf[E any](pt *punchTracer) []E {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	var out []E
	for _, e := range pt.events {
		if ev, ok := e.Evt.(*E); ok {
			out = append(out, *ev)
		}
	}
	return out
}

// punching reports whether n's hole punching service is running: it
// waits for the host to have a public address.
func punching(n *testNode) bool {
	for _, p := range n.h.Mux().Protocols() {
		if p == holepunch.Protocol {
			return true
		}
	}
	return false
}

// conns returns n's connections to other, direct and relayed.
func conns(n, other *testNode) (direct, relayed []network.Conn) {
	id, err := PeerID(other.NodeID())
	if err != nil {
		panic(err)
	}
	for _, c := range n.h.Network().ConnsToPeer(id) {
		if isRelayed(c.RemoteMultiaddr()) || c.Stat().Limited {
			relayed = append(relayed, c)
		} else {
			direct = append(direct, c)
		}
	}
	return direct, relayed
}

// relayedSetup starts B (the relay), then C reserving on B, its hole
// punching traced by ctr, then A; it returns them with C's relayed
// address once both private nodes can punch.
func relayedSetup(t *testing.T, sn *simNet, ctr holepunch.EventTracer) (a, b, c *testNode, circuit string) {
	t.Helper()
	b = sn.startSimNode(t, "/ip4/1.2.0.1/udp/8000/quic-v1", true, nil, func(cfg *Config) { cfg.RelayService.Enabled = true })
	relayAddr := b.addr(t, "/quic-v1/")
	c = sn.startSimNode(t, "/ip4/2.2.0.2/udp/8000/quic-v1", false, ctr, func(cfg *Config) { cfg.StaticRelays = []string{relayAddr} })
	a = sn.startSimNode(t, "/ip4/2.2.0.1/udp/8000/quic-v1", false, &punchTracer{})
	waitUntil(t, "c to advertise a relayed address", func() bool {
		for _, s := range c.ListenAddrs() {
			if strings.Contains(s, "/p2p-circuit/") {
				circuit = s
				return true
			}
		}
		return false
	})
	if want := relayAddr + "/p2p-circuit/p2p/" + c.NodeID(); circuit != want {
		t.Fatalf("c's relayed address %s, want %s", circuit, want)
	}
	// The service starts once the host has a public address; a node
	// that met another before it started would not punch.
	waitUntil(t, "a's and c's hole punching to start", func() bool { return punching(a) && punching(c) })
	return a, b, c, circuit
}

// A reaches C, behind NAT, at its relayed address alone; DCUtR then
// connects them directly, and they keep talking once the relay is gone.
func TestHolePunch(t *testing.T) {
	sn := newSimNet(nil)
	ctr := &punchTracer{}
	a, b, c, circuit := relayedSetup(t, sn, ctr)
	if _, err := a.Connect(context.Background(), circuit); err != nil {
		t.Fatal(err)
	}
	mustEcho(t, a, c.echoAt(), "through the relay")

	// C, which took the relayed connection, punches: it dials A as A
	// dials it, so that each firewall lets the other in.
	waitUntil(t, "c's hole punch to succeed", func() bool {
		ended := ctr.ended()
		return len(ended) > 0 && ended[len(ended)-1].Success
	})
	waitUntil(t, "a direct connection between a and c, on both sides", func() bool {
		ad, _ := conns(a, c)
		cd, _ := conns(c, a)
		return len(ad) > 0 && len(cd) > 0
	})
	// C first dialled A's address, which A's firewall refused: the
	// direct connection is the hole punch's.
	if d := ctr.directDials(); len(d) == 0 || d[0].Success {
		t.Fatalf("c's direct dials of a: %+v, want a first one that failed", d)
	}

	// The next message leaves the stream kept through the relay for one
	// on the direct connection.
	mustEcho(t, a, c.echoAt(), "over the direct connection")
	cid, err := PeerID(c.NodeID())
	if err != nil {
		t.Fatal(err)
	}
	ps := a.peerIfKnown(cid)
	waitUntil(t, "a to keep the stream the message went on", func() bool {
		ps.mu.Lock()
		defer ps.mu.Unlock()
		return len(ps.idle) > 0
	})
	ps.mu.Lock()
	for _, k := range ps.idle {
		if k.s.Conn().Stat().Limited {
			t.Errorf("a keeps a stream to c through the relay, %v, beside the direct connection", k.s.Conn().RemoteMultiaddr())
		}
	}
	ps.mu.Unlock()

	// Without the relay only the direct connection is left, and the
	// messages go over it.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the relayed connections between a and c to close", func() bool {
		_, ar := conns(a, c)
		_, cr := conns(c, a)
		return len(ar) == 0 && len(cr) == 0
	})
	mustEcho(t, a, c.echoAt(), "directly")
	mustEcho(t, c, a.echoAt(), "and back directly")
	if p := peerInfo(t, a, c); p.Relayed || len(p.Addrs) != 1 || p.Addrs[0] != "/ip4/2.2.0.2/udp/8000/quic-v1" {
		t.Fatalf("a's peer c: %+v, want one direct connection, to c's own address", p)
	}
}

// peerInfo returns n's PeerInfo of other, which must be connected.
func peerInfo(t *testing.T, n, other *testNode) PeerInfo {
	t.Helper()
	for _, p := range n.Peers() {
		if p.Node == other.NodeID() {
			return p
		}
	}
	t.Fatalf("%s's peers %+v do not include %s", n.NodeID(), n.Peers(), other.NodeID())
	return PeerInfo{}
}

// When no packet gets from A to C or back directly, as between two NATs
// that hole punching cannot cross, they keep talking through the relay.
func TestHolePunchFailsRelayed(t *testing.T) {
	private := func(a net.Addr) bool { return strings.HasPrefix(a.String(), "2.2.") }
	sn := newSimNet(func(p *simnet.Packet) bool { return !private(p.From) || !private(p.To) })
	ctr := &punchTracer{}
	a, _, c, circuit := relayedSetup(t, sn, ctr)
	if _, err := a.Connect(context.Background(), circuit); err != nil {
		t.Fatal(err)
	}
	mustEcho(t, a, c.echoAt(), "through the relay")
	waitUntil(t, "c's hole punch to fail", func() bool {
		ended := ctr.ended()
		return len(ended) > 0 && !ended[0].Success
	})
	mustEcho(t, a, c.echoAt(), "still through the relay")
	mustEcho(t, c, a.echoAt(), "and back through it")
	if direct, _ := conns(a, c); len(direct) != 0 {
		t.Fatalf("a reached c directly through NATs that let nothing through: %v", direct[0].RemoteMultiaddr())
	}
	if p := peerInfo(t, a, c); !p.Relayed {
		t.Fatalf("a's peer c: %+v, want relayed", p)
	}
}
