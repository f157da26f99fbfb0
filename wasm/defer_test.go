package wasm

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/weftos/weft/abi"
	"github.com/weftos/weft/kernel"
)

// The tests of this file run testdata/abidoc/later.wat, a guest of ABI
// version 2 written from docs/abi.md ("Version 2: answering later"), and
// pin what that section states.

// newLaterEnv starts later.wat as "later", with the asker allowed to
// message it.
func newLaterEnv(tb testing.TB, lim kernel.Limits) (*docEnv, kernel.ProcessId, *asker) {
	tb.Helper()
	e := &docEnv{env: newEnv(tb, envOpts{limits: lim})}
	e.guest = e.compile(tb, "later.wasm", buildDocWAT(tb, "later"))
	a := e.asker(tb)
	return e, e.start(tb, "later", e.guest, false, ProcessOptions{}, a.id.Name), a
}

// asker is a native process that sends the guest requests for a test:
// each is in the guest's mailbox when send returns, so that the order
// the guest takes them in is the test's.
type asker struct {
	id  kernel.ProcessId
	ops chan func(h *kernel.Handle)
}

func (e *docEnv) asker(tb testing.TB) *asker {
	tb.Helper()
	a := &asker{id: pid("asker"), ops: make(chan func(*kernel.Handle))}
	err := e.k.Start(kernel.Spec{ID: a.id, Process: kernel.ProcessFunc(func(ctx context.Context, h *kernel.Handle) error {
		for {
			select {
			case op := <-a.ops:
				op(h)
			case <-ctx.Done():
				return nil
			}
		}
	})})
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// do runs op on the asker's goroutine and waits for it.
func (a *asker) do(tb testing.TB, op func(h *kernel.Handle)) {
	tb.Helper()
	done := make(chan struct{})
	a.ops <- func(h *kernel.Handle) { op(h); close(done) }
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		tb.Fatal("the asker is stuck")
	}
}

// send sends body to the guest, expecting a response within timeout,
// and returns the request's id once it is in the guest's mailbox.
func (a *asker) send(tb testing.TB, to kernel.ProcessId, body []byte, timeout time.Duration) uint64 {
	tb.Helper()
	var id uint64
	var err error
	a.do(tb, func(h *kernel.Handle) {
		id, err = h.Send(&kernel.Request{Target: kernel.Address{Node: kernel.OurNode, Process: to}, ExpectsResponse: timeout, Body: body})
	})
	if err != nil {
		tb.Fatalf("asker: send %q: %v", body, err)
	}
	return id
}

// answer waits for the next answer (response or error message) the
// asker gets, and checks that it answers request id.
func (a *asker) answer(tb testing.TB, id uint64) *kernel.Message {
	tb.Helper()
	var m *kernel.Message
	var err error
	a.do(tb, func(h *kernel.Handle) { m, err = h.Await() })
	if err != nil {
		tb.Fatalf("asker: await: %v", err)
	}
	if m.ID != id || m.Kind == kernel.KindRequest {
		tb.Fatalf("asker got %s %d, want the answer to %d", m.Kind, m.ID, id)
	}
	return m
}

// token is an i64 argument, then body.
func token(t int64, body string) []byte {
	return append(binary.LittleEndian.AppendUint64(nil, uint64(t)), body...)
}

// TestDocDeferAnswersLater: a guest defers request A and answers it with
// respond_deferred while handling request B, which it answers as usual.
// After defer, respond and defer no longer see A; a token answers once,
// and respond_deferred refuses one defer never returned; tokens are not
// given twice.
func TestDocDeferAnswersLater(t *testing.T) {
	e, g, a := newLaterEnv(t, kernel.Limits{})
	idA := a.send(t, g, cmd('d', nil), 15*time.Second)
	// 'c' first: every answer the guest gives is a respond.
	if got := e.ask(t, g, cmd('c', nil)); got.code != abi.ENOREQUEST {
		t.Errorf("respond after defer returned %s, want WEFT_ENOREQUEST", abi.ErrorName(got.code))
	}
	if got := e.ask(t, g, cmd('a', nil)); got.code != abi.ENOREQUEST {
		t.Errorf("a second defer returned %s, want WEFT_ENOREQUEST", abi.ErrorName(got.code))
	}
	if b := e.ask(t, g, cmd('r', []byte("for A"))); b.code != 0 || string(b.body) != "rfor A" {
		t.Fatalf("B got %v, want code 0 and B's own body", b)
	}
	if m := a.answer(t, idA); m.Kind != kernel.KindResponse || string(m.Body) != "for A" {
		t.Fatalf("A got %s %q, want the response respond_deferred sent", m.Kind, m.Body)
	}
	first := e.ask(t, g, cmd('k', nil)).code
	if first <= 0 {
		t.Fatalf("defer returned token %d, want a positive one", first)
	}
	if got := e.ask(t, g, cmd('r', []byte("again"))); got.code != abi.ENOREQUEST {
		t.Errorf("respond_deferred on a spent token returned %s, want WEFT_ENOREQUEST", abi.ErrorName(got.code))
	}

	// A second deferred request gets a token of its own; the first stays
	// spent, and tokens defer never returned are refused.
	idC := a.send(t, g, cmd('d', nil), 15*time.Second)
	second := e.ask(t, g, cmd('k', nil)).code
	if second <= 0 || second == first {
		t.Fatalf("the second token is %d, the first %d: want distinct positive tokens", second, first)
	}
	for _, tok := range []int64{int64(first), 0, -1, int64(second) + 1000} {
		if got := e.ask(t, g, cmd('t', token(tok, "wrong"))); got.code != abi.ENOREQUEST {
			t.Errorf("respond_deferred with token %d returned %s, want WEFT_ENOREQUEST", tok, abi.ErrorName(got.code))
		}
	}
	if got := e.ask(t, g, cmd('t', token(int64(second), "for C"))); got.code != 0 {
		t.Fatalf("respond_deferred with the second token returned %s", abi.ErrorName(got.code))
	}
	if m := a.answer(t, idC); string(m.Body) != "for C" {
		t.Fatalf("C got %q", m.Body)
	}
}

// TestDocDeferFails: defer returns WEFT_ENOREQUEST for a request that
// expects no response and WEFT_ELIMIT past max_pending_requests deferred
// requests; either way the request is not deferred (respond still
// answers it).
func TestDocDeferFails(t *testing.T) {
	e, g, a := newLaterEnv(t, kernel.Limits{MaxPendingRequests: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := e.k.Send(ctx, &kernel.Request{Target: e.k.Address(g), Body: cmd('d', nil)}); err != nil {
		t.Fatal(err)
	}
	if got := e.ask(t, g, cmd('a', nil)); got.code != abi.ENOREQUEST {
		t.Errorf("defer of a request that expects no response returned %s, want WEFT_ENOREQUEST", abi.ErrorName(got.code))
	}

	idA := a.send(t, g, cmd('d', nil), 15*time.Second)
	if got := e.ask(t, g, cmd('d', nil)); got.code != abi.ELIMIT {
		t.Fatalf("defer with max_pending_requests (1) deferred returned %s, want WEFT_ELIMIT answered at once", abi.ErrorName(got.code))
	}
	if got := e.ask(t, g, cmd('r', []byte("A"))); got.code != 0 {
		t.Fatalf("respond_deferred: %s", abi.ErrorName(got.code))
	}
	a.answer(t, idA)
	// Answered, it no longer counts.
	idB := a.send(t, g, cmd('d', nil), 15*time.Second)
	if got := e.ask(t, g, cmd('r', []byte("B"))); got.code != 0 {
		t.Fatalf("respond_deferred after the first was answered: %s", abi.ErrorName(got.code))
	}
	a.answer(t, idB)
}

// TestDocDeferTimeout: the requester's timeout still applies; an answer
// after it is not an error for the guest, but dropped and counted late.
func TestDocDeferTimeout(t *testing.T) {
	e, g, a := newLaterEnv(t, kernel.Limits{})
	id := a.send(t, g, cmd('d', nil), 50*time.Millisecond)
	if m := a.answer(t, id); m.Kind != kernel.KindError || m.Error.Kind != kernel.ErrTimeout {
		t.Fatalf("the requester got %s %v, want a timeout", m.Kind, m.Error)
	}
	before := e.k.Stats().LateResponses
	if got := e.ask(t, g, cmd('r', []byte("late"))); got.code != 0 {
		t.Fatalf("respond_deferred after the requester's timeout returned %s, want 0", abi.ErrorName(got.code))
	}
	if got := e.k.Stats().LateResponses; got != before+1 {
		t.Fatalf("late responses %d, want %d", got, before+1)
	}
}

// TestDocDeferStopped: a process stopped with deferred requests owes
// each a killed error.
func TestDocDeferStopped(t *testing.T) {
	e, g, a := newLaterEnv(t, kernel.Limits{})
	ids := []uint64{a.send(t, g, cmd('d', nil), time.Hour), a.send(t, g, cmd('d', nil), time.Hour)}
	e.ask(t, g, cmd('k', nil)) // both are deferred
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.k.Kill(ctx, g); err != nil {
		t.Fatal(err)
	}
	// Both fail killed, in no particular order.
	got := map[uint64]bool{}
	for range ids {
		var m *kernel.Message
		var err error
		a.do(t, func(h *kernel.Handle) { m, err = h.Await() })
		if err != nil {
			t.Fatalf("asker: await: %v", err)
		}
		if m.Kind != kernel.KindError || m.Error.Kind != kernel.ErrKilled {
			t.Errorf("request %d got %s %v, want a killed error", m.ID, m.Kind, m.Error)
		}
		got[m.ID] = true
	}
	if !got[ids[0]] || !got[ids[1]] {
		t.Errorf("answers came for %v, want %v", got, ids)
	}
}

// TestDocDeferFanOut: the guest defers a request, asks another process
// with the token in the context, and answers the deferred request when
// that answer comes back through await. The request being handled then
// is the deferred one, which respond no longer answers.
func TestDocDeferFanOut(t *testing.T) {
	e, g, a := newLaterEnv(t, kernel.Limits{})
	other := e.holder(t, "other")
	q := abi.AppendRequest(nil, &abi.Request{Target: e.k.Address(other.id).String(), ExpectsResponse: uint64(10 * time.Second),
		Body: []byte("q"), Context: make([]byte, 8)})
	id := a.send(t, g, cmd('f', q), 15*time.Second)
	if got := other.take(t); got != "q" {
		t.Fatalf("the other process took %q", got)
	}
	other.respond(t, "fanned in")
	if m := a.answer(t, id); m.Kind != kernel.KindResponse || string(m.Body) != "fanned in" {
		t.Fatalf("the deferred request got %s %q, want the other process's answer", m.Kind, m.Body)
	}
	if got := e.ask(t, g, cmd('c', nil)); got.code != abi.ENOREQUEST {
		t.Errorf("respond after the answer came back returned %s, want WEFT_ENOREQUEST", abi.ErrorName(got.code))
	}
}

// TestDocDeferInherit: a request sent with the inherit flag after defer
// does not take the deferred request over: it expects no response, the
// deferred request is still owed, and respond_deferred answers it.
func TestDocDeferInherit(t *testing.T) {
	e, g, a := newLaterEnv(t, kernel.Limits{})
	other := e.holder(t, "other")
	q := abi.AppendRequest(nil, &abi.Request{Target: e.k.Address(other.id).String(), Inherit: true, Body: []byte("q"), Context: make([]byte, 8)})
	id := a.send(t, g, cmd('f', q), 15*time.Second)
	var m *kernel.Message
	select {
	case m = <-other.took:
	case <-time.After(20 * time.Second):
		t.Fatal("the other process took nothing")
	}
	if m.WantsResponse() || m.ID == id {
		t.Errorf("the inheriting request has id %d (the deferred one's is %d), wants a response %v: it took the deferred request over", m.ID, id, m.WantsResponse())
	}
	other.answer <- ""
	if err := <-other.responded; !errors.Is(err, kernel.ErrNoRequest) {
		t.Errorf("the other process answered the inheriting request: %v", err)
	}
	if got := e.ask(t, g, cmd('r', []byte("still owed"))); got.code != 0 {
		t.Fatalf("respond_deferred: %s", abi.ErrorName(got.code))
	}
	if m := a.answer(t, id); string(m.Body) != "still owed" {
		t.Fatalf("the deferred request got %q", m.Body)
	}
}
