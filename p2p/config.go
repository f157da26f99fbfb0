package p2p

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/kernel"
)

// Config configures a Node. Zero fields take the defaults documented on
// each; Kernel, Key and DataDir are required.
type Config struct {
	// Kernel is the node's kernel: the Node becomes its Transport and
	// hands it what arrives. Required.
	Kernel *kernel.Kernel
	// Key is the node's key; the libp2p host's identity is this key, so
	// the host's peer id is the kernel's node id. Required.
	Key *identity.Key
	// DataDir holds peers.json (the known peers' addresses) and
	// aliases.json. Required; created if missing.
	DataDir string

	// Listen are the multiaddrs to listen on, such as
	// /ip4/0.0.0.0/tcp/9047 and /ip4/0.0.0.0/udp/9047/quic-v1. Empty
	// listens nowhere: the node can still dial out.
	Listen []string
	// Bootstrap are full multiaddrs of peers (ending in /p2p/NODEID) to
	// connect to at start and to reconnect to, with backoff, whenever the
	// connection is lost.
	Bootstrap []string
	// StaticRelays are full multiaddrs of relays (nodes with the relay
	// service on) on which this node reserves a slot, so that others
	// reach it at RELAYADDR/p2p-circuit/p2p/NODEID. Reservations are
	// renewed before they expire and remade, with backoff, when lost.
	StaticRelays []string
	// RelayService makes this node relay for others.
	RelayService RelayService

	// MDNS announces this node on the local network with multicast DNS
	// (service _weft._udp: its node id and the addresses it listens on)
	// and connects to the nodes it finds there. It needs Listen. Default
	// off.
	MDNS bool
	// DHT is how this node takes part in weft's Kademlia DHT (protocol
	// /weft/kad/1.0.0, apart from IPFS's), bootstrapped from Bootstrap:
	// a message to a node with no known address looks the node up in it.
	// Default DHTOff.
	DHT DHTMode

	// DialTimeout bounds how long a message waits for its node to be
	// reached: a request to a node that cannot be reached within it fails
	// offline. Default 10 s.
	DialTimeout time.Duration
	// WriteTimeout bounds writing one message to its stream once the node
	// is reached. Default 30 s.
	WriteTimeout time.Duration
	// StreamIdleTimeout is how long an open stream to a peer waits for
	// its next message: a sender closes a stream it has not used for
	// StreamIdleTimeout (found by a sweep every half of it), and a
	// receiver closes one on which no frame has begun for twice
	// StreamIdleTimeout. Default 30 s.
	StreamIdleTimeout time.Duration
	// QueueLength bounds the messages waiting to be sent to one node;
	// Send refuses more with offline. Default 1024.
	QueueLength int
	// InboundRate and InboundBurst rate-limit the requests one node may
	// deliver here (a token bucket per node: InboundRate a second, bursts
	// of InboundBurst). Answers to this node's own requests are never
	// limited. Defaults 25000 and 5000.
	InboundRate  float64
	InboundBurst int

	// Limits bound what the libp2p resource manager and connection
	// manager let peers use.
	Limits Limits

	// Logger; nil discards.
	Logger *slog.Logger

	// mdnsService replaces the mDNS service name, so that a test's nodes
	// find only each other.
	mdnsService string
	// dhtNoRefresh turns off the DHT's routing table refresh (its
	// lookups of nodes near this one), so that a test's node learns
	// another only by looking it up.
	dhtNoRefresh bool
}

// DHTMode is how a node takes part in the DHT.
type DHTMode string

// The DHT modes.
const (
	// DHTOff: no DHT.
	DHTOff DHTMode = "off"
	// DHTClient: the node looks others up but answers no lookups, so it
	// is not found through the DHT; for a node others cannot dial.
	DHTClient DHTMode = "client"
	// DHTServer: the node looks others up and answers lookups, so it
	// (and the nodes it knows) can be found.
	DHTServer DHTMode = "server"
	// DHTAuto: a client until AutoNAT finds the node reachable from the
	// internet, a server from then on.
	DHTAuto DHTMode = "auto"
)

// Limits are the resource manager's limits (for all peers together and
// for each peer) and the connection manager's watermarks. Zero fields take
// the defaults documented on each.
type Limits struct {
	// Conns bounds all connections. Default 512.
	Conns int
	// ConnsPerPeer bounds the connections to one peer. Default 8.
	ConnsPerPeer int
	// Streams bounds all streams. Default 16384.
	Streams int
	// StreamsPerPeer bounds the streams of one peer, both ways. A node
	// keeps at most four streams to a peer open (its senders'), and the
	// peer as many to it. Default 2048.
	StreamsPerPeer int
	// Memory bounds the memory all connections and streams reserve.
	// Default 1 GiB.
	Memory int64
	// MemoryPerPeer bounds the memory one peer's connections and streams
	// reserve. Default 256 MiB.
	MemoryPerPeer int64
	// ConnsLow and ConnsHigh are the connection manager's watermarks:
	// above ConnsHigh connections it closes the least useful ones down to
	// ConnsLow (bootstrap peers and relays are never closed). Defaults
	// 192 and 256.
	ConnsLow, ConnsHigh int
}

// RelayService configures the circuit relay v2 service. Zero fields take
// the defaults documented on each. As in libp2p, at most 8 reservations
// come from one IP address and 32 from one autonomous system.
type RelayService struct {
	// Enabled turns the service on. Default off.
	Enabled bool
	// MaxReservations bounds the nodes holding a slot here. Default 128.
	MaxReservations int
	// MaxCircuits bounds the relayed connections open for one node.
	// Default 16.
	MaxCircuits int
	// ReservationTTL is how long a reservation lasts unless renewed.
	// Default 1 h.
	ReservationTTL time.Duration
	// CircuitDuration and CircuitBytes bound one relayed connection: it
	// is reset after CircuitDuration, or after CircuitBytes in either
	// direction, and the nodes dial again. Defaults 10 min and 64 MiB.
	CircuitDuration time.Duration
	CircuitBytes    int64
}

// Defaults.
const (
	DefaultDialTimeout  = 10 * time.Second
	DefaultWriteTimeout = 30 * time.Second
	// DefaultStreamIdleTimeout is Config.StreamIdleTimeout's default.
	DefaultStreamIdleTimeout = 30 * time.Second
	DefaultQueueLength       = 1024
	DefaultInboundRate       = 25000
	DefaultInboundBurst      = 5000
)

// DefaultLimits returns the defaults documented on Limits.
func DefaultLimits() Limits {
	return Limits{
		Conns:          512,
		ConnsPerPeer:   8,
		Streams:        16384,
		StreamsPerPeer: 2048,
		Memory:         1 << 30,
		MemoryPerPeer:  256 << 20,
		ConnsLow:       192,
		ConnsHigh:      256,
	}
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.StreamIdleTimeout == 0 {
		c.StreamIdleTimeout = DefaultStreamIdleTimeout
	}
	if c.QueueLength == 0 {
		c.QueueLength = DefaultQueueLength
	}
	if c.InboundRate == 0 {
		c.InboundRate = DefaultInboundRate
	}
	if c.InboundBurst == 0 {
		c.InboundBurst = DefaultInboundBurst
	}
	d := DefaultLimits()
	l := &c.Limits
	for _, f := range []struct{ v, d *int }{
		{&l.Conns, &d.Conns}, {&l.ConnsPerPeer, &d.ConnsPerPeer},
		{&l.Streams, &d.Streams}, {&l.StreamsPerPeer, &d.StreamsPerPeer},
		{&l.ConnsLow, &d.ConnsLow}, {&l.ConnsHigh, &d.ConnsHigh},
	} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	if l.Memory == 0 {
		l.Memory = d.Memory
	}
	if l.MemoryPerPeer == 0 {
		l.MemoryPerPeer = d.MemoryPerPeer
	}
	r := &c.RelayService
	if r.MaxReservations == 0 {
		r.MaxReservations = 128
	}
	if r.MaxCircuits == 0 {
		r.MaxCircuits = 16
	}
	if r.ReservationTTL == 0 {
		r.ReservationTTL = time.Hour
	}
	if r.CircuitDuration == 0 {
		r.CircuitDuration = 10 * time.Minute
	}
	if r.CircuitBytes == 0 {
		r.CircuitBytes = 64 << 20
	}
	if c.DHT == "" {
		c.DHT = DHTOff
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate refuses a configuration that cannot work, saying which field.
func (c Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case c.Kernel == nil:
		bad("Kernel is required")
	case c.Key == nil:
		bad("Key is required")
	case c.Key.NodeID() != c.Kernel.NodeID():
		bad("Key is node %s but the kernel is node %s", c.Key.NodeID(), c.Kernel.NodeID())
	}
	if c.DataDir == "" {
		bad("DataDir is required")
	}
	pos := func(name string, v int64) {
		if v < 0 {
			bad("%s is %d, want a positive number (0 for the default)", name, v)
		}
	}
	pos("DialTimeout", int64(c.DialTimeout))
	pos("WriteTimeout", int64(c.WriteTimeout))
	pos("StreamIdleTimeout", int64(c.StreamIdleTimeout))
	pos("QueueLength", int64(c.QueueLength))
	pos("InboundBurst", int64(c.InboundBurst))
	if c.InboundRate < 0 {
		bad("InboundRate is %v, want a positive number (0 for the default)", c.InboundRate)
	}
	l := c.Limits
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"Limits.Conns", int64(l.Conns)}, {"Limits.ConnsPerPeer", int64(l.ConnsPerPeer)},
		{"Limits.Streams", int64(l.Streams)}, {"Limits.StreamsPerPeer", int64(l.StreamsPerPeer)},
		{"Limits.Memory", l.Memory}, {"Limits.MemoryPerPeer", l.MemoryPerPeer},
		{"Limits.ConnsLow", int64(l.ConnsLow)}, {"Limits.ConnsHigh", int64(l.ConnsHigh)},
		{"RelayService.MaxReservations", int64(c.RelayService.MaxReservations)},
		{"RelayService.MaxCircuits", int64(c.RelayService.MaxCircuits)},
		{"RelayService.ReservationTTL", int64(c.RelayService.ReservationTTL)},
		{"RelayService.CircuitDuration", int64(c.RelayService.CircuitDuration)},
		{"RelayService.CircuitBytes", c.RelayService.CircuitBytes},
	} {
		pos(f.name, f.v)
	}
	if l.ConnsLow > l.ConnsHigh && l.ConnsHigh > 0 {
		bad("Limits.ConnsLow (%d) is above Limits.ConnsHigh (%d)", l.ConnsLow, l.ConnsHigh)
	}
	switch c.DHT {
	case DHTOff, DHTClient, DHTServer, DHTAuto:
	default:
		bad("DHT is %q, want %s, %s, %s or %s", c.DHT, DHTOff, DHTClient, DHTServer, DHTAuto)
	}
	if c.MDNS && len(c.Listen) == 0 {
		bad("MDNS needs Listen: mDNS announces the addresses the node listens on, and it listens nowhere")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("p2p: config: %w", err)
	}
	return nil
}
