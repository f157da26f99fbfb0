package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftos/weft/controlapi"
	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/p2p"
)

// netNode is a real kernel on the network (a p2p.Node on a free TCP port
// of 127.0.0.1) served by the control API on a Unix socket.
type netNode struct {
	id, sock string
	net      *p2p.Node
}

// serveNetNode starts a netNode with a public echo that holds the
// network capability, echo:test:weft-test; network false serves the API
// with the network off.
func serveNetNode(t *testing.T, network bool) *netNode {
	t.Helper()
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	k, err := kernel.New(kernel.Config{Keyring: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := k.Close(ctx); err != nil {
			t.Errorf("close kernel: %v", err)
		}
	})
	netCap := kernel.Capability{Issuer: k.Address(kernel.KernelProcess), Params: kernel.NetworkParams}
	echoID := kernel.ProcessId{Name: "echo", Package: "test", Publisher: "weft-test"}
	if err := k.Start(kernel.Spec{ID: echoID, Public: true, Capabilities: []kernel.Capability{netCap}, Process: kernel.ProcessFunc(func(_ context.Context, h *kernel.Handle) error {
		for {
			m, err := h.Await()
			if err != nil {
				return nil
			}
			if m.WantsResponse() {
				_ = h.Respond(&kernel.Response{Body: m.Body})
			}
		}
	})}); err != nil {
		t.Fatal(err)
	}
	n := &netNode{id: key.NodeID()}
	cfg := controlapi.Config{Kernel: k}
	if network {
		n.net, err = p2p.New(p2p.Config{Kernel: k, Key: key, DataDir: filepath.Join(t.TempDir(), "p2p"), Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := n.net.Close(); err != nil {
				t.Errorf("close the p2p node: %v", err)
			}
		})
		cfg.Network = n.net
	}
	h, err := controlapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.sock = serveHandler(t, h)
	return n
}

// TestPeersOnRealNodes: weft status shows where a node listens; the other
// connects there with weft peers connect, lists, pings and aliases it, and
// weft send reaches it through the alias.
func TestPeersOnRealNodes(t *testing.T) {
	a, b := serveNetNode(t, true), serveNetNode(t, true)

	// weft status lists A's addresses, each ending in its id.
	res := weft(t, a.sock, "status")
	res.want(t, 0, "listen ", "/p2p/"+a.id)
	var st struct {
		Network     bool     `json:"network"`
		ListenAddrs []string `json:"listenAddrs"`
	}
	res = weft(t, a.sock, "--json", "status")
	res.want(t, 0)
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil || !st.Network || len(st.ListenAddrs) == 0 {
		t.Fatalf("weft --json status: %v\n%s", err, res.stdout)
	}
	addr := ""
	for _, l := range st.ListenAddrs {
		if strings.HasPrefix(l, "/ip4/127.0.0.1/tcp/") && strings.HasSuffix(l, "/p2p/"+a.id) {
			addr = l
		}
	}
	if addr == "" {
		t.Fatalf("no TCP address of 127.0.0.1 ending in /p2p/%s in %q", a.id, st.ListenAddrs)
	}

	weft(t, b.sock, "peers", "connect", addr).want(t, 0, "connected to "+a.id+"\n")
	res = weft(t, b.sock, "peers")
	res.want(t, 0)
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NODE VIA ADDRESS LATENCY IN OUT ERRORS" {
		t.Fatalf("weft peers printed\n%s\nwant a header and A", res.stdout)
	}
	if f := strings.Fields(lines[1]); len(f) < 4 || f[0] != a.id || f[1] != "direct" || !strings.HasPrefix(f[2], "/ip4/127.0.0.1/tcp/") {
		t.Errorf("A's row: %q", lines[1])
	}
	weft(t, a.sock, "peers").want(t, 0, b.id)

	res = weft(t, b.sock, "peers", "ping", a.id)
	res.want(t, 0, a.id+": ")
	if d, err := time.ParseDuration(strings.TrimSpace(strings.TrimPrefix(res.stdout, a.id+": "))); err != nil || d <= 0 {
		t.Errorf("weft peers ping printed %q, want NODE: a round trip", res.stdout)
	}

	// An alias, for the PeerService and for weft send.
	weft(t, b.sock, "peers", "alias", "alice", a.id).want(t, 0, "alice is "+a.id)
	res = weft(t, b.sock, "peers", "alias")
	res.want(t, 0)
	if got := strings.Join(strings.Fields(res.stdout), " "); got != "ALIAS NODE alice "+a.id {
		t.Errorf("weft peers alias printed %q", res.stdout)
	}
	weft(t, b.sock, "send", "alice@echo:test:weft-test", "through alice", "--await", "10s").want(t, 0, "through alice\n")
	weft(t, b.sock, "peers", "ping", "alice").want(t, 0, a.id+": ")
	res = weft(t, b.sock, "peers")
	res.want(t, 0, "alice ")
	res = weft(t, b.sock, "--json", "peers")
	res.want(t, 0)
	var list struct {
		Peers []struct {
			NodeID      string   `json:"nodeId"`
			Aliases     []string `json:"aliases"`
			MessagesOut string   `json:"messagesOut"` // protojson writes uint64 as a string
		} `json:"peers"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &list); err != nil || len(list.Peers) != 1 ||
		list.Peers[0].NodeID != a.id || len(list.Peers[0].Aliases) != 1 || list.Peers[0].MessagesOut == "0" {
		t.Errorf("weft --json peers: %v\n%s\nwant A, aliased alice, with messages out", err, res.stdout)
	}

	// Mistakes: the node's answer, not "is weftd running?".
	other, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	res = weft(t, b.sock, "peers", "connect", "/ip4/127.0.0.1/tcp/1/p2p/"+other.NodeID())
	res.wantErr(t, ExitNode, "weft: peers connect: unavailable: node "+other.NodeID())
	if strings.Contains(res.stderr, "is weftd running") {
		t.Errorf("a peer that cannot be reached is taken for weftd not running:\n%s", res.stderr)
	}
	weft(t, b.sock, "peers", "connect", "/ip4/127.0.0.1/tcp/1").wantErr(t, ExitNode, "invalid_argument: addr: does not end in /p2p/NODE_ID")
	weft(t, b.sock, "peers", "ping", "bob").wantErr(t, ExitNode, "not_found:", `"bob" is neither a node id nor an alias`)
	weft(t, b.sock, "peers", "disconnect", other.NodeID()).wantErr(t, ExitNode, "not_found: ", "not connected to node "+other.NodeID())
	weft(t, b.sock, "peers", "frob").wantErr(t, ExitUsage, `unknown subcommand "frob"`)
	weft(t, b.sock, "peers", "ping").wantErr(t, ExitUsage, "peers ping: missing NODE")
	weft(t, b.sock, "peers", "alias", "alice").wantErr(t, ExitUsage, "missing NODE_ID")
	weft(t, b.sock, "peers", "-d", "alice").wantErr(t, ExitUsage, "-d goes with alias")

	weft(t, b.sock, "peers", "disconnect", "alice").want(t, 0, "disconnected from "+a.id)
	weft(t, b.sock, "peers", "alias", "-d", "alice").want(t, 0, "removed alias alice")
	weft(t, b.sock, "peers", "alias", "-d", "alice").wantErr(t, ExitNode, `not_found: unknown node: no alias "alice"`)
}

// TestPeersNetworkOff: weft status says the network is off, and weft peers
// says why it cannot.
func TestPeersNetworkOff(t *testing.T) {
	n := serveNetNode(t, false)
	res := weft(t, n.sock, "status")
	res.want(t, 0)
	if !strings.Contains(strings.Join(strings.Fields(res.stdout), " "), "network off") {
		t.Errorf("weft status printed\n%s\nwant network off", res.stdout)
	}
	weft(t, n.sock, "peers").wantErr(t, ExitNode, "failed_precondition: the node's network is off")
}
