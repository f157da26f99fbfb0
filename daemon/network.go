package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/weftos/weft/controlapi"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/p2p"
	"github.com/weftos/weft/store"
)

// DefaultP2PPort is the port a node listens on for other nodes, TCP and
// QUIC (UDP): unprivileged, so weftd needs no capability to bind it;
// outside Linux's ephemeral range (32768–60999), so an outgoing connection
// never holds it; not libp2p's customary 4001, so a node runs beside an
// IPFS daemon; and named by no service in /etc/services.
const DefaultP2PPort = 9047

// NetworkConfig is weftd.toml's [network] table (documented there): what
// p2p.Config takes, by config key.
type NetworkConfig struct {
	Enabled      bool                `toml:"enabled"`
	Listen       []string            `toml:"listen"`
	Bootstrap    []string            `toml:"bootstrap"`
	Relays       []string            `toml:"relays"`
	DialTimeout  time.Duration       `toml:"dial_timeout"`
	WriteTimeout time.Duration       `toml:"write_timeout"`
	QueueLength  int                 `toml:"queue_length"`
	InboundRate  float64             `toml:"inbound_rate"`
	InboundBurst int                 `toml:"inbound_burst"`
	MDNS         bool                `toml:"mdns"`
	DHT          string              `toml:"dht"`
	RelayService RelayServiceConfig  `toml:"relay_service"`
	Limits       NetworkLimitsConfig `toml:"limits"`
}

// RelayServiceConfig is [network.relay_service].
type RelayServiceConfig struct {
	Enabled         bool          `toml:"enabled"`
	MaxReservations int           `toml:"max_reservations"`
	MaxCircuits     int           `toml:"max_circuits"`
	ReservationTTL  time.Duration `toml:"reservation_ttl"`
	CircuitDuration time.Duration `toml:"circuit_duration"`
	CircuitBytes    int64         `toml:"circuit_bytes"`
}

// NetworkLimitsConfig is [network.limits].
type NetworkLimitsConfig struct {
	Connections        int   `toml:"connections"`
	ConnectionsPerPeer int   `toml:"connections_per_peer"`
	Streams            int   `toml:"streams"`
	StreamsPerPeer     int   `toml:"streams_per_peer"`
	Memory             int64 `toml:"memory"`
	MemoryPerPeer      int64 `toml:"memory_per_peer"`
	ConnectionsLow     int   `toml:"connections_low"`
	ConnectionsHigh    int   `toml:"connections_high"`
}

// DefaultListen are the addresses a node listens on by default: TCP and
// QUIC on DefaultP2PPort, on every IPv4 and IPv6 interface.
func DefaultListen() []string {
	port := fmt.Sprint(DefaultP2PPort)
	return []string{
		"/ip4/0.0.0.0/tcp/" + port,
		"/ip4/0.0.0.0/udp/" + port + "/quic-v1",
		"/ip6/::/tcp/" + port,
		"/ip6/::/udp/" + port + "/quic-v1",
	}
}

// DefaultNetworkConfig is a node on the network with p2p's defaults: it
// listens on DefaultListen, knows no bootstrap peer or relay, relays for
// nobody, and neither announces itself with mDNS nor joins the DHT.
func DefaultNetworkConfig() NetworkConfig {
	l := p2p.DefaultLimits()
	return NetworkConfig{
		Enabled:      true,
		Listen:       DefaultListen(),
		Bootstrap:    []string{},
		Relays:       []string{},
		DialTimeout:  p2p.DefaultDialTimeout,
		WriteTimeout: p2p.DefaultWriteTimeout,
		QueueLength:  p2p.DefaultQueueLength,
		InboundRate:  p2p.DefaultInboundRate,
		InboundBurst: p2p.DefaultInboundBurst,
		DHT:          string(p2p.DHTOff),
		RelayService: RelayServiceConfig{
			MaxReservations: 128,
			MaxCircuits:     16,
			ReservationTTL:  time.Hour,
			CircuitDuration: 10 * time.Minute,
			CircuitBytes:    64 << 20,
		},
		Limits: NetworkLimitsConfig{
			Connections:        l.Conns,
			ConnectionsPerPeer: l.ConnsPerPeer,
			Streams:            l.Streams,
			StreamsPerPeer:     l.StreamsPerPeer,
			Memory:             l.Memory,
			MemoryPerPeer:      l.MemoryPerPeer,
			ConnectionsLow:     l.ConnsLow,
			ConnectionsHigh:    l.ConnsHigh,
		},
	}
}

// P2PListenOff is the value of weftd --p2p-listen that turns the network
// off.
const P2PListenOff = "none"

// SetP2PListen applies weftd's --p2p-listen values, in order: the first
// replaces the file's listen, the next ones add to it; "none" turns the
// network off (and may not be given with an address).
func (c *Config) SetP2PListen(values []string) error {
	var listen []string
	off := false
	for _, v := range values {
		switch {
		case v == P2PListenOff:
			off = true
		case strings.TrimSpace(v) == "":
			return errors.New("--p2p-listen: empty address")
		default:
			listen = append(listen, v)
		}
	}
	switch {
	case off && len(listen) > 0:
		return fmt.Errorf("--p2p-listen none turns the network off; it cannot go with --p2p-listen %s", listen[0])
	case off:
		c.Network.Enabled = false
	case len(listen) > 0:
		c.Network.Enabled = true
		c.Network.Listen = listen
	}
	return nil
}

// validate checks what p2p.New would refuse only when the node starts,
// naming the config key. The multiaddrs themselves are parsed by p2p.New,
// whose errors name the field.
func (c NetworkConfig) validate() error {
	for _, l := range []struct {
		key   string
		addrs []string
	}{{"listen", c.Listen}, {"bootstrap", c.Bootstrap}, {"relays", c.Relays}} {
		for _, a := range l.addrs {
			if strings.TrimSpace(a) == "" {
				return fmt.Errorf("config: network.%s lists an empty address", l.key)
			}
		}
	}
	for _, f := range []struct {
		key string
		v   int64
	}{
		{"dial_timeout", int64(c.DialTimeout)}, {"write_timeout", int64(c.WriteTimeout)},
		{"queue_length", int64(c.QueueLength)}, {"inbound_burst", int64(c.InboundBurst)},
		{"relay_service.max_reservations", int64(c.RelayService.MaxReservations)},
		{"relay_service.max_circuits", int64(c.RelayService.MaxCircuits)},
		{"relay_service.reservation_ttl", int64(c.RelayService.ReservationTTL)},
		{"relay_service.circuit_duration", int64(c.RelayService.CircuitDuration)},
		{"relay_service.circuit_bytes", c.RelayService.CircuitBytes},
		{"limits.connections", int64(c.Limits.Connections)},
		{"limits.connections_per_peer", int64(c.Limits.ConnectionsPerPeer)},
		{"limits.streams", int64(c.Limits.Streams)},
		{"limits.streams_per_peer", int64(c.Limits.StreamsPerPeer)},
		{"limits.memory", c.Limits.Memory},
		{"limits.memory_per_peer", c.Limits.MemoryPerPeer},
		{"limits.connections_low", int64(c.Limits.ConnectionsLow)},
		{"limits.connections_high", int64(c.Limits.ConnectionsHigh)},
	} {
		if f.v <= 0 {
			return fmt.Errorf("config: network.%s is %d: want a positive value", f.key, f.v)
		}
	}
	if c.InboundRate <= 0 {
		return fmt.Errorf("config: network.inbound_rate is %v: want a positive number of requests a second", c.InboundRate)
	}
	switch p2p.DHTMode(c.DHT) {
	case p2p.DHTOff, p2p.DHTClient, p2p.DHTServer, p2p.DHTAuto:
	default:
		return fmt.Errorf("config: network.dht is %q: want \"off\", \"client\", \"server\" or \"auto\"", c.DHT)
	}
	if c.MDNS && c.Enabled && len(c.Listen) == 0 {
		return errors.New("config: network.mdns is on but network.listen is empty: mDNS announces the addresses the node listens on")
	}
	if c.Limits.ConnectionsLow > c.Limits.ConnectionsHigh {
		return fmt.Errorf("config: network.limits.connections_low (%d) is above network.limits.connections_high (%d)", c.Limits.ConnectionsLow, c.Limits.ConnectionsHigh)
	}
	return nil
}

// p2pConfig is c as p2p.New takes it, for node n (its kernel, key and
// data dir).
func (c NetworkConfig) p2pConfig(n *node) p2p.Config {
	rs, l := c.RelayService, c.Limits
	return p2p.Config{
		Kernel:       n.k,
		Key:          n.key,
		DataDir:      n.dir,
		Listen:       c.Listen,
		Bootstrap:    c.Bootstrap,
		StaticRelays: c.Relays,
		RelayService: p2p.RelayService{
			Enabled:         rs.Enabled,
			MaxReservations: rs.MaxReservations,
			MaxCircuits:     rs.MaxCircuits,
			ReservationTTL:  rs.ReservationTTL,
			CircuitDuration: rs.CircuitDuration,
			CircuitBytes:    rs.CircuitBytes,
		},
		DialTimeout:  c.DialTimeout,
		WriteTimeout: c.WriteTimeout,
		QueueLength:  c.QueueLength,
		InboundRate:  c.InboundRate,
		InboundBurst: c.InboundBurst,
		MDNS:         c.MDNS,
		DHT:          p2p.DHTMode(c.DHT),
		Limits: p2p.Limits{
			Conns:          l.Connections,
			ConnsPerPeer:   l.ConnectionsPerPeer,
			Streams:        l.Streams,
			StreamsPerPeer: l.StreamsPerPeer,
			Memory:         l.Memory,
			MemoryPerPeer:  l.MemoryPerPeer,
			ConnsLow:       l.ConnectionsLow,
			ConnsHigh:      l.ConnectionsHigh,
		},
		Logger: n.log,
	}
}

// startNetwork puts the node on the network: the p2p node becomes the
// kernel's transport, so that the processes restored after it reach
// other nodes from their start. With the network off it does nothing,
// and every other node is offline.
func (n *node) startNetwork(context.Context) error {
	if !n.cfg.Network.Enabled {
		n.log.Info("network off: every other node is offline")
		return nil
	}
	pn, err := p2p.New(n.cfg.Network.p2pConfig(n))
	if err != nil {
		return err
	}
	n.net = pn
	return nil
}

// stopNetwork takes the node off the network before the kernel stops:
// messages still queued for other nodes fail offline, the known peers are
// saved.
func (n *node) stopNetwork(context.Context) error {
	if n.net == nil {
		return nil
	}
	return n.net.Close()
}

// networkAPI is the network as the control API takes it: nil when off
// (not a nil *p2p.Node in the interface).
func (n *node) networkAPI() controlapi.Network {
	if n.net == nil {
		return nil
	}
	return n.net
}

// revocations keeps the kernel's revocation marks in the store
// (kernel.RevocationStore), each as the capability's canonical encoding
// (kernel.EncodeCapability), so that a revocation outlives a restart.
type revocations struct{ st *store.Store }

func (r revocations) Revocations() ([]kernel.Capability, error) {
	marks, err := r.st.Revocations()
	if err != nil {
		return nil, err
	}
	out := make([]kernel.Capability, 0, len(marks))
	for _, m := range marks {
		c, err := decodeCapability(m)
		if err != nil {
			return nil, fmt.Errorf("revocation mark in the store: %w", err)
		}
		out = append(out, c)
	}
	return out, nil
}

func (r revocations) AddRevocation(c kernel.Capability) error {
	return r.st.AddRevocation(kernel.EncodeCapability(c))
}

func (r revocations) RemoveRevocation(c kernel.Capability) error {
	return r.st.RemoveRevocation(kernel.EncodeCapability(c))
}

// capabilityDomain starts kernel.EncodeCapability's encoding.
const capabilityDomain = "weft-capability-v1\x00"

// decodeCapability reads what kernel.EncodeCapability wrote: the domain,
// then the issuer and the params, each after its uint32 big-endian
// length, and nothing after them. The issuer must parse as an address;
// the kernel checks the params when it loads the mark.
func decodeCapability(b []byte) (kernel.Capability, error) {
	rest, ok := strings.CutPrefix(string(b), capabilityDomain)
	if !ok {
		return kernel.Capability{}, errors.New("not an encoded capability: no weft-capability-v1 domain")
	}
	field := func(name string) (string, error) {
		if len(rest) < 4 {
			return "", fmt.Errorf("encoded capability cut short before its %s length", name)
		}
		n := binary.BigEndian.Uint32([]byte(rest[:4]))
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return "", fmt.Errorf("encoded capability: %s of %d bytes, %d left", name, n, len(rest))
		}
		v := rest[:n]
		rest = rest[n:]
		return v, nil
	}
	issuer, err := field("issuer")
	if err != nil {
		return kernel.Capability{}, err
	}
	params, err := field("params")
	if err != nil {
		return kernel.Capability{}, err
	}
	if rest != "" {
		return kernel.Capability{}, fmt.Errorf("encoded capability: %d bytes after its params", len(rest))
	}
	addr, err := kernel.ParseAddress(issuer)
	if err != nil {
		return kernel.Capability{}, fmt.Errorf("encoded capability: issuer: %w", err)
	}
	return kernel.Capability{Issuer: addr, Params: params}, nil
}
