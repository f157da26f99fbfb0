package p2p

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/kernel"
)

// echoID is the echo process every test node runs: public, with the
// network capability, answering each request with its body.
var echoID = kernel.ProcessId{Name: "echo", Package: "echo", Publisher: "test"}

// tcpListen and quicListen are free loopback ports.
var (
	tcpListen  = []string{"/ip4/127.0.0.1/tcp/0"}
	quicListen = []string{"/ip4/127.0.0.1/udp/0/quic-v1"}
)

// testNode is a kernel and its Node, stopped when the test ends (or by
// stop, to restart one).
type testNode struct {
	*Node
	k   *kernel.Kernel
	key *identity.Key
	dir string
}

// newKernel makes a kernel for key with an echo process, closed when the
// test ends.
func newKernel(t testing.TB, key *identity.Key, lim kernel.Limits) *kernel.Kernel {
	t.Helper()
	k, err := kernel.New(kernel.Config{Keyring: key, Limits: lim})
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
	if err := k.Start(kernel.Spec{
		ID:           echoID,
		Public:       true,
		Capabilities: []kernel.Capability{networkCap(k)},
		Process:      kernel.ProcessFunc(func(ctx context.Context, h *kernel.Handle) error { return echo(h) }),
	}); err != nil {
		t.Fatal(err)
	}
	return k
}

func networkCap(k *kernel.Kernel) kernel.Capability {
	return kernel.Capability{Issuer: k.Address(kernel.KernelProcess), Params: kernel.NetworkParams}
}

func echo(h *kernel.Handle) error {
	for {
		m, err := h.Await()
		if err != nil {
			return nil
		}
		if m.WantsResponse() {
			if err := h.Respond(&kernel.Response{Body: m.Body}); err != nil {
				return err
			}
		}
	}
}

// startNode starts a node with a new key in a new data dir; opts adjust
// its Config.
func startNode(t testing.TB, opts ...func(*Config)) *testNode {
	t.Helper()
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return restartNode(t, key, t.TempDir(), opts...)
}

// restartNode starts a node with key and data dir dir, on a new kernel.
func restartNode(t testing.TB, key *identity.Key, dir string, opts ...func(*Config)) *testNode {
	t.Helper()
	cfg := Config{Key: key, DataDir: dir, Listen: tcpListen}
	for _, o := range opts {
		o(&cfg)
	}
	cfg.Kernel = newKernel(t, key, kernel.Limits{})
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close node: %v", err)
		}
	})
	return &testNode{Node: n, k: cfg.Kernel, key: key, dir: dir}
}

// addr returns n's first listen address that contains want.
func (n *testNode) addr(t testing.TB, want string) string {
	t.Helper()
	for _, a := range n.ListenAddrs() {
		if strings.Contains(a, want) {
			return a
		}
	}
	t.Fatalf("node has no listen address with %q: %v", want, n.ListenAddrs())
	return ""
}

// echoAt returns the echo process's address on n.
func (n *testNode) echoAt() kernel.Address { return n.k.Address(echoID) }

// call sends body from n's operator to target and waits for the answer.
func (n *testNode) call(target kernel.Address, body string, timeout time.Duration) (*kernel.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout+5*time.Second)
	defer cancel()
	return n.k.Send(ctx, &kernel.Request{Target: target, ExpectsResponse: timeout, Body: []byte(body), Context: contextOf(body)})
}

// contextOf is the context call keeps with a request of body.
func contextOf(body string) []byte { return []byte("ctx:" + body[:min(len(body), 32)]) }

// mustEcho checks that a request from a to b's echo comes back.
func mustEcho(t testing.TB, a *testNode, b kernel.Address, body string) {
	t.Helper()
	m, err := a.call(b, body, 10*time.Second)
	if err != nil {
		t.Fatalf("request to %s: %v", b, err)
	}
	if string(m.Body) != body || string(m.Context()) != string(contextOf(body)) {
		t.Fatalf("answer body %q context %q, want %q and %q", m.Body, m.Context(), body, contextOf(body))
	}
}

// sendErrKind returns the kind of a *kernel.SendError, or fails.
func sendErrKind(t testing.TB, err error) kernel.ErrorKind {
	t.Helper()
	var se *kernel.SendError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T), want a *kernel.SendError", err, err)
	}
	return se.Kind
}

// waitUntil waits, up to 20 s, for cond to hold; it looks every 5 ms.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
