package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The relayed path of docs/network.md ("A node behind NAT: relays"), with
// three real weftd on 127.0.0.1: B relays, C listens nowhere and is
// reached only through its reservation on B, A sends to C. peers_e2e_test.go
// and network_e2e_test.go cover two nodes connected directly.

// relayDialTimeout is A's [network] dial_timeout: short, to keep the wait
// for a node that is down short.
const relayDialTimeout = 2 * time.Second

// writeConfig writes a weftd.toml holding body and returns its path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "weftd.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// circuitAddr waits until n holds a reservation on a relay and returns n's
// node id and its relayed address, from weft --json status. It fails the
// test if n lists any address that is not a relayed one.
func circuitAddr(t *testing.T, n *node) (id, addr string) {
	t.Helper()
	reserved := jsonRecord("p2p: reserved a slot on relay", new(map[string]any))
	if !containsFunc(n.seen, reserved) {
		n.waitFor(t, "a reservation on the relay", reserved)
	}
	out, errOut, code := n.weft(t, "--json", "status")
	var st struct {
		NodeID      string   `json:"nodeId"`
		ListenAddrs []string `json:"listenAddrs"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("weft --json status: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, a := range st.ListenAddrs {
		if !strings.Contains(a, "/p2p-circuit/p2p/") {
			t.Fatalf("weft status lists %s among %q: want relayed addresses only", a, st.ListenAddrs)
		}
		addr = a
	}
	if len(st.ListenAddrs) != 1 {
		t.Fatalf("weft status lists %q: want one relayed address", st.ListenAddrs)
	}
	return st.NodeID, addr
}

// containsFunc reports whether a line of lines satisfies match.
func containsFunc(lines []string, match func(string) bool) bool {
	for _, l := range lines {
		if match(l) {
			return true
		}
	}
	return false
}

// relayedPeer fails the test unless weft peers on n lists node as
// relayed, and weft --json peers only at addresses through a relay.
// peerGone waits until weft peers on n no longer lists node: until then
// a message written on a connection whose close n has not yet read would
// end as timeout rather than offline.
func peerGone(t *testing.T, n *node, node string) {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	for {
		out := mustRun(t, n, nil, "peers")
		if grepLines(out, node) == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("weft peers still lists %s %v after it stopped:\n%s", node, failAfter, out)
		}
	}
}

func relayedPeer(t *testing.T, n *node, node string) {
	t.Helper()
	table := mustRun(t, n, nil, "peers")
	if f := strings.Fields(grepLines(table, node)); len(f) < 2 || f[0] != node || f[1] != "relayed" {
		t.Errorf("weft peers lists %s not as relayed:\n%s", node, table)
	}
	out := mustRun(t, n, nil, "--json", "peers")
	var list struct {
		Peers []struct {
			NodeID  string   `json:"nodeId"`
			Addrs   []string `json:"addrs"`
			Relayed bool     `json:"relayed"`
		} `json:"peers"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("weft --json peers: %v\n%s", err, out)
	}
	for _, p := range list.Peers {
		if p.NodeID != node {
			continue
		}
		if !p.Relayed {
			t.Errorf("weft peers lists %s at %q, not relayed", node, p.Addrs)
		}
		for _, a := range p.Addrs {
			if !strings.Contains(a, "/p2p-circuit") {
				t.Errorf("weft peers lists %s at %s, not through the relay", node, a)
			}
		}
		return
	}
	t.Errorf("weft peers does not list %s:\n%s", node, out)
}

func TestRelayedPathEndToEnd(t *testing.T) {
	a := startNode(t, t.TempDir(), "--config", writeConfig(t, "[network]\ndial_timeout = \""+relayDialTimeout.String()+"\"\n"))
	b := startNode(t, t.TempDir(), "--config", writeConfig(t, "[network.relay_service]\nenabled = true\n"))
	bID, bAddr := peerAddr(t, b)
	// C listens nowhere: others reach it only through its reservation on B.
	cDir := t.TempDir()
	cConf := writeConfig(t, "[network]\nlisten = []\nrelays = ["+strconv.Quote(bAddr)+"]\n")
	c := startNode(t, cDir, "--config", cConf, "--install", exampleDir(t, "echo"), listenAsConfigured)
	cID, circuit := circuitAddr(t, c)
	if want := bAddr + "/p2p-circuit/p2p/" + cID; circuit != want {
		t.Fatalf("C's relayed address %s, want %s (B is %s)", circuit, want, bID)
	}

	// A reaches C at the relayed address alone.
	mustRun(t, a, []string{"connected to " + cID}, "peers", "connect", circuit)
	echo := cID + "@echo:echo:examples"
	if out := mustRun(t, a, nil, "send", echo, "hi", "--await", "20s"); out != "hi\n" {
		t.Fatalf("weft send %s hi printed %q, want hi", echo, out)
	}
	relayedPeer(t, a, cID)

	// C goes down: A's request fails offline within A's dial deadline
	// (here at once: B answers that C holds no reservation).
	c.stop(t)
	peerGone(t, a, cID)
	start := time.Now()
	out, errOut, code := a.weft(t, "send", echo, "anyone?", "--await", "20s")
	if code != 3 || out != "" || !strings.Contains(errOut, "offline") {
		t.Errorf("weft send to C, down: stdout %q, stderr %q, code %d; want offline, exit 3", out, errOut, code)
	}
	// The slack is the CLI's own start and the node's answer.
	if d := time.Since(start); d > relayDialTimeout+3*time.Second {
		t.Errorf("weft send to C, down, took %v: past A's dial deadline (%v)", d, relayDialTimeout)
	}

	// C comes back with its data dir and config: A, not restarted, goes
	// through the relay again once C holds its reservation anew.
	c = startNode(t, cDir, "--config", cConf, listenAsConfigured)
	if id, again := circuitAddr(t, c); id != cID || again != circuit {
		t.Fatalf("C back as %s at %s, want %s at %s", id, again, cID, circuit)
	}
	deadline := time.Now().Add(failAfter)
	for {
		out, errOut, code := a.weft(t, "send", echo, "again", "--await", relayDialTimeout.String())
		if code == 0 {
			if out != "again\n" {
				t.Fatalf("weft send %s again printed %q, want again", echo, out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("C back, A's request still fails after %v: stderr %q, code %d", failAfter, errOut, code)
		}
	}
	relayedPeer(t, a, cID)

	c.stop(t)
	b.stop(t)
	a.stop(t)
}
