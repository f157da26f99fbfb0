package kernel

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestTapSeesRequestsAndResponses(t *testing.T) {
	e := newEnv(t)
	e.start("echo:p:test", true, echo)
	other := e.start("other:p:test", true, echo)
	all := openTap(t, e.k, TapOptions{BodyBytes: 3})
	defer all.Close()
	onlyOther := openTap(t, e.k, TapOptions{Processes: []ProcessId{other}})
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
	tap := openTap(t, e.k, TapOptions{Buffer: 2})
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
	tap := openTap(t, e.k, TapOptions{})
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

// openTap opens a tap on k, failing the test if it cannot.
func openTap(tb testing.TB, k *Kernel, o TapOptions) *Tap {
	tb.Helper()
	t, err := k.Tap(o)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func TestTapsPerNode(t *testing.T) {
	e := newEnv(t, withLimits(Limits{TapsPerNode: 2}))
	first := openTap(t, e.k, TapOptions{})
	second := openTap(t, e.k, TapOptions{Processes: []ProcessId{pid("x:p:test")}})
	defer second.Close()
	third, err := e.k.Tap(TapOptions{})
	if !errors.Is(err, ErrLimit) || third != nil || !strings.Contains(err.Error(), "2 taps are open on this node (taps_per_node)") {
		t.Fatalf("third tap: %v, %v; want ErrLimit naming taps_per_node", third, err)
	}
	if got := e.k.TapCount(); got != 2 {
		t.Errorf("TapCount %d after a refused tap, want 2", got)
	}
	first.Close()
	third = openTap(t, e.k, TapOptions{}) // a closed tap makes room
	defer third.Close()
	if _, err := e.k.Tap(TapOptions{}); !errors.Is(err, ErrLimit) {
		t.Errorf("tap past the limit again: %v, want ErrLimit", err)
	}
	if DefaultLimits().TapsPerNode != 64 || (Limits{}).WithDefaults().TapsPerNode != 64 {
		t.Errorf("default taps_per_node %d, want 64 as documented", DefaultLimits().TapsPerNode)
	}
	if err := (Limits{TapsPerNode: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "taps_per_node") {
		t.Errorf("negative taps_per_node: %v, want refused", err)
	}
}

// TestFullTapsDropOnTheirOwn: a tap whose reader is behind drops and counts
// only what it follows, and neither it nor its drops touch another tap.
func TestFullTapsDropOnTheirOwn(t *testing.T) {
	e := newEnv(t)
	sink := func(h *Handle) error {
		for {
			if _, err := h.Await(); err != nil {
				return nil
			}
		}
	}
	a := e.start("a:p:test", true, sink)
	e.start("b:p:test", true, sink)
	all := openTap(t, e.k, TapOptions{Buffer: 1})
	defer all.Close()
	ofA := openTap(t, e.k, TapOptions{Processes: []ProcessId{a}, Buffer: 1})
	defer ofA.Close()
	reader := openTap(t, e.k, TapOptions{Buffer: 16})
	defer reader.Close()
	send := func(to string) {
		t.Helper()
		if _, err := e.k.Send(context.Background(), &Request{Target: addr("our@" + to)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, to := range []string{"a:p:test", "b:p:test", "a:p:test", "b:p:test", "a:p:test"} {
		send(to)
	}
	for i := range 5 {
		if got := <-reader.C; got.Dropped != 0 {
			t.Errorf("envelope %d of the tap that keeps up: Dropped %d, want 0", i, got.Dropped)
		}
	}
	<-all.C // the first of five; four dropped
	<-ofA.C // the first of three to a; two dropped
	send("a:p:test")
	if got := <-all.C; got.Dropped != 4 {
		t.Errorf("tap of every process: Dropped %d, want 4", got.Dropped)
	}
	if got := <-ofA.C; got.Dropped != 2 {
		t.Errorf("tap of a: Dropped %d, want 2", got.Dropped)
	}
	if got := <-reader.C; got.Dropped != 0 {
		t.Errorf("tap that keeps up: Dropped %d, want 0", got.Dropped)
	}
}

// TestTapCountsEveryDrop: under concurrent senders and a reader that falls
// behind, every delivery is either received or counted as dropped.
func TestTapCountsEveryDrop(t *testing.T) {
	e := newEnv(t)
	e.start("sink:p:test", true, func(h *Handle) error {
		for {
			if _, err := h.Await(); err != nil {
				return nil
			}
		}
	})
	e.start("last:p:test", true, func(h *Handle) error {
		for {
			if _, err := h.Await(); err != nil {
				return nil
			}
		}
	})
	tap := openTap(t, e.k, TapOptions{Buffer: 4})
	defer tap.Close()
	var delivered atomic.Uint64
	send := func(to string) {
		if _, err := e.k.Send(context.Background(), &Request{Target: addr("our@" + to)}); err == nil {
			delivered.Add(1) // a full mailbox refuses some: they were never delivered
		}
	}
	for range 10 { // before anyone reads: 6 are dropped at least
		send("sink:p:test")
	}
	var got, dropped uint64
	take := func(e Envelope) { got, dropped = got+1, dropped+e.Dropped }
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case e := <-tap.C:
				take(e)
			case <-stop:
				return
			}
		}
	}()
	var senders sync.WaitGroup
	for range 8 {
		senders.Go(func() {
			for range 300 {
				send("sink:p:test")
			}
		})
	}
	senders.Wait()
	close(stop)
	<-stopped
	for len(tap.C) > 0 {
		take(<-tap.C)
	}
	// The drops not yet told ride on the next envelope that gets through.
	if _, err := e.k.Send(context.Background(), &Request{Target: addr("our@last:p:test")}); err != nil {
		t.Fatal(err)
	}
	delivered.Add(1)
	take(<-tap.C)
	if dropped < 6 || got+dropped != delivered.Load() {
		t.Errorf("received %d and told of %d dropped, want %d in all (6 dropped at least)", got, dropped, delivered.Load())
	}
}
