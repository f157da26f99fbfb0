package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/api/weftv1/weftv1connect"
)

// Two real weftd processes on free loopback ports (startWeftd gives every
// test node --p2p-listen /ip4/127.0.0.1/tcp/0), steered with weft peers.

// peerAddr returns n's node id and its TCP address on 127.0.0.1, from
// weft --json status.
func peerAddr(t *testing.T, n *node) (id, addr string) {
	t.Helper()
	out, errOut, code := n.weft(t, "--json", "status")
	var st struct {
		NodeID      string   `json:"nodeId"`
		Network     bool     `json:"network"`
		ListenAddrs []string `json:"listenAddrs"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || !st.Network {
		t.Fatalf("weft --json status: code %d, stdout %q, stderr %q; want the network on", code, out, errOut)
	}
	for _, a := range st.ListenAddrs {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") && strings.HasSuffix(a, "/p2p/"+st.NodeID) {
			return st.NodeID, a
		}
	}
	t.Fatalf("weft status lists no TCP address of 127.0.0.1 ending in /p2p/%s: %q", st.NodeID, st.ListenAddrs)
	return "", ""
}

// mustRun runs weft on n and fails the test unless it exits 0 with
// stdout holding each of wants; it returns stdout.
func mustRun(t *testing.T, n *node, wants []string, args ...string) string {
	t.Helper()
	out, errOut, code := n.weft(t, args...)
	if code != 0 {
		t.Fatalf("weft %s: code %d, stdout %q, stderr %q", strings.Join(args, " "), code, out, errOut)
	}
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("weft %s printed %q, want %q in it", strings.Join(args, " "), out, w)
		}
	}
	return out
}

func TestPeersEndToEnd(t *testing.T) {
	a := startNode(t, t.TempDir(), "--install", exampleDir(t, "echo"))
	b := startNode(t, t.TempDir(), "--metrics-listen", "127.0.0.1:0")
	aID, aAddr := peerAddr(t, a)
	bID, _ := peerAddr(t, b)
	// weftd's ready record and line say where other nodes reach it.
	if l, _ := a.ready["p2p_listen"].([]any); a.ready["network"] != true || !slices.Contains(l, any(aAddr)) {
		t.Errorf("A's ready record: network %v, p2p_listen %v; want on, with %s", a.ready["network"], l, aAddr)
	}

	// A tap on A, open before B's message arrives.
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	tap, err := weftv1connect.NewMessageServiceClient(unixClient(a.sock), "http://weftd").Tap(ctx, connect.NewRequest(&weftv1.TapRequest{Processes: []string{"echo:echo:examples"}}))
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	tap.ResponseHeader() // the tap is open

	mustRun(t, b, []string{"connected to " + aID}, "peers", "connect", aAddr)
	mustRun(t, b, []string{aID, "direct", "/ip4/127.0.0.1/tcp/"}, "peers")
	mustRun(t, a, []string{bID, "direct"}, "peers")
	mustRun(t, b, []string{aID + ": "}, "peers", "ping", aID)

	// An alias: the CLI's send resolves it through B's kernel.
	mustRun(t, b, []string{"alice is " + aID}, "peers", "alias", "alice", aID)
	mustRun(t, b, []string{"alice", aID}, "peers", "alias")
	if out := mustRun(t, b, nil, "send", "alice@echo:echo:examples", "hi", "--await", "5s"); out != "hi\n" {
		t.Errorf("weft send alice@echo:echo:examples hi printed %q, want hi", out)
	}
	mustRun(t, b, []string{"alice ", "direct"}, "peers")

	// A's tap shows the request with B's node as its source.
	if !tap.Receive() {
		t.Fatalf("tap: %v", tap.Err())
	}
	if e := tap.Msg().GetEnvelope(); e.GetKind() != weftv1.EnvelopeKind_ENVELOPE_KIND_REQUEST || !strings.HasPrefix(e.GetSource(), bID+"@") {
		t.Errorf("A's tap: %v, want B's request from %s@…", e, bID)
	}

	// B's metrics count what went to A.
	res, err := http.Get("http://" + b.ready["metrics"].(string) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if want := `weft_peer_messages_total{direction="out",node="` + aID + `"} 1`; !strings.Contains(string(body), want) {
		t.Errorf("B's metrics lack %s:\n%s", want, grepLines(string(body), "weft_peer_"))
	}

	mustRun(t, b, []string{"disconnected from " + aID}, "peers", "disconnect", "alice")
	mustRun(t, b, []string{"removed alias alice"}, "peers", "alias", "-d", "alice")
	b.stop(t)
	a.stop(t)
	// Read once weftd has exited: its stdout is then whole.
	if out := a.stdout.String(); !strings.Contains(out, "peers connect /ip4/127.0.0.1/tcp/") || !strings.Contains(out, "/p2p/"+aID+"\n") {
		t.Errorf("weftd's ready line: %q, want how to connect to it", out)
	}
}

// TestNetworkOffEndToEnd: weftd --p2p-listen none is a node off the
// network, and says so.
func TestNetworkOffEndToEnd(t *testing.T) {
	n := startNode(t, t.TempDir(), "--p2p-listen", "none")
	if n.ready["network"] != false || n.ready["p2p_listen"] != nil {
		t.Errorf("ready record: network %v, p2p_listen %v; want off, none", n.ready["network"], n.ready["p2p_listen"])
	}
	out := mustRun(t, n, nil, "status")
	if !strings.Contains(strings.Join(strings.Fields(out), " "), "network off") {
		t.Errorf("weft status printed\n%s\nwant network off", out)
	}
	if out, errOut, code := n.weft(t, "peers"); code == 0 || !strings.Contains(errOut, "failed_precondition: the node's network is off") {
		t.Errorf("weft peers on a node off the network: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	n.stop(t)
}

// grepLines returns the lines of s that hold sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
