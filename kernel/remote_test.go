package kernel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRemoteRequestResponse: a request to a process on another node gets
// its response with the context the requester kept, through Await and
// through SendAndAwait; taps on both sides see the request with its
// remote end, and nothing stays indexed.
func TestRemoteRequestResponse(t *testing.T) {
	n := newMemNet(t)
	a := n.node(t, "node-a")
	b := n.node(t, "node-b")
	b.e.start("echo:app:test", true, echo, networked)
	_, client := a.e.driven("client:app:test", false, networked)

	tapA, err := a.k.Tap(TapOptions{Processes: []ProcessId{pid("client:app:test")}})
	if err != nil {
		t.Fatal(err)
	}
	defer tapA.Close()
	tapB, err := b.k.Tap(TapOptions{Processes: []ProcessId{pid("echo:app:test")}})
	if err != nil {
		t.Fatal(err)
	}
	defer tapB.Close()

	target := b.addr("echo:app:test")
	m, err := client.call(t, &Request{Target: target, Body: []byte("hi"), ExpectsResponse: 5 * time.Second, Context: []byte("ctx-1"), Metadata: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != KindResponse || string(m.Body) != "hi" || string(m.Context()) != "ctx-1" || m.Source() != target {
		t.Fatalf("answer %v %q context %q from %s; want a response hi, ctx-1, from %s", m.Kind, m.Body, m.Context(), m.Source(), target)
	}
	client.run(t, func(h *Handle) {
		m, err = h.SendAndAwait(&Request{Target: target, Body: []byte("again"), ExpectsResponse: 5 * time.Second})
	})
	if err != nil || string(m.Body) != "again" {
		t.Fatalf("SendAndAwait across nodes: %v %v", m, err)
	}
	if got := a.k.OutstandingRemote(); got != 0 {
		t.Errorf("%d requests still indexed after their answers", got)
	}

	// A's tap: the request to B's echo, then its response.
	for _, want := range []struct {
		kind     Kind
		src, dst Address
	}{
		{KindRequest, a.addr("client:app:test"), target},
		{KindResponse, target, a.addr("client:app:test")},
	} {
		e := nextEnvelope(t, tapA)
		if e.Kind != want.kind || e.Source != want.src || e.Target != want.dst {
			t.Errorf("tap on A: %v %s → %s, want %v %s → %s", e.Kind, e.Source, e.Target, want.kind, want.src, want.dst)
		}
	}
	// B's tap: the request from A's client, then the response going back.
	for _, want := range []struct {
		kind     Kind
		src, dst Address
	}{
		{KindRequest, a.addr("client:app:test"), target},
		{KindResponse, target, a.addr("client:app:test")},
	} {
		e := nextEnvelope(t, tapB)
		if e.Kind != want.kind || e.Source != want.src || e.Target != want.dst {
			t.Errorf("tap on B: %v %s → %s, want %v %s → %s", e.Kind, e.Source, e.Target, want.kind, want.src, want.dst)
		}
	}
}

func nextEnvelope(t *testing.T, tap *Tap) Envelope {
	t.Helper()
	select {
	case e := <-tap.C:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no envelope within 10 s")
		return Envelope{}
	}
}

// TestRemoteCallAndOperator: Handle.Call and the operator's Kernel.Send
// reach other nodes; a Call given up by its context leaves nothing
// indexed, and the answer that comes later is counted late.
func TestRemoteCallAndOperator(t *testing.T) {
	n := newMemNet(t)
	a := n.node(t, "node-a")
	b := n.node(t, "node-b")
	b.e.start("echo:app:test", true, echo, networked)
	_, slow := b.e.inbox("slow:app:test", true, networked)
	_, client := a.e.inbox("client:app:test", false, networked)
	h := client.handle(t)

	m, err := h.Call(ctxTimeout(t), &Request{Target: b.addr("echo:app:test"), Body: []byte("x"), ExpectsResponse: 5 * time.Second})
	if err != nil || string(m.Body) != "x" {
		t.Fatalf("Call across nodes: %v %v", m, err)
	}
	m, err = a.k.Send(ctxTimeout(t), &Request{Target: b.addr("echo:app:test"), Body: []byte("op"), ExpectsResponse: 5 * time.Second})
	if err != nil || string(m.Body) != "op" {
		t.Fatalf("operator send across nodes: %v %v", m, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := callAsync(h, ctx, &Request{Target: b.addr("slow:app:test"), ExpectsResponse: time.Minute})
	slow.next(t)
	cancel()
	if err := answered(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Call: %v", err)
	}
	if got := a.k.OutstandingRemote(); got != 0 {
		t.Fatalf("%d requests indexed after the Call gave up", got)
	}
	// The operator's wait, given up, leaves nothing indexed either.
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan error, 1)
	go func() {
		_, err := a.k.Send(ctx, &Request{Target: b.addr("slow:app:test"), ExpectsResponse: time.Minute})
		done <- err
	}()
	slow.next(t)
	cancel()
	if err := answered(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled operator send: %v", err)
	}
	if got := a.k.OutstandingRemote(); got != 0 {
		t.Fatalf("%d requests indexed after the operator gave up", got)
	}

	late := a.k.Stats().LateResponses
	before := a.count()
	if err := slow.handle(t).Respond(&Response{Body: []byte("late")}); err != nil {
		t.Fatal(err)
	}
	a.waitReceived(t, before+1)
	if got := a.k.Stats().LateResponses; got != late+1 {
		t.Errorf("late responses %d, want %d", got, late+1)
	}
}

// TestRemoteTimeout: no answer within the requester's timeout is a
// timeout error with the context, and nothing stays indexed.
func TestRemoteTimeout(t *testing.T) {
	n := newMemNet(t)
	fc := newFakeClock()
	a := n.node(t, "node-a", withClock(fc))
	b := n.node(t, "node-b")
	_, silent := b.e.inbox("silent:app:test", true, networked)
	_, client := a.e.driven("client:app:test", false, networked)

	client.run(t, func(h *Handle) {
		if _, err := h.Send(&Request{Target: b.addr("silent:app:test"), ExpectsResponse: time.Second, Context: []byte("c")}); err != nil {
			t.Error(err)
		}
	})
	silent.next(t)
	fc.WaitTimer(t, time.Second)
	fc.Advance(time.Second)
	m := client.await(t)
	if m.Kind != KindError || m.Error.Kind != ErrTimeout || string(m.Context()) != "c" {
		t.Fatalf("got %v %v context %q, want a timeout with context c", m.Kind, m.Error, m.Context())
	}
	if m.Error.Target != b.addr("silent:app:test") {
		t.Errorf("timeout names %s", m.Error.Target)
	}
	if got := a.k.OutstandingRemote(); got != 0 {
		t.Errorf("%d requests indexed after the timeout", got)
	}
}

// TestRemoteTimeoutOnTargetSide: the target's node times a request out by
// the timeout it carries and answers timeout itself.
func TestRemoteTimeoutOnTargetSide(t *testing.T) {
	n := newMemNet(t)
	fc := newFakeClock()
	a := n.node(t, "node-a")
	b := n.node(t, "node-b", withClock(fc))
	_, silent := b.e.inbox("silent:app:test", true, networked)
	_, client := a.e.inbox("client:app:test", false, networked)

	done := callAsync(client.handle(t), context.Background(), &Request{Target: b.addr("silent:app:test"), ExpectsResponse: time.Minute})
	silent.next(t)
	fc.WaitTimer(t, time.Minute)
	fc.Advance(time.Minute)
	wantKind(t, answered(t, done), ErrTimeout)
	// The target's answer after its node timed the request out is late
	// there, and nothing more goes to A.
	sent := a.count()
	if err := silent.handle(t).Respond(&Response{}); err != nil {
		t.Fatal(err)
	}
	if got := b.k.Stats().LateResponses; got != 1 {
		t.Errorf("late on B %d, want 1", got)
	}
	if a.count() != sent {
		t.Errorf("an answer went to A after B timed the request out")
	}
}

// TestRemoteKilled: a target killed while it handles a remote request
// answers killed.
func TestRemoteKilled(t *testing.T) {
	n := newMemNet(t)
	a := n.node(t, "node-a")
	b := n.node(t, "node-b")
	victim, in := b.e.inbox("victim:app:test", true, networked)
	_, client := a.e.inbox("client:app:test", false, networked)
	done := callAsync(client.handle(t), context.Background(), &Request{Target: b.addr("victim:app:test"), ExpectsResponse: time.Minute})
	in.next(t)
	if err := b.k.Kill(ctxTimeout(t), victim); err != nil {
		t.Fatal(err)
	}
	if se := wantKind(t, answered(t, done), ErrKilled); se.Target != b.addr("victim:app:test") {
		t.Errorf("killed error names %s", se.Target)
	}
}

// TestRemoteRequesterStops: a requester that stops while its request to
// another node is out leaves nothing indexed.
func TestRemoteRequesterStops(t *testing.T) {
	n := newMemNet(t)
	a := n.node(t, "node-a")
	b := n.node(t, "node-b")
	_, silent := b.e.inbox("silent:app:test", true, networked)
	client, d := a.e.driven("client:app:test", false, networked)
	d.run(t, func(h *Handle) {
		if _, err := h.Send(&Request{Target: b.addr("silent:app:test"), ExpectsResponse: time.Minute}); err != nil {
			t.Error(err)
		}
	})
	silent.next(t)
	if got := a.k.OutstandingRemote(); got != 1 {
		t.Fatalf("%d requests indexed, want 1", got)
	}
	if err := a.k.Kill(ctxTimeout(t), client); err != nil {
		t.Fatal(err)
	}
	if got := a.k.OutstandingRemote(); got != 0 {
		t.Errorf("%d requests indexed after the requester was killed", got)
	}
}

// TestRemoteUndelivered: what the transport refuses at once is returned
// by the send and nothing stays pending; what it reports undelivered later
// reaches the requester as a SendError of the kind it says.
func TestRemoteUndelivered(t *testing.T) {
	n := newMemNet(t)
	a := n.node(t, "node-a")
	b := n.node(t, "node-b")
	b.e.start("echo:app:test", true, echo, networked)
	_, client := a.e.driven("client:app:test", false, networked)
	target := b.addr("echo:app:test")

	a.setIntercept(func(m *RemoteMessage) (bool, error) {
		return false, errors.New("queue closed")
	})
	_, err := client.call(t, &Request{Target: target, ExpectsResponse: 5 * time.Second})
	wantKind(t, err, ErrOffline) // an error that is no SendError: offline
	a.setIntercept(func(m *RemoteMessage) (bool, error) {
		return false, &SendError{Kind: ErrTooLarge, Detail: "over the frame limit"}
	})
	_, err = client.call(t, &Request{Target: target, ExpectsResponse: 5 * time.Second})
	se := wantKind(t, err, ErrTooLarge)
	if se.Target != target {
		t.Errorf("error names %s, want %s", se.Target, target)
	}
	if in, _ := a.k.Process(pid("client:app:test")); in.Pending != 0 || a.k.OutstandingRemote() != 0 {
		t.Errorf("after a refused send: %d pending, %d indexed", in.Pending, a.k.OutstandingRemote())
	}

	var held *RemoteMessage
	a.setIntercept(func(m *RemoteMessage) (bool, error) {
		held = m
		return false, nil
	})
	client.run(t, func(h *Handle) {
		if _, err := h.Send(&Request{Target: target, ExpectsResponse: 5 * time.Second, Context: []byte("c")}); err != nil {
			t.Error(err)
		}
	})
	if held == nil {
		t.Fatal("the transport got no request")
	}
	a.k.Undelivered(held, ErrOffline, "node-b was not reached within the dial deadline")
	m := client.await(t)
	if m.Kind != KindError || m.Error.Kind != ErrOffline || string(m.Context()) != "c" || !strings.Contains(m.Error.Detail, "dial deadline") {
		t.Fatalf("got %v %v context %q, want offline with context c", m.Kind, m.Error, m.Context())
	}
	// Reported twice: the second finds nothing to fail.
	offline := a.k.Stats().SendErrors[ErrOffline]
	a.k.Undelivered(held, ErrOffline, "again")
	if got := a.k.Stats().SendErrors[ErrOffline]; got != offline {
		t.Errorf("a second report counted again: %d, want %d", got, offline)
	}
	// An undelivered answer is counted.
	a.k.Undelivered(&RemoteMessage{Kind: KindResponse, ID: 1, Source: a.addr("client:app:test"), Target: target}, ErrOffline, "gone")
	if got := a.k.Stats().SendErrors[ErrOffline]; got != offline+1 {
		t.Errorf("an undelivered answer is not counted: %d, want %d", got, offline+1)
	}
}

// TestRemoteNoTransport: without a transport every other node is offline.
func TestRemoteNoTransport(t *testing.T) {
	e := newEnv(t)
	_, client := e.driven("client:app:test", false, networked)
	_, err := client.call(t, &Request{Target: addr("node-z@echo:app:test"), ExpectsResponse: time.Second})
	wantKind(t, err, ErrOffline)
}

// TestRemoteSpoofed: a frame whose source is not the peer it came from, or
// this node, is refused with ErrSpoofed and has no effect.
func TestRemoteSpoofed(t *testing.T) {
	n := newMemNet(t)
	a := n.node(t, "node-a")
	b := n.node(t, "node-b")
	b.e.driven("echo:app:test", true, networked)
	for _, c := range []struct{ from, src string }{
		{"node-c", "node-a"},
		{"node-b", "node-b"},
		{"node-a", "node-b"},
	} {
		err := b.k.Receive(c.from, &RemoteMessage{Kind: KindRequest, ID: 1, Source: Address{Node: c.src, Process: pid("x:app:test")}, Target: b.addr("echo:app:test"), ExpectsResponse: time.Second})
		if !errors.Is(err, ErrSpoofed) {
			t.Errorf("frame from %s claiming %s: %v, want ErrSpoofed", c.from, c.src, err)
		}
	}
	if info, _ := b.k.Process(pid("echo:app:test")); info.MailboxDepth != 0 {
		t.Errorf("a spoofed frame was delivered")
	}
	if a.count() != 0 {
		t.Errorf("a spoofed frame was answered")
	}
}

// TestRemoteNetworkCapability: a process needs the network capability to
// send off-node, and to receive from off-node.
func TestRemoteNetworkCapability(t *testing.T) {
	n := newMemNet(t)
	a := n.node(t, "node-a")
	b := n.node(t, "node-b")
	b.e.start("closed:app:test", true, echo)
	b.e.start("echo:app:test", true, echo, networked)
	_, with := a.e.driven("with:app:test", false, networked)
	_, without := a.e.driven("without:app:test", false)

	_, err := without.call(t, &Request{Target: b.addr("echo:app:test"), ExpectsResponse: time.Second})
	wantKind(t, err, ErrNoCapability)
	a.mu.Lock()
	sent := a.sent
	a.mu.Unlock()
	if sent != 0 {
		t.Errorf("a refused send reached the transport")
	}
	_, err = with.call(t, &Request{Target: b.addr("closed:app:test"), ExpectsResponse: 5 * time.Second})
	se := wantKind(t, err, ErrNoCapability)
	if !strings.Contains(se.Detail, "network capability") {
		t.Errorf("detail %q", se.Detail)
	}
	b.waitFor(t, "the refusal counted", func() bool { return len(b.errs) == 1 })
	wantKind(t, b.errors()[0], ErrNoCapability)
}

// TestRemoteMessagingCapability: a process that is not public admits a
// remote sender only with its messaging capability signed by its own node.
func TestRemoteMessagingCapability(t *testing.T) {
	n := newMemNet(t)
	a := n.node(t, "node-a")
	b := n.node(t, "node-b")
	b.e.start("private:app:test", false, echo, networked)
	_, client := a.e.driven("client:app:test", false, networked)
	target := b.addr("private:app:test")

	_, err := client.call(t, &Request{Target: target, ExpectsResponse: 5 * time.Second})
	wantKind(t, err, ErrNoCapability)

	msg := Capability{Issuer: target, Params: MessagingParams}
	sc, err := b.k.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.k.ImportCapability(pid("client:app:test"), sc); err != nil {
		t.Fatal(err)
	}
	m, err := client.call(t, &Request{Target: target, Body: []byte("in"), ExpectsResponse: 5 * time.Second})
	if err != nil || string(m.Body) != "in" {
		t.Fatalf("with the messaging capability: %v %v", m, err)
	}

	// The same capability signed by another node, and another process's
	// messaging capability, are refused at B.
	wrong := SignedCapability{Capability: msg, Signature: a.keys.Sign(EncodeCapability(msg))}
	other, _ := b.k.Sign(Capability{Issuer: b.addr("other:app:test"), Params: MessagingParams})
	for _, c := range []*SignedCapability{&wrong, &other} {
		err := b.k.Receive("node-a", &RemoteMessage{Kind: KindRequest, ID: 7, Source: a.addr("client:app:test"), Target: target, Messaging: c})
		wantKind(t, err, ErrNoCapability)
	}
}

// TestRemoteForgedCapability: a request with an attached capability that
// does not verify is refused no_capability and delivers and grants
// nothing; with a good one, the target holds it.
func TestRemoteForgedCapability(t *testing.T) {
	n := newMemNet(t)
	a := n.node(t, "node-a")
	b := n.node(t, "node-b")
	_, d := b.e.driven("target:app:test", true, networked)
	c := Capability{Issuer: a.addr("issuer:app:test"), Params: `{"door":1}`}
	good := SignedCapability{Capability: c, Signature: a.keys.Sign(EncodeCapability(c))}
	forged := SignedCapability{Capability: Capability{Issuer: c.Issuer, Params: `{"door":2}`}, Signature: good.Signature}
	req := &RemoteMessage{Kind: KindRequest, ID: 1, Source: a.addr("client:app:test"), Target: b.addr("target:app:test"), ExpectsResponse: time.Second,
		Capabilities: []SignedCapability{good, forged}}
	records := func() int {
		b.k.capMu.Lock()
		defer b.k.capMu.Unlock()
		return len(b.k.caps)
	}
	before := records()
	wantKind(t, b.k.Receive("node-a", req), ErrNoCapability)
	if got := records(); got != before {
		t.Errorf("%d capability records after a refused request, %d before: the good one admitted for it stays", got, before)
	}
	if info, _ := b.k.Process(pid("target:app:test")); info.MailboxDepth != 0 {
		t.Fatal("a request with a forged capability was delivered")
	}
	caps, _ := b.k.CapabilitiesOf(pid("target:app:test"))
	for _, h := range caps {
		if h.Issuer == c.Issuer {
			t.Fatalf("target holds %s after a refused request", h.Capability)
		}
	}
	a.waitReceived(t, 1) // the refusal went back

	req.Capabilities = []SignedCapability{good}
	req.ID = 2
	if err := b.k.Receive("node-a", req); err != nil {
		t.Fatal(err)
	}
	m := d.await(t)
	if len(m.Capabilities) != 1 || m.Capabilities[0] != c {
		t.Fatalf("request carries %v", m.Capabilities)
	}
	d.run(t, func(h *Handle) {
		if !h.Has(c) {
			t.Error("the target does not hold the capability that came with the request")
		}
	})
}

// TestRemoteCapabilitiesTravel: a capability attached to a request is
// held by the remote target, which uses it: the client's own messaging
// capability lets the server message the client, which is not public.
// A response's capabilities are held by the requester.
func TestRemoteCapabilitiesTravel(t *testing.T) {
	n := newMemNet(t)
	a := n.node(t, "node-a")
	b := n.node(t, "node-b")
	_, srv := b.e.driven("srv:app:test", true, networked)
	_, client := a.e.driven("client:app:test", false, networked)
	clientMsg := Capability{Issuer: a.addr("client:app:test"), Params: MessagingParams}
	srvMsg := Capability{Issuer: b.addr("srv:app:test"), Params: MessagingParams}

	client.run(t, func(h *Handle) {
		if _, err := h.Send(&Request{Target: b.addr("srv:app:test"), ExpectsResponse: 5 * time.Second, Capabilities: []Capability{{Issuer: addr("our@client:app:test"), Params: MessagingParams}}}); err != nil {
			t.Error(err)
		}
	})
	req := srv.await(t)
	if len(req.Capabilities) != 1 || req.Capabilities[0] != clientMsg {
		t.Fatalf("request carries %v, want %s", req.Capabilities, clientMsg)
	}
	srv.run(t, func(h *Handle) {
		if !h.Has(clientMsg) {
			t.Fatal("srv does not hold the client's messaging capability")
		}
		// Answer with srv's own messaging capability.
		if err := h.Respond(&Response{Body: []byte("ok"), Capabilities: []Capability{srvMsg}}); err != nil {
			t.Fatal(err)
		}
		// And message the client, which is not public.
		if _, err := h.Send(&Request{Target: a.addr("client:app:test"), Body: []byte("hello client")}); err != nil {
			t.Fatal(err)
		}
	})
	resp := client.await(t)
	if resp.Kind != KindResponse || len(resp.Capabilities) != 1 || resp.Capabilities[0] != srvMsg {
		t.Fatalf("response %v with %v", resp.Kind, resp.Capabilities)
	}
	client.run(t, func(h *Handle) {
		if !h.Has(srvMsg) {
			t.Error("the client does not hold the capability the response carried")
		}
	})
	m := client.await(t)
	if m.Kind != KindRequest || string(m.Body) != "hello client" || m.Source() != b.addr("srv:app:test") {
		t.Fatalf("client got %v %q from %s", m.Kind, m.Body, m.Source())
	}
}

// TestRemoteForgedResponseCapability: a response attaching a capability
// that does not verify reaches the requester as no_capability, and the
// capability is not granted.
func TestRemoteForgedResponseCapability(t *testing.T) {
	n := newMemNet(t)
	a := n.node(t, "node-a")
	b := n.node(t, "node-b")
	_, silent := b.e.inbox("silent:app:test", true, networked)
	_, client := a.e.inbox("client:app:test", false, networked)
	var wire uint64
	var mu sync.Mutex
	a.setIntercept(func(m *RemoteMessage) (bool, error) {
		mu.Lock()
		wire = m.ID
		mu.Unlock()
		return true, nil
	})
	done := callAsync(client.handle(t), context.Background(), &Request{Target: b.addr("silent:app:test"), ExpectsResponse: time.Minute})
	silent.next(t)
	mu.Lock()
	id := wire
	mu.Unlock()
	c := Capability{Issuer: b.addr("silent:app:test"), Params: `"x"`}
	forged := SignedCapability{Capability: c, Signature: bytes.Repeat([]byte{1}, 64)}
	if err := a.k.Receive("node-b", &RemoteMessage{Kind: KindResponse, ID: id, Source: b.addr("silent:app:test"), Target: a.addr("client:app:test"), Capabilities: []SignedCapability{forged}}); err == nil {
		t.Error("Receive of a response with a forged capability: no error")
	}
	wantKind(t, answered(t, done), ErrNoCapability)
	if client.handle(t).Has(c) {
		t.Error("the forged capability was granted")
	}
}

// TestRemoteInheritChain: A → B → C across three nodes, each forwarding
// with inherit: C's answer reaches A with A's context, and the blob A sent
// travels down the chain and back (each hop inherits it).
func TestRemoteInheritChain(t *testing.T) {
	n := newMemNet(t)
	a := n.node(t, "node-a")
	b := n.node(t, "node-b")
	c := n.node(t, "node-c")
	c.e.start("echo:app:test", true, echo, networked)
	var blobs sync.Map
	b.e.start("mid:app:test", true, func(h *Handle) error {
		for {
			m, err := h.Await()
			if err != nil {
				return nil
			}
			blobs.Store("b", h.Blob())
			if _, err := h.Send(&Request{Target: c.addr("echo:app:test"), Inherit: true, Body: append([]byte("via b: "), m.Body...)}); err != nil {
				return err
			}
		}
	}, networked)
	_, client := a.e.driven("client:app:test", false, networked)
	blob := &Blob{Mime: "text/plain", Bytes: []byte("the blob")}
	m, err := client.call(t, &Request{Target: b.addr("mid:app:test"), Body: []byte("x"), ExpectsResponse: 5 * time.Second, Context: []byte("ctx"), Blob: blob})
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Body) != "via b: x" || string(m.Context()) != "ctx" {
		t.Fatalf("answer %q context %q", m.Body, m.Context())
	}
	if m.Blob == nil || string(m.Blob.Bytes) != "the blob" || m.Blob.Mime != "text/plain" {
		t.Fatalf("answer's blob %+v, want the blob A sent", m.Blob)
	}
	if v, _ := blobs.Load("b"); v.(*Blob) == nil || string(v.(*Blob).Bytes) != "the blob" {
		t.Errorf("B saw blob %+v", v)
	}
	for _, nd := range []*memNode{a, b, c} {
		if got := nd.k.OutstandingRemote(); got != 0 {
			t.Errorf("%s: %d requests indexed after the chain answered", nd.name, got)
		}
	}
}

// TestRemoteInheritChainError: the end of a chain that fails on the third
// node reaches the original requester as that error.
func TestRemoteInheritChainError(t *testing.T) {
	n := newMemNet(t)
	a := n.node(t, "node-a")
	b := n.node(t, "node-b")
	c := n.node(t, "node-c")
	b.e.start("mid:app:test", true, func(h *Handle) error {
		for {
			if _, err := h.Await(); err != nil {
				return nil
			}
			if _, err := h.Send(&Request{Target: c.addr("nobody:app:test"), Inherit: true}); err != nil {
				return err
			}
		}
	}, networked)
	_, client := a.e.driven("client:app:test", false, networked)
	_, err := client.call(t, &Request{Target: b.addr("mid:app:test"), ExpectsResponse: 5 * time.Second, Context: []byte("k")})
	se := wantKind(t, err, ErrNoSuchProcess)
	if se.Target != c.addr("nobody:app:test") || string(se.Context) != "k" {
		t.Errorf("error names %s with context %q", se.Target, se.Context)
	}
}

// TestRemoteInheritChainUndelivered: when the onward hop of a chain is
// reported undelivered, the original requester gets that error, naming
// the hop's target.
func TestRemoteInheritChainUndelivered(t *testing.T) {
	n := newMemNet(t)
	a := n.node(t, "node-a")
	b := n.node(t, "node-b")
	c := n.node(t, "node-c")
	c.e.start("echo:app:test", true, echo, networked)
	b.e.start("mid:app:test", true, func(h *Handle) error {
		for {
			if _, err := h.Await(); err != nil {
				return nil
			}
			if _, err := h.Send(&Request{Target: c.addr("echo:app:test"), Inherit: true}); err != nil {
				return err
			}
		}
	}, networked)
	held := make(chan *RemoteMessage, 1)
	b.setIntercept(func(m *RemoteMessage) (bool, error) {
		if m.Target.Node == "node-c" {
			held <- m
			return false, nil
		}
		return true, nil
	})
	_, client := a.e.inbox("client:app:test", false, networked)
	done := callAsync(client.handle(t), context.Background(), &Request{Target: b.addr("mid:app:test"), ExpectsResponse: time.Minute})
	var m *RemoteMessage
	select {
	case m = <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("B sent nothing to C within 10 s")
	}
	if m.ExpectsResponse <= 0 || m.ExpectsResponse > time.Minute {
		t.Errorf("the onward hop carries timeout %v, want what is left of A's minute", m.ExpectsResponse)
	}
	b.k.Undelivered(m, ErrOffline, "node-c was not reached")
	if se := wantKind(t, answered(t, done), ErrOffline); se.Target != c.addr("echo:app:test") {
		t.Errorf("error names %s, want %s", se.Target, c.addr("echo:app:test"))
	}
}

// TestRemoteLocalChainThroughRemoteRequest: a request from another node
// handed on locally with inherit is answered by the local end of the
// chain.
func TestRemoteLocalChainThroughRemoteRequest(t *testing.T) {
	n := newMemNet(t)
	a := n.node(t, "node-a")
	b := n.node(t, "node-b")
	b.e.start("echo:app:test", true, echo)
	b.e.start("front:app:test", true, func(h *Handle) error {
		for {
			if _, err := h.Await(); err != nil {
				return nil
			}
			if _, err := h.Send(&Request{Target: addr("our@echo:app:test"), Inherit: true, Body: []byte("local")}); err != nil {
				return err
			}
		}
	}, networked)
	_, client := a.e.driven("client:app:test", false, networked)
	m, err := client.call(t, &Request{Target: b.addr("front:app:test"), ExpectsResponse: 5 * time.Second})
	if err != nil || string(m.Body) != "local" || m.Source() != b.addr("echo:app:test") {
		t.Fatalf("answer %v %v", m, err)
	}
}

// TestRemoteLateAndMisdirectedAnswers: a duplicate answer, and an answer
// from another node than the request went to, match nothing: they are
// counted late and the pending request stays for its real answer.
func TestRemoteLateAndMisdirectedAnswers(t *testing.T) {
	n := newMemNet(t)
	a := n.node(t, "node-a")
	b := n.node(t, "node-b")
	n.node(t, "node-c")
	_, silent := b.e.inbox("silent:app:test", true, networked)
	_, client := a.e.driven("client:app:test", false, networked)
	var ids []uint64
	var mu sync.Mutex
	a.setIntercept(func(m *RemoteMessage) (bool, error) {
		mu.Lock()
		ids = append(ids, m.ID)
		mu.Unlock()
		return true, nil
	})
	client.run(t, func(h *Handle) {
		if _, err := h.Send(&Request{Target: b.addr("silent:app:test"), ExpectsResponse: time.Minute}); err != nil {
			t.Error(err)
		}
	})
	silent.next(t)
	mu.Lock()
	id := ids[0]
	mu.Unlock()

	late := a.k.Stats().LateResponses
	// From node-c, with the id of the request to node-b.
	if err := a.k.Receive("node-c", &RemoteMessage{Kind: KindResponse, ID: id, Source: Address{Node: "node-c", Process: pid("silent:app:test")}, Target: a.addr("client:app:test")}); err != nil {
		t.Fatal(err)
	}
	if got := a.k.Stats().LateResponses; got != late+1 {
		t.Fatalf("late %d, want %d", got, late+1)
	}
	if a.k.OutstandingRemote() != 1 {
		t.Fatal("an answer from the wrong node took the request")
	}
	if err := silent.handle(t).Respond(&Response{Body: []byte("real")}); err != nil {
		t.Fatal(err)
	}
	m := client.await(t)
	if string(m.Body) != "real" {
		t.Fatalf("got %q", m.Body)
	}
	// The same answer again: late.
	if err := a.k.Receive("node-b", &RemoteMessage{Kind: KindResponse, ID: id, Source: b.addr("silent:app:test"), Target: a.addr("client:app:test")}); err != nil {
		t.Fatal(err)
	}
	if got := a.k.Stats().LateResponses; got != late+2 {
		t.Fatalf("late %d after a duplicate, want %d", got, late+2)
	}
	// Wire ids are salted: the id on the wire is not the local one.
	if id == m.ID {
		t.Errorf("wire id %d is the local id", id)
	}
}

// TestRemoteMailboxFull: a full mailbox on the target's node is answered
// back as mailbox_full.
func TestRemoteMailboxFull(t *testing.T) {
	n := newMemNet(t)
	a := n.node(t, "node-a")
	b := n.node(t, "node-b", withLimits(Limits{MailboxLength: 1}))
	b.e.driven("busy:app:test", true, networked) // never awaits
	_, client := a.e.inbox("client:app:test", false, networked)
	h := client.handle(t)
	if _, err := h.Call(ctxTimeout(t), &Request{Target: b.addr("busy:app:test")}); err != nil {
		t.Fatal(err)
	}
	_, err := h.Call(ctxTimeout(t), &Request{Target: b.addr("busy:app:test"), ExpectsResponse: 5 * time.Second})
	wantKind(t, err, ErrMailboxFull)
	if got := b.k.rm.proc.info().Pending; got != 0 {
		t.Errorf("%d remote requests pending on B after a refusal", got)
	}
}

// TestRemoteInboundBound: requests from one node awaiting their answers
// on another are bounded there (inboundPerNode × max_pending_requests);
// past it they are refused mailbox_full, and answering one makes room.
func TestRemoteInboundBound(t *testing.T) {
	n := newMemNet(t)
	n.node(t, "node-a")
	b := n.node(t, "node-b", withLimits(Limits{MaxPendingRequests: 1}))
	_, in := b.e.inbox("slow:app:test", true, networked)
	req := func(id uint64) error {
		return b.k.Receive("node-a", &RemoteMessage{Kind: KindRequest, ID: id, Source: Address{Node: "node-a", Process: pid("c:app:test")}, Target: b.addr("slow:app:test"), ExpectsResponse: time.Minute})
	}
	for i := range inboundPerNode {
		if err := req(uint64(i)); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		in.next(t)
	}
	wantKind(t, req(100), ErrMailboxFull)
	if err := in.handle(t).Respond(&Response{}); err != nil {
		t.Fatal(err)
	}
	if err := req(101); err != nil {
		t.Fatalf("after an answer: %v", err)
	}
}

// TestRemoteLimitsOnReceivingSide: the receiving node's limits apply to
// what arrives, whatever the sender's are.
func TestRemoteLimitsOnReceivingSide(t *testing.T) {
	n := newMemNet(t)
	a := n.node(t, "node-a")
	b := n.node(t, "node-b", withLimits(Limits{MaxBodyBytes: 16, MaxTimeout: time.Second}))
	b.e.start("echo:app:test", true, echo, networked)
	_, client := a.e.driven("client:app:test", false, networked)
	_, err := client.call(t, &Request{Target: b.addr("echo:app:test"), Body: make([]byte, 100), ExpectsResponse: time.Second})
	se := wantKind(t, err, ErrTooLarge)
	if !strings.Contains(se.Detail, "max_body_bytes") {
		t.Errorf("detail %q", se.Detail)
	}
	_, err = client.call(t, &Request{Target: b.addr("echo:app:test"), ExpectsResponse: 5 * time.Second})
	se = wantKind(t, err, ErrTooLarge)
	if !strings.Contains(se.Detail, "max_timeout") {
		t.Errorf("detail %q", se.Detail)
	}
	// A response over the requester's limits is refused there.
	a2 := n.node(t, "node-small", withLimits(Limits{MaxBodyBytes: 4}))
	b.e.start("big:app:test", true, func(h *Handle) error {
		for {
			if _, err := h.Await(); err != nil {
				return nil
			}
			if err := h.Respond(&Response{Body: []byte("0123456789")}); err != nil {
				return err
			}
		}
	}, networked)
	_, small := a2.e.driven("client:app:test", false, networked)
	_, err = small.call(t, &Request{Target: b.addr("big:app:test"), ExpectsResponse: time.Second})
	wantKind(t, err, ErrTooLarge)
}

// TestRemoteMalformed: frames no kernel sends are refused with ErrInvalid
// and not delivered.
func TestRemoteMalformed(t *testing.T) {
	n := newMemNet(t)
	n.node(t, "node-a")
	b := n.node(t, "node-b")
	b.e.driven("echo:app:test", true, networked)
	src := Address{Node: "node-a", Process: pid("c:app:test")}
	for name, m := range map[string]*RemoteMessage{
		"kind":     {Kind: 9, Source: src, Target: b.addr("echo:app:test")},
		"source":   {Kind: KindRequest, Source: Address{Node: "node-a"}, Target: b.addr("echo:app:test")},
		"timeout":  {Kind: KindRequest, Source: src, Target: b.addr("echo:app:test"), ExpectsResponse: -1},
		"metadata": {Kind: KindRequest, Source: src, Target: b.addr("echo:app:test"), Metadata: "\xff"},
		"error":    {Kind: KindRequest, Source: src, Target: b.addr("echo:app:test"), Error: &SendError{Kind: ErrKilled}},
	} {
		if err := b.k.Receive("node-a", m); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if err := b.k.Receive("node-a", nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil: %v", err)
	}
	for _, target := range []Address{{Node: "node-b"}, {Node: "node-c", Process: pid("echo:app:test")}, b.addr("nobody:app:test"), b.addr("kernel:sys:weft"), b.addr("remote:sys:weft")} {
		err := b.k.Receive("node-a", &RemoteMessage{Kind: KindRequest, Source: src, Target: target})
		wantKind(t, err, ErrNoSuchProcess)
	}
	if info, _ := b.k.Process(pid("echo:app:test")); info.MailboxDepth != 0 {
		t.Error("a malformed frame was delivered")
	}
}

// memRevocations is an in-memory RevocationStore.
type memRevocations struct {
	mu    sync.Mutex
	marks map[Capability]bool
}

func (s *memRevocations) Revocations() ([]Capability, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Capability
	for c := range s.marks {
		out = append(out, c)
	}
	return out, nil
}
func (s *memRevocations) AddRevocation(c Capability) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.marks[c] = true
	return nil
}
func (s *memRevocations) RemoveRevocation(c Capability) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.marks, c)
	return nil
}
func (s *memRevocations) has(c Capability) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.marks[c]
}

// TestRemoteRevocation: B's process holds the messaging capability of A's
// process (which sent it), and messages it. A revokes it: B's process is
// refused at A while its copy lasts, and the revocation A sends drops
// that copy. The mark is persisted, outlives a restart of A's kernel, and
// granting the capability again clears it.
func TestRemoteRevocation(t *testing.T) {
	n := newMemNet(t)
	revs := &memRevocations{marks: map[Capability]bool{}}
	a := n.node(t, "node-a", func(c *Config) { c.Revocations = revs })
	b := n.node(t, "node-b")
	hch := make(chan *Handle, 1)
	a.e.start("srv:app:test", false, func(h *Handle) error { hch <- h; return echo(h) }, networked)
	srvH := <-hch
	_, peer := b.e.driven("peer:app:test", true, networked)
	srvMsg := Capability{Issuer: a.addr("srv:app:test"), Params: MessagingParams}

	// srv introduces itself to peer, attaching its messaging capability.
	introduce := func() {
		t.Helper()
		if _, err := srvH.Call(ctxTimeout(t), &Request{Target: b.addr("peer:app:test"), Capabilities: []Capability{srvMsg}}); err != nil {
			t.Fatal(err)
		}
		peer.await(t)
	}
	ask := func() error {
		_, err := peer.call(t, &Request{Target: a.addr("srv:app:test"), Body: []byte("q"), ExpectsResponse: 5 * time.Second})
		return err
	}
	introduce()
	if err := ask(); err != nil {
		t.Fatalf("peer messaging srv with its capability: %v", err)
	}

	a.mu.Lock()
	a.holdRevocations = true
	a.mu.Unlock()
	if err := a.k.Revoke(srvMsg); err != nil {
		t.Fatal(err)
	}
	if !revs.has(srvMsg) {
		t.Fatal("the revocation is not persisted")
	}
	// peer still holds its copy; A refuses it.
	peer.run(t, func(h *Handle) {
		if !h.Has(srvMsg) {
			t.Fatal("peer's copy is gone before the revocation reached B")
		}
	})
	wantKind(t, ask(), ErrNoCapability)

	// The revocation reaches B: peer's copy is dropped.
	a.mu.Lock()
	held := a.heldRevocations
	a.heldRevocations = nil
	a.holdRevocations = false
	a.mu.Unlock()
	if len(held) != 1 || held[0].node != "node-b" || held[0].c.Capability != srvMsg {
		t.Fatalf("revocations sent: %+v, want one to node-b", held)
	}
	before := b.count()
	a.deliverRevocation(held[0])
	b.waitReceived(t, before+1)
	if errs := b.errors(); len(errs) != 0 {
		t.Fatalf("B refused the revocation: %v", errs)
	}
	peer.run(t, func(h *Handle) {
		if h.Has(srvMsg) {
			t.Error("peer still holds the revoked capability")
		}
	})

	// A signed copy coming back is refused at A.
	sc := held[0].c
	if err := a.k.ImportCapability(pid("srv:app:test"), sc); !errors.Is(err, ErrRevoked) {
		t.Errorf("import of a revoked capability: %v, want ErrRevoked", err)
	}
	// A kernel started on the same marks refuses it too.
	a2, err := New(Config{Keyring: a.keys, Revocations: revs})
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close(context.Background())
	if err := a2.Start(Spec{ID: pid("h:app:test"), Process: ProcessFunc(func(ctx context.Context, h *Handle) error { <-ctx.Done(); return nil })}); err != nil {
		t.Fatal(err)
	}
	if err := a2.ImportCapability(pid("h:app:test"), sc); !errors.Is(err, ErrRevoked) {
		t.Errorf("after a restart, import of a revoked capability: %v, want ErrRevoked", err)
	}

	// Granted again: the mark is gone.
	introduce()
	if revs.has(srvMsg) {
		t.Error("the mark is still persisted after the capability was granted again")
	}
	if err := ask(); err != nil {
		t.Fatalf("after granting again: %v", err)
	}
}

// TestReceiveRevocationChecks: a revocation must come from the issuer's
// node and be signed by it.
func TestReceiveRevocationChecks(t *testing.T) {
	n := newMemNet(t)
	a := n.node(t, "node-a")
	b := n.node(t, "node-b")
	c := Capability{Issuer: a.addr("srv:app:test"), Params: MessagingParams}
	sc, err := a.k.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.k.ReceiveRevocation("node-c", sc); !errors.Is(err, ErrSpoofed) {
		t.Errorf("revocation relayed by another node: %v, want ErrSpoofed", err)
	}
	bad := sc
	bad.Signature = b.keys.Sign(EncodeCapability(c))
	if err := b.k.ReceiveRevocation("node-a", bad); !errors.Is(err, ErrForged) {
		t.Errorf("revocation signed by another node: %v, want ErrForged", err)
	}
	if err := b.k.ReceiveRevocation("node-a", sc); err != nil {
		t.Errorf("revocation of a capability nobody holds: %v", err)
	}
}

// TestAliases: an alias stands for a node id in targets and capability
// issuers; errors show the resolved address. Names that are node ids,
// "our" and bad names are refused.
func TestAliases(t *testing.T) {
	isID := func(s string) error {
		if !strings.HasPrefix(s, "node-") {
			return fmt.Errorf("%q is not a node id", s)
		}
		return nil
	}
	n := newMemNet(t)
	a := n.node(t, "node-a", func(c *Config) { c.CheckNodeID = isID })
	b := n.node(t, "node-b")
	b.e.start("echo:app:test", true, echo, networked)
	_, client := a.e.driven("client:app:test", false, networked)

	if err := a.k.SetAlias("bob", "node-b"); err != nil {
		t.Fatal(err)
	}
	m, err := client.call(t, &Request{Target: addr("bob@echo:app:test"), Body: []byte("via alias"), ExpectsResponse: 5 * time.Second})
	if err != nil || string(m.Body) != "via alias" || m.Source() != b.addr("echo:app:test") {
		t.Fatalf("send to an alias: %v %v", m, err)
	}
	_, err = client.call(t, &Request{Target: addr("bob@nobody:app:test"), ExpectsResponse: 5 * time.Second})
	if se := wantKind(t, err, ErrNoSuchProcess); se.Target != b.addr("nobody:app:test") {
		t.Errorf("error names %s, want the resolved address", se.Target)
	}
	// An issuer given by alias is the node's.
	client.run(t, func(h *Handle) {
		if h.Has(Capability{Issuer: addr("bob@echo:app:test"), Params: MessagingParams}) {
			t.Error("holds a capability it was never given")
		}
	})
	sc, _ := b.k.Sign(Capability{Issuer: b.addr("echo:app:test"), Params: MessagingParams})
	if err := a.k.ImportCapability(pid("client:app:test"), sc); err != nil {
		t.Fatal(err)
	}
	client.run(t, func(h *Handle) {
		if !h.Has(Capability{Issuer: addr("bob@echo:app:test"), Params: MessagingParams}) {
			t.Error("an issuer written with an alias does not resolve")
		}
	})

	for _, c := range []struct{ name, node string }{
		{"our", "node-b"},
		{"node-x", "node-b"}, // a node id itself
		{"Bob", "node-b"},
		{"", "node-b"},
		{"carol", "carol"}, // not a node id
		{"carol", "our"},
		{"carol", "bad node"},
	} {
		if err := a.k.SetAlias(c.name, c.node); !errors.Is(err, ErrInvalid) {
			t.Errorf("SetAlias(%q, %q): %v, want ErrInvalid", c.name, c.node, err)
		}
	}
	if got := a.k.Aliases(); len(got) != 1 || got["bob"] != "node-b" {
		t.Errorf("aliases %v", got)
	}
	a.k.Aliases()["bob"] = "changed"
	if a.k.Aliases()["bob"] != "node-b" {
		t.Error("Aliases returned the kernel's own map")
	}
	if !a.k.RemoveAlias("bob") || a.k.RemoveAlias("bob") {
		t.Error("RemoveAlias: want true, then false")
	}
	_, err = client.call(t, &Request{Target: addr("bob@echo:app:test"), ExpectsResponse: time.Second})
	wantKind(t, err, ErrOffline) // "bob" is now an unknown node
}

// TestAliasDefaultNodeIDCheck: without Config.CheckNodeID a node id is
// what identity.NodeID writes.
func TestAliasDefaultNodeIDCheck(t *testing.T) {
	e := newEnv(t)
	id := "k51" + strings.Repeat("a", 59)
	if err := e.k.SetAlias("alice", id); err != nil {
		t.Fatal(err)
	}
	if err := e.k.SetAlias(id, id); !errors.Is(err, ErrInvalid) {
		t.Errorf("an alias named like a node id: %v", err)
	}
	for _, bad := range []string{"alice", "k51" + strings.Repeat("a", 58), "x51" + strings.Repeat("a", 59)} {
		if err := e.k.SetAlias("bob", bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("alias for %q: %v, want ErrInvalid", bad, err)
		}
	}
}

// TestRemoteHammer: many concurrent calls across nodes, some given up by
// their context at once, leave nothing pending or indexed on either side
// once every answer has come back (answered or counted late).
func TestRemoteHammer(t *testing.T) {
	n := newMemNet(t)
	a := n.node(t, "node-a")
	b := n.node(t, "node-b")
	b.e.start("echo:app:test", true, echo, networked)
	const clients, calls = 8, 100
	var wg sync.WaitGroup
	for i := range clients {
		_, in := a.e.inbox(fmt.Sprintf("client-%d:app:test", i), false, networked)
		h := in.handle(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range calls {
				ctx, cancel := context.WithCancel(context.Background())
				if j%3 == 0 {
					cancel()
				}
				m, err := h.Call(ctx, &Request{Target: b.addr("echo:app:test"), Body: []byte{byte(j)}, ExpectsResponse: time.Minute})
				cancel()
				switch {
				case err == nil && (len(m.Body) != 1 || m.Body[0] != byte(j)):
					t.Errorf("call %d got %v", j, m.Body)
				case err != nil && !errors.Is(err, context.Canceled):
					t.Errorf("call %d: %v", j, err)
				}
			}
		}()
	}
	wg.Wait()
	// Every request reached B (a cancelled Call has sent its request
	// already) and every one is answered back.
	a.waitReceived(t, clients*calls)
	if got := a.k.OutstandingRemote(); got != 0 {
		t.Errorf("%d requests still indexed on A", got)
	}
	if got := b.k.rm.proc.info().Pending; got != 0 {
		t.Errorf("%d requests from A still pending on B", got)
	}
	for i := range clients {
		if in, _ := a.k.Process(pid(fmt.Sprintf("client-%d:app:test", i))); in.Pending != 0 {
			t.Errorf("client %d has %d pending", i, in.Pending)
		}
	}
}
