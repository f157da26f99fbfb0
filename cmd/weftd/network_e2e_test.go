package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/api/weftv1/weftv1connect"
	"github.com/weftos/weft/examples/chat/chatmsg"
	"github.com/weftos/weft/p2p"
	"github.com/weftos/weft/packages/pkgzip"
)

// Real weftd daemons on 127.0.0.1, each listening on a free TCP port,
// steered with the weft command the way docs/network.md's walk-through
// does: connect, echo, chat, an alias, a node that is down, and a
// process without the network capability. peers_e2e_test.go covers weft
// peers itself.

// startNetNode starts weftd (on a free loopback port for other nodes, as
// startWeftd gives every test node) with the examples named installed,
// every capability approved.
func startNetNode(t *testing.T, examples ...string) *node {
	t.Helper()
	var args []string
	for _, e := range examples {
		args = append(args, "--install", exampleDir(t, e))
	}
	return startNode(t, t.TempDir(), args...)
}

// chatAnswer is what chat answers a line sent.
type chatAnswer struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
	Kind  string `json:"kind"`
}

// chat sends body to n's chat and decodes its answer into v.
func (n *node) chat(t *testing.T, body string, v any) {
	t.Helper()
	out, errOut, code := n.weft(t, "send", "our@chat:chat:examples", body, "--await", "25s")
	if code != 0 || json.Unmarshal([]byte(out), v) != nil {
		t.Fatalf("weft send our@chat:chat:examples %s: stdout %q, stderr %q, code %d", body, out, errOut, code)
	}
}

func TestNetworkEndToEnd(t *testing.T) {
	a := startNetNode(t, "echo", "chat")
	b := startNetNode(t, "echo", "chat")
	aID, aAddr := peerAddr(t, a)
	bID, _ := peerAddr(t, b)

	// B connects to A at the address A's status gives.
	mustRun(t, b, []string{"connected to " + aID}, "peers", "connect", aAddr)
	// The bar: echo on another node.
	if out := mustRun(t, b, nil, "send", aID+"@echo:echo:examples", "hi", "--await", "5s"); out != "hi\n" {
		t.Fatalf("weft send A_NODEID@echo:echo:examples hi printed %q, want hi", out)
	}

	// Chat: B's chat delivers a line to A's, which keeps it with B's
	// node and answers; B's chat answers with that.
	var ans chatAnswer
	b.chat(t, `{"to":"`+aID+`","text":"hello from B"}`, &ans)
	if !ans.OK {
		t.Fatalf("B's chat to A: %+v", ans)
	}
	var lines []chatmsg.Entry
	a.chat(t, `{"history":true}`, &lines)
	if len(lines) != 1 || lines[0].From != bID || lines[0].Text != "hello from B" || time.Since(lines[0].At) > time.Minute {
		t.Fatalf("A's chat history: %+v, want B's line", lines)
	}
	// And back, A to B: a connection serves both ways.
	ans = chatAnswer{}
	a.chat(t, `{"to":"`+bID+`","text":"hi B"}`, &ans)
	if !ans.OK {
		t.Fatalf("A's chat to B: %+v", ans)
	}

	// An alias on B names A for B's chat.
	mustRun(t, b, nil, "peers", "alias", "alice", aID)
	ans = chatAnswer{}
	b.chat(t, `{"to":"alice","text":"to alice"}`, &ans)
	if !ans.OK {
		t.Fatalf("B's chat to alice: %+v", ans)
	}
	a.chat(t, `{"history":true,"last":1}`, &lines)
	if len(lines) != 1 || lines[0].From != bID || lines[0].Text != "to alice" {
		t.Fatalf("A's last line: %+v", lines)
	}

	// A goes down: B's requests to it fail offline within the dial
	// deadline, from the CLI and from B's chat.
	a.stop(t)
	peerGone(t, b, aID)
	within := func(what string, f func()) {
		t.Helper()
		start := time.Now()
		f()
		if d := time.Since(start); d > p2p.DefaultDialTimeout+5*time.Second {
			t.Errorf("%s took %v, past the dial deadline (%v)", what, d, p2p.DefaultDialTimeout)
		}
	}
	within("weft send to A, down", func() {
		out, errOut, code := b.weft(t, "send", "alice@echo:echo:examples", "anyone?", "--await", "25s")
		if code != 3 || out != "" || !strings.Contains(errOut, "offline") {
			t.Errorf("weft send to A, down: stdout %q, stderr %q, code %d; want offline, exit 3", out, errOut, code)
		}
	})
	within("B's chat to A, down", func() {
		ans = chatAnswer{}
		b.chat(t, `{"to":"alice","text":"anyone?"}`, &ans)
		if ans.OK || ans.Kind != "offline" {
			t.Errorf("B's chat to A, down: %+v, want offline", ans)
		}
	})
	b.stop(t)
}

// TestNetworkNeedsTheCapability: a process without the network
// capability can neither send to another node nor be reached from one.
// C's chat is installed through the API with nothing approved (the CLI
// will not install a package without its requests approved unless asked
// on a terminal).
func TestNetworkNeedsTheCapability(t *testing.T) {
	a := startNetNode(t, "echo", "chat")
	c := startNetNode(t)
	aID, aAddr := peerAddr(t, a)
	cID, _ := peerAddr(t, c)
	zip, err := pkgzip.Dir(exampleDir(t, "chat"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	pkgs := weftv1connect.NewPackageServiceClient(unixClient(c.sock), "http://weftd")
	if _, err := pkgs.InstallPackage(ctx, connect.NewRequest(&weftv1.InstallPackageRequest{Archive: &weftv1.PackageArchive{Zip: zip}})); err != nil {
		t.Fatalf("install chat on C with nothing approved: %v", err)
	}
	mustRun(t, c, nil, "peers", "connect", aAddr)
	var ans chatAnswer
	c.chat(t, `{"to":"`+aID+`","text":"hi"}`, &ans)
	if ans.OK || ans.Kind != "no_capability" {
		t.Errorf("C's chat, without networking, to A: %+v, want no_capability", ans)
	}
	// A's chat, which has it, cannot reach C's.
	ans = chatAnswer{}
	a.chat(t, `{"to":"`+cID+`","text":"hi"}`, &ans)
	if ans.OK || ans.Kind != "no_capability" {
		t.Errorf("A's chat to C's, which lacks networking: %+v, want no_capability", ans)
	}
	var lines []chatmsg.Entry
	a.chat(t, `{"history":true}`, &lines)
	if len(lines) != 0 {
		t.Errorf("A's history: %+v, want nothing", lines)
	}
	c.stop(t)
	a.stop(t)
}
