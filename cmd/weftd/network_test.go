package main

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weftos/weft/examples/chat/chatmsg"
	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/internal/wasmtest"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/p2p"
	"github.com/weftos/weft/packages"
	"github.com/weftos/weft/packages/install"
	"github.com/weftos/weft/procstore"
	"github.com/weftos/weft/store"
	"github.com/weftos/weft/wasm"
)

// The network tests without the daemon: nodes put together here the way
// weftd puts one together (store, drives, Wasm host, kernel, the store
// for processes, a p2p.Node on a free loopback port), running the real
// examples over real libp2p. network_e2e_test.go runs the same through
// weftd and the weft command.

var (
	echoProc = kernel.ProcessId{Name: "echo", Package: "echo", Publisher: "examples"}
	chatProc = kernel.ProcessId{Name: "chat", Package: "chat", Publisher: "examples"}
)

// p2pNode is one node of a test; everything it opened is closed when
// the test ends, the p2p node first and the store last.
type p2pNode struct {
	k    *kernel.Kernel
	n    *p2p.Node
	st   *store.Store
	host *wasm.Host
}

func newP2PNode(t *testing.T) *p2pNode {
	t.Helper()
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, store.FileName), store.Options{Usage: store.NewUsage(0)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	drives, err := store.OpenDrives(filepath.Join(dir, "drives"), st.Usage())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drives.Close() })
	host, err := wasm.NewHost(context.Background(), wasm.Config{CacheDir: wasmtest.CacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := host.Close(context.Background()); err != nil {
			t.Errorf("close the host: %v", err)
		}
	})
	k, err := kernel.New(kernel.Config{Keyring: key, State: st, Table: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), failAfter)
		defer cancel()
		if err := k.Close(ctx); err != nil {
			t.Errorf("close the kernel: %v", err)
		}
	})
	host.SetStore(procstore.New(k, st, drives, nil))
	n, err := p2p.New(p2p.Config{Kernel: k, Key: key, DataDir: filepath.Join(dir, "p2p"), Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close the p2p node: %v", err)
		}
	})
	return &p2pNode{k: k, n: n, st: st, host: host}
}

// install starts example name with every capability it requests
// approved, or none (all false).
func (p *p2pNode) install(t *testing.T, name string, all bool) {
	t.Helper()
	pkg, err := packages.LoadDir(exampleDir(t, name), p.k.Limits())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := install.Start(p.k, p.host, pkg, install.Approval{All: all}); err != nil {
		t.Fatalf("install %s: %v", name, err)
	}
}

// ask sends body from p's operator to target and returns the answer's
// body, or the SendError.
func (p *p2pNode) ask(t *testing.T, target kernel.Address, body string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	m, err := p.k.Send(ctx, &kernel.Request{Target: target, Body: []byte(body), ExpectsResponse: 20 * time.Second})
	if err != nil {
		return nil, err
	}
	return m.Body, nil
}

// chat asks p's chat, and decodes its answer into v.
func (p *p2pNode) chat(t *testing.T, body string, v any) {
	t.Helper()
	b, err := p.ask(t, p.k.Address(chatProc), body)
	if err != nil {
		t.Fatalf("chat %s: %v", body, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("chat %s answered %q: %v", body, b, err)
	}
}

// history reads p's chat history straight from the store.
func (p *p2pNode) history(t *testing.T) []chatmsg.Entry {
	t.Helper()
	pairs, _, err := p.st.KVScan("chat:examples", "history", nil, nil, chatmsg.MaxHistory)
	if err != nil {
		t.Fatal(err)
	}
	var out []chatmsg.Entry
	for _, kv := range pairs {
		var e chatmsg.Entry
		if err := json.Unmarshal(kv.Value, &e); err != nil {
			t.Fatalf("history %s: %q: %v", kv.Key, kv.Value, err)
		}
		if ns, err := chatmsg.ParseKey(kv.Key); err != nil || ns != e.At.UnixNano() {
			t.Errorf("history key %s for a line kept at %v (%v)", kv.Key, e.At, err)
		}
		out = append(out, e)
	}
	return out
}

type answer struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
	Kind  string `json:"kind"`
}

func TestChatAcrossNodes(t *testing.T) {
	a, b := newP2PNode(t), newP2PNode(t)
	for _, p := range []*p2pNode{a, b} {
		p.install(t, "echo", true)
		p.install(t, "chat", true)
	}
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	if node, err := a.n.Connect(ctx, b.n.ListenAddrs()[0]); err != nil || node != b.k.NodeID() {
		t.Fatalf("connect A to B: %q, %v", node, err)
	}

	// Echo across nodes: A's operator asks B's echo.
	if body, err := a.ask(t, kernel.Address{Node: b.k.NodeID(), Process: echoProc}, "hi"); err != nil || string(body) != "hi" {
		t.Fatalf("B's echo from A: %q, %v", body, err)
	}

	// A's chat delivers a line to B's, which keeps it and answers.
	start := time.Now()
	var ans answer
	a.chat(t, `{"to":"`+b.k.NodeID()+`","text":"hi"}`, &ans)
	if !ans.OK {
		t.Fatalf("chat to B answered %+v", ans)
	}
	got := b.history(t)
	if len(got) != 1 || got[0].From != a.k.NodeID() || got[0].To != "" || got[0].Text != "hi" ||
		got[0].At.Before(start.Add(-time.Second)) || got[0].At.After(time.Now()) {
		t.Fatalf("B's history: %+v, want the line from A, kept just now", got)
	}
	if sent := a.history(t); len(sent) != 1 || sent[0].To != b.k.NodeID() || sent[0].From != "" || sent[0].Text != "hi" {
		t.Fatalf("A's history: %+v, want the line sent to B", sent)
	}

	// An alias names B.
	if err := a.n.SetAlias("bob", b.k.NodeID()); err != nil {
		t.Fatal(err)
	}
	ans = answer{}
	a.chat(t, `{"to":"bob","text":"through an alias"}`, &ans)
	if !ans.OK {
		t.Fatalf("chat to bob answered %+v", ans)
	}
	var lines []chatmsg.Entry
	b.chat(t, `{"history":true}`, &lines)
	if len(lines) != 2 || lines[1].From != a.k.NodeID() || lines[1].Text != "through an alias" || lines[0].Text != "hi" {
		t.Fatalf("B's chat history: %+v", lines)
	}
	a.chat(t, `{"history":true,"last":1}`, &lines)
	if len(lines) != 1 || lines[0].To != "bob" || lines[0].Text != "through an alias" {
		t.Fatalf("A's last line: %+v", lines)
	}

	// Only B's own processes may make B's chat send, or read its history.
	bChat := kernel.Address{Node: b.k.NodeID(), Process: chatProc}
	for _, body := range []string{`{"to":"` + a.k.NodeID() + `","text":"relay me"}`, `{"history":true}`} {
		ans = answer{}
		raw, err := a.ask(t, bChat, body)
		if err != nil || json.Unmarshal(raw, &ans) != nil || !strings.Contains(ans.Error, "only a process of this node") {
			t.Errorf("A asks B's chat %s: %q, %v; want a refusal", body, raw, err)
		}
	}
	// A line for a node that does not exist, and a bad request, are
	// answered with errors.
	ans = answer{}
	a.chat(t, `{"to":"nobody","text":"hi"}`, &ans)
	if ans.OK || ans.Kind == "" || ans.Error == "" {
		t.Errorf("chat to an unknown alias: %+v, want a send error", ans)
	}
	ans = answer{}
	a.chat(t, `{"text":"hi","to":"Bob"}`, &ans)
	if ans.OK || ans.Kind != "" || !strings.Contains(ans.Error, "no node id or alias") {
		t.Errorf("chat to a bad node: %+v", ans)
	}

	// B goes down: once A has seen it go, A's chat answers offline,
	// within the dial deadline. (A message written before A sees the
	// connection close is not acknowledged, and ends as timeout: see
	// p2p's package doc.)
	if err := b.n.Close(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, a.n, b.k.NodeID())
	start = time.Now()
	ans = answer{}
	a.chat(t, `{"to":"bob","text":"are you there?"}`, &ans)
	if ans.OK || ans.Kind != "offline" || !strings.Contains(ans.Error, "cannot be reached") {
		t.Errorf("chat to B, down: %+v, want offline", ans)
	}
	if d := time.Since(start); d > p2p.DefaultDialTimeout+2*time.Second {
		t.Errorf("offline after %v, past the dial deadline of %v", d, p2p.DefaultDialTimeout)
	}
	if n := len(a.history(t)); n != 2 {
		t.Errorf("A keeps %d lines; the one not delivered must not be kept", n)
	}
}

// TestChatNeedsNetworking: a chat installed without the network
// capability cannot send to another node, and an echo without it cannot
// be reached from one.
func TestChatNeedsNetworking(t *testing.T) {
	a, b := newP2PNode(t), newP2PNode(t)
	a.install(t, "chat", false)
	b.install(t, "chat", true)
	b.install(t, "echo", false)
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	if _, err := a.n.Connect(ctx, b.n.ListenAddrs()[0]); err != nil {
		t.Fatal(err)
	}
	var ans answer
	a.chat(t, `{"to":"`+b.k.NodeID()+`","text":"hi"}`, &ans)
	if ans.OK || ans.Kind != "no_capability" {
		t.Errorf("chat without networking: %+v, want no_capability", ans)
	}
	if n := len(b.history(t)); n != 0 {
		t.Errorf("B keeps %d lines", n)
	}
	_, err := a.ask(t, kernel.Address{Node: b.k.NodeID(), Process: echoProc}, "hi")
	var se *kernel.SendError
	if !errors.As(err, &se) || se.Kind != kernel.ErrNoCapability {
		t.Errorf("B's echo without networking, from A: %v, want no_capability", err)
	}
}

// TestChatBothWays: two chats sending to each other at the same moment
// both get their answers, since neither waits for its own send while the
// other's line arrives.
func TestChatBothWays(t *testing.T) {
	a, b := newP2PNode(t), newP2PNode(t)
	for _, p := range []*p2pNode{a, b} {
		p.install(t, "chat", true)
	}
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	if _, err := a.n.Connect(ctx, b.n.ListenAddrs()[0]); err != nil {
		t.Fatal(err)
	}
	type result struct {
		body []byte
		err  error
	}
	const rounds = 20
	results := make(chan result, 2*rounds)
	for i := range rounds {
		for _, pair := range [][2]*p2pNode{{a, b}, {b, a}} {
			from, to := pair[0], pair[1]
			body := `{"to":"` + to.k.NodeID() + `","text":"line ` + strconv.Itoa(i) + `"}`
			go func() {
				m, err := from.k.Send(ctx, &kernel.Request{Target: from.k.Address(chatProc), Body: []byte(body), ExpectsResponse: 20 * time.Second})
				if err != nil {
					results <- result{err: err}
					return
				}
				results <- result{body: m.Body}
			}()
		}
	}
	for range 2 * rounds {
		r := <-results
		if r.err != nil || !chatmsg.Accepted(r.body) {
			t.Errorf("a line answered %q, %v", r.body, r.err)
		}
	}
	for _, p := range []*p2pNode{a, b} {
		if got := p.history(t); len(got) != 2*rounds {
			t.Errorf("a history of %d lines, want %d sent and received", len(got), 2*rounds)
		}
	}
}

// TestChatHistoryIsBounded: past chatmsg.MaxHistory lines, the oldest
// goes; history answers the newest, oldest first.
func TestChatHistoryIsBounded(t *testing.T) {
	p := newP2PNode(t)
	p.install(t, "chat", true)
	const n = chatmsg.MaxHistory + 3
	for i := range n {
		var ans answer
		p.chat(t, `{"text":"`+strconv.Itoa(i)+`"}`, &ans)
		if !ans.OK {
			t.Fatalf("line %d: %+v", i, ans)
		}
	}
	got := p.history(t)
	if len(got) != chatmsg.MaxHistory || got[0].Text != "3" || got[len(got)-1].Text != strconv.Itoa(n-1) {
		t.Fatalf("history of %d lines from %q to %q; want %d, from 3 to %d", len(got), got[0].Text, got[len(got)-1].Text, chatmsg.MaxHistory, n-1)
	}
	var lines []chatmsg.Entry
	p.chat(t, `{"history":true,"last":2}`, &lines)
	if len(lines) != 2 || lines[0].Text != strconv.Itoa(n-2) || lines[1].Text != strconv.Itoa(n-1) || lines[0].From != p.k.NodeID() {
		t.Errorf("the last 2 lines: %+v", lines)
	}
	p.chat(t, `{"history":true}`, &lines)
	if len(lines) != chatmsg.DefaultLast || lines[0].Text != strconv.Itoa(n-chatmsg.DefaultLast) {
		t.Errorf("history: %d lines from %+v", len(lines), lines[0])
	}
}

// TestChatToOurNode: "to":"our" sends the line to this node's own chat,
// which keeps it twice: received, from this node, and sent, to "our".
func TestChatToOurNode(t *testing.T) {
	p := newP2PNode(t)
	p.install(t, "chat", true)
	var ans answer
	p.chat(t, `{"to":"our","text":"note to self"}`, &ans)
	if !ans.OK {
		t.Fatalf("chat to our: %+v", ans)
	}
	got := p.history(t)
	if len(got) != 2 || got[0].From != p.k.NodeID() || got[1].To != "our" || got[0].Text != "note to self" || got[1].Text != "note to self" {
		t.Errorf("history: %+v, want the line received from this node, then sent to our", got)
	}
}

// waitGone waits until n has no connection to node: until then a message
// written on a connection whose close n has not yet read would end as
// timeout rather than offline.
func waitGone(t *testing.T, n *p2p.Node, node string) {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for slices.ContainsFunc(n.Peers(), func(p p2p.PeerInfo) bool { return p.Node == node }) {
		if time.Now().After(deadline) {
			t.Fatalf("node %s still connected %v after it closed", node, failAfter)
		}
		<-tick.C
	}
}
