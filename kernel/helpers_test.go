package kernel

import (
	"context"
	"crypto/ed25519"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"
)

// testKeyring is a Keyring over real Ed25519 keys, with node ids that are
// plain names (the kernel treats node ids as validated strings).
type testKeyring struct {
	node string
	priv ed25519.PrivateKey
	pubs map[string]ed25519.PublicKey // every node this one knows
}

func newKeyring(node string) *testKeyring {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		panic(err)
	}
	return &testKeyring{node: node, priv: priv, pubs: map[string]ed25519.PublicKey{node: pub}}
}

func (r *testKeyring) NodeID() string         { return r.node }
func (r *testKeyring) Sign(msg []byte) []byte { return ed25519.Sign(r.priv, msg) }
func (r *testKeyring) Verify(node string, msg, sig []byte) bool {
	pub, ok := r.pubs[node]
	return ok && len(sig) == ed25519.SignatureSize && ed25519.Verify(pub, msg, sig)
}

// memStore is an in-memory StateStore and TableStore.
type memStore struct {
	mu    sync.Mutex
	state map[string][]byte
	table map[string][]byte
	puts  int
}

func newMemStore() *memStore {
	return &memStore{state: map[string][]byte{}, table: map[string][]byte{}}
}

func (s *memStore) GetState(p string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.state[p]
	return append([]byte(nil), v...), ok, nil
}
func (s *memStore) SetState(p string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state[p] = append([]byte{}, v...)
	return nil
}
func (s *memStore) ClearState(p string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.state, p)
	return nil
}
func (s *memStore) PutProcess(p string, rec []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.table[p] = append([]byte(nil), rec...)
	s.puts++
	return nil
}
func (s *memStore) DeleteProcess(p string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.table, p)
	return nil
}
func (s *memStore) Processes() (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]byte{}
	for k, v := range s.table {
		out[k] = append([]byte(nil), v...)
	}
	return out, nil
}

// fakeClock is a Clock the test advances by hand.
type fakeClock struct {
	mu     sync.Mutex
	cond   *sync.Cond
	now    time.Time
	timers map[*fakeTimer]bool
}

type fakeTimer struct {
	c    *fakeClock
	at   time.Time
	f    func()
	live bool
}

func newFakeClock() *fakeClock {
	c := &fakeClock{now: time.Unix(1_700_000_000, 0), timers: map[*fakeTimer]bool{}}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f, live: true}
	c.timers[t] = true
	c.cond.Broadcast()
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.live
	t.live = false
	delete(t.c.timers, t)
	t.c.cond.Broadcast()
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.live
	t.live = true
	t.at = t.c.now.Add(d)
	t.c.timers[t] = true
	t.c.cond.Broadcast()
	return was
}

// Advance moves time on and runs every timer that is then due, in order.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	for t := range c.timers {
		if !t.at.After(c.now) {
			due = append(due, t)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, t := range due {
		t.live = false
		delete(c.timers, t)
	}
	c.mu.Unlock()
	for _, t := range due {
		t.f()
	}
}

// WaitTimer blocks until a live timer is due at or before now+d, and
// returns how far away it is.
func (c *fakeClock) WaitTimer(t *testing.T, d time.Duration) time.Duration {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		best := time.Duration(-1)
		for tm := range c.timers {
			if w := tm.at.Sub(c.now); w <= d && (best < 0 || w < best) {
				best = w
			}
		}
		if best >= 0 {
			return best
		}
		c.cond.Wait()
	}
}

// env is one kernel under test.
type env struct {
	t     *testing.T
	k     *Kernel
	keys  *testKeyring
	store *memStore
	clock *fakeClock
}

type envOpt func(*Config)

func withLimits(l Limits) envOpt         { return func(c *Config) { c.Limits = l } }
func withClock(fc *fakeClock) envOpt     { return func(c *Config) { c.Clock = fc } }
func withStore(s *memStore) envOpt       { return func(c *Config) { c.State, c.Table = s, s } }
func withKeys(r *testKeyring) envOpt     { return func(c *Config) { c.Keyring = r } }
func withRestart(r RestartPolicy) envOpt { return func(c *Config) { c.Restart = r } }

func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	e := &env{t: t, keys: newKeyring("node-a"), store: newMemStore()}
	cfg := Config{Keyring: e.keys, State: e.store, Table: e.store}
	for _, o := range opts {
		o(&cfg)
	}
	if kr, ok := cfg.Keyring.(*testKeyring); ok {
		e.keys = kr
	}
	if ms, ok := cfg.Table.(*memStore); ok {
		e.store = ms
	}
	if fc, ok := cfg.Clock.(*fakeClock); ok {
		e.clock = fc
	}
	k, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.k = k
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := k.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return e
}

func pid(s string) ProcessId {
	p, err := ParseProcessId(s)
	if err != nil {
		panic(err)
	}
	return p
}

func addr(s string) Address {
	a, err := ParseAddress(s)
	if err != nil {
		panic(err)
	}
	return a
}

// start starts a top-level process running f.
func (e *env) start(id string, public bool, f func(h *Handle) error, opts ...func(*Spec)) ProcessId {
	e.t.Helper()
	s := Spec{ID: pid(id), Public: public, Process: ProcessFunc(func(ctx context.Context, h *Handle) error { return f(h) })}
	for _, o := range opts {
		o(&s)
	}
	if err := e.k.Start(s); err != nil {
		e.t.Fatalf("start %s: %v", id, err)
	}
	return s.ID
}

// echo answers every request that wants a response with its body.
func echo(h *Handle) error {
	for {
		m, err := h.Await()
		if err != nil {
			return nil
		}
		if m.WantsResponse() {
			if err := h.Respond(&Response{Body: m.Body, Inherit: true}); err != nil {
				return err
			}
		}
	}
}

// inbox is a process that hands every message it takes to the test.
type inbox struct {
	ch chan *Message
	h  chan *Handle
}

func (e *env) inbox(id string, public bool, opts ...func(*Spec)) (ProcessId, *inbox) {
	in := &inbox{ch: make(chan *Message, 1024), h: make(chan *Handle, 1)}
	p := e.start(id, public, func(h *Handle) error {
		in.h <- h
		for {
			m, err := h.Await()
			if err != nil {
				return nil
			}
			in.ch <- m
		}
	}, opts...)
	return p, in
}

func (in *inbox) next(t *testing.T) *Message {
	t.Helper()
	select {
	case m := <-in.ch:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10 s")
		return nil
	}
}

func (in *inbox) handle(t *testing.T) *Handle {
	t.Helper()
	select {
	case h := <-in.h:
		in.h <- h
		return h
	case <-time.After(10 * time.Second):
		t.Fatal("process did not start within 10 s")
		return nil
	}
}

// driven is a process whose every step the test runs on the process's
// own goroutine, so that prompting messages, blobs and responses behave
// exactly as in a real process.
type driven struct {
	do   chan func(h *Handle)
	done chan struct{}
}

func (e *env) driven(id string, public bool, opts ...func(*Spec)) (ProcessId, *driven) {
	d := &driven{do: make(chan func(*Handle)), done: make(chan struct{})}
	p := e.start(id, public, func(h *Handle) error {
		stop := h.p.stop
		for {
			select {
			case f := <-d.do:
				f(h)
				d.done <- struct{}{}
			case <-stop:
				return nil
			}
		}
	}, opts...)
	return p, d
}

// run runs f on the process's goroutine and waits for it.
func (d *driven) run(t *testing.T, f func(h *Handle)) {
	t.Helper()
	select {
	case d.do <- f:
	case <-time.After(10 * time.Second):
		t.Fatal("driven process is not taking work")
	}
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		t.Fatal("driven step did not finish within 10 s")
	}
}

// async runs f on the process's goroutine without waiting for it; f
// reports back through its own channel.
func (d *driven) async(f func(h *Handle)) {
	go func() {
		d.do <- f
		<-d.done
	}()
}

// await takes the next message on the driven process.
func (d *driven) await(t *testing.T) *Message {
	t.Helper()
	var m *Message
	var err error
	d.run(t, func(h *Handle) { m, err = h.Await() })
	if err != nil {
		t.Fatalf("await: %v", err)
	}
	return m
}

func wantKind(t *testing.T, err error, kind ErrorKind) *SendError {
	t.Helper()
	var se *SendError
	if !errors.As(err, &se) {
		t.Fatalf("got error %v, want a SendError %s", err, kind)
	}
	if se.Kind != kind {
		t.Fatalf("got SendError %s (%v), want %s", se.Kind, se, kind)
	}
	return se
}

// waitState waits until a process reaches state s.
func (e *env) waitState(id ProcessId, s ProcState) ProcessInfo {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, err := e.k.WaitProcess(ctx, id, func(in ProcessInfo) bool { return in.State == s })
	if err != nil {
		e.t.Fatalf("%s did not reach state %s (last %+v): %v", id, s, in, err)
	}
	return in
}

// waitGone waits until a process is no longer in the table.
func (e *env) waitGone(id ProcessId) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := e.k.WaitProcess(ctx, id, func(ProcessInfo) bool { return false })
	if !errors.Is(err, ErrNotFound) {
		e.t.Fatalf("%s is still in the table: %v", id, err)
	}
}
