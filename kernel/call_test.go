package kernel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Many goroutines of one process call at once: each gets its own answer,
// none goes through the mailbox, and what the process was handling is
// left as it was.
func TestCallConcurrent(t *testing.T) {
	e := newEnv(t)
	e.start("echo:p:test", true, echo)
	_, in := e.inbox("d:p:test", false)
	h := in.handle(t)
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf("call %d", i)
			m, err := h.Call(context.Background(), &Request{Target: addr("our@echo:p:test"), Body: []byte(body), ExpectsResponse: time.Minute})
			if err != nil {
				t.Errorf("call %d: %v", i, err)
				return
			}
			if m.Kind != KindResponse || string(m.Body) != body {
				t.Errorf("call %d got %v %q", i, m.Kind, m.Body)
			}
		}()
	}
	wg.Wait()
	select {
	case m := <-in.ch:
		t.Errorf("an answer went through the mailbox: %+v", m)
	default:
	}
	// Fire and forget returns the request as sent.
	m, err := h.Call(context.Background(), &Request{Target: addr("our@echo:p:test"), Body: []byte("x")})
	if err != nil || m.ID == 0 || m.Kind != KindRequest {
		t.Fatalf("fire and forget: %+v, %v", m, err)
	}
}

// A Call's failures: a SendError with its kind, the requester's timeout,
// ctx, inherit refused, and a stopped incarnation.
func TestCallErrors(t *testing.T) {
	fc := newFakeClock()
	e := newEnv(t, withClock(fc))
	_, silent := e.inbox("silent:p:test", true)
	_, in := e.inbox("d:p:test", false)
	h := in.handle(t)

	_, err := h.Call(context.Background(), &Request{Target: addr("our@nobody:p:test"), ExpectsResponse: time.Minute})
	wantKind(t, err, ErrNoSuchProcess)

	if _, err := h.Call(context.Background(), &Request{Target: addr("our@silent:p:test"), Inherit: true}); !errors.Is(err, ErrInvalid) {
		t.Errorf("inherit: %v, want ErrInvalid", err)
	}

	errc := make(chan error, 1)
	go func() {
		_, err := h.Call(context.Background(), &Request{Target: addr("our@silent:p:test"), ExpectsResponse: time.Second})
		errc <- err
	}()
	silent.next(t)
	fc.WaitTimer(t, time.Second)
	fc.Advance(time.Second)
	wantKind(t, <-errc, ErrTimeout)

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, err := h.Call(ctx, &Request{Target: addr("our@silent:p:test"), ExpectsResponse: time.Minute})
		errc <- err
	}()
	silent.next(t)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	// Its answer, now, is late.
	before := e.k.Stats().LateResponses
	if err := silent.handle(t).Respond(&Response{Body: []byte("too late")}); err != nil {
		t.Fatal(err)
	}
	if got := e.k.Stats().LateResponses; got != before+1 {
		t.Errorf("late responses %d, want %d", got, before+1)
	}

	go func() {
		_, err := h.Call(context.Background(), &Request{Target: addr("our@silent:p:test"), ExpectsResponse: time.Minute})
		errc <- err
	}()
	silent.next(t)
	if err := e.k.Kill(context.Background(), pid("d:p:test")); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrStopped) {
		t.Errorf("stopped: %v, want ErrStopped", err)
	}
	if _, err := h.Call(context.Background(), &Request{Target: addr("our@silent:p:test")}); !errors.Is(err, ErrStopped) {
		t.Errorf("call after the stop: %v, want ErrStopped", err)
	}
}

// A process that awaits on a goroutine of its own, as a driver does, may
// leave that goroutine blocked in Await when its Run returns; restarted at
// once, its next incarnation must still be woken for what arrives (a
// stale waiter passes on the wake-up it takes).
func TestStaleAwaitGoroutine(t *testing.T) {
	e := newEnv(t)
	id := e.start("d:p:test", true, func(h *Handle) error {
		go func() {
			for {
				m, err := h.Await()
				if err != nil {
					return
				}
				if m.WantsResponse() {
					_ = h.Respond(&Response{Body: m.Body})
				}
			}
		}()
		<-h.p.stop
		return nil
	})
	for i := range 200 {
		if err := e.k.Restart(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		m, err := e.k.Send(ctx, &Request{Target: e.k.Address(id), Body: []byte("hi"), ExpectsResponse: 10 * time.Second})
		cancel()
		if err != nil || string(m.Body) != "hi" {
			t.Fatalf("after restart %d: %v", i, err)
		}
	}
}
