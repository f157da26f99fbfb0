package kernel

import (
	"context"
	"testing"
	"time"
)

// directTransport hands a message straight to the target kernel's
// Receive on the sender's goroutine: no copy, no queue, no goroutine of
// its own, so that a benchmark over it measures the kernel alone.
type directTransport struct {
	from  string
	nodes map[string]*Kernel
}

func (d *directTransport) Send(m *RemoteMessage) error {
	k := d.nodes[m.Target.Node]
	if k == nil {
		return &SendError{Kind: ErrOffline, Target: m.Target}
	}
	k.Receive(d.from, m)
	return nil
}

func (d *directTransport) Revoke(node string, c SignedCapability) {
	if k := d.nodes[node]; k != nil {
		k.ReceiveRevocation(d.from, c)
	}
}

// BenchmarkRemoteRoundTrip is BenchmarkKernelRoundTrip with the two Go
// processes on two kernels joined by directTransport: one request and
// its response per iteration, each crossing nodes, so the difference
// from BenchmarkKernelRoundTrip is the kernel's own cost of a remote
// round trip (the network capability check, signing nothing, the
// outstanding-request index, Receive's checks on both sides and the
// stand-in requester on the target's node). The target is public; the
// client holds the network capability.
func BenchmarkRemoteRoundTrip(b *testing.B) {
	keysA, keysB := newKeyring("node-a"), newKeyring("node-b")
	keysA.pubs["node-b"], keysB.pubs["node-a"] = keysB.pubs["node-b"], keysA.pubs["node-a"]
	ka, err := New(Config{Keyring: keysA})
	if err != nil {
		b.Fatal(err)
	}
	defer ka.Close(context.Background())
	kb, err := New(Config{Keyring: keysB})
	if err != nil {
		b.Fatal(err)
	}
	defer kb.Close(context.Background())
	nodes := map[string]*Kernel{"node-a": ka, "node-b": kb}
	ka.SetTransport(&directTransport{from: "node-a", nodes: nodes})
	kb.SetTransport(&directTransport{from: "node-b", nodes: nodes})

	if err := kb.Start(Spec{ID: pid("echo:bench:test"), Public: true, Capabilities: []Capability{netCap}, Process: benchEcho}); err != nil {
		b.Fatal(err)
	}
	target := Address{Node: "node-b", Process: pid("echo:bench:test")}
	body := []byte("hello")
	done := make(chan struct{})
	err = ka.Start(Spec{
		ID:           pid("client:bench:test"),
		Capabilities: []Capability{netCap},
		Process:      benchClient(b, &Request{Target: target, Body: body, ExpectsResponse: time.Minute}, done),
	})
	if err != nil {
		b.Fatal(err)
	}
	<-done
}
