package controlapi

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"connectrpc.com/connect"
	libp2ppeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/internal/echoed"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/p2p"
)

// Network is the node on the network as the PeerService and GetInfo use
// it; *p2p.Node is one. Its errors are p2p.Node's: Connect's and Ping's
// are failures to reach the node (they name it), SetAlias's wrap the
// kernel's (kernel.ErrInvalid, *kernel.NameError) for a bad name or node.
type Network interface {
	ListenAddrs() []string
	Peers() []p2p.PeerInfo
	Connect(ctx context.Context, addr string) (node string, err error)
	Disconnect(node string) error
	Ping(ctx context.Context, node string) (time.Duration, error)
	SetAlias(name, node string) error
	RemoveAlias(name string) (existed bool, err error)
	Aliases() map[string]string
}

// The PeerService's errors, mapped to codes in errors.go.
var (
	// errNetworkOff is every call's error on a node whose network is off.
	errNetworkOff = errors.New("the node's network is off ([network] enabled = false, or weftd --p2p-listen none): every other node is offline")
	// errUnknownPeer: a node this node is not connected to or has no
	// address for, or a name that is neither a node id nor an alias.
	errUnknownPeer = errors.New("unknown node")
	// errUnreachable: a node that could not be reached; the error names it.
	errUnreachable = errors.New("unreachable")
)

// network returns the node's Network, or errNetworkOff.
func (s *server) network() (Network, error) {
	if s.net == nil {
		return nil, errNetworkOff
	}
	return s.net, nil
}

func (s *server) ListPeers(context.Context, *connect.Request[weftv1.ListPeersRequest]) (*connect.Response[weftv1.ListPeersResponse], error) {
	net, err := s.network()
	if err != nil {
		return nil, err
	}
	byNode := map[string][]string{}
	for name, node := range net.Aliases() {
		byNode[node] = append(byNode[node], name)
	}
	var out []*weftv1.Peer
	for _, p := range net.Peers() {
		aliases := byNode[p.Node]
		slices.Sort(aliases)
		pb := &weftv1.Peer{
			NodeId:      p.Node,
			Aliases:     aliases,
			Addrs:       p.Addrs,
			Relayed:     p.Relayed,
			BytesIn:     p.Traffic.BytesIn,
			BytesOut:    p.Traffic.BytesOut,
			MessagesIn:  p.Traffic.MessagesIn,
			MessagesOut: p.Traffic.MessagesOut,
			Errors:      p.Traffic.Errors,
			Spoofed:     p.Traffic.Spoofed,
			RateLimited: p.Traffic.RateLimited,
		}
		if p.Latency > 0 {
			pb.Latency = durationpb.New(p.Latency)
		}
		if !p.ConnectedSince.IsZero() {
			pb.ConnectedSince = timestamppb.New(p.ConnectedSince)
		}
		out = append(out, pb)
	}
	return connect.NewResponse(&weftv1.ListPeersResponse{Peers: out}), nil
}

func (s *server) ConnectPeer(ctx context.Context, req *connect.Request[weftv1.ConnectPeerRequest]) (*connect.Response[weftv1.ConnectPeerResponse], error) {
	net, err := s.network()
	if err != nil {
		return nil, err
	}
	addr := req.Msg.GetAddr()
	node, err := peerOfAddr(addr)
	if err != nil {
		return nil, field("addr", err)
	}
	if node == s.k.NodeID() {
		return nil, field("addr", errors.New("names this node"))
	}
	got, err := net.Connect(ctx, addr)
	if err != nil {
		return nil, unreachable(node, err)
	}
	return connect.NewResponse(&weftv1.ConnectPeerResponse{NodeId: got}), nil
}

func (s *server) DisconnectPeer(_ context.Context, req *connect.Request[weftv1.DisconnectPeerRequest]) (*connect.Response[weftv1.DisconnectPeerResponse], error) {
	net, err := s.network()
	if err != nil {
		return nil, err
	}
	node, err := s.resolveNode(net, req.Msg.GetNode())
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(net.Peers(), func(p p2p.PeerInfo) bool { return p.Node == node }) {
		return nil, fmt.Errorf("%w: not connected to node %s", errUnknownPeer, node)
	}
	if err := net.Disconnect(node); err != nil {
		return nil, unreachable(node, err)
	}
	return connect.NewResponse(&weftv1.DisconnectPeerResponse{NodeId: node}), nil
}

func (s *server) PingPeer(ctx context.Context, req *connect.Request[weftv1.PingPeerRequest]) (*connect.Response[weftv1.PingPeerResponse], error) {
	net, err := s.network()
	if err != nil {
		return nil, err
	}
	node, err := s.resolveNode(net, req.Msg.GetNode())
	if err != nil {
		return nil, err
	}
	rtt, err := net.Ping(ctx, node)
	if err != nil {
		if errors.Is(err, swarm.ErrNoAddresses) {
			return nil, fmt.Errorf("%w: no address known for node %s: connect to it first (weft peers connect MULTIADDR)", errUnknownPeer, node)
		}
		return nil, unreachable(node, err)
	}
	return connect.NewResponse(&weftv1.PingPeerResponse{NodeId: node, Rtt: durationpb.New(rtt)}), nil
}

func (s *server) SetAlias(_ context.Context, req *connect.Request[weftv1.SetAliasRequest]) (*connect.Response[weftv1.SetAliasResponse], error) {
	net, err := s.network()
	if err != nil {
		return nil, err
	}
	if err := net.SetAlias(req.Msg.GetName(), req.Msg.GetNode()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&weftv1.SetAliasResponse{}), nil
}

func (s *server) RemoveAlias(_ context.Context, req *connect.Request[weftv1.RemoveAliasRequest]) (*connect.Response[weftv1.RemoveAliasResponse], error) {
	net, err := s.network()
	if err != nil {
		return nil, err
	}
	name := req.Msg.GetName()
	existed, err := net.RemoveAlias(name)
	if err != nil {
		return nil, err
	}
	if !existed {
		return nil, fmt.Errorf("%w: no alias %q", errUnknownPeer, echoed.Truncate(name))
	}
	return connect.NewResponse(&weftv1.RemoveAliasResponse{}), nil
}

func (s *server) ListAliases(context.Context, *connect.Request[weftv1.ListAliasesRequest]) (*connect.Response[weftv1.ListAliasesResponse], error) {
	net, err := s.network()
	if err != nil {
		return nil, err
	}
	aliases := net.Aliases()
	out := make([]*weftv1.Alias, 0, len(aliases))
	for _, name := range slices.Sorted(maps.Keys(aliases)) {
		out = append(out, &weftv1.Alias{Name: name, NodeId: aliases[name]})
	}
	return connect.NewResponse(&weftv1.ListAliasesResponse{Aliases: out}), nil
}

// resolveNode returns the node id s names: s itself when it is a node id,
// the node of the alias s otherwise. A name that is neither a node id nor
// an alias is NOT_FOUND; one that cannot be either is INVALID_ARGUMENT.
func (s *server) resolveNode(net Network, name string) (string, error) {
	if node, ok := net.Aliases()[name]; ok {
		return node, nil
	}
	if _, err := p2p.PeerID(name); err == nil {
		return name, nil
	}
	if err := kernel.ValidateNode(name); err != nil {
		return "", field("node", err)
	}
	return "", fmt.Errorf("%w: %q is neither a node id nor an alias of this node", errUnknownPeer, echoed.Truncate(name))
}

// peerOfAddr returns the node a full multiaddr ends in (/p2p/NODE_ID), or
// why it is not one.
func peerOfAddr(addr string) (string, error) {
	if addr == "" {
		return "", errors.New("empty: want a multiaddr ending in /p2p/NODE_ID")
	}
	a, err := ma.NewMultiaddr(addr)
	if err != nil {
		// go-multiaddr's errors repeat the input: shorten them.
		return "", fmt.Errorf("not a multiaddr: %s", echoed.Truncate(err.Error()))
	}
	if len(a) == 0 {
		return "", errors.New("empty: want a multiaddr ending in /p2p/NODE_ID")
	}
	last := a[len(a)-1]
	if last.Protocol().Code != ma.P_P2P {
		return "", errors.New("does not end in /p2p/NODE_ID: the node it names must be known to connect")
	}
	node, err := p2p.NodeID(libp2ppeer.ID(last.RawValue()))
	if err != nil {
		return "", err
	}
	return node, nil
}

// unreachable is a failure to reach node, naming it (UNAVAILABLE, which
// weft tells from a weftd that does not answer).
func unreachable(node string, err error) error {
	return fmt.Errorf("node %s %w: %s", node, errUnreachable, echoed.Truncate(err.Error()))
}
