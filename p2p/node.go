package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/weftos/weft/api/p2pv1"
	"github.com/weftos/weft/kernel"
)

// ProtocolID is the protocol of weft messages between nodes
// (p2pv1.ProtocolID): a stream carries frames one at a time, each
// acknowledged before the next (see the package doc).
const ProtocolID protocol.ID = p2pv1.ProtocolID

// protectTag marks the connections the connection manager must keep.
const protectTag = "weft"

// Node is this node on the network: a libp2p host whose identity is the
// node's key, the kernel's Transport, and the book of known peers and
// aliases. Its methods are safe for concurrent use.
type Node struct {
	cfg      Config
	log      *slog.Logger
	k        *kernel.Kernel
	h        host.Host
	node     string
	maxFrame int
	relay    *relayv2.Relay
	book     *addrBook
	aliases  *aliasFile
	relays   *relayClient
	disc     discovery

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the Node starts

	mu    sync.Mutex
	peers map[peer.ID]*peerState // nil once closing
	ids   map[string]peer.ID     // node id → peer id, of the peers in peers

	closeOnce sync.Once
	closeErr  error
}

// New starts the node's libp2p host on cfg.Listen, makes it the kernel's
// transport, loads the known peers and aliases from cfg.DataDir and
// starts dialling the bootstrap peers and reserving on the static relays.
func New(cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	bootstrap, err := parsePeerAddrs("Bootstrap", cfg.Bootstrap)
	if err != nil {
		return nil, err
	}
	staticRelays, err := parsePeerAddrs("StaticRelays", cfg.StaticRelays)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("p2p: create data directory: %w", err)
	}
	book, err := loadAddrBook(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	aliases, err := loadAliases(cfg.DataDir)
	if err != nil {
		return nil, err
	}

	n := &Node{
		cfg:      cfg,
		log:      cfg.Logger,
		k:        cfg.Kernel,
		node:     cfg.Kernel.NodeID(),
		maxFrame: maxFrameBytes(cfg.Kernel.Limits()),
		book:     book,
		aliases:  aliases,
		peers:    map[peer.ID]*peerState{},
		ids:      map[string]peer.ID{},
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.relays = newRelayClient(n, staticRelays)

	h, err := newHost(cfg, n.relays.addrsFactory)
	if err != nil {
		n.cancel()
		return nil, err
	}
	n.h = h
	if cfg.RelayService.Enabled {
		// libp2p's resources (at most 8 reservations from one IP address
		// and 32 from one AS), with cfg's limits.
		rs := cfg.RelayService
		res := relayv2.DefaultResources()
		res.Limit = &relayv2.RelayLimit{Duration: rs.CircuitDuration, Data: rs.CircuitBytes}
		res.ReservationTTL = rs.ReservationTTL
		res.MaxReservations = rs.MaxReservations
		res.MaxCircuits = rs.MaxCircuits
		res.BufferSize = 32 << 10
		n.relay, err = relayv2.New(h, relayv2.WithResources(res))
		if err != nil {
			n.cancel()
			h.Close()
			return nil, fmt.Errorf("p2p: start relay service: %w", err)
		}
	}
	for _, ai := range book.all() {
		h.Peerstore().AddAddrs(ai.ID, ai.Addrs, knownAddrTTL)
	}
	for name, node := range aliases.all() {
		if err := n.k.SetAlias(name, node); err != nil {
			n.log.Warn("p2p: alias from aliases.json refused", "alias", name, "node", node, "err", err)
		}
	}

	sub, err := h.EventBus().Subscribe([]any{new(event.EvtPeerIdentificationCompleted), new(event.EvtPeerConnectednessChanged)})
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("p2p: subscribe to host events: %w", err)
	}
	if err := n.startDiscovery(bootstrap); err != nil {
		sub.Close()
		n.Close()
		return nil, err
	}
	h.SetStreamHandler(ProtocolID, n.handleStream)
	n.k.SetTransport(n)

	n.goRun(func() { n.watchEvents(sub) })
	n.goRun(n.saveLoop)
	n.goRun(n.idleLoop)
	for _, ai := range bootstrap {
		h.ConnManager().Protect(ai.ID, protectTag)
		n.goRun(func() { n.keepConnected(ai) })
	}
	n.relays.start()
	n.log.Info("p2p: node started", "node", n.node, "listen", n.ListenAddrs())
	return n, nil
}

// newHost makes the libp2p host: TCP and QUIC, Noise and TLS, yamux, the
// resource and connection managers with cfg's limits, the circuit relay
// transport and hole punching.
func newHost(cfg Config, addrs func([]ma.Multiaddr) []ma.Multiaddr) (host.Host, error) {
	sk, err := crypto.UnmarshalEd25519PrivateKey(cfg.Key.PrivateKey())
	if err != nil {
		return nil, fmt.Errorf("p2p: node key: %w", err)
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(resourceLimits(cfg.Limits)), rcmgr.WithMetricsDisabled())
	if err != nil {
		return nil, fmt.Errorf("p2p: resource manager: %w", err)
	}
	cm, err := connmgr.NewConnManager(cfg.Limits.ConnsLow, cfg.Limits.ConnsHigh, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("p2p: connection manager: %w", err)
	}
	listen := libp2p.NoListenAddrs
	if len(cfg.Listen) > 0 {
		listen = libp2p.ListenAddrStrings(cfg.Listen...)
	}
	h, err := libp2p.New(
		libp2p.Identity(sk),
		listen,
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.ConnectionGater(nodesOnly{}),
		libp2p.EnableRelay(),
		libp2p.EnableHolePunching(),
		libp2p.AddrsFactory(addrs),
		libp2p.DisableMetrics(),
		libp2p.UserAgent("weft"),
		libp2p.ChainOptions(extraHostOptions(cfg)...),
	)
	if err != nil {
		cm.Close()
		rm.Close()
		return nil, fmt.Errorf("p2p: start libp2p host: %w", err)
	}
	return h, nil
}

// resourceLimits turns Limits into the resource manager's: libp2p's
// scaled defaults, with the system, per-peer and weft protocol scopes set
// from l.
func resourceLimits(l Limits) rcmgr.ConcreteLimitConfig {
	total := rcmgr.ResourceLimits{
		Conns: rcmgr.LimitVal(l.Conns), ConnsInbound: rcmgr.LimitVal(l.Conns), ConnsOutbound: rcmgr.LimitVal(l.Conns),
		Streams: rcmgr.LimitVal(l.Streams), StreamsInbound: rcmgr.LimitVal(l.Streams), StreamsOutbound: rcmgr.LimitVal(l.Streams),
		Memory: rcmgr.LimitVal64(l.Memory),
	}
	perPeer := rcmgr.ResourceLimits{
		Conns: rcmgr.LimitVal(l.ConnsPerPeer), ConnsInbound: rcmgr.LimitVal(l.ConnsPerPeer), ConnsOutbound: rcmgr.LimitVal(l.ConnsPerPeer),
		Streams: rcmgr.LimitVal(l.StreamsPerPeer), StreamsInbound: rcmgr.LimitVal(l.StreamsPerPeer), StreamsOutbound: rcmgr.LimitVal(l.StreamsPerPeer),
		Memory: rcmgr.LimitVal64(l.MemoryPerPeer),
	}
	// Streams wait in the transient scope until their protocol is
	// negotiated; it holds a peer's worth, as many as may open at once.
	transient := rcmgr.ResourceLimits{
		Streams: rcmgr.LimitVal(l.StreamsPerPeer), StreamsInbound: rcmgr.LimitVal(l.StreamsPerPeer), StreamsOutbound: rcmgr.LimitVal(l.StreamsPerPeer),
		Memory: rcmgr.LimitVal64(l.MemoryPerPeer),
	}
	// A stream holds its frame and yamux's receive window, which grows
	// to 16 MiB on a slow reader: libp2p's default for a stream (16 MiB
	// in all) would refuse a frame near the largest once the window had
	// grown. The peer's scope bounds a stream instead.
	stream := rcmgr.ResourceLimits{Memory: rcmgr.LimitVal64(l.MemoryPerPeer)}
	partial := rcmgr.PartialLimitConfig{
		System:       total,
		Transient:    transient,
		Stream:       stream,
		PeerDefault:  perPeer,
		Protocol:     map[protocol.ID]rcmgr.ResourceLimits{ProtocolID: total},
		ProtocolPeer: map[protocol.ID]rcmgr.ResourceLimits{ProtocolID: perPeer},
	}
	return partial.Build(rcmgr.DefaultLimits.AutoScale())
}

func parsePeerAddrs(what string, addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	byID := map[peer.ID]int{}
	for _, s := range addrs {
		ai, err := parsePeerAddr(what, s)
		if err != nil {
			return nil, err
		}
		if i, ok := byID[ai.ID]; ok {
			out[i].Addrs = append(out[i].Addrs, ai.Addrs...)
			continue
		}
		byID[ai.ID] = len(out)
		out = append(out, ai)
	}
	return out, nil
}

// goRun runs f on a goroutine Close waits for.
func (n *Node) goRun(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// NodeID returns this node's id.
func (n *Node) NodeID() string { return n.node }

// Close stops the node: the kernel loses its transport (every other node
// is then offline), messages still queued are reported undelivered, the
// known peers are saved, and the host and its connections close.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.k.SetTransport(nil)
		peers := n.stopQueues()
		n.cancel()
		n.h.RemoveStreamHandler(ProtocolID)
		var errs []error
		if n.relay != nil {
			errs = append(errs, n.relay.Close())
		}
		errs = append(errs, n.h.Close())
		n.wg.Wait()
		errs = append(errs, n.stopDiscovery())
		failQueued(n, peers, "the node's network is shutting down")
		errs = append(errs, n.book.save())
		if err := errors.Join(errs...); err != nil {
			n.closeErr = fmt.Errorf("p2p: close: %w", err)
		}
	})
	return n.closeErr
}

// watchEvents keeps the address book current from identify (a peer's own
// listen addresses) and drops the state of peers that went away.
func (n *Node) watchEvents(sub event.Subscription) {
	defer sub.Close()
	for {
		select {
		case <-n.ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			switch e := e.(type) {
			case event.EvtPeerIdentificationCompleted:
				if _, err := NodeID(e.Peer); err == nil && len(e.ListenAddrs) > 0 {
					n.book.put(e.Peer, e.ListenAddrs)
				}
			case event.EvtPeerConnectednessChanged:
				if e.Connectedness == network.NotConnected {
					n.forgetIdle(e.Peer)
				}
			}
		}
	}
}

// saveLoop writes the address book when it changed, every saveInterval.
func (n *Node) saveLoop() {
	t := time.NewTicker(saveInterval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
			if err := n.book.saveIfChanged(); err != nil {
				n.log.Warn("p2p: save known peers", "err", err)
			}
		}
	}
}
