package kernel

import (
	"context"
	"sync"
	"testing"
	"time"
)

// BenchmarkKernelRoundTrip is one request and its response between two
// Go processes through the kernel, each on its own goroutine; the target
// is not public, so the sender's messaging capability is checked on every
// send, and the request expects a response (a timeout is registered).
func BenchmarkKernelRoundTrip(b *testing.B) {
	keys := newKeyring("bench")
	k, err := New(Config{Keyring: keys})
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close(context.Background())
	if err := k.Start(Spec{ID: pid("echo:bench:test"), Process: benchEcho}); err != nil {
		b.Fatal(err)
	}
	target := addr("our@echo:bench:test")
	body := []byte("hello")
	done := make(chan struct{})
	err = k.Start(Spec{
		ID:           pid("client:bench:test"),
		Capabilities: []Capability{{Issuer: target, Params: MessagingParams}},
		Process:      benchClient(b, &Request{Target: target, Body: body, ExpectsResponse: time.Minute}, done),
	})
	if err != nil {
		b.Fatal(err)
	}
	<-done
}

// benchEcho answers every request with its body.
var benchEcho = ProcessFunc(func(ctx context.Context, h *Handle) error {
	resp := &Response{}
	for {
		m, err := h.Await()
		if err != nil {
			return nil
		}
		resp.Body = m.Body
		if err := h.Respond(resp); err != nil {
			return err
		}
	}
})

// benchClient sends r and awaits its response b.N times, timed, and
// closes done when it is through.
func benchClient(b *testing.B, r *Request, done chan struct{}) Process {
	return ProcessFunc(func(ctx context.Context, h *Handle) error {
		defer close(done)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := h.Send(r); err != nil {
				b.Error(err)
				return err
			}
			m, err := h.Await()
			if err != nil || m.Kind != KindResponse {
				b.Errorf("await: %v %v", m, err)
				return err
			}
		}
		b.StopTimer()
		return nil
	})
}

// BenchmarkChannelPingPong is the floor to compare with: two goroutines
// passing a message there and back over unbuffered channels, one round
// trip per iteration.
func BenchmarkChannelPingPong(b *testing.B) {
	type msg struct{ body []byte }
	ping, pong := make(chan *msg), make(chan *msg)
	go func() {
		for m := range ping {
			pong <- m
		}
	}()
	m := &msg{body: []byte("hello")}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ping <- m
		<-pong
	}
	b.StopTimer()
	close(ping)
}

// BenchmarkMailboxHandoff is the floor of the kernel's own design with
// none of its work: two goroutines passing a pointer there and back
// through mutex-guarded queues and capacity-1 wake channels, the way
// process mailboxes and Await do. Kept beside the others so that the
// distance between this and BenchmarkKernelRoundTrip is the kernel's own
// cost (routing, capability check, pending table, timeouts, allocation).
func BenchmarkMailboxHandoff(b *testing.B) {
	type box struct {
		mu      sync.Mutex
		q       []*int
		waiting bool
		wake    chan struct{}
	}
	push := func(bx *box, x *int) {
		bx.mu.Lock()
		bx.q = append(bx.q, x)
		if bx.waiting {
			select {
			case bx.wake <- struct{}{}:
			default:
			}
		}
		bx.mu.Unlock()
	}
	pop := func(bx *box) *int {
		bx.mu.Lock()
		for len(bx.q) == 0 {
			bx.waiting = true
			bx.mu.Unlock()
			<-bx.wake
			bx.mu.Lock()
			bx.waiting = false
		}
		x := bx.q[0]
		bx.q = bx.q[:0]
		bx.mu.Unlock()
		return x
	}
	a := &box{wake: make(chan struct{}, 1)}
	c := &box{wake: make(chan struct{}, 1)}
	go func() {
		for {
			x := pop(c)
			if x == nil {
				return
			}
			push(a, x)
		}
	}()
	v := 1
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		push(c, &v)
		pop(a)
	}
	b.StopTimer()
	push(c, nil)
}
