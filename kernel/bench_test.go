package kernel

import (
	"context"
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
	if err := k.Start(Spec{ID: pid("echo:bench:test"), Process: ProcessFunc(func(ctx context.Context, h *Handle) error {
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
	})}); err != nil {
		b.Fatal(err)
	}
	target := addr("our@echo:bench:test")
	body := []byte("hello")
	done := make(chan struct{})
	err = k.Start(Spec{
		ID:           pid("client:bench:test"),
		Capabilities: []Capability{{Issuer: target, Params: MessagingParams}},
		Process: ProcessFunc(func(ctx context.Context, h *Handle) error {
			defer close(done)
			req := &Request{Target: target, Body: body, ExpectsResponse: time.Minute}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := h.Send(req); err != nil {
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
		}),
	})
	if err != nil {
		b.Fatal(err)
	}
	<-done
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
