package kernel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// A process defers two requests, takes a third, and answers them out of
// order from other goroutines: each requester gets its own answer, once.
func TestDeferAnswersLaterOutOfOrder(t *testing.T) {
	e := newEnv(t)
	_, b := e.driven("b:p:test", true)
	ask := func(body string) <-chan string {
		out := make(chan string, 1)
		go func() {
			m, err := e.k.Send(context.Background(), &Request{Target: addr("our@b:p:test"), Body: []byte(body), ExpectsResponse: time.Minute})
			if err != nil {
				out <- "error: " + err.Error()
				return
			}
			out <- string(m.Body)
		}()
		return out
	}
	var ds []*Deferred
	var outs []<-chan string
	for _, body := range []string{"one", "two"} {
		outs = append(outs, ask(body))
		m := b.await(t)
		b.run(t, func(h *Handle) {
			d, err := h.Defer()
			if err != nil {
				t.Errorf("defer %s: %v", m.Body, err)
				return
			}
			if d.ID() != m.ID || string(d.Request().Body) != body || d.Source().Process.String() != "operator:sys:weft" {
				t.Errorf("deferred %d %q from %s; want %d %q from the operator", d.ID(), d.Request().Body, d.Source(), m.ID, body)
			}
			// Handed on: the message being handled is no longer owed.
			if err := h.Respond(&Response{Body: []byte("now")}); !errors.Is(err, ErrNoRequest) {
				t.Errorf("respond after defer: %v, want ErrNoRequest", err)
			}
			if _, err := h.Defer(); !errors.Is(err, ErrNoRequest) {
				t.Errorf("a second defer: %v, want ErrNoRequest", err)
			}
			ds = append(ds, d)
		})
	}
	// A third request is handled as usual meanwhile.
	third := ask("three")
	b.await(t)
	b.run(t, func(h *Handle) {
		if err := h.Respond(&Response{Body: []byte("three answered")}); err != nil {
			t.Errorf("respond: %v", err)
		}
	})
	if got := <-third; got != "three answered" {
		t.Errorf("third: %q", got)
	}
	// Answers from goroutines of their own, the second first.
	var wg sync.WaitGroup
	if len(ds) != 2 {
		t.FailNow()
	}
	for i := len(ds) - 1; i >= 0; i-- {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ds[i].Respond(&Response{Body: fmt.Appendf(nil, "answer %d", i)}); err != nil {
				t.Errorf("deferred respond %d: %v", i, err)
			}
		}()
		wg.Wait()
		if got, want := <-outs[i], fmt.Sprintf("answer %d", i); got != want {
			t.Errorf("requester %d got %q, want %q", i, got, want)
		}
	}
	for i, d := range ds {
		if err := d.Respond(&Response{}); !errors.Is(err, ErrNoRequest) {
			t.Errorf("deferred %d answered twice: %v, want ErrNoRequest", i, err)
		}
	}
}

func TestDeferRefusesWhatIsNotOwed(t *testing.T) {
	e := newEnv(t, withLimits(Limits{MaxPendingRequests: 1}))
	_, b := e.driven("b:p:test", true)
	b.run(t, func(h *Handle) {
		if _, err := h.Defer(); !errors.Is(err, ErrNoRequest) {
			t.Errorf("defer with nothing handled: %v", err)
		}
	})
	e.k.Send(context.Background(), &Request{Target: addr("our@b:p:test"), Body: []byte("fire and forget")})
	b.await(t)
	b.run(t, func(h *Handle) {
		if _, err := h.Defer(); !errors.Is(err, ErrNoRequest) {
			t.Errorf("defer of a request expecting no response: %v", err)
		}
	})
	// max_pending_requests bounds what a process may hold deferred. Two
	// requesters, as each may have only one request pending.
	for i := range 2 {
		_, a := e.driven(fmt.Sprintf("a%d:app:test", i), false)
		a.run(t, func(h *Handle) {
			if _, err := h.Send(&Request{Target: addr("our@b:p:test"), ExpectsResponse: time.Minute}); err != nil {
				t.Error(err)
			}
		})
		b.await(t)
		b.run(t, func(h *Handle) {
			_, err := h.Defer()
			if i == 0 && err != nil || i == 1 && !errors.Is(err, ErrLimit) {
				t.Errorf("defer %d with max_pending_requests 1: %v", i+1, err)
			}
		})
	}
}

// The requester's timeout applies to a deferred request; an answer after
// it is counted late, and is no error for the process.
func TestDeferredAfterTimeoutIsLate(t *testing.T) {
	fc := newFakeClock()
	e := newEnv(t, withClock(fc))
	_, b := e.driven("b:p:test", true)
	_, a := e.driven("a:app:test", false)
	a.run(t, func(h *Handle) {
		if _, err := h.Send(&Request{Target: addr("our@b:p:test"), ExpectsResponse: time.Second}); err != nil {
			t.Error(err)
		}
	})
	b.await(t)
	var d *Deferred
	b.run(t, func(h *Handle) {
		var err error
		if d, err = h.Defer(); err != nil {
			t.Error(err)
		}
	})
	if d == nil {
		t.FailNow()
	}
	// The deadline counts from the send, on the kernel's clock.
	if got, want := d.Deadline(), fc.Now().Add(time.Second); !got.Equal(want) {
		t.Errorf("deadline %v, want %v", got, want)
	}
	fc.WaitTimer(t, time.Second)
	fc.Advance(time.Second)
	if m := a.await(t); m.Error == nil || m.Error.Kind != ErrTimeout {
		t.Fatalf("want a timeout, got %+v", m)
	}
	if err := d.Respond(&Response{Body: []byte("late")}); err != nil {
		t.Errorf("late deferred respond: %v", err)
	}
	if got := e.k.Stats().LateResponses; got != 1 {
		t.Errorf("late responses %d, want 1", got)
	}
}

// A process that stops owes its deferred requests killed errors, at once;
// answering one afterwards fails with ErrStopped.
func TestDeferredOwedWhenStopped(t *testing.T) {
	e := newEnv(t)
	id, b := e.driven("b:p:test", true)
	done := make(chan error, 1)
	go func() {
		_, err := e.k.Send(context.Background(), &Request{Target: addr("our@b:p:test"), ExpectsResponse: time.Hour})
		done <- err
	}()
	b.await(t)
	var d *Deferred
	b.run(t, func(h *Handle) {
		var err error
		if d, err = h.Defer(); err != nil {
			t.Error(err)
		}
	})
	if d == nil {
		t.FailNow()
	}
	if err := e.k.Kill(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		wantKind(t, err, ErrKilled)
	case <-time.After(10 * time.Second):
		t.Fatal("the requester was not told its deferred request's process stopped")
	}
	if err := d.Respond(&Response{}); !errors.Is(err, ErrStopped) {
		t.Errorf("respond after the stop: %v, want ErrStopped", err)
	}
}

// A deferred response is checked like any: too large fails, and the
// request stays deferred for a good answer.
func TestDeferredResponseIsChecked(t *testing.T) {
	e := newEnv(t, withLimits(Limits{MaxBodyBytes: 4}))
	_, b := e.driven("b:p:test", true)
	out := make(chan *Message, 1)
	go func() {
		m, _ := e.k.Send(context.Background(), &Request{Target: addr("our@b:p:test"), Body: []byte("hi"), Blob: &Blob{Mime: "text/plain", Bytes: []byte("blob")}, ExpectsResponse: time.Minute})
		out <- m
	}()
	b.await(t)
	var d *Deferred
	b.run(t, func(h *Handle) {
		var err error
		if d, err = h.Defer(); err != nil {
			t.Error(err)
		}
	})
	if d == nil {
		t.FailNow()
	}
	if err := d.Respond(&Response{Body: []byte("too large")}); err == nil {
		t.Fatal("a body over max_body_bytes was accepted")
	}
	if err := d.Respond(&Response{Body: []byte("ok"), Inherit: true}); err != nil {
		t.Fatalf("a good answer after a refused one: %v", err)
	}
	m := <-out
	if string(m.Body) != "ok" || m.Blob == nil || string(m.Blob.Bytes) != "blob" {
		t.Errorf("answer %q with blob %v; want ok carrying the request's blob (inherit)", m.Body, m.Blob)
	}
}
