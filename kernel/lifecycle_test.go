package kernel

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func TestSpawn(t *testing.T) {
	e := newEnv(t)
	e.start("private:p:test", false, echo)
	e.start("other:p:test", false, echo)
	if err := e.k.Grant(Capability{Issuer: addr("our@private:p:test"), Params: MessagingParams}, pid("parent:pkg:test")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("grant to a missing process: %v", err)
	}
	_, parent := e.driven("parent:pkg:test", false)
	if err := e.k.Grant(Capability{Issuer: addr("our@private:p:test"), Params: MessagingParams}, pid("parent:pkg:test")); err != nil {
		t.Fatal(err)
	}
	childRan := make(chan *Handle, 1)
	childProc := ProcessFunc(func(ctx context.Context, h *Handle) error {
		childRan <- h
		return echo(h)
	})
	var child ProcessId
	parent.run(t, func(h *Handle) {
		// A capability the parent lacks is refused.
		_, err := h.Spawn(ChildSpec{Name: "kid", Process: childProc, Capabilities: []Capability{{Issuer: addr("our@other:p:test"), Params: MessagingParams}}})
		if !errors.Is(err, ErrNotHeld) {
			t.Errorf("spawn with a capability the parent lacks: %v", err)
		}
		child, err = h.Spawn(ChildSpec{Name: "kid", Process: childProc, Capabilities: []Capability{{Issuer: addr("our@private:p:test"), Params: MessagingParams}}})
		if err != nil {
			t.Fatalf("spawn: %v", err)
		}
		if child != pid("kid:pkg:test") {
			t.Errorf("child id %s", child)
		}
		if _, err := h.Spawn(ChildSpec{Name: "kid", Process: childProc}); !errors.Is(err, ErrExists) {
			t.Errorf("second child of the same name: %v", err)
		}
		anon, err := h.Spawn(ChildSpec{Process: ProcessFunc(func(ctx context.Context, h *Handle) error { return nil })})
		if err != nil || anon.Package != "pkg" || anon.Validate() != nil {
			t.Errorf("anonymous child %s: %v", anon, err)
		}
	})
	ch := <-childRan
	// The child got only what it asked for and its parent held, plus the
	// parent's messaging capability.
	caps := ch.Capabilities()
	if len(caps) != 2 {
		t.Fatalf("child holds %v", caps)
	}
	// Parent → child and child → parent both work, though neither is public.
	parent.run(t, func(h *Handle) {
		m, err := h.SendAndAwait(&Request{Target: e.k.Address(child), Body: []byte("hi kid"), ExpectsResponse: time.Minute})
		if err != nil || string(m.Body) != "hi kid" {
			t.Errorf("parent to child: %v", err)
		}
	})
	if _, err := ch.Send(&Request{Target: addr("our@parent:pkg:test"), Body: []byte("hi parent")}); err != nil {
		t.Fatalf("child to parent: %v", err)
	}
	if m := parent.await(t); string(m.Body) != "hi parent" {
		t.Fatalf("parent got %q", m.Body)
	}
	// The child stops with its parent, and is forgotten.
	if err := e.k.Kill(context.Background(), pid("parent:pkg:test")); err != nil {
		t.Fatal(err)
	}
	e.waitGone(child)
	if in := e.waitState(pid("parent:pkg:test"), StateKilled); in.ID.Name != "parent" {
		t.Fatal(in)
	}
}

func TestSpawnChildExitsAndIsForgotten(t *testing.T) {
	e := newEnv(t)
	_, parent := e.driven("parent:pkg:test", false)
	var kid ProcessId
	parent.run(t, func(h *Handle) {
		var err error
		kid, err = h.Spawn(ChildSpec{Name: "once", Process: ProcessFunc(func(ctx context.Context, h *Handle) error {
			m, err := h.Await()
			if err != nil {
				return err
			}
			return h.Respond(&Response{Body: append([]byte("child saw "), m.Body...)})
		})})
		if err != nil {
			t.Fatal(err)
		}
		m, err := h.SendAndAwait(&Request{Target: h.Address().withProcess(kid), Body: []byte("x"), ExpectsResponse: time.Minute})
		if err != nil || string(m.Body) != "child saw x" {
			t.Fatalf("%v %v", m, err)
		}
	})
	e.waitGone(kid)
	in, _ := e.k.Process(pid("parent:pkg:test"))
	if in.State != StateRunning {
		t.Fatalf("parent %v", in.State)
	}
}

func (a Address) withProcess(p ProcessId) Address { a.Process = p; return a }

func TestKillFailsEverythingWaiting(t *testing.T) {
	e := newEnv(t)
	_, victim := e.driven("victim:p:test", true)
	_, a := e.driven("a:p:test", false)
	_, b := e.driven("b:p:test", false)
	// a's request is being handled by the victim, b's waits in its mailbox.
	a.run(t, func(h *Handle) {
		if _, err := h.Send(&Request{Target: addr("our@victim:p:test"), ExpectsResponse: time.Hour, Context: []byte("a")}); err != nil {
			t.Fatal(err)
		}
	})
	victim.await(t)
	b.run(t, func(h *Handle) {
		if _, err := h.Send(&Request{Target: addr("our@victim:p:test"), ExpectsResponse: time.Hour, Context: []byte("b")}); err != nil {
			t.Fatal(err)
		}
	})
	// And the operator blocks on it.
	opErr := make(chan error, 1)
	go func() {
		_, err := e.k.Send(context.Background(), &Request{Target: addr("our@victim:p:test"), ExpectsResponse: time.Hour})
		opErr <- err
	}()
	e.k.WaitProcess(context.Background(), pid("victim:p:test"), func(in ProcessInfo) bool { return true })
	for {
		if in, _ := e.k.Process(pid("victim:p:test")); in.MailboxDepth == 2 {
			break
		}
		// The operator's send is on its way; wait for it to land.
		select {
		case err := <-opErr:
			t.Fatalf("operator send returned early: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	if err := e.k.Kill(context.Background(), pid("victim:p:test")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*driven{a, b} {
		m := d.await(t)
		if m.Kind != KindError || m.Error.Kind != ErrKilled || m.Error.Target.Process != pid("victim:p:test") {
			t.Fatalf("got %+v", m)
		}
	}
	wantKind(t, <-opErr, ErrKilled)
	// A killed process takes no new requests.
	_, err := e.k.Send(context.Background(), &Request{Target: addr("our@victim:p:test")})
	wantKind(t, err, ErrNoSuchProcess)
	if n := e.k.pendingTimeouts(); n != 0 {
		t.Fatalf("%d timeouts left", n)
	}
}

func TestKillMidChainFailsOriginalRequester(t *testing.T) {
	e := newEnv(t)
	_, c := e.driven("c:chain:test", true)
	_, b := e.driven("b:chain:test", true)
	_, a := e.driven("a:chain:test", false)
	a.run(t, func(h *Handle) {
		h.Send(&Request{Target: addr("our@b:chain:test"), ExpectsResponse: time.Hour, Context: []byte("ctx")})
	})
	b.await(t)
	b.run(t, func(h *Handle) { h.Send(&Request{Target: addr("our@c:chain:test"), Inherit: true}) })
	c.await(t)
	if err := e.k.Kill(context.Background(), pid("c:chain:test")); err != nil {
		t.Fatal(err)
	}
	m := a.await(t)
	if m.Error == nil || m.Error.Kind != ErrKilled || string(m.Context()) != "ctx" {
		t.Fatalf("A got %+v", m)
	}
}

func TestOnExitRestartBackoff(t *testing.T) {
	fc := newFakeClock()
	e := newEnv(t, withClock(fc), withRestart(RestartPolicy{Initial: time.Second, Max: 4 * time.Second, Stable: time.Minute}))
	runs := make(chan *Handle, 16)
	crash := make(chan error)
	e.start("flaky:p:test", true, func(h *Handle) error {
		runs <- h
		return <-crash
	}, func(s *Spec) { s.OnExit = OnExit{Kind: OnExitRestart} })
	<-runs
	var waits []time.Duration
	for i := 0; i < 5; i++ {
		crash <- fmt.Errorf("crash %d", i)
		w := fc.WaitTimer(t, time.Hour)
		waits = append(waits, w)
		in := e.waitState(pid("flaky:p:test"), StateRestarting)
		if in.Restarts != i+1 || in.LastError != fmt.Sprintf("crash %d", i) {
			t.Fatalf("info %+v", in)
		}
		fc.Advance(w)
		<-runs
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}
	if fmt.Sprint(waits) != fmt.Sprint(want) {
		t.Fatalf("backoff %v, want %v", waits, want)
	}
	// A run that lasts the stable period resets the backoff.
	fc.Advance(time.Minute)
	crash <- errors.New("after a stable minute")
	if w := fc.WaitTimer(t, time.Hour); w != time.Second {
		t.Fatalf("backoff after a stable run %v, want 1s", w)
	}
	// A kill during the backoff stops it for good.
	if err := e.k.Kill(context.Background(), pid("flaky:p:test")); err != nil {
		t.Fatal(err)
	}
	if in := e.waitState(pid("flaky:p:test"), StateKilled); in.Restarts != 6 {
		t.Fatalf("%+v", in)
	}
	if got := e.k.Stats().Restarts; got != 6 {
		t.Fatalf("restarts counted %d", got)
	}
}

func TestRestartKeepsMailboxAndQueuesDuringBackoff(t *testing.T) {
	fc := newFakeClock()
	e := newEnv(t, withClock(fc))
	crash := make(chan struct{})
	got := make(chan string, 4)
	e.start("svc:p:test", true, func(h *Handle) error {
		select {
		case <-crash:
			return errors.New("crash")
		default:
		}
		for {
			m, err := h.Await()
			if err != nil {
				return nil
			}
			got <- string(m.Body)
			if string(m.Body) == "die" {
				panic("guest trap")
			}
		}
	}, func(s *Spec) { s.OnExit = OnExit{Kind: OnExitRestart} })
	e.k.Send(context.Background(), &Request{Target: addr("our@svc:p:test"), Body: []byte("die")})
	if <-got != "die" {
		t.Fatal()
	}
	in := e.waitState(pid("svc:p:test"), StateRestarting)
	if in.LastError == "" {
		t.Fatal("the panic was not recorded")
	}
	// Sent during the backoff: waits for the next incarnation.
	if _, err := e.k.Send(context.Background(), &Request{Target: addr("our@svc:p:test"), Body: []byte("queued")}); err != nil {
		t.Fatal(err)
	}
	fc.Advance(fc.WaitTimer(t, time.Hour))
	if s := <-got; s != "queued" {
		t.Fatalf("got %q", s)
	}
}

func TestOnExitRequests(t *testing.T) {
	e := newEnv(t)
	_, watcher := e.inbox("watcher:p:test", true)
	quit := make(chan struct{})
	e.start("mortal:p:test", false, func(h *Handle) error {
		<-quit
		return errors.New("bye")
	}, func(s *Spec) {
		s.OnExit = OnExit{Kind: OnExitRequests, Requests: []ExitRequest{
			{Target: addr("our@watcher:p:test"), Body: []byte("mortal died"), Metadata: "exit"},
		}}
	})
	close(quit)
	m := watcher.next(t)
	if string(m.Body) != "mortal died" || m.Metadata != "exit" || m.Source().Process != pid("mortal:p:test") {
		t.Fatalf("got %+v", m)
	}
	e.waitState(pid("mortal:p:test"), StateExited)
	// A kill does not send them.
	quit2 := make(chan struct{})
	running := make(chan struct{})
	e.start("mortal2:p:test", false, func(h *Handle) error { close(running); <-quit2; return nil }, func(s *Spec) {
		s.OnExit = OnExit{Kind: OnExitRequests, Requests: []ExitRequest{{Target: addr("our@watcher:p:test"), Body: []byte("2 died")}}}
	})
	<-running
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.k.Kill(ctx, pid("mortal2:p:test")) }()
	// mortal2 ignores ctx; it returns only when quit2 closes. Kill waits.
	select {
	case err := <-done:
		t.Fatalf("kill returned before the process stopped: %v", err)
	case <-time.After(10 * time.Millisecond):
	}
	close(quit2)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e.k.Send(context.Background(), &Request{Target: addr("our@watcher:p:test"), Body: []byte("marker")})
	if m := watcher.next(t); string(m.Body) != "marker" {
		t.Fatalf("a killed process sent its exit requests: %q", m.Body)
	}
}

func TestOnExitNoneAndRestartAPI(t *testing.T) {
	e := newEnv(t)
	runs := make(chan struct{}, 4)
	var n atomic.Int32
	id := e.start("once:p:test", false, func(h *Handle) error {
		runs <- struct{}{}
		if n.Add(1) > 1 {
			// Later runs take the request sent right after Restart
			// before they return, so that it cannot find them exited.
			_, err := h.Await()
			return err
		}
		return nil
	})
	<-runs
	e.waitState(id, StateExited)
	if err := e.k.Restart(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	// A request sent right after Restart waits for the new incarnation.
	if _, err := e.k.Send(context.Background(), &Request{Target: e.k.Address(id)}); err != nil {
		t.Fatalf("send right after restart: %v", err)
	}
	<-runs
	e.waitState(id, StateExited)
	if err := e.k.Restart(context.Background(), OperatorProcess); !errors.Is(err, ErrNotPermitted) {
		t.Fatalf("restart the operator: %v", err)
	}
	if err := e.k.Kill(context.Background(), pid("none:p:test")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("kill a missing process: %v", err)
	}
}

func TestStartValidation(t *testing.T) {
	e := newEnv(t, withLimits(Limits{ProcessesPerPackage: 2, ProcessesPerNode: 3}))
	noop := ProcessFunc(func(ctx context.Context, h *Handle) error { <-ctx.Done(); return nil })
	cases := []struct {
		s    Spec
		want error
	}{
		{Spec{ID: ProcessId{"Bad", "p", "test"}, Process: noop}, nil},
		{Spec{ID: pid("x:p:test")}, ErrInvalid},
		{Spec{ID: pid("x:sys:weft"), Process: noop}, ErrNotPermitted},
		{Spec{ID: pid("x:p:test"), Process: noop, OnExit: OnExit{Kind: 9}}, ErrInvalid},
		{Spec{ID: pid("x:p:test"), Process: noop, OnExit: OnExit{Kind: OnExitNone, Requests: []ExitRequest{{}}}}, ErrInvalid},
		{Spec{ID: pid("x:p:test"), Process: noop, Capabilities: []Capability{{Issuer: addr("our@a:b:c"), Params: "{"}}}, ErrInvalid},
		{Spec{ID: pid("x:p:test"), Process: noop, GrantTo: []ProcessId{pid("ghost:p:test")}}, ErrNotFound},
	}
	for i, c := range cases {
		err := e.k.Start(c.s)
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("case %d: got %v, want %v", i, err, c.want)
		}
	}
	for _, id := range []string{"a:p:test", "b:p:test"} {
		if err := e.k.Start(Spec{ID: pid(id), Process: noop}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.k.Start(Spec{ID: pid("a:p:test"), Process: noop}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := e.k.Start(Spec{ID: pid("c:p:test"), Process: noop}); !errors.Is(err, ErrLimit) {
		t.Fatalf("per package: %v", err)
	}
	if err := e.k.Start(Spec{ID: pid("c:q:test"), Process: noop}); err != nil {
		t.Fatal(err)
	}
	if err := e.k.Start(Spec{ID: pid("d:r:test"), Process: noop}); !errors.Is(err, ErrLimit) {
		t.Fatalf("per node: %v", err)
	}
	// Removing one makes room again.
	if err := e.k.Remove(context.Background(), pid("a:p:test")); err != nil {
		t.Fatal(err)
	}
	if err := e.k.Start(Spec{ID: pid("d:r:test"), Process: noop}); err != nil {
		t.Fatal(err)
	}
}

func TestGrantToAndPublic(t *testing.T) {
	e := newEnv(t)
	_, client := e.driven("client:p:test", false)
	e.start("svc:p:test", false, echo, func(s *Spec) { s.GrantTo = []ProcessId{pid("client:p:test")} })
	client.run(t, func(h *Handle) {
		if _, err := h.SendAndAwait(&Request{Target: addr("our@svc:p:test"), ExpectsResponse: time.Minute}); err != nil {
			t.Errorf("grant_capabilities did not give messaging: %v", err)
		}
	})
	infos := e.k.Processes()
	if len(infos) != 4 || infos[0].ID.String() > infos[1].ID.String() {
		t.Fatalf("processes %+v", infos)
	}
}

func TestCloseStopsEverything(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 10; i++ {
		e.start(fmt.Sprintf("p%d:p:test", i), true, echo, func(s *Spec) { s.OnExit = OnExit{Kind: OnExitRestart} })
	}
	if err := e.k.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, in := range e.k.Processes() {
		if in.State == StateRunning && in.ID.Package != "sys" {
			t.Fatalf("%s still running", in.ID)
		}
	}
	if err := e.k.Start(Spec{ID: pid("late:p:test"), Process: ProcessFunc(func(ctx context.Context, h *Handle) error { return nil })}); !errors.Is(err, ErrClosed) {
		t.Fatalf("start after close: %v", err)
	}
}

func TestState(t *testing.T) {
	store := newMemStore()
	e := newEnv(t, withStore(store), withLimits(Limits{MaxStateBytes: 8}))
	_, d := e.driven("s:p:test", false)
	d.run(t, func(h *Handle) {
		if _, err := h.GetState(); !errors.Is(err, ErrNoState) {
			t.Errorf("fresh state: %v", err)
		}
		if err := h.SetState([]byte("hello")); err != nil {
			t.Error(err)
		}
		if v, err := h.GetState(); err != nil || string(v) != "hello" {
			t.Errorf("get: %q %v", v, err)
		}
		if err := h.SetState(make([]byte, 9)); !errors.Is(err, ErrLimit) {
			t.Errorf("oversize state: %v", err)
		}
		if v, _ := h.GetState(); string(v) != "hello" {
			t.Errorf("a refused write changed the state: %q", v)
		}
		if err := h.ClearState(); err != nil {
			t.Error(err)
		}
		if _, err := h.GetState(); !errors.Is(err, ErrNoState) {
			t.Errorf("after clear: %v", err)
		}
		h.SetState([]byte("kept"))
	})
	// Remove forgets the state too.
	if err := e.k.Remove(context.Background(), pid("s:p:test")); err != nil {
		t.Fatal(err)
	}
	if _, ok := store.state["s:p:test"]; ok {
		t.Fatal("state survived removal")
	}
	// Without a store, state calls fail clearly.
	e2 := newEnv(t, func(c *Config) { c.State = nil; c.Table = nil })
	_, d2 := e2.driven("s:p:test", false)
	d2.run(t, func(h *Handle) {
		if err := h.SetState(nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("no store: %v", err)
		}
	})
}

func TestLogRateLimit(t *testing.T) {
	fc := newFakeClock()
	e := newEnv(t, withClock(fc), withLimits(Limits{LogLinesPerSecond: 1, LogBurst: 2, MaxLogLineBytes: 4}))
	_, d := e.driven("l:p:test", false)
	d.run(t, func(h *Handle) {
		for i := 0; i < 5; i++ {
			h.Log(0, "line that is long")
		}
		p := h.p
		p.mu.Lock()
		dropped := p.logs.dropped
		p.mu.Unlock()
		if dropped != 3 {
			t.Errorf("dropped %d of 5 with a burst of 2, want 3", dropped)
		}
	})
	fc.Advance(time.Second)
	d.run(t, func(h *Handle) {
		h.Log(0, "again")
		if h.p.logs.dropped != 0 {
			t.Error("the drop count was not reported with the next line")
		}
	})
}

func TestNewValidation(t *testing.T) {
	if _, err := New(Config{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no keyring: %v", err)
	}
	if _, err := New(Config{Keyring: newKeyring("Bad Node")}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad node id: %v", err)
	}
	if _, err := New(Config{Keyring: newKeyring("n"), Limits: Limits{MailboxLength: -1}}); err == nil {
		t.Fatal("negative limit accepted")
	}
	if got := DefaultLimits(); got != (Limits{}).WithDefaults() {
		t.Fatalf("WithDefaults of zero is not DefaultLimits: %+v", got)
	}
}

func TestErrorKinds(t *testing.T) {
	for _, k := range ErrorKinds {
		back, ok := ParseErrorKind(k.String())
		if !ok || back != k {
			t.Errorf("%s does not round-trip", k)
		}
	}
	if _, ok := ParseErrorKind("nope"); ok {
		t.Error("unknown kind parsed")
	}
	want := "timeout offline no_such_process no_capability mailbox_full killed too_large"
	var got []string
	for _, k := range ErrorKinds {
		got = append(got, k.String())
	}
	if fmt.Sprint(got) != "["+want+"]" {
		t.Fatalf("kinds %v", got)
	}
}

// Kill and Restart of one process at once, many times over: each ends
// with the process killed or running again, and under -race nothing races
// (Restart used to replace the sync.Once guarding the kill channel while
// a concurrent kill could be inside it).
func TestKillAndRestartAtOnce(t *testing.T) {
	e := newEnv(t)
	e.start("svc:p:test", false, echo)
	id := pid("svc:p:test")
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		errs := make(chan error, 2)
		go func() { errs <- e.k.Kill(ctx, id) }()
		go func() { errs <- e.k.Restart(ctx, id) }()
		for j := 0; j < 2; j++ {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
		}
		in, err := e.k.Process(id)
		if err != nil {
			t.Fatal(err)
		}
		if in.State != StateKilled && in.State != StateRunning {
			t.Fatalf("round %d: state %v", i, in.State)
		}
		if err := e.k.Restart(ctx, id); err != nil {
			t.Fatalf("round %d: restart after: %v", i, err)
		}
	}
}

// Removing a process (uninstall) takes away what it held, but not the
// capabilities it issued: installing it again is how a package is
// upgraded, and whoever the operator let message it still may. Revoking
// cuts that off (docs/operations.md).
func TestRemoveKeepsIssuedCapabilities(t *testing.T) {
	e := newEnv(t)
	e.start("svc:p:test", false, echo)
	_, client := e.driven("client:q:test", false)
	msgCap := Capability{Issuer: addr("our@svc:p:test"), Params: MessagingParams}
	if err := e.k.Grant(msgCap, pid("client:q:test")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.k.Remove(ctx, pid("svc:p:test")); err != nil {
		t.Fatal(err)
	}
	e.start("svc:p:test", false, echo)
	ask := func() error {
		var err error
		client.run(t, func(h *Handle) {
			_, err = h.SendAndAwait(&Request{Target: addr("our@svc:p:test"), Body: []byte("hi"), ExpectsResponse: time.Minute})
		})
		return err
	}
	if err := ask(); err != nil {
		t.Fatalf("after uninstall and install again: %v", err)
	}
	if err := e.k.Revoke(msgCap); err != nil {
		t.Fatal(err)
	}
	var se *SendError
	if err := ask(); !errors.As(err, &se) || se.Kind != ErrNoCapability {
		t.Fatalf("after revoke: %v", err)
	}
}
