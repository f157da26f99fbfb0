package controlapi_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/kernel"
)

// netEchoID is a public echo that holds the network capability, so that
// other nodes reach it.
var netEchoID = kernel.ProcessId{Name: "net-echo", Package: "test", Publisher: "weft-test"}

// tcpAddr returns n's listen address on 127.0.0.1 over TCP, as GetInfo
// gives it.
func tcpAddr(t *testing.T, n *node) string {
	t.Helper()
	info, err := n.node.GetInfo(context.Background(), connect.NewRequest(&weftv1.GetInfoRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if !info.Msg.GetNetwork() {
		t.Fatal("GetInfo says the network is off")
	}
	for _, a := range info.Msg.GetListenAddrs() {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
			if !strings.HasSuffix(a, "/p2p/"+n.k.NodeID()) {
				t.Fatalf("listen address %s does not end in /p2p/%s", a, n.k.NodeID())
			}
			return a
		}
	}
	t.Fatalf("GetInfo lists no TCP address on 127.0.0.1: %v", info.Msg.GetListenAddrs())
	return ""
}

// wantPeerCode fails the test unless err has code, and its message each of
// parts.
func wantPeerCode(t *testing.T, what string, err error, code connect.Code, parts ...string) {
	t.Helper()
	if connect.CodeOf(err) != code {
		t.Errorf("%s: %v, want %s", what, err, code)
		return
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want it to name %q", what, err, p)
		}
	}
}

// TestPeerService: node B connects to A through the API, lists it, pings
// it, names it with an alias that the MessageService resolves through the
// kernel, and disconnects; each mistake gets its code.
func TestPeerService(t *testing.T) {
	a := newNode(t, nodeOptions{network: true})
	b := newNode(t, nodeOptions{network: true})
	netCap := kernel.Capability{Issuer: a.k.Address(kernel.KernelProcess), Params: kernel.NetworkParams}
	if err := a.k.Start(kernel.Spec{ID: netEchoID, Process: kernel.ProcessFunc(echo), Public: true, Capabilities: []kernel.Capability{netCap}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	aID := a.k.NodeID()

	conn, err := b.peer.ConnectPeer(ctx, connect.NewRequest(&weftv1.ConnectPeerRequest{Addr: tcpAddr(t, a)}))
	if err != nil {
		t.Fatalf("ConnectPeer: %v", err)
	}
	if conn.Msg.GetNodeId() != aID {
		t.Fatalf("ConnectPeer answered node %s, want %s", conn.Msg.GetNodeId(), aID)
	}
	ping, err := b.peer.PingPeer(ctx, connect.NewRequest(&weftv1.PingPeerRequest{Node: aID}))
	if err != nil || ping.Msg.GetNodeId() != aID || ping.Msg.GetRtt().AsDuration() <= 0 {
		t.Fatalf("PingPeer = %v, %v; want A and a round trip", ping, err)
	}

	// An alias, in the PeerService and in a send.
	if _, err := b.peer.SetAlias(ctx, connect.NewRequest(&weftv1.SetAliasRequest{Name: "alice", Node: aID})); err != nil {
		t.Fatalf("SetAlias: %v", err)
	}
	aliases, err := b.peer.ListAliases(ctx, connect.NewRequest(&weftv1.ListAliasesRequest{}))
	if err != nil || len(aliases.Msg.GetAliases()) != 1 || aliases.Msg.GetAliases()[0].GetName() != "alice" || aliases.Msg.GetAliases()[0].GetNodeId() != aID {
		t.Fatalf("ListAliases = %v, %v; want alice = A", aliases, err)
	}
	res, err := b.msg.Send(ctx, connect.NewRequest(&weftv1.SendRequest{
		Target:  "alice@" + netEchoID.String(),
		Request: &weftv1.Request{Body: []byte("hi"), ExpectsResponse: durationpb.New(10 * time.Second)},
	}))
	if err != nil || string(res.Msg.GetResponse().GetBody()) != "echo:hi" {
		t.Fatalf("Send to alice@%s = %v, %v; want echo:hi", netEchoID, res, err)
	}
	if _, err := b.peer.PingPeer(ctx, connect.NewRequest(&weftv1.PingPeerRequest{Node: "alice"})); err != nil {
		t.Errorf("PingPeer alice: %v", err)
	}

	peers, err := b.peer.ListPeers(ctx, connect.NewRequest(&weftv1.ListPeersRequest{}))
	if err != nil || len(peers.Msg.GetPeers()) != 1 {
		t.Fatalf("ListPeers = %v, %v; want A alone", peers, err)
	}
	p := peers.Msg.GetPeers()[0]
	if p.GetNodeId() != aID || p.GetRelayed() || len(p.GetAliases()) != 1 || p.GetAliases()[0] != "alice" ||
		len(p.GetAddrs()) == 0 || !strings.HasPrefix(p.GetAddrs()[0], "/ip4/127.0.0.1/tcp/") ||
		p.GetConnectedSince() == nil || p.GetMessagesOut() == 0 || p.GetMessagesIn() == 0 || p.GetBytesOut() == 0 {
		t.Errorf("B's peer: %v; want A, direct, aliased alice, with the send's traffic", p)
	}
	apeers, err := a.peer.ListPeers(ctx, connect.NewRequest(&weftv1.ListPeersRequest{}))
	if err != nil || len(apeers.Msg.GetPeers()) != 1 || apeers.Msg.GetPeers()[0].GetNodeId() != b.k.NodeID() || len(apeers.Msg.GetPeers()[0].GetAliases()) != 0 {
		t.Errorf("A's peers = %v, %v; want B, without an alias", apeers, err)
	}

	// Mistakes.
	_, err = b.peer.ConnectPeer(ctx, connect.NewRequest(&weftv1.ConnectPeerRequest{Addr: "/ip4/127.0.0.1/tcp/x"}))
	wantPeerCode(t, "ConnectPeer to a bad multiaddr", err, connect.CodeInvalidArgument, "addr")
	_, err = b.peer.ConnectPeer(ctx, connect.NewRequest(&weftv1.ConnectPeerRequest{Addr: "/ip4/127.0.0.1/tcp/1"}))
	wantPeerCode(t, "ConnectPeer without /p2p/", err, connect.CodeInvalidArgument, "/p2p/NODE_ID")
	_, err = b.peer.ConnectPeer(ctx, connect.NewRequest(&weftv1.ConnectPeerRequest{Addr: tcpAddr(t, b)}))
	wantPeerCode(t, "ConnectPeer to itself", err, connect.CodeInvalidArgument, "this node")
	other, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	closed := closedPort(t)
	_, err = b.peer.ConnectPeer(ctx, connect.NewRequest(&weftv1.ConnectPeerRequest{Addr: "/ip4/127.0.0.1/tcp/" + closed + "/p2p/" + other.NodeID()}))
	wantPeerCode(t, "ConnectPeer to a closed port", err, connect.CodeUnavailable, other.NodeID())
	_, err = b.peer.PingPeer(ctx, connect.NewRequest(&weftv1.PingPeerRequest{Node: "bob"}))
	wantPeerCode(t, "PingPeer to an unknown alias", err, connect.CodeNotFound, "bob")
	_, err = b.peer.PingPeer(ctx, connect.NewRequest(&weftv1.PingPeerRequest{Node: "Not A Node!"}))
	wantPeerCode(t, "PingPeer to a malformed node", err, connect.CodeInvalidArgument, "node")
	newer, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.peer.PingPeer(ctx, connect.NewRequest(&weftv1.PingPeerRequest{Node: newer.NodeID()}))
	wantPeerCode(t, "PingPeer to a node with no address", err, connect.CodeNotFound, newer.NodeID())
	_, err = b.peer.DisconnectPeer(ctx, connect.NewRequest(&weftv1.DisconnectPeerRequest{Node: other.NodeID()}))
	wantPeerCode(t, "DisconnectPeer of a node not connected", err, connect.CodeNotFound, other.NodeID())
	_, err = b.peer.SetAlias(ctx, connect.NewRequest(&weftv1.SetAliasRequest{Name: "our", Node: aID}))
	wantPeerCode(t, "SetAlias our", err, connect.CodeInvalidArgument)
	_, err = b.peer.RemoveAlias(ctx, connect.NewRequest(&weftv1.RemoveAliasRequest{Name: "carol"}))
	wantPeerCode(t, "RemoveAlias of no alias", err, connect.CodeNotFound, "carol")

	// Disconnect, forget the alias.
	dis, err := b.peer.DisconnectPeer(ctx, connect.NewRequest(&weftv1.DisconnectPeerRequest{Node: "alice"}))
	if err != nil || dis.Msg.GetNodeId() != aID {
		t.Fatalf("DisconnectPeer alice = %v, %v", dis, err)
	}
	if _, err := b.peer.RemoveAlias(ctx, connect.NewRequest(&weftv1.RemoveAliasRequest{Name: "alice"})); err != nil {
		t.Fatalf("RemoveAlias: %v", err)
	}
	if aliases, err := b.peer.ListAliases(ctx, connect.NewRequest(&weftv1.ListAliasesRequest{})); err != nil || len(aliases.Msg.GetAliases()) != 0 {
		t.Errorf("ListAliases after RemoveAlias = %v, %v; want none", aliases, err)
	}

	// Every call that changes the node is audited, with its outcome.
	outcomes := map[string]string{}
	for _, r := range b.logs.records(t, "audit") {
		proc, _ := r["procedure"].(string)
		outcomes[proc[strings.LastIndex(proc, "/")+1:]] += r["outcome"].(string) + " "
	}
	for proc, want := range map[string]string{
		"ConnectPeer":    "ok invalid_argument invalid_argument invalid_argument unavailable ",
		"PingPeer":       "ok ok not_found invalid_argument not_found ",
		"SetAlias":       "ok invalid_argument ",
		"RemoveAlias":    "not_found ok ",
		"DisconnectPeer": "not_found ok ",
	} {
		if outcomes[proc] != want {
			t.Errorf("audit outcomes of %s: %q, want %q", proc, outcomes[proc], want)
		}
	}
	if _, ok := outcomes["ListPeers"]; ok {
		t.Error("ListPeers, which changes nothing, was audited")
	}
}

// TestPeerServiceNetworkOff: without a network, GetInfo says so and every
// PeerService call is FAILED_PRECONDITION.
func TestPeerServiceNetworkOff(t *testing.T) {
	n := newNode(t, nodeOptions{})
	ctx := context.Background()
	info, err := n.node.GetInfo(ctx, connect.NewRequest(&weftv1.GetInfoRequest{}))
	if err != nil || info.Msg.GetNetwork() || len(info.Msg.GetListenAddrs()) != 0 {
		t.Fatalf("GetInfo = %v, %v; want the network off", info, err)
	}
	calls := map[string]func() error{
		"ListPeers": func() error {
			_, err := n.peer.ListPeers(ctx, connect.NewRequest(&weftv1.ListPeersRequest{}))
			return err
		},
		"ConnectPeer": func() error {
			_, err := n.peer.ConnectPeer(ctx, connect.NewRequest(&weftv1.ConnectPeerRequest{Addr: "/ip4/127.0.0.1/tcp/1"}))
			return err
		},
		"DisconnectPeer": func() error {
			_, err := n.peer.DisconnectPeer(ctx, connect.NewRequest(&weftv1.DisconnectPeerRequest{Node: "alice"}))
			return err
		},
		"PingPeer": func() error {
			_, err := n.peer.PingPeer(ctx, connect.NewRequest(&weftv1.PingPeerRequest{Node: "alice"}))
			return err
		},
		"SetAlias": func() error {
			_, err := n.peer.SetAlias(ctx, connect.NewRequest(&weftv1.SetAliasRequest{Name: "alice", Node: n.k.NodeID()}))
			return err
		},
		"RemoveAlias": func() error {
			_, err := n.peer.RemoveAlias(ctx, connect.NewRequest(&weftv1.RemoveAliasRequest{Name: "alice"}))
			return err
		},
		"ListAliases": func() error {
			_, err := n.peer.ListAliases(ctx, connect.NewRequest(&weftv1.ListAliasesRequest{}))
			return err
		},
	}
	for name, call := range calls {
		wantPeerCode(t, name, call(), connect.CodeFailedPrecondition, "network is off")
	}
}

// closedPort returns a TCP port of 127.0.0.1 that nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return strconv.Itoa(port)
}
