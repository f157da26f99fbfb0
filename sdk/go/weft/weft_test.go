//go:build !wasip1

package weft

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/weftos/weft/abi"
)

func TestAwaitDecodesAndStops(t *testing.T) {
	f := newFake(t)
	in := request(7, "node1@a:pkg:pub", "hello", true)
	in.m.Metadata = "md"
	in.m.Context = []byte("ctx")
	in.m.Capabilities = []abi.Capability{{Issuer: "node1@a:pkg:pub", Params: `"messaging"`}}
	in.m.HasBlob, in.m.BlobMime, in.m.BlobLen = true, "text/plain", 4
	in.blob = []byte("blob")
	f.inbox = []fakeMsg{in}
	install(t, f)

	m, err := Await()
	if err != nil {
		t.Fatal(err)
	}
	want := &Message{
		Kind: KindRequest, ID: 7, Source: "node1@a:pkg:pub", Target: "node1@me:pkg:pub",
		Body: []byte("hello"), Metadata: "md", Context: []byte("ctx"),
		Capabilities:  []Capability{{Issuer: "node1@a:pkg:pub", Params: `"messaging"`}},
		WantsResponse: true, ExpectsResponse: 5 * time.Second,
		HasBlob: true, BlobMime: "text/plain", BlobLen: 4,
	}
	if m.Kind != want.Kind || m.ID != want.ID || m.Source != want.Source || m.Target != want.Target ||
		string(m.Body) != "hello" || m.Metadata != "md" || string(m.Context) != "ctx" ||
		len(m.Capabilities) != 1 || m.Capabilities[0] != want.Capabilities[0] ||
		!m.WantsResponse || m.ExpectsResponse != want.ExpectsResponse ||
		!m.HasBlob || m.BlobMime != "text/plain" || m.BlobLen != 4 || m.SendError != nil || !m.IsRequest() {
		t.Fatalf("Await = %+v, want %+v", m, want)
	}
	// The message is the SDK's own: the node overwriting its buffer
	// changes nothing.
	for i := range f.cur {
		f.cur[i] = 0
	}
	if string(m.Body) != "hello" {
		t.Fatalf("body changed with the node's buffer: %q", m.Body)
	}

	_, err = Await()
	if err != ErrStopped || !errors.Is(err, ErrStopped) {
		t.Fatalf("Await on an empty inbox = %v, want ErrStopped", err)
	}
}

func TestAwaitBadEncoding(t *testing.T) {
	f := newFake(t)
	install(t, f)
	sdk.node = badMessage{f}
	_, err := Await()
	if !errors.Is(err, ErrInternal) || !strings.Contains(err.Error(), "abi: message") {
		t.Fatalf("Await of a bad encoding = %v, want EINTERNAL naming the decode error", err)
	}
}

// badMessage hands out an encoding the decoder refuses.
type badMessage struct{ *fakeNode }

func (badMessage) await() int32 { return 3 }
func (badMessage) messageRead(p []byte) int32 {
	return copyOut(p, []byte{9, 0, 0})
}

func TestRespond(t *testing.T) {
	f := newFake(t)
	f.inbox = []fakeMsg{request(1, "node1@a:pkg:pub", "one", true), request(2, "node1@b:pkg:pub", "two", true)}
	install(t, f)

	one, _ := Await()
	err := one.Respond(Response{Body: []byte("re:one"), Metadata: "m", Inherit: true,
		Capabilities: []Capability{Messaging("me:pkg:pub")}, Blob: &Blob{Mime: "x/y", Bytes: []byte("b")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.answers) != 1 {
		t.Fatalf("%d answers", len(f.answers))
	}
	a := f.answers[0]
	if string(a.Body) != "re:one" || a.Metadata != "m" || !a.Inherit || a.Blob == nil || a.Blob.Mime != "x/y" ||
		string(a.Blob.Bytes) != "b" || len(a.Capabilities) != 1 ||
		a.Capabilities[0] != (abi.Capability{Issuer: "our@me:pkg:pub", Params: `"messaging"`}) {
		t.Fatalf("answer = %+v", a)
	}

	two, _ := Await()
	if err := one.Respond(Response{Body: []byte("late")}); !errors.Is(err, ErrNoRequest) {
		t.Fatalf("Respond to a request no longer handled = %v, want ErrNoRequest", err)
	}
	if len(f.answers) != 1 {
		t.Fatal("a refused Respond reached the node")
	}
	f.respRC = abi.ENOREQUEST
	err = two.Respond(Response{})
	var e *Error
	if !errors.As(err, &e) || e.Code != abi.ENOREQUEST || e.Op != "respond" || e.Detail != "refused by the fake" {
		t.Fatalf("Respond the node refuses = %#v", err)
	}
}

func TestRespondToAnswerRefused(t *testing.T) {
	f := newFake(t)
	f.inbox = []fakeMsg{response(5, "node1@a:pkg:pub", "r")}
	install(t, f)
	m, _ := Await()
	if err := m.Respond(Response{}); !errors.Is(err, ErrNoRequest) || !strings.Contains(err.Error(), "a response cannot be answered") {
		t.Fatalf("Respond to a response = %v", err)
	}
}

// The request being handled follows the node's rule: an answer brings
// back the request that was being handled when its request was sent.
func TestHandlingComesBackWithTheAnswer(t *testing.T) {
	f := newFake(t)
	install(t, f)
	f.inbox = []fakeMsg{request(1, "node1@a:pkg:pub", "a", true)}
	a, _ := Await()
	id, err := Request("other:pkg:pub").Body([]byte("q")).Expects(time.Second).Send()
	if err != nil {
		t.Fatal(err)
	}
	f.inbox = []fakeMsg{request(2, "node1@b:pkg:pub", "b", true), response(id, "node1@other:pkg:pub", "r")}
	b, _ := Await()
	r, _ := Await()
	if r.Kind != KindResponse || r.ID != id {
		t.Fatalf("answer = %+v", r)
	}
	if err := b.Respond(Response{}); !errors.Is(err, ErrNoRequest) {
		t.Fatalf("b.Respond after the answer = %v, want ErrNoRequest", err)
	}
	if err := a.Respond(Response{Body: []byte("done")}); err != nil {
		t.Fatalf("a.Respond after the answer = %v", err)
	}
	if len(sdk.stash) != 0 {
		t.Fatalf("stash keeps %d entries", len(sdk.stash))
	}
}

func TestRequestEncoding(t *testing.T) {
	f := newFake(t)
	install(t, f)
	c := Capability{Issuer: "node1@x:pkg:pub", Params: `{"a":1}`}
	id, err := Request("echo:echo:examples").Body([]byte("b")).Metadata("md").Expects(1500*time.Millisecond).
		Context([]byte("c")).Blob("text/plain", []byte("blob")).Inherit().Attach(c).Send()
	if err != nil {
		t.Fatal(err)
	}
	if id != 101 {
		t.Fatalf("id = %d, want 101", id)
	}
	r := f.sent[0]
	if r.Target != "our@echo:echo:examples" || string(r.Body) != "b" || r.Metadata != "md" ||
		r.ExpectsResponse != uint64(1500*time.Millisecond) || string(r.Context) != "c" ||
		r.Blob == nil || r.Blob.Mime != "text/plain" || string(r.Blob.Bytes) != "blob" || !r.Inherit ||
		len(r.Capabilities) != 1 || r.Capabilities[0] != abi.Capability(c) {
		t.Fatalf("sent %+v", r)
	}

	if _, err := Request("n2@echo:echo:examples").Send(); err != nil {
		t.Fatal(err)
	}
	r = f.sent[1]
	if r.Target != "n2@echo:echo:examples" || r.Inherit || r.Blob != nil || r.ExpectsResponse != 0 {
		t.Fatalf("bare request sent as %+v", r)
	}
}

func TestRequestMisuse(t *testing.T) {
	f := newFake(t)
	install(t, f)
	if _, err := Request("a:b:c").Expects(0).Send(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Expects(0).Send = %v, want ErrInvalid", err)
	}
	if _, err := Request("a:b:c").Expects(-time.Second).SendAndAwait(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Expects(-1s).SendAndAwait = %v, want ErrInvalid", err)
	}
	if _, err := Request("a:b:c").SendAndAwait(); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "Expects") {
		t.Fatalf("SendAndAwait without Expects = %v, want ErrInvalid naming Expects", err)
	}
	if len(f.sent) != 0 {
		t.Fatalf("%d bad requests reached the node", len(f.sent))
	}
}

func TestSendFailsAtOnce(t *testing.T) {
	f := newFake(t)
	install(t, f)
	f.sendRC = int64(abi.ENOCAPABILITY)
	_, err := Request("secret:pkg:pub").Send()
	var se *SendError
	if !errors.As(err, &se) || se.Kind != NoCapability || se.Target != "our@secret:pkg:pub" || se.Detail != "refused by the fake" {
		t.Fatalf("Send = %#v, want a *SendError no_capability", err)
	}
	if !errors.Is(err, ErrNoCapability) || errors.Is(err, ErrTimeout) {
		t.Fatal("errors.Is does not match the send error's kind alone")
	}
	f.sendRC = int64(abi.EINVAL)
	if _, err := Request("Bad Name").Send(); !errors.Is(err, ErrInvalid) || errors.As(err, &se) {
		t.Fatalf("Send with a bad target = %v, want a plain ErrInvalid", err)
	}
	f.sendRC = int64(abi.ESTOPPED)
	if _, err := Request("a:b:c").Send(); err != ErrStopped {
		t.Fatalf("Send while stopping = %v", err)
	}
}

func TestSendAndAwait(t *testing.T) {
	f := newFake(t)
	install(t, f)
	f.inbox = []fakeMsg{request(1, "node1@a:pkg:pub", "a", true)}
	a, _ := Await()

	ans := response(9, "node1@echo:echo:examples", "pong")
	ans.m.HasBlob, ans.m.BlobMime, ans.m.BlobLen = true, "a/b", 3
	ans.blob = []byte("xyz")
	f.syncAns = &ans
	m, err := Request("echo:echo:examples").Body([]byte("ping")).Expects(time.Second).SendAndAwait()
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != KindResponse || string(m.Body) != "pong" {
		t.Fatalf("SendAndAwait = %+v", m)
	}
	blob, err := m.Blob()
	if err != nil || blob.Mime != "a/b" || string(blob.Bytes) != "xyz" {
		t.Fatalf("Blob = %+v, %v", blob, err)
	}
	// The request being handled did not change.
	if err := a.Respond(Response{}); err != nil {
		t.Fatalf("Respond after SendAndAwait = %v", err)
	}
}

func TestSendAndAwaitErrorMessage(t *testing.T) {
	f := newFake(t)
	install(t, f)
	em := sendError(44, "node1@slow:pkg:pub", 1, "ctx")
	f.syncRC, f.syncMsg = abi.ETIMEOUT, &em
	_, err := Request("slow:pkg:pub").Expects(time.Millisecond).Context([]byte("ctx")).SendAndAwait()
	var se *SendError
	if !errors.As(err, &se) || se.Kind != Timeout || se.ID != 44 || se.Target != "node1@slow:pkg:pub" ||
		se.Detail != "it failed" || string(se.Context) != "ctx" || !errors.Is(err, ErrTimeout) {
		t.Fatalf("SendAndAwait timing out = %#v", err)
	}

	// A failure known at once leaves the current message alone.
	f.syncMsg = nil
	f.syncRC = abi.EMAILBOXFULL
	_, err = Request("busy:pkg:pub").Expects(time.Second).SendAndAwait()
	if !errors.As(err, &se) || se.Kind != MailboxFull || se.ID != 0 || se.Target != "our@busy:pkg:pub" || se.Detail != "failed in the fake" {
		t.Fatalf("SendAndAwait failing at once = %#v", err)
	}

	// Also when there is no current message at all.
	f2 := newFake(t)
	install(t, f2)
	f2.syncRC = abi.ENOSUCHPROCESS
	_, err = Request("gone:pkg:pub").Expects(time.Second).SendAndAwait()
	if !errors.As(err, &se) || se.Kind != NoSuchProcess || se.ID != 0 || se.Detail != "failed in the fake" {
		t.Fatalf("SendAndAwait failing at once, nothing current = %#v", err)
	}
}

func TestErrorMessageThroughAwait(t *testing.T) {
	f := newFake(t)
	f.inbox = []fakeMsg{sendError(3, "node1@x:pkg:pub", 6, "c")}
	install(t, f)
	m, err := Await()
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != KindError || m.SendError == nil || m.SendError.Kind != Killed || m.SendError.ID != 3 ||
		string(m.SendError.Context) != "c" || !errors.Is(m.SendError, ErrKilled) {
		t.Fatalf("error message = %+v, %+v", m, m.SendError)
	}
}

func TestBlob(t *testing.T) {
	f := newFake(t)
	big := bytes.Repeat([]byte("z"), 3*scratchSize)
	withBlob := request(1, "node1@a:pkg:pub", "", false)
	withBlob.m.HasBlob, withBlob.m.BlobMime, withBlob.m.BlobLen = true, "app/x", uint32(len(big))
	withBlob.blob = big
	f.inbox = []fakeMsg{withBlob, request(2, "node1@a:pkg:pub", "", false)}
	install(t, f)

	m, _ := Await()
	b1, err := m.Blob()
	if err != nil || !bytes.Equal(b1.Bytes, big) || b1.Mime != "app/x" {
		t.Fatalf("Blob = %v", err)
	}
	b2, _ := m.Blob()
	if b2 != b1 || f.reads["blob_read"] != 1 {
		t.Fatalf("second Blob read the node again (%d reads)", f.reads["blob_read"])
	}

	n, _ := Await()
	if _, err := n.Blob(); !errors.Is(err, ErrNoBlob) {
		t.Fatalf("Blob of a message without = %v", err)
	}
	f.inbox = []fakeMsg{withBlob, request(3, "node1@a:pkg:pub", "", false)}
	stale, _ := Await()
	if _, err := Await(); err != nil { // now request 3 is current
		t.Fatal(err)
	}
	if _, err := stale.Blob(); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "no longer current") {
		t.Fatalf("Blob of a message no longer current = %v", err)
	}
}

func TestState(t *testing.T) {
	f := newFake(t)
	install(t, f)
	if _, err := GetState(); err != ErrNoState || !errors.Is(err, ErrNoState) {
		t.Fatalf("GetState with none = %v", err)
	}
	if err := SetState([]byte("41")); err != nil {
		t.Fatal(err)
	}
	got, err := GetState()
	if err != nil || string(got) != "41" {
		t.Fatalf("GetState = %q, %v", got, err)
	}
	got[0] = 'x' // the caller's own copy
	if again, _ := GetState(); string(again) != "41" {
		t.Fatalf("GetState after the caller changed its copy = %q", again)
	}
	big := bytes.Repeat([]byte("s"), 10*scratchSize)
	if err := SetState(big); err != nil {
		t.Fatal(err)
	}
	f.reads["state_get"] = 0
	if got, err := GetState(); err != nil || !bytes.Equal(got, big) || f.reads["state_get"] != 2 {
		t.Fatalf("GetState of a large state: %v, %d reads", err, f.reads["state_get"])
	}
	if len(sdk.scratch) != scratchSize {
		t.Fatalf("scratch grew to %d", len(sdk.scratch))
	}
	if err := SetState(make([]byte, 2<<20)); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "1 MiB") {
		t.Fatalf("SetState too large = %v", err)
	}
	if err := ClearState(); err != nil {
		t.Fatal(err)
	}
	if _, err := GetState(); !errors.Is(err, ErrNoState) {
		t.Fatalf("GetState after ClearState = %v", err)
	}
	if err := SetState(nil); err != nil {
		t.Fatal(err)
	}
	if got, err := GetState(); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("GetState of an empty state = %v, %v (want empty, non-nil)", got, err)
	}
}

func TestSpawn(t *testing.T) {
	f := newFake(t)
	install(t, f)
	c := Messaging("node1@x:pkg:pub")
	id, err := Spawn(SpawnSpec{Name: "kid", WasmPath: "/child.wasm", OnExit: OnExitRestart, Public: true, Capabilities: []Capability{c}})
	if err != nil || id != "kid:pkg:pub" {
		t.Fatalf("Spawn = %q, %v", id, err)
	}
	s := f.spawned[0]
	if s.Name != "kid" || s.WasmPath != "/child.wasm" || s.OnExit != abi.OnExitRestart || !s.Public ||
		len(s.Capabilities) != 1 || s.Capabilities[0] != abi.Capability(c) {
		t.Fatalf("spawned %+v", s)
	}
	if _, err := Spawn(SpawnSpec{Name: "taken", WasmPath: "/x.wasm"}); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "spawn") {
		t.Fatalf("Spawn of a taken name = %v", err)
	}
	f.child = strings.Repeat("k", maxProcessID+1)
	if _, err := Spawn(SpawnSpec{WasmPath: "/x.wasm"}); !errors.Is(err, ErrInternal) {
		t.Fatalf("Spawn with an oversized id = %v", err)
	}
}

func TestCapabilities(t *testing.T) {
	f := newFake(t)
	install(t, f)
	for i := range 40 { // more than the scratch buffer holds
		f.caps = append(f.caps, abi.Capability{Issuer: "node1@p" + strings.Repeat("x", i) + ":pkg:pub", Params: `"messaging"`})
	}
	cs, err := Capabilities()
	if err != nil || len(cs) != 40 || cs[39].Issuer != f.caps[39].Issuer {
		t.Fatalf("Capabilities = %d, %v", len(cs), err)
	}
	if err := Drop(cs[3]); err != nil {
		t.Fatal(err)
	}
	if len(f.dropped) != 1 || f.dropped[0] != f.caps[3] {
		t.Fatalf("dropped %+v", f.dropped)
	}
}

func TestSelfAndLog(t *testing.T) {
	f := newFake(t)
	install(t, f)
	if Self() != "node1@me:pkg:pub" || Self() != "node1@me:pkg:pub" || f.selfN != 1 {
		t.Fatalf("Self read the node %d times", f.selfN)
	}
	Log(LevelWarn, "careful")
	Logf(LevelDebug, "n=%d", 3)
	if len(f.logs) != 2 || f.logs[0] != (fakeLog{2, "careful"}) || f.logs[1] != (fakeLog{0, "n=3"}) {
		t.Fatalf("logs %+v", f.logs)
	}
}

func TestRun(t *testing.T) {
	cases := []struct {
		name string
		body func() error
		rc   int32
		log  string
	}{
		{"nil", func() error { return nil }, 0, ""},
		{"stopped", func() error { _, err := Await(); return err }, 0, ""},
		{"wrapped stop", func() error { return errors.Join(errors.New("x"), ErrStopped) }, 0, ""},
		{"error", func() error { return errors.New("boom") }, 1, "process failed: boom"},
		{"panic", func() error { panic("oops") }, 1, "process panicked: oops"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake(t)
			install(t, f)
			Run(c.body)
			if rc := sdk.main(); rc != c.rc {
				t.Fatalf("main = %d, want %d", rc, c.rc)
			}
			if c.log == "" && len(f.logs) != 0 || c.log != "" && (len(f.logs) != 1 || f.logs[0].level != 3 || !strings.Contains(f.logs[0].msg, c.log)) {
				t.Fatalf("logs %+v, want %q", f.logs, c.log)
			}
		})
	}
}

func TestRunMisuse(t *testing.T) {
	f := newFake(t)
	install(t, f)
	if rc := sdk.main(); rc != 1 || len(f.logs) != 1 || !strings.Contains(f.logs[0].msg, "no process body") {
		t.Fatalf("main without a body = %d, logs %+v", rc, f.logs)
	}
	Run(func() error { return nil })
	defer func() {
		if recover() == nil {
			t.Fatal("a second Run did not panic")
		}
	}()
	Serve(func(*Message) error { return nil })
}

func TestServe(t *testing.T) {
	f := newFake(t)
	f.inbox = []fakeMsg{request(1, "node1@a:pkg:pub", "x", true), request(2, "node1@a:pkg:pub", "fail", true), request(3, "node1@a:pkg:pub", "y", true)}
	install(t, f)
	Serve(func(m *Message) error {
		if string(m.Body) == "fail" {
			return errors.New("bad input")
		}
		return m.Respond(Response{Body: m.Body})
	})
	if rc := sdk.main(); rc != 0 {
		t.Fatalf("main = %d", rc)
	}
	if len(f.answers) != 2 || string(f.answers[0].Body) != "x" || string(f.answers[1].Body) != "y" {
		t.Fatalf("answers %+v", f.answers)
	}
	if len(f.logs) != 1 || !strings.Contains(f.logs[0].msg, "handling request 2 from node1@a:pkg:pub: bad input") {
		t.Fatalf("logs %+v", f.logs)
	}

	// A handler returning ErrStopped ends the loop cleanly.
	f.inbox = []fakeMsg{request(4, "node1@a:pkg:pub", "", false), request(5, "node1@a:pkg:pub", "", false)}
	n := 0
	err := Loop(func(*Message) error { n++; return ErrStopped })
	if err != nil || n != 1 {
		t.Fatalf("Loop = %v after %d messages", err, n)
	}
}

func TestErrors(t *testing.T) {
	if !errors.Is(&Error{Code: abi.EPERM, Op: "x"}, ErrPerm) || errors.Is(&Error{Code: abi.EPERM}, ErrExists) {
		t.Fatal("Error.Is does not compare codes")
	}
	if !errors.Is(ErrNoBlob, ErrNoState) {
		t.Fatal("ErrNoBlob and ErrNoState share WEFT_ENONE")
	}
	e := &Error{Code: abi.ENOTFOUND, Op: "cap_drop", Detail: "not held"}
	if got := e.Error(); got != "weft: cap_drop: not found (WEFT_ENOTFOUND): not held" {
		t.Fatalf("Error() = %q", got)
	}
	if got := ErrStopped.Error(); got != "weft: process stopped (WEFT_ESTOPPED)" {
		t.Fatalf("ErrStopped = %q", got)
	}
	if got := (&Error{Code: -55}).Error(); got != "weft: WEFT_E(-55)" {
		t.Fatalf("unknown code = %q", got)
	}
	se := &SendError{Kind: TooLarge, Target: "our@a:b:c", Detail: "1 MiB max"}
	if got := se.Error(); got != "weft: send to our@a:b:c: too_large: 1 MiB max" {
		t.Fatalf("SendError = %q", got)
	}
	for k := Timeout; k <= TooLarge; k++ {
		if k.Code() != -100-int32(k) || !isSendCode(k.Code()) || abi.ErrorName(k.Code()) == "" {
			t.Fatalf("kind %v code %d", k, k.Code())
		}
		if !errors.Is(&SendError{Kind: k}, &Error{Code: k.Code()}) {
			t.Fatalf("SendError %v does not match its code", k)
		}
	}
	if isSendCode(abi.EINTERNAL) || isSendCode(-108) || SendErrorKind(9).String() != "send_error(9)" || Killed.String() != "killed" {
		t.Fatal("send code range or names wrong")
	}
	if KindError.String() != "error" || Kind(8).String() != "kind(8)" {
		t.Fatal("kind names wrong")
	}
}

func TestMessaging(t *testing.T) {
	if got := Messaging("echo:echo:examples"); got != (Capability{Issuer: "our@echo:echo:examples", Params: `"messaging"`}) {
		t.Fatalf("Messaging = %+v", got)
	}
	if got := Messaging("n1@echo:echo:examples"); got.Issuer != "n1@echo:echo:examples" {
		t.Fatalf("Messaging kept no node: %+v", got)
	}
}

func TestReleaseDropsLargeBuffers(t *testing.T) {
	f := newFake(t)
	install(t, f)
	if _, err := Request("a:b:c").Body(make([]byte, 2*keepOut)).Send(); err != nil {
		t.Fatal(err)
	}
	if sdk.out != nil {
		t.Fatalf("kept a %d-byte encoding buffer", cap(sdk.out))
	}
	if _, err := Request("a:b:c").Body([]byte("small")).Send(); err != nil {
		t.Fatal(err)
	}
	if cap(sdk.out) == 0 {
		t.Fatal("did not keep a small encoding buffer")
	}
}
