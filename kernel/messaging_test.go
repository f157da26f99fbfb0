package kernel

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRequestResponseWithContext(t *testing.T) {
	e := newEnv(t)
	e.start("echo:echo:test", true, echo)
	a, da := e.driven("a:app:test", false)
	_ = a
	var id uint64
	da.run(t, func(h *Handle) {
		var err error
		id, err = h.Send(&Request{Target: addr("our@echo:echo:test"), Body: []byte("hi"), Metadata: "m", ExpectsResponse: time.Minute, Context: []byte("ctx-1")})
		if err != nil {
			t.Errorf("send: %v", err)
		}
	})
	m := da.await(t)
	if m.Kind != KindResponse || string(m.Body) != "hi" || string(m.Context()) != "ctx-1" || m.ID != id {
		t.Fatalf("got %+v, want response hi with context ctx-1 and id %d", m, id)
	}
	if m.Source() != e.k.Address(pid("echo:echo:test")) {
		t.Fatalf("source %s", m.Source())
	}
	if m.Target().Node != "node-a" {
		t.Fatalf("target node %q: the alias our must resolve to the node id", m.Target().Node)
	}
	if n := e.k.pendingTimeouts(); n != 0 {
		t.Fatalf("%d requests left in the timeout queue", n)
	}
}

func TestSendErrorsKnownAtOnce(t *testing.T) {
	e := newEnv(t, withLimits(Limits{MaxBodyBytes: 8, MaxMetadataBytes: 4, MaxBlobBytes: 16, MaxContextBytes: 4, MaxMessageCapabilities: 1}))
	e.start("private:p:test", false, echo)
	e.start("public:p:test", true, echo)
	_, d := e.driven("a:app:test", false)
	cases := []struct {
		name string
		r    Request
		kind ErrorKind
	}{
		{"no such process", Request{Target: addr("our@nobody:p:test")}, ErrNoSuchProcess},
		{"no messaging capability", Request{Target: addr("our@private:p:test")}, ErrNoCapability},
		{"body too large", Request{Target: addr("our@public:p:test"), Body: make([]byte, 9)}, ErrTooLarge},
		{"metadata too large", Request{Target: addr("our@public:p:test"), Metadata: "12345"}, ErrTooLarge},
		{"blob too large", Request{Target: addr("our@public:p:test"), Blob: &Blob{Bytes: make([]byte, 17)}}, ErrTooLarge},
		{"context too large", Request{Target: addr("our@public:p:test"), Context: []byte("12345"), ExpectsResponse: time.Second}, ErrTooLarge},
		{"too many capabilities", Request{Target: addr("our@public:p:test"), Capabilities: []Capability{{Issuer: addr("our@a:app:test"), Params: `1`}, {Issuer: addr("our@a:app:test"), Params: `2`}}}, ErrTooLarge},
		{"remote without network capability", Request{Target: addr("node-b@echo:echo:test")}, ErrNoCapability},
		{"system process", Request{Target: addr("our@kernel:sys:weft")}, ErrNoCapability},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d.run(t, func(h *Handle) {
				_, err := h.Send(&c.r)
				se := wantKind(t, err, c.kind)
				if se.Target.Process != c.r.Target.Process {
					t.Errorf("target %s, want %s", se.Target, c.r.Target)
				}
				if se.Detail == "" {
					t.Error("no detail for people")
				}
			})
		})
	}
	// A public process and an exact limit are fine.
	d.run(t, func(h *Handle) {
		if _, err := h.Send(&Request{Target: addr("our@public:p:test"), Body: make([]byte, 8), Metadata: "1234"}); err != nil {
			t.Errorf("send at the limit: %v", err)
		}
	})
	if got := e.k.Stats().SendErrors[ErrTooLarge]; got < 5 {
		t.Errorf("too_large counted %d times", got)
	}
}

func TestBadTimeouts(t *testing.T) {
	e := newEnv(t, withLimits(Limits{MaxTimeout: time.Minute}))
	e.start("echo:echo:test", true, echo)
	_, d := e.driven("a:app:test", false)
	d.run(t, func(h *Handle) {
		for _, r := range []*Request{
			{Target: addr("our@echo:echo:test"), ExpectsResponse: -1},
			{Target: addr("our@echo:echo:test"), ExpectsResponse: 2 * time.Minute},
		} {
			if _, err := h.Send(r); !errors.Is(err, ErrInvalid) {
				t.Errorf("timeout %v: got %v, want ErrInvalid", r.ExpectsResponse, err)
			}
		}
		if _, err := h.SendAndAwait(&Request{Target: addr("our@echo:echo:test")}); !errors.Is(err, ErrInvalid) {
			t.Errorf("send_and_await without a timeout: got %v, want ErrInvalid", err)
		}
		if _, err := h.Send(&Request{Target: addr("our@echo:echo:test"), Metadata: "bad \xff utf-8"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("metadata that is not UTF-8: got %v, want ErrInvalid", err)
		}
		if _, err := h.SendAndAwait(&Request{Target: addr("our@a:app:test"), ExpectsResponse: time.Second}); !errors.Is(err, ErrInvalid) {
			t.Errorf("send_and_await to itself: got %v, want ErrInvalid", err)
		}
	})
}

func TestTimeoutReturnsContext(t *testing.T) {
	fc := newFakeClock()
	e := newEnv(t, withClock(fc))
	_, silent := e.inbox("silent:p:test", true)
	_, d := e.driven("a:app:test", false)
	var id uint64
	d.run(t, func(h *Handle) {
		var err error
		id, err = h.Send(&Request{Target: addr("our@silent:p:test"), Body: []byte("x"), ExpectsResponse: 5 * time.Second, Context: []byte("mine")})
		if err != nil {
			t.Errorf("send: %v", err)
		}
	})
	silent.next(t)
	fc.WaitTimer(t, 5*time.Second)
	fc.Advance(4 * time.Second)
	fc.Advance(time.Second)
	m := d.await(t)
	if m.Kind != KindError || m.Error.Kind != ErrTimeout || m.ID != id || string(m.Context()) != "mine" || string(m.Error.Context) != "mine" {
		t.Fatalf("got %+v / %+v, want a timeout with context mine", m, m.Error)
	}
	if m.Error.Message == nil || string(m.Error.Message.Body) != "x" {
		t.Fatalf("the error does not carry the failed request: %+v", m.Error.Message)
	}
}

func TestLateResponseIsCounted(t *testing.T) {
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
	fc.WaitTimer(t, time.Second)
	fc.Advance(time.Second)
	if m := a.await(t); m.Error == nil || m.Error.Kind != ErrTimeout {
		t.Fatalf("want a timeout, got %+v", m)
	}
	b.run(t, func(h *Handle) {
		if err := h.Respond(&Response{Body: []byte("late")}); err != nil {
			t.Errorf("respond: %v", err)
		}
	})
	if got := e.k.Stats().LateResponses; got != 1 {
		t.Fatalf("late responses %d, want 1", got)
	}
	a.run(t, func(h *Handle) {
		h.p.mu.Lock()
		n := len(h.p.q) - h.p.qhead
		h.p.mu.Unlock()
		if n != 0 {
			t.Errorf("late response delivered: mailbox holds %d", n)
		}
	})
}

func TestMailboxFullFailsAtOnce(t *testing.T) {
	e := newEnv(t, withLimits(Limits{MailboxLength: 3, MailboxBytes: 1 << 20}))
	_, target := e.driven("t:p:test", true) // never awaits: its mailbox fills
	_ = target
	_, d := e.driven("a:app:test", false)
	d.run(t, func(h *Handle) {
		for i := 0; i < 3; i++ {
			if _, err := h.Send(&Request{Target: addr("our@t:p:test"), Body: []byte{byte(i)}}); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
		}
		_, err := h.Send(&Request{Target: addr("our@t:p:test"), ExpectsResponse: time.Minute, Context: []byte("c")})
		wantKind(t, err, ErrMailboxFull)
		if n := len(h.p.pending); n != 0 {
			t.Errorf("a refused request left %d pending entries", n)
		}
	})
	if n := e.k.pendingTimeouts(); n != 0 {
		t.Fatalf("a refused request left %d timeouts", n)
	}
	// Messages already there keep their order.
	for i := 0; i < 3; i++ {
		if m := target.await(t); m.Body[0] != byte(i) {
			t.Fatalf("message %d out of order: %v", i, m.Body)
		}
	}
}

func TestMailboxBytesLimit(t *testing.T) {
	e := newEnv(t, withLimits(Limits{MailboxLength: 100, MailboxBytes: 4096}))
	e.driven("t:p:test", true)
	_, d := e.driven("a:app:test", false)
	d.run(t, func(h *Handle) {
		var err error
		for i := 0; i < 100 && err == nil; i++ {
			_, err = h.Send(&Request{Target: addr("our@t:p:test"), Body: make([]byte, 1000)})
		}
		se := wantKind(t, err, ErrMailboxFull)
		if !strings.Contains(se.Detail, "mailbox_bytes") {
			t.Errorf("detail %q does not name the limit", se.Detail)
		}
	})
}

func TestSendAndAwaitKeepsOtherMessagesInOrder(t *testing.T) {
	e := newEnv(t)
	_, slow := e.driven("slow:p:test", true)
	_, a := e.driven("a:app:test", true)
	_, c := e.driven("c:app:test", false)
	done := make(chan *Message, 1)
	a.async(func(h *Handle) {
		m, err := h.SendAndAwait(&Request{Target: addr("our@slow:p:test"), Body: []byte("q"), ExpectsResponse: time.Minute, Blob: &Blob{Mime: "text/plain", Bytes: []byte("B")}})
		if err != nil {
			t.Errorf("send_and_await: %v", err)
		}
		done <- m
	})
	m := slow.await(t)
	// While a waits, others send it requests.
	c.run(t, func(h *Handle) {
		for i := 0; i < 3; i++ {
			if _, err := h.Send(&Request{Target: addr("our@a:app:test"), Body: []byte{byte('0' + i)}}); err != nil {
				t.Error(err)
			}
		}
	})
	if m.Blob == nil || string(m.Blob.Bytes) != "B" {
		t.Fatalf("blob not delivered: %+v", m.Blob)
	}
	slow.run(t, func(h *Handle) {
		if err := h.Respond(&Response{Body: []byte("answer"), Blob: &Blob{Bytes: []byte("RB")}}); err != nil {
			t.Error(err)
		}
	})
	resp := <-done
	if string(resp.Body) != "answer" {
		t.Fatalf("got %q", resp.Body)
	}
	a.run(t, func(h *Handle) {
		if b := h.Blob(); b == nil || string(b.Bytes) != "RB" {
			t.Errorf("the awaited response's blob is not current: %+v", b)
		}
	})
	for i := 0; i < 3; i++ {
		if got := a.await(t); got.Body[0] != byte('0'+i) {
			t.Fatalf("message %d: got %q", i, got.Body)
		}
	}
}

func TestSendAndAwaitError(t *testing.T) {
	fc := newFakeClock()
	e := newEnv(t, withClock(fc))
	e.driven("slow:p:test", true)
	_, a := e.driven("a:app:test", false)
	errc := make(chan error, 1)
	a.async(func(h *Handle) {
		_, err := h.SendAndAwait(&Request{Target: addr("our@slow:p:test"), ExpectsResponse: time.Second})
		errc <- err
	})
	fc.WaitTimer(t, time.Second)
	fc.Advance(time.Second)
	wantKind(t, <-errc, ErrTimeout)
}

func TestInheritChain(t *testing.T) {
	// A → B → C with inherit: C answers A directly, with A's id and
	// context, and B's blob-less forward carries A's blob.
	e := newEnv(t)
	_, c := e.driven("c:chain:test", true)
	_, b := e.driven("b:chain:test", true)
	_, a := e.driven("a:chain:test", false)
	var id uint64
	a.run(t, func(h *Handle) {
		var err error
		id, err = h.Send(&Request{Target: addr("our@b:chain:test"), Body: []byte("x"), ExpectsResponse: time.Minute, Context: []byte("A-ctx"), Blob: &Blob{Mime: "a/b", Bytes: []byte("blob")}})
		if err != nil {
			t.Fatal(err)
		}
	})
	mb := b.await(t)
	b.run(t, func(h *Handle) {
		if _, err := h.Send(&Request{Target: addr("our@c:chain:test"), Body: []byte("y"), Inherit: true}); err != nil {
			t.Error(err)
		}
		// B handed the duty on: it cannot answer any more.
		if err := h.Respond(&Response{Body: []byte("b")}); !errors.Is(err, ErrNoRequest) {
			t.Errorf("respond after handing on: %v, want ErrNoRequest", err)
		}
	})
	mc := c.await(t)
	if mc.ID != id || mc.ID != mb.ID || !mc.WantsResponse() || !mc.Inherit || mc.Blob == nil || string(mc.Blob.Bytes) != "blob" {
		t.Fatalf("C got %+v, want A's id %d, a response owed, and A's blob", mc, id)
	}
	if mc.ExpectsResponse != time.Minute {
		t.Fatalf("C sees timeout %v, want A's", mc.ExpectsResponse)
	}
	c.run(t, func(h *Handle) {
		if err := h.Respond(&Response{Body: []byte("from c"), Inherit: true}); err != nil {
			t.Error(err)
		}
	})
	ma := a.await(t)
	if ma.Kind != KindResponse || string(ma.Body) != "from c" || ma.ID != id || string(ma.Context()) != "A-ctx" {
		t.Fatalf("A got %+v", ma)
	}
	if ma.Source().Process != pid("c:chain:test") {
		t.Fatalf("A's response comes from %s, want c", ma.Source())
	}
	if ma.Blob == nil || string(ma.Blob.Bytes) != "blob" {
		t.Fatalf("an inheriting response without a blob carries the request's blob; got %+v", ma.Blob)
	}
}

func TestInheritChainUsesOriginalTimeout(t *testing.T) {
	fc := newFakeClock()
	e := newEnv(t, withClock(fc))
	_, c := e.driven("c:chain:test", true)
	_, b := e.driven("b:chain:test", true)
	_, a := e.driven("a:chain:test", false)
	a.run(t, func(h *Handle) {
		if _, err := h.Send(&Request{Target: addr("our@b:chain:test"), ExpectsResponse: 3 * time.Second, Context: []byte("k")}); err != nil {
			t.Fatal(err)
		}
	})
	b.await(t)
	b.run(t, func(h *Handle) {
		if _, err := h.Send(&Request{Target: addr("our@c:chain:test"), Inherit: true}); err != nil {
			t.Error(err)
		}
	})
	c.await(t)
	fc.WaitTimer(t, 3*time.Second)
	fc.Advance(3 * time.Second)
	m := a.await(t)
	if m.Error == nil || m.Error.Kind != ErrTimeout || string(m.Context()) != "k" {
		t.Fatalf("got %+v, want A's own timeout with its context", m)
	}
}

func TestPromptingRestoredByResponse(t *testing.T) {
	// B handles A's request, asks C, takes an unrelated request meanwhile,
	// and answers A once C's answer is back: taking the response makes A's
	// request the one being handled again.
	e := newEnv(t)
	e.start("c:p:test", true, echo)
	_, b := e.driven("b:p:test", true)
	_, a := e.driven("a:p:test", false)
	a.run(t, func(h *Handle) {
		if _, err := h.Send(&Request{Target: addr("our@b:p:test"), Body: []byte("orig"), ExpectsResponse: time.Minute}); err != nil {
			t.Fatal(err)
		}
	})
	b.await(t)
	if _, err := e.k.Send(context.Background(), &Request{Target: addr("our@b:p:test"), Body: []byte("noise")}); err != nil {
		t.Fatal(err)
	}
	b.run(t, func(h *Handle) {
		if _, err := h.Send(&Request{Target: addr("our@c:p:test"), Body: []byte("sub"), ExpectsResponse: time.Minute}); err != nil {
			t.Error(err)
		}
	})
	if m := b.await(t); string(m.Body) != "noise" {
		t.Fatalf("b took %q first, want the noise already queued", m.Body)
	}
	b.run(t, func(h *Handle) {
		if err := h.Respond(&Response{}); !errors.Is(err, ErrNoRequest) {
			t.Errorf("the noise expects no response, respond gave %v", err)
		}
	})
	resp := b.await(t)
	if resp.Kind != KindResponse || string(resp.Body) != "sub" {
		t.Fatalf("b got %+v", resp)
	}
	b.run(t, func(h *Handle) {
		if err := h.Respond(&Response{Body: []byte("done: " + string(resp.Body))}); err != nil {
			t.Errorf("respond after the sub-response: %v", err)
		}
	})
	if m := a.await(t); string(m.Body) != "done: sub" {
		t.Fatalf("A got %q", m.Body)
	}
}

func TestRespondErrors(t *testing.T) {
	e := newEnv(t)
	_, b := e.driven("b:p:test", true)
	b.run(t, func(h *Handle) {
		if err := h.Respond(&Response{}); !errors.Is(err, ErrNoRequest) {
			t.Errorf("respond with nothing handled: %v", err)
		}
	})
	e.k.Send(context.Background(), &Request{Target: addr("our@b:p:test"), Body: []byte("fire and forget")})
	b.await(t)
	b.run(t, func(h *Handle) {
		if err := h.Respond(&Response{}); !errors.Is(err, ErrNoRequest) {
			t.Errorf("respond to a request expecting none: %v", err)
		}
	})
	go e.k.Send(context.Background(), &Request{Target: addr("our@b:p:test"), ExpectsResponse: time.Minute})
	b.await(t)
	b.run(t, func(h *Handle) {
		if err := h.Respond(&Response{Body: []byte("1")}); err != nil {
			t.Errorf("first respond: %v", err)
		}
		if err := h.Respond(&Response{Body: []byte("2")}); !errors.Is(err, ErrNoRequest) {
			t.Errorf("second respond: %v", err)
		}
	})
}

func TestLazyBlob(t *testing.T) {
	e := newEnv(t)
	_, b := e.driven("b:p:test", true)
	blob := &Blob{Mime: "application/octet-stream", Bytes: bytes.Repeat([]byte("z"), 1<<16)}
	if _, err := e.k.Send(context.Background(), &Request{Target: addr("our@b:p:test"), Body: []byte("small"), Blob: blob}); err != nil {
		t.Fatal(err)
	}
	m := b.await(t)
	if m.Blob != blob {
		t.Fatal("the blob was copied inside the node; it should be handed over as it is")
	}
	b.run(t, func(h *Handle) {
		if h.Blob() != blob {
			t.Error("Handle.Blob is not the current message's blob")
		}
	})
}

func TestOperatorSend(t *testing.T) {
	e := newEnv(t)
	e.start("private:p:test", false, echo)
	m, err := e.k.Send(context.Background(), &Request{Target: addr("our@private:p:test"), Body: []byte("op"), ExpectsResponse: time.Minute})
	if err != nil || string(m.Body) != "op" {
		t.Fatalf("operator to a private process: %v %+v", err, m)
	}
	// A caller that gives up leaves nothing behind.
	e.driven("mute:p:test", true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.k.Send(ctx, &Request{Target: addr("our@mute:p:test"), ExpectsResponse: time.Minute}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if n := e.k.pendingTimeouts(); n != 0 {
		t.Fatalf("%d timeouts left", n)
	}
}

func TestRemoteIsOffline(t *testing.T) {
	e := newEnv(t)
	_, d := e.driven("a:app:test", false, func(s *Spec) {
		s.Capabilities = []Capability{{Issuer: addr("our@kernel:sys:weft"), Params: NetworkParams}}
	})
	d.run(t, func(h *Handle) {
		_, err := h.Send(&Request{Target: addr("node-b@echo:echo:test")})
		wantKind(t, err, ErrOffline)
		_, err = h.Send(&Request{Target: Address{Node: "Bad Node", Process: pid("a:b:c")}})
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("bad node: %v", err)
		}
	})
}

func TestSendAfterStopIsRefused(t *testing.T) {
	e := newEnv(t)
	e.start("echo:echo:test", true, echo)
	hc := make(chan *Handle, 1)
	id := e.start("quick:p:test", false, func(h *Handle) error { hc <- h; return nil })
	h := <-hc
	e.waitState(id, StateExited)
	if _, err := h.Send(&Request{Target: addr("our@echo:echo:test")}); !errors.Is(err, ErrStopped) {
		t.Fatalf("send from a stale handle: %v", err)
	}
	if _, err := h.Await(); !errors.Is(err, ErrStopped) {
		t.Fatalf("await on a stale handle: %v", err)
	}
	if err := h.SetState([]byte("x")); !errors.Is(err, ErrStopped) {
		t.Fatalf("set state on a stale handle: %v", err)
	}
	// A request to a process that has exited fails at once.
	_, err := e.k.Send(context.Background(), &Request{Target: addr("our@quick:p:test")})
	wantKind(t, err, ErrNoSuchProcess)
}
