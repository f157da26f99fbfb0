package kernel

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// memNet joins kernels in one test: each node's Transport hands what it
// sends to the target node's delivery goroutine, which calls Receive or
// ReceiveRevocation there, one message at a time in order, as a real
// transport's stream would. Send never blocks on the other node.
type memNet struct {
	t     testing.TB
	mu    sync.Mutex
	nodes map[string]*memNode
	done  chan struct{}
	wg    sync.WaitGroup
}

// memNode is one node on a memNet.
type memNode struct {
	net  *memNet
	name string
	k    *Kernel
	keys *testKeyring
	e    *env // nil in benchmarks
	q    chan func()

	mu sync.Mutex
	// intercept, when set, sees every message this node sends first: it
	// returns deliver=false to keep it from the other node, or an error
	// for Send to return.
	intercept func(m *RemoteMessage) (deliver bool, err error)
	// holdRevocations keeps the revocations this node sends in
	// heldRevocations instead of delivering them.
	holdRevocations bool
	heldRevocations []heldRevocation
	sent            int // messages handed to the transport

	// What arrived here: how many frames, and the errors Receive and
	// ReceiveRevocation returned. changed is closed and replaced on each.
	received int
	errs     []error
	changed  chan struct{}
}

type heldRevocation struct {
	node string
	c    SignedCapability
}

// newMemNet makes a network. Its goroutines stop at the end of the test,
// after the kernels made after it have closed.
func newMemNet(t testing.TB) *memNet {
	n := &memNet{t: t, nodes: map[string]*memNode{}, done: make(chan struct{})}
	t.Cleanup(func() {
		close(n.done)
		n.wg.Wait()
	})
	return n
}

// node makes a kernel on the network; every node knows every other's key.
func (n *memNet) node(t *testing.T, name string, opts ...envOpt) *memNode {
	t.Helper()
	keys := newKeyring(name)
	n.mu.Lock()
	for _, o := range n.nodes {
		o.keys.pubs[name] = keys.pubs[name]
		keys.pubs[o.name] = o.keys.pubs[o.name]
	}
	n.mu.Unlock()
	e := newEnv(t, append([]envOpt{withKeys(keys)}, opts...)...)
	return n.add(name, keys, e.k, e)
}

func (n *memNet) add(name string, keys *testKeyring, k *Kernel, e *env) *memNode {
	m := &memNode{net: n, name: name, k: k, keys: keys, e: e, q: make(chan func(), 4096), changed: make(chan struct{})}
	n.mu.Lock()
	n.nodes[name] = m
	n.mu.Unlock()
	k.SetTransport(&memTransport{from: m})
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for {
			select {
			case f := <-m.q:
				f()
			case <-n.done:
				return
			}
		}
	}()
	return m
}

func (n *memNet) lookup(name string) *memNode {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nodes[name]
}

// post queues f on node m's delivery goroutine, or reports that the
// network is down.
func (m *memNode) post(f func()) bool {
	select {
	case m.q <- f:
		return true
	case <-m.net.done:
		return false
	}
}

// arrived records a frame that arrived at m and what handling it returned.
func (m *memNode) arrived(err error) {
	m.mu.Lock()
	m.received++
	if err != nil {
		m.errs = append(m.errs, err)
	}
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

// waitFor waits until cond, which reads m's record under m.mu, holds.
func (m *memNode) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		m.mu.Lock()
		ok := cond()
		ch := m.changed
		m.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%s: %s did not happen within 10 s", m.name, what)
		}
	}
}

// waitReceived waits until n frames have arrived at m in all.
func (m *memNode) waitReceived(t *testing.T, n int) {
	t.Helper()
	m.waitFor(t, fmt.Sprintf("%d frames arrived", n), func() bool { return m.received >= n })
}

// count returns how many frames arrived at m.
func (m *memNode) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.received
}

// errors returns the errors handling frames at m returned.
func (m *memNode) errors() []error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.errs)
}

func (m *memNode) setIntercept(f func(*RemoteMessage) (bool, error)) {
	m.mu.Lock()
	m.intercept = f
	m.mu.Unlock()
}

// addr is the address of process id on m.
func (m *memNode) addr(id string) Address { return Address{Node: m.name, Process: pid(id)} }

// memTransport is a node's Transport on a memNet.
type memTransport struct{ from *memNode }

func (tr *memTransport) Send(msg *RemoteMessage) error {
	m := tr.from
	m.mu.Lock()
	f := m.intercept
	m.sent++
	m.mu.Unlock()
	if f != nil {
		deliver, err := f(msg)
		if err != nil || !deliver {
			return err
		}
	}
	dst := m.net.lookup(msg.Target.Node)
	if dst == nil {
		return &SendError{Kind: ErrOffline, Target: msg.Target, Detail: "node " + msg.Target.Node + " is not on this network"}
	}
	cp := *msg
	if !dst.post(func() { dst.arrived(dst.k.Receive(m.name, &cp)) }) {
		return &SendError{Kind: ErrOffline, Target: msg.Target, Detail: "the network is down"}
	}
	return nil
}

func (tr *memTransport) Revoke(node string, c SignedCapability) {
	m := tr.from
	m.mu.Lock()
	if m.holdRevocations {
		m.heldRevocations = append(m.heldRevocations, heldRevocation{node, c})
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	m.deliverRevocation(heldRevocation{node, c})
}

func (m *memNode) deliverRevocation(r heldRevocation) {
	if dst := m.net.lookup(r.node); dst != nil {
		dst.post(func() { dst.arrived(dst.k.ReceiveRevocation(m.name, r.c)) })
	}
}

// netCap is the network capability of a node, for Spec.Capabilities.
var netCap = Capability{Issuer: Address{Node: OurNode, Process: KernelProcess}, Params: NetworkParams}

// networked gives a process the network capability.
func networked(s *Spec) { s.Capabilities = append(s.Capabilities, netCap) }

// call sends r from the driven process and waits for its answer through
// the process's own Await, as a Wasm process does.
func (d *driven) call(t *testing.T, r *Request) (*Message, error) {
	t.Helper()
	var m *Message
	var err error
	d.run(t, func(h *Handle) {
		if _, err = h.Send(r); err != nil {
			return
		}
		if m, err = h.Await(); err == nil && m.Kind == KindError {
			err = m.Error
		}
	})
	return m, err
}

// callAsync makes a Call from h on a goroutine of its own; its error comes
// on the channel returned (answered).
func callAsync(h *Handle, ctx context.Context, r *Request) chan error {
	done := make(chan error, 1)
	go func() {
		_, err := h.Call(ctx, r)
		done <- err
	}()
	return done
}

// answered waits for the error of a callAsync.
func answered(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no answer within 10 s")
		return nil
	}
}

// ctxTimeout is a context for a test step that must not hang.
func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
