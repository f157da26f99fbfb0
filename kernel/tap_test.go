package kernel

import (
	"context"
	"testing"
	"time"
)

func TestTapSeesRequestsAndResponses(t *testing.T) {
	e := newEnv(t)
	e.start("echo:p:test", true, echo)
	other := e.start("other:p:test", true, echo)
	all := e.k.Tap(TapOptions{BodyBytes: 3})
	defer all.Close()
	onlyOther := e.k.Tap(TapOptions{Processes: []ProcessId{other}})
	defer onlyOther.Close()

	m, err := e.k.Send(context.Background(), &Request{Target: addr("our@echo:p:test"), Body: []byte("hello"), ExpectsResponse: time.Minute, Metadata: "m"})
	if err != nil {
		t.Fatal(err)
	}
	req := <-all.C
	if req.Kind != KindRequest || req.Source.Process != OperatorProcess || req.Target.Process != pid("echo:p:test") ||
		req.BodyLen != 5 || string(req.Body) != "hel" || req.Metadata != "m" || req.ExpectsResponse != time.Minute || req.ID != m.ID {
		t.Errorf("request envelope = %+v", req)
	}
	resp := <-all.C
	if resp.Kind != KindResponse || resp.Source.Process != pid("echo:p:test") || resp.Target.Process != OperatorProcess ||
		resp.BodyLen != 5 || resp.ExpectsResponse != 0 || resp.ID != m.ID {
		t.Errorf("response envelope = %+v", resp)
	}
	select {
	case e := <-onlyOther.C:
		t.Errorf("tap of other:p:test saw %+v", e)
	default:
	}

	// A request that fails later arrives as an error envelope, its
	// source the target that failed.
	silent := pid("silent:p:test")
	if err := e.k.Start(Spec{ID: silent, Public: true, Process: ProcessFunc(func(ctx context.Context, h *Handle) error {
		_, _ = h.Await() // holds the request, never answers
		<-ctx.Done()
		return nil
	})}); err != nil {
		t.Fatal(err)
	}
	go e.k.Send(context.Background(), &Request{Target: e.k.Address(silent), ExpectsResponse: time.Minute})
	if env := <-all.C; env.Kind != KindRequest || env.Target.Process != silent {
		t.Fatalf("want the request to silent, got %+v", env)
	}
	if err := e.k.Kill(context.Background(), silent); err != nil {
		t.Fatal(err)
	}
	env := <-all.C
	if env.Kind != KindError || env.ErrorKind != ErrKilled || env.Source.Process != silent || env.Target.Process != OperatorProcess {
		t.Errorf("error envelope = %+v", env)
	}
}

func TestTapDropsAndCountsWhenFull(t *testing.T) {
	e := newEnv(t)
	e.start("sink:p:test", true, func(h *Handle) error {
		for {
			if _, err := h.Await(); err != nil {
				return nil
			}
		}
	})
	tap := e.k.Tap(TapOptions{Buffer: 2})
	for range 5 {
		if _, err := e.k.Send(context.Background(), &Request{Target: addr("our@sink:p:test")}); err != nil {
			t.Fatal(err)
		}
	}
	<-tap.C
	<-tap.C // the buffer is empty again; three were dropped
	if _, err := e.k.Send(context.Background(), &Request{Target: addr("our@sink:p:test")}); err != nil {
		t.Fatal(err)
	}
	if got := <-tap.C; got.Dropped != 3 {
		t.Errorf("Dropped = %d, want 3", got.Dropped)
	}
	tap.Close()
	tap.Close() // twice is fine
	if e.k.taps.Load() != nil {
		t.Error("closed tap still registered")
	}
}

func TestTapSeesTimeouts(t *testing.T) {
	fc := newFakeClock()
	e := newEnv(t, withClock(fc))
	e.start("sink:p:test", true, func(h *Handle) error {
		for {
			if _, err := h.Await(); err != nil {
				return nil
			}
		}
	})
	tap := e.k.Tap(TapOptions{})
	defer tap.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := e.k.Send(context.Background(), &Request{Target: addr("our@sink:p:test"), ExpectsResponse: time.Second})
		errc <- err
	}()
	if env := <-tap.C; env.Kind != KindRequest {
		t.Fatalf("first envelope %+v, want the request", env)
	}
	fc.WaitTimer(t, time.Second)
	fc.Advance(time.Second)
	if env := <-tap.C; env.Kind != KindError || env.ErrorKind != ErrTimeout || env.Target.Process != OperatorProcess {
		t.Errorf("envelope %+v, want a timeout error to the operator", env)
	}
	wantKind(t, <-errc, ErrTimeout)
}

func TestSendWithoutResponseReturnsTheRequest(t *testing.T) {
	e := newEnv(t)
	_, in := e.inbox("in:p:test", true)
	m, err := e.k.Send(context.Background(), &Request{Target: addr("our@in:p:test"), Body: []byte("x")})
	if err != nil || m == nil || m.ID == 0 || m.Kind != KindRequest {
		t.Fatalf("Send = %+v, %v; want the request with its id", m, err)
	}
	if got := in.next(t); got.ID != m.ID {
		t.Errorf("delivered id %d, Send returned %d", got.ID, m.ID)
	}
}
