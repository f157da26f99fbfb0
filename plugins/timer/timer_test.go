package timer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/plugins/driver"
	"github.com/weftos/weft/plugins/timer"
)

// fakeClock is a Clock that moves only when told.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []*wait
}

type wait struct {
	at   time.Time
	f    func()
	done bool
}

var t0 = time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)

func newClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &wait{at: c.now.Add(d), f: f}
	if d <= 0 {
		w.done = true
		go f()
	} else {
		c.waits = append(c.waits, w)
	}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		stopped := !w.done
		w.done = true
		return stopped
	}
}

// pending returns how many waits are armed and not yet due or stopped.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, w := range c.waits {
		if !w.done {
			n++
		}
	}
	return n
}

// Advance moves the clock on by d and runs what fell due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	keep := c.waits[:0]
	for _, w := range c.waits {
		switch {
		case w.done:
		case !w.at.After(c.now):
			w.done = true
			due = append(due, w.f)
		default:
			keep = append(keep, w)
		}
	}
	c.waits = keep
	c.mu.Unlock()
	for _, f := range due {
		go f()
	}
}

const (
	alice = "n@alice:app:test"
	bob   = "n@bob:app:test"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// start runs the timer driver on clock under a harness.
func start(t *testing.T, clock *fakeClock, o driver.HarnessOptions) *driver.Harness {
	t.Helper()
	h := driver.NewHarness(timer.New(timer.Options{Clock: clock}), o)
	if err := h.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	return h
}

// ask sends body from src and decodes the answer into a map; nil for an
// answer of nothing.
func ask(t *testing.T, h *driver.Harness, src, body string, timeout time.Duration, caps ...*weftv1.Capability) map[string]any {
	t.Helper()
	resp, err := h.Request(ctxT(t), driver.HarnessRequest{Source: src, Body: []byte(body), Timeout: timeout, Capabilities: caps})
	if err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return decode(t, resp)
}

func decode(t *testing.T, resp *driver.Response) map[string]any {
	t.Helper()
	if resp == nil {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(resp.Body, &m); err != nil {
		t.Fatalf("answer %q: %v", resp.Body, err)
	}
	return m
}

// held sends a set that expects a response, and returns where its answer
// will come, once the timer is pending.
func held(t *testing.T, h *driver.Harness, src, id, body string, timeout time.Duration) <-chan map[string]any {
	t.Helper()
	out := make(chan map[string]any, 1)
	go func() {
		resp, err := h.Request(ctxT(t), driver.HarnessRequest{Source: src, Body: []byte(body), Timeout: timeout, Capabilities: []*weftv1.Capability{driver.Messaging(src)}})
		if err != nil {
			out <- map[string]any{"request error": err.Error()}
			return
		}
		var m map[string]any
		if resp != nil {
			_ = json.Unmarshal(resp.Body, &m)
		}
		out <- m
	}()
	eventually(t, "timer "+id+" pending", func() bool { return slicesContain(ids(t, h, src), id) })
	return out
}

func ids(t *testing.T, h *driver.Harness, src string) []string {
	t.Helper()
	var l struct {
		Timers []struct{ ID string } `json:"timers"`
	}
	resp, err := h.Request(ctxT(t), driver.HarnessRequest{Source: src, Body: []byte(`{"op":"list"}`), Timeout: time.Second})
	if err != nil || resp == nil {
		t.Fatalf("list: %+v, %v", resp, err)
	}
	if err := json.Unmarshal(resp.Body, &l); err != nil {
		t.Fatalf("list %q: %v", resp.Body, err)
	}
	out := make([]string, len(l.Timers))
	for i, tm := range l.Timers {
		out[i] = tm.ID
	}
	return out
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited in vain for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func receive(t *testing.T, c <-chan map[string]any) map[string]any {
	t.Helper()
	select {
	case m := <-c:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
		return nil
	}
}

// stored is the number of timers in the driver's database.
func stored(t *testing.T, h *driver.Harness) int {
	t.Helper()
	pairs, err := h.Store().Node().KV("", timer.DB).All(ctxT(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return len(pairs)
}

func stamp(d time.Duration) string { return t0.Add(d).Format(time.RFC3339Nano) }

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// canon is JSON text b with its objects' keys sorted, as jsonOf writes a
// map.
func canon(b []byte) string {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return "not JSON: " + string(b)
	}
	return jsonOf(v)
}

// A set that expects a response is held and answered when the timer
// fires, saying how late; its record is gone after.
func TestSetAnsweredWhenDue(t *testing.T) {
	clock := newClock()
	h := start(t, clock, driver.HarnessOptions{})
	c := held(t, h, alice, "tea", `{"op":"set","in":"2s","id":"tea","data":{"cup":1}}`, time.Minute)
	if n := stored(t, h); n != 1 {
		t.Fatalf("%d timers stored while pending, want 1", n)
	}
	clock.Advance(time.Second)
	select {
	case m := <-c:
		t.Fatalf("answered before due: %v", m)
	case <-time.After(20 * time.Millisecond):
	}
	clock.Advance(time.Second + 5*time.Millisecond)
	got := jsonOf(receive(t, c))
	want := jsonOf(map[string]any{"id": "tea", "due": stamp(2 * time.Second), "fired": stamp(2*time.Second + 5*time.Millisecond), "late_ms": 5, "data": map[string]any{"cup": 1}})
	if got != want {
		t.Errorf("answer %s, want %s", got, want)
	}
	if n := stored(t, h); n != 0 {
		t.Errorf("%d timers stored after firing, want 0", n)
	}
	if l := ids(t, h, alice); len(l) != 0 {
		t.Errorf("list after firing: %v", l)
	}
	if s := h.Sent(); len(s) != 0 {
		t.Errorf("a held timer was also delivered: %v", s)
	}

	// "at", on time, and without data.
	c = held(t, h, alice, "noon", `{"op":"set","at":"`+stamp(time.Hour)+`","id":"noon"}`, 2*time.Hour)
	clock.Advance(time.Hour - 2005*time.Millisecond) // to t0 + 1h
	got = jsonOf(receive(t, c))
	want = jsonOf(map[string]any{"id": "noon", "due": stamp(time.Hour), "fired": stamp(time.Hour), "late_ms": 0})
	if got != want {
		t.Errorf("answer %s, want %s", got, want)
	}
}

// A set that expects no response fires as a new request to the setter,
// with the capability the setter attached; its record is deleted after.
func TestFireAndForgetDelivered(t *testing.T) {
	clock := newClock()
	h := start(t, clock, driver.HarnessOptions{})
	mine := driver.Messaging(alice)
	other := &weftv1.Capability{Issuer: bob, Params: driver.MessagingParams}
	if m := ask(t, h, alice, `{"op":"set","in":"90s","id":"x","data":"d"}`, 0, other, mine); m != nil {
		t.Fatalf("a set expecting no response answered %v", m)
	}
	if n := stored(t, h); n != 1 {
		t.Fatalf("%d timers stored, want 1", n)
	}
	clock.Advance(90 * time.Second)
	sent, err := h.WaitSent(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	m := sent[0]
	if m.Target != alice || m.Metadata != timer.Metadata || m.Timeout != 0 || len(m.Capabilities) != 1 || !driver.IsMessaging(m.Capabilities[0], alice) {
		t.Errorf("delivered %+v", m)
	}
	want := jsonOf(map[string]any{"id": "x", "due": stamp(90 * time.Second), "fired": stamp(90 * time.Second), "late_ms": 0, "data": "d"})
	if got := canon(m.Body); got != want {
		t.Errorf("delivered body %s, want %s", got, want)
	}
	eventually(t, "the record deleted", func() bool { return stored(t, h) == 0 })
	clock.Advance(time.Hour)
	time.Sleep(20 * time.Millisecond)
	if n := len(h.Sent()); n != 1 {
		t.Errorf("%d deliveries, want 1", n)
	}
}

// A requester that stops waiting is let go before its timeout, and the
// timer is delivered as a new request when it fires.
func TestRequesterGaveUp(t *testing.T) {
	clock := newClock()
	h := start(t, clock, driver.HarnessOptions{})
	// The harness would return a timeout had the driver held on past it.
	c := held(t, h, alice, "late", `{"op":"set","in":"1h","id":"late"}`, time.Second)
	if m := receive(t, c); m != nil {
		t.Fatalf("the requester got %v, want to be let go before its timeout with no answer", m)
	}
	if l := ids(t, h, alice); len(l) != 1 {
		t.Fatalf("the timer went with its requester: %v", l)
	}
	clock.Advance(time.Hour)
	sent, err := h.WaitSent(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if sent[0].Target != alice || len(sent[0].Capabilities) != 1 || !strings.Contains(string(sent[0].Body), `"id":"late"`) {
		t.Errorf("delivered %+v", sent[0])
	}
	eventually(t, "the record deleted", func() bool { return stored(t, h) == 0 })
}

func TestCancel(t *testing.T) {
	clock := newClock()
	h := start(t, clock, driver.HarnessOptions{})
	c := held(t, h, alice, "a", `{"op":"set","in":"1m","id":"a"}`, time.Hour)
	ask(t, h, bob, `{"op":"set","in":"1m","id":"a"}`, 0)
	ask(t, h, alice, `{"op":"set","in":"2m","id":"b"}`, 0)

	if m := ask(t, h, alice, `{"op":"cancel","id":"a"}`, time.Second); jsonOf(m) != `{"cancelled":true}` {
		t.Errorf("cancel = %v", m)
	}
	if m := receive(t, c); jsonOf(m) != `{"cancelled":true,"id":"a"}` {
		t.Errorf("the held set was answered %v", m)
	}
	if m := ask(t, h, alice, `{"op":"cancel","id":"a"}`, time.Second); jsonOf(m) != `{"cancelled":false}` {
		t.Errorf("cancel of a cancelled timer = %v", m)
	}
	if m := ask(t, h, bob, `{"op":"cancel","id":"b"}`, time.Second); jsonOf(m) != `{"cancelled":false}` {
		t.Errorf("cancel of another setter's timer = %v", m)
	}
	ask(t, h, alice, `{"op":"cancel","id":"b"}`, 0) // expecting nothing: cancelled all the same
	if l := ids(t, h, alice); len(l) != 0 {
		t.Errorf("alice's timers after cancels: %v", l)
	}
	if l := ids(t, h, bob); len(l) != 1 || l[0] != "a" {
		t.Errorf("bob's timers: %v", l)
	}
	if n := stored(t, h); n != 1 {
		t.Errorf("%d timers stored, want bob's 1", n)
	}
	clock.Advance(time.Hour)
	sent, err := h.WaitSent(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if sent = h.Sent(); len(sent) != 1 || sent[0].Target != bob {
		t.Errorf("delivered %+v, want bob's timer alone", sent)
	}
}

func TestList(t *testing.T) {
	clock := newClock()
	h := start(t, clock, driver.HarnessOptions{})
	ask(t, h, alice, `{"op":"set","in":"3m","id":"c"}`, 0)
	ask(t, h, alice, `{"op":"set","in":"1m","id":"a","data":[1,2]}`, 0)
	ask(t, h, alice, `{"op":"set","at":"`+stamp(2*time.Minute)+`"}`, 0)
	ask(t, h, bob, `{"op":"set","in":"1s","id":"bobs"}`, 0)

	m := ask(t, h, alice, `{"op":"list"}`, time.Second)
	ts, _ := m["timers"].([]any)
	if len(ts) != 3 {
		t.Fatalf("list = %v", m)
	}
	first, gen, last := ts[0].(map[string]any), ts[1].(map[string]any), ts[2].(map[string]any)
	if jsonOf(first) != jsonOf(map[string]any{"id": "a", "due": stamp(time.Minute), "data": []int{1, 2}}) {
		t.Errorf("first = %v", first)
	}
	if id, _ := gen["id"].(string); !strings.HasPrefix(id, "t-") || len(id) != 18 || gen["due"] != stamp(2*time.Minute) {
		t.Errorf("a timer with the driver's id: %v", gen)
	}
	if last["id"] != "c" || last["due"] != stamp(3*time.Minute) {
		t.Errorf("last = %v", last)
	}
	if l := ids(t, h, "n@carol:app:test"); len(l) != 0 {
		t.Errorf("a setter without timers lists %v", l)
	}

	ask(t, h, alice, `{"op":"set","in":"1m"}`, 0)
	ask(t, h, alice, `{"op":"set","in":"1m"}`, 0)
	l := ids(t, h, alice)
	seen := map[string]bool{}
	for _, id := range l {
		seen[id] = true
	}
	if len(l) != 5 || len(seen) != 5 {
		t.Errorf("the driver's ids are not unique: %v", l)
	}
}

func TestRefusals(t *testing.T) {
	clock := newClock()
	h := start(t, clock, driver.HarnessOptions{Config: json.RawMessage(`{"max_body_bytes":200}`)})
	ask(t, h, alice, `{"op":"set","in":"1m","id":"taken"}`, 0)
	for _, c := range []struct{ body, want string }{
		{`{"op":"set","in":"1s","at":"` + stamp(0) + `"}`, `exactly one of "in" and "at"`},
		{`{"op":"set"}`, `exactly one of "in" and "at"`},
		{`{"op":"set","in":"-1s"}`, `"in" is negative`},
		{`{"op":"set","in":"soon"}`, `"in" is not a duration`},
		{`{"op":"set","in":"1s","id":""}`, `"id" must be 1 to 128 bytes`},
		{`{"op":"set","in":"1s","id":"` + strings.Repeat("x", 129) + `"}`, `"id" must be 1 to 128 bytes`},
		{`{"op":"set","in":"1s","id":"a\nb"}`, `control character`},
		{`{"op":"set","at":"tomorrow"}`, `"at" is not an RFC 3339 time`},
		{`{"op":"set","in":"1m","id":"taken"}`, `timer "taken" is set already`},
		{`{"op":"set","in":"1s","when":"now"}`, `unknown field "when"`},
		{`{"op":"cancel"}`, `cancel takes "id" alone`},
		{`{"op":"cancel","id":"x","in":"1s"}`, `cancel takes "id" alone`},
		{`{"op":"list","id":"x"}`, `list takes nothing but op`},
		{`{"op":"snooze"}`, `unknown op "snooze"`},
		{`{}`, `unknown op ""`},
		{`not json`, `the body is not a timer request: not a JSON object`},
		{`"set"`, `the body is not a timer request: not a JSON object`},
		{`{"op":"set","in":1}`, `the body is not a timer request`},
		{`{"op":"list"} {"op":"list"}`, `more than one JSON value`},
		{`{"op":"set","in":"1s","data":"` + strings.Repeat("x", 200) + `"}`, `at most 200 (max_body_bytes)`},
	} {
		m := ask(t, h, alice, c.body, time.Second)
		if e, _ := m["error"].(string); !strings.Contains(e, c.want) || len(m) != 1 {
			t.Errorf("%s: answered %v, want an error saying %s", c.body, m, c.want)
		}
	}
	if l := ids(t, h, alice); len(l) != 1 {
		t.Errorf("refused sets left timers: %v", l)
	}

	// No one to answer: logged.
	if m := ask(t, h, alice, `{"op":"set","in":"-1s"}`, 0); m != nil {
		t.Errorf("a refusal to a request expecting none answered %v", m)
	}
	logs := h.Logs()
	if l := logs[len(logs)-1]; !strings.Contains(l.Message, alice) || !strings.Contains(l.Message, `"in" is negative`) {
		t.Errorf("the refusal was logged as %+v", l)
	}
}

// A setter may have max_timers_per_setter pending, whatever others have.
func TestBound(t *testing.T) {
	clock := newClock()
	h := start(t, clock, driver.HarnessOptions{Config: json.RawMessage(`{"max_timers_per_setter":3}`)})
	for i := range 3 {
		ask(t, h, alice, fmt.Sprintf(`{"op":"set","in":"1m","id":"%d"}`, i), 0)
	}
	m := ask(t, h, alice, `{"op":"set","in":"1m","id":"3"}`, time.Second)
	if e, _ := m["error"].(string); !strings.Contains(e, "3 timers of yours are pending, at most 3 (max_timers_per_setter)") {
		t.Errorf("the fourth set: %v", m)
	}
	if m := ask(t, h, bob, `{"op":"set","in":"1m","id":"3"}`, time.Second); m != nil && m["error"] != nil {
		t.Errorf("another setter refused: %v", m)
	}
	ask(t, h, alice, `{"op":"cancel","id":"0"}`, time.Second)
	if m := ask(t, h, alice, `{"op":"set","in":"1m","id":"3"}`, 0); m != nil {
		t.Errorf("a set after a cancel: %v", m)
	}
	if l := ids(t, h, alice); len(l) != 3 {
		t.Errorf("alice's timers: %v", l)
	}
}

func TestConfig(t *testing.T) {
	for _, c := range []struct{ config, want string }{
		{`{"max_timer":1}`, `unknown field "max_timer"`},
		{`{"max_timers_per_setter":0}`, "max_timers_per_setter is 0, want at least 1"},
		{`{"max_body_bytes":-1}`, "max_body_bytes is -1, want at least 1"},
		{`{"max_body_bytes":524289}`, "max_body_bytes is 524289, at most 524288"},
		{`[]`, "config: not a JSON object"},
		{`null`, "config: not a JSON object"},
	} {
		h := driver.NewHarness(timer.New(timer.Options{Clock: newClock()}), driver.HarnessOptions{Config: json.RawMessage(c.config)})
		if err := h.Start(t.Context()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config %s: %v, want an error saying %s", c.config, err, c.want)
		}
	}
	h := start(t, newClock(), driver.HarnessOptions{Config: json.RawMessage(`{"max_timers_per_setter":5,"max_body_bytes":524288}`)})
	if m := ask(t, h, alice, `{"op":"list"}`, time.Second); m["timers"] == nil {
		t.Errorf("list = %v", m)
	}
	d := timer.New(timer.Options{})
	h = driver.NewHarness(d, driver.HarnessOptions{})
	if err := h.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	h.Stop()
	if err := d.Start(t.Context(), driver.Start{Config: json.RawMessage("{}")}); err == nil {
		t.Errorf("a second Start of one driver value succeeded")
	}
}

// Timers outlive the driver's run: after a restart one already due fires
// at once, once, saying how late; a held request lost with the run is
// delivered as a new request.
func TestRestart(t *testing.T) {
	clock := newClock()
	h := start(t, clock, driver.HarnessOptions{})
	ask(t, h, alice, `{"op":"set","in":"10s","id":"soon","data":{"n":1}}`, 0, driver.Messaging(alice))
	ask(t, h, alice, `{"op":"set","in":"1h","id":"later"}`, 0)
	c := held(t, h, bob, "held", `{"op":"set","in":"20s","id":"held"}`, time.Hour)

	h.Stop()
	if m := receive(t, c); m["request error"] == nil || !strings.Contains(m["request error"].(string), "killed") {
		t.Errorf("the held request, when its run ended: %v", m)
	}
	clock.Advance(time.Minute)
	time.Sleep(20 * time.Millisecond)
	if s := h.Sent(); len(s) != 0 {
		t.Fatalf("a stopped driver delivered %v", s)
	}

	if err := h.Restart(t.Context(), timer.New(timer.Options{Clock: clock})); err != nil {
		t.Fatal(err)
	}
	sent, err := h.WaitSent(ctxT(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	byTarget := map[string]driver.Message{}
	for _, m := range sent {
		byTarget[m.Target] = m
	}
	soon, late := byTarget[alice], byTarget[bob]
	want := jsonOf(map[string]any{"id": "soon", "due": stamp(10 * time.Second), "fired": stamp(time.Minute), "late_ms": 50_000, "data": map[string]any{"n": 1}})
	if canon(soon.Body) != want || len(soon.Capabilities) != 1 || !driver.IsMessaging(soon.Capabilities[0], alice) || soon.Metadata != timer.Metadata {
		t.Errorf("the due timer delivered %+v, want body %s with alice's capability", soon, want)
	}
	want = jsonOf(map[string]any{"id": "held", "due": stamp(20 * time.Second), "fired": stamp(time.Minute), "late_ms": 40_000})
	if canon(late.Body) != want || len(late.Capabilities) != 1 || !driver.IsMessaging(late.Capabilities[0], bob) {
		t.Errorf("the held timer delivered %+v, want body %s with bob's capability", late, want)
	}
	eventually(t, "fired records deleted", func() bool { return stored(t, h) == 1 })
	if l := ids(t, h, alice); len(l) != 1 || l[0] != "later" {
		t.Errorf("pending after the restart: %v", l)
	}

	// Once: not again at the next restart, nor later.
	if err := h.Restart(t.Context(), timer.New(timer.Options{Clock: clock})); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	time.Sleep(20 * time.Millisecond)
	if n := len(h.Sent()); n != 2 {
		t.Errorf("%d deliveries, want 2", n)
	}
	clock.Advance(time.Hour)
	if sent, err := h.WaitSent(ctxT(t), 3); err != nil || sent[2].Target != alice || !strings.Contains(string(sent[2].Body), `"id":"later"`) {
		t.Errorf("the later timer: %v, %v", sent, err)
	}
}

// A delivery the node refuses is logged and the timer dropped; one whose
// capability the driver no longer holds is sent once more without it.
func TestDeliveryRefused(t *testing.T) {
	clock := newClock()
	h := start(t, clock, driver.HarnessOptions{OnSend: func(_ context.Context, m driver.Message) (*driver.Answer, error) {
		switch {
		case m.Target == bob:
			return nil, &driver.SendError{Kind: weftv1.SendErrorKind_SEND_ERROR_KIND_NO_SUCH_PROCESS, Target: m.Target, Detail: "bob is gone"}
		case len(m.Capabilities) > 0:
			return nil, &driver.SendError{Kind: weftv1.SendErrorKind_SEND_ERROR_KIND_NO_CAPABILITY, Target: m.Target, Detail: "not held"}
		}
		return &driver.Answer{}, nil
	}})
	ask(t, h, bob, `{"op":"set","in":"1s","id":"b"}`, 0)
	ask(t, h, alice, `{"op":"set","in":"2s","id":"a"}`, 0, driver.Messaging(alice))
	clock.Advance(3 * time.Second)
	sent, err := h.WaitSent(ctxT(t), 3)
	if err != nil {
		t.Fatal(err)
	}
	if sent[0].Target != bob || sent[1].Target != alice || len(sent[1].Capabilities) != 1 || sent[2].Target != alice || len(sent[2].Capabilities) != 0 {
		t.Errorf("sent %+v: want bob's, then alice's with her capability and again without", sent)
	}
	// Bob's is tried again for timer.RetryFor, then dropped.
	eventually(t, "alice's record deleted", func() bool { return stored(t, h) == 1 })
	for range int(timer.RetryFor/timer.RetryMax) + 2 {
		// The driver arms the retry after the refused send returns:
		// advancing before it has would leave the retry for ever ahead.
		eventually(t, "a retry armed, or the drop", func() bool { return clock.pending() > 0 || stored(t, h) == 0 })
		if stored(t, h) == 0 {
			break
		}
		n := len(h.Sent())
		clock.Advance(timer.RetryMax)
		if stored(t, h) == 0 {
			break
		}
		eventually(t, "a retry or the drop", func() bool { return len(h.Sent()) > n || stored(t, h) == 0 })
	}
	eventually(t, "both records deleted", func() bool { return stored(t, h) == 0 })
	var logged bool
	for _, l := range h.Logs() {
		if strings.Contains(l.Message, `n@bob:app:test's timer "b" fired but could not be delivered, and is dropped`) && strings.Contains(l.Message, "bob is gone") {
			logged = true
		}
	}
	if !logged {
		t.Errorf("the refused delivery was not logged: %+v", h.Logs())
	}
}

// Many setters set and cancel at once, and every held request gets its
// own answer.
func TestHammer(t *testing.T) {
	clock := newClock()
	h := start(t, clock, driver.HarnessOptions{})
	ctx := ctxT(t)
	const setters, each = 8, 16
	src := func(s int) string { return fmt.Sprintf("n@s%d:app:test", s) }
	var wg sync.WaitGroup
	answers := make(chan string, setters*each+setters)
	request := func(s int, body string, timeout time.Duration) {
		resp, err := h.Request(ctx, driver.HarnessRequest{Source: src(s), Body: []byte(body), Timeout: timeout})
		switch {
		case err != nil:
			answers <- err.Error()
		case resp == nil:
			answers <- "no answer"
		default:
			answers <- string(resp.Body)
		}
	}
	for s := range setters {
		for i := range each {
			wg.Go(func() { request(s, fmt.Sprintf(`{"op":"set","in":"%ds","id":"%d"}`, i+1, i), time.Hour) })
		}
	}
	eventually(t, "every timer pending", func() bool {
		for s := range setters {
			if len(ids(t, h, src(s))) != each {
				return false
			}
		}
		return true
	})
	var cancels sync.WaitGroup
	for s := range setters {
		cancels.Go(func() { request(s, `{"op":"cancel","id":"0"}`, time.Second) })
	}
	cancels.Wait()
	clock.Advance(time.Minute)
	wg.Wait()
	close(answers)
	n := map[string]int{}
	for a := range answers {
		switch {
		case a == `{"cancelled":true}`:
			n["cancel"]++
		case strings.Contains(a, `"cancelled":true`):
			n["cancelled"]++
		case strings.Contains(a, `"late_ms"`):
			n["fired"]++
		default:
			t.Errorf("answer %s", a)
		}
	}
	if n["cancel"] != setters || n["cancelled"] != setters || n["fired"] != setters*(each-1) {
		t.Errorf("answers %v, want %d cancels, %d held answered cancelled and %d fired", n, setters, setters, setters*(each-1))
	}
	if got := stored(t, h); got != 0 {
		t.Errorf("%d records left", got)
	}
}

// A setter that is not running yet when its timer fires (the node starts
// drivers before packages) gets the firing once it is: the delivery is
// tried again.
func TestDeliveryRetried(t *testing.T) {
	clock := newClock()
	var mu sync.Mutex
	refusals := 2
	h := start(t, clock, driver.HarnessOptions{OnSend: func(_ context.Context, m driver.Message) (*driver.Answer, error) {
		mu.Lock()
		defer mu.Unlock()
		if refusals > 0 {
			refusals--
			return nil, &driver.SendError{Kind: weftv1.SendErrorKind_SEND_ERROR_KIND_NO_SUCH_PROCESS, Target: m.Target, Detail: "not yet"}
		}
		return &driver.Answer{}, nil
	}})
	ask(t, h, alice, `{"op":"set","in":"1s","id":"a"}`, 0, driver.Messaging(alice))
	clock.Advance(time.Second)
	if _, err := h.WaitSent(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 3; i++ {
		// The driver arms the retry after the refused send returns:
		// advancing before it has would leave the retry for ever ahead.
		eventually(t, "the retry armed", func() bool { return clock.pending() > 0 })
		clock.Advance(timer.RetryMax)
		if _, err := h.WaitSent(ctxT(t), i); err != nil {
			t.Fatalf("try %d: %v", i, err)
		}
	}
	eventually(t, "the record deleted once delivered", func() bool { return stored(t, h) == 0 })
	clock.Advance(time.Minute)
	if n := len(h.Sent()); n != 3 {
		t.Errorf("%d sends, want 3 (two refused, one delivered)", n)
	}
}

// A set with "ack" is answered at once, once stored, and its firing is
// delivered as a new request.
func TestAck(t *testing.T) {
	clock := newClock()
	h := start(t, clock, driver.HarnessOptions{})
	m := ask(t, h, alice, `{"op":"set","in":"5s","id":"a","ack":true}`, time.Minute, driver.Messaging(alice))
	if m["id"] != "a" || m["due"] != stamp(5*time.Second) {
		t.Fatalf("ack %v", m)
	}
	if n := stored(t, h); n != 1 {
		t.Fatalf("%d timers stored at the ack, want 1", n)
	}
	if m := ask(t, h, alice, `{"op":"set","in":"5s","id":"a","ack":true}`, time.Minute); m["error"] == nil {
		t.Errorf("a second set of the same id acked: %v", m)
	}
	clock.Advance(5 * time.Second)
	sent, err := h.WaitSent(ctxT(t), 1)
	if err != nil || sent[0].Target != alice || sent[0].Metadata != timer.Metadata {
		t.Fatalf("delivered %+v, %v", sent, err)
	}
}
