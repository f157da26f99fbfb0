// Package timer is the in-tree timer driver, timer:drivers:weft, as a
// library (plugins/cmd/timer serves it): it owns timers that processes
// set, which fire once, outlive the driver's runs and the node's
// restarts, and are answered or delivered when due. docs/drivers.md,
// "The timer driver", says the same for users.
//
// # Protocol
//
// Requests and answers are JSON objects; "op" says what a request asks.
// Timers belong to their setter, the request's source address: each
// setter names, lists and cancels only its own.
//
//	{"op":"set","in":"2s"}                       fire 2 s from now ("in": a Go duration, "250ms", "1h30m"; not negative)
//	{"op":"set","at":"2026-12-03T18:00:00Z"}     fire at that time (RFC 3339; a time past fires at once)
//	{"op":"cancel","id":"ID"}                    → {"cancelled":true}, or {"cancelled":false} when no such timer is pending
//	{"op":"list"}                                → {"timers":[{"id":"ID","due":"RFC3339Nano","data":DATA},…]}, by due time
//
// A set with "ack": true is answered at once, once the timer is stored,
// with {"id":"ID","due":"RFC3339Nano"}, and its firing delivered as a new
// request (below): the way to know a timer is set, durably, before going
// on.
//
// A set takes exactly one of "in" and "at", and optionally "id" (the
// setter's name for the timer, 1 to 128 bytes of UTF-8 without control
// characters; by default the driver makes one, "t-" and 16 hex digits,
// unique) and "data" (any JSON value, handed back when it fires).
//
// When a timer fires, its firing is
//
//	{"id":"ID","due":"RFC3339Nano","fired":"RFC3339Nano","late_ms":N,"data":DATA}
//
// (times in UTC; late_ms is how long after due it fired, 0 when on time;
// data is left out when the set gave none). A set request that expects a
// response is held — no answer until the timer fires — and answered with
// the firing; or with {"id":"ID","cancelled":true} when it is cancelled
// first. Every other firing is delivered to the setter as a new request
// that expects no response, with metadata "timer" and the firing as its
// body: when the set expected no response, when its requester stopped
// waiting (the driver lets go of a held request shortly before the
// requester's timeout, 250 ms or a tenth of the timeout when that is
// less, so that no answer arrives too late to be taken), or when the
// held request was lost with a restart of the driver or the node.
//
// Delivery needs the driver to be allowed to message the setter: the
// setter attaches its own messaging capability (issuer its address,
// params "messaging") to the set request, or its package grants it to
// timer:drivers:weft, or it is public. The driver keeps the attached
// capability with the timer and attaches it to the delivery (and, should
// the node refuse that attachment, sends once more without it). A
// delivery the node refuses — no capability, a full mailbox, a setter
// not running — is tried again, after 100 ms and then twice as long each
// time up to 10 s, for 2 minutes (the node starts its drivers before the
// installed packages, so a timer due at a start fires before its setter
// is back); then it is logged with the reason and the timer dropped.
//
// A request the driver cannot take is answered {"error":"…"} (the
// request itself succeeded): a body that is not one JSON object of the
// fields above, over max_body_bytes, an unknown op, a set with both or
// neither of "in" and "at", a bad duration or time, a bad id, an id the
// setter has pending already, or more than max_timers_per_setter pending
// timers of the setter. A refused request that expects no response has
// no one to answer: the refusal is logged.
//
// # Durability
//
// Every timer is written to the driver's own database "timers" before
// set holds its request or returns, and deleted once it has fired or is
// cancelled. A delivered firing is sent first and deleted after, so a
// crash between the two fires it again at the next start: at least once,
// once in practice. A held request's record is deleted as its answer is
// returned; should the driver die in between, the requester gets the
// node's killed error. At each start the driver loads every stored timer
// and schedules it; one already due fires at once, with late_ms saying
// how late, and is delivered as a new request (no request is held across
// a restart).
//
// # Configuration
//
// The driver's config table takes max_timers_per_setter (10000) and
// max_body_bytes (65536, at most 524288: a timer must fit a database
// value). Unknown keys, and values below 1, fail Start.
package timer

import (
	"bytes"
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/plugins/driver"
)

// Defaults and bounds of the configuration, and of ids.
const (
	DefaultMaxTimersPerSetter = 10_000
	DefaultMaxBodyBytes       = 64 << 10
	// MaxBodyBytes bounds max_body_bytes: a timer's record (its body's
	// data, the setter's address and capability) must fit one database
	// value, 1 MiB.
	MaxBodyBytes = 512 << 10
	// MaxIDBytes bounds a timer's id.
	MaxIDBytes = 128
)

// DB is the driver's database of pending timers.
const DB = "timers"

// Metadata is the metadata of a delivered firing.
const Metadata = "timer"

// Clock is what the driver reads the time from and waits on.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f on a goroutine of its own once d has passed,
	// unless stop, called first, reports that it kept f from running.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// SystemClock is the system's clock.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// Options configure New.
type Options struct {
	// Clock is the system's when nil.
	Clock Clock
}

// New returns the timer driver, to be started once.
func New(o Options) driver.Driver {
	if o.Clock == nil {
		o.Clock = SystemClock()
	}
	return &timers{
		clock:  o.Clock,
		byKey:  map[string]*timer{},
		counts: map[string]int{},
		wake:   make(chan struct{}, 1),
	}
}

// timers is the driver.
type timers struct {
	clock Clock
	wake  chan struct{} // the earliest timer may be due

	mu     sync.Mutex
	run    *run
	byKey  map[string]*timer // every timer not yet deleted, by its database key
	counts map[string]int    // timers in byKey per setter
	queue  queue             // pending timers, earliest first
	seq    uint64
	stop   func() bool // stops the clock's wait for queue[0]
	armed  time.Time   // when that wait ends
}

// run is what Start was given, and the configuration.
type run struct {
	ctx  context.Context
	node *driver.Node
	db   *driver.KV
	cfg  config
}

// A timer is one timer, from the set until its record is deleted.
type timer struct {
	key    string
	setter string
	id     string
	due    time.Time
	data   json.RawMessage
	cap    *weftv1.Capability // the setter's messaging capability, or nil

	state state
	index int    // in the queue, while pending
	seq   uint64 // order among timers due at the same time
	// held receives the outcome of the set request that is held for the
	// timer, while one is.
	held chan outcome
}

type state int

const (
	saving     state = iota // being written; not yet pending
	pending                 // in the queue
	cancelling              // out of the queue, being deleted
	fired                   // out of the queue, being answered or delivered
)

// outcome ends a held set request: the timer fired, or was cancelled.
type outcome struct {
	firing    *firing
	cancelled bool
}

// firing is the body of a timer's answer or delivery.
type firing struct {
	ID     string          `json:"id"`
	Due    string          `json:"due"`
	Fired  string          `json:"fired"`
	LateMS int64           `json:"late_ms"`
	Data   json.RawMessage `json:"data,omitempty"`
}

// record is a timer as its database keeps it.
type record struct {
	V      int             `json:"v"`
	Setter string          `json:"setter"`
	ID     string          `json:"id"`
	Due    time.Time       `json:"due"`
	Data   json.RawMessage `json:"data,omitempty"`
	Cap    *capRecord      `json:"cap,omitempty"`
}

type capRecord struct {
	Issuer string `json:"issuer"`
	Params string `json:"params"`
}

// key is a timer's database key: the setter's address (which holds no
// NUL), NUL, the id.
func key(setter, id string) string { return setter + "\x00" + id }

// config is the driver's configuration.
type config struct {
	MaxTimersPerSetter int
	MaxBodyBytes       int
}

func parseConfig(b json.RawMessage) (config, error) {
	var c struct {
		MaxTimersPerSetter *int `json:"max_timers_per_setter"`
		MaxBodyBytes       *int `json:"max_body_bytes"`
	}
	if len(b) == 0 {
		b = json.RawMessage("{}")
	}
	if err := decodeStrict(b, &c); err != nil {
		return config{}, err
	}
	cfg := config{MaxTimersPerSetter: DefaultMaxTimersPerSetter, MaxBodyBytes: DefaultMaxBodyBytes}
	for _, f := range []struct {
		name string
		v    *int
		to   *int
		max  int
	}{
		{"max_timers_per_setter", c.MaxTimersPerSetter, &cfg.MaxTimersPerSetter, 0},
		{"max_body_bytes", c.MaxBodyBytes, &cfg.MaxBodyBytes, MaxBodyBytes},
	} {
		switch {
		case f.v == nil:
		case *f.v < 1:
			return config{}, fmt.Errorf("%s is %d, want at least 1", f.name, *f.v)
		case f.max > 0 && *f.v > f.max:
			return config{}, fmt.Errorf("%s is %d, at most %d", f.name, *f.v, f.max)
		default:
			*f.to = *f.v
		}
	}
	return cfg, nil
}

// isObject reports whether the JSON value b is an object.
func isObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

// decodeStrict decodes one JSON object from b into v, refusing unknown
// fields and anything after the object.
func decodeStrict(b []byte, v any) error {
	if !isObject(b) {
		return errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("more than one JSON value")
	}
	return nil
}

// Start loads the stored timers and starts the clock.
func (t *timers) Start(ctx context.Context, s driver.Start) error {
	cfg, err := parseConfig(s.Config)
	if err != nil {
		return fmt.Errorf("timer: config: %w", err)
	}
	t.mu.Lock()
	if t.run != nil {
		t.mu.Unlock()
		return errors.New("timer: started already (a run starts a new driver)")
	}
	t.run = &run{ctx: ctx, node: s.Node, cfg: cfg} // Handle waits for db
	t.mu.Unlock()

	db, err := s.Node.OpenKV(ctx, DB)
	if err != nil {
		return fmt.Errorf("timer: open database %s: %w", DB, err)
	}
	pairs, err := db.All(ctx, nil)
	if err != nil {
		return fmt.Errorf("timer: load timers: %w", err)
	}
	now := t.clock.Now()
	var due int
	t.mu.Lock()
	t.run.db = db
	for _, p := range pairs {
		var rec record
		if err := json.Unmarshal(p.Value, &rec); err != nil || rec.V != 1 || key(rec.Setter, rec.ID) != string(p.Key) {
			s.Node.Log(ctx, slog.LevelWarn, fmt.Sprintf("timer: a stored timer cannot be read and is left alone: key %q: %v", p.Key, err))
			continue
		}
		tm := &timer{key: string(p.Key), setter: rec.Setter, id: rec.ID, due: rec.Due, data: rec.Data}
		if rec.Cap != nil {
			tm.cap = &weftv1.Capability{Issuer: rec.Cap.Issuer, Params: rec.Cap.Params}
		}
		t.addLocked(tm)
		t.pushLocked(tm)
		if !tm.due.After(now) {
			due++
		}
	}
	n := len(t.byKey)
	t.armLocked()
	t.mu.Unlock()
	s.Node.Log(ctx, slog.LevelInfo, fmt.Sprintf("timer: started with %d stored timers, %d of them due", n, due))
	go t.loop(ctx)
	return nil
}

// current is the run, once Start has opened the database.
func (t *timers) current() *run {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.run == nil || t.run.db == nil {
		return nil
	}
	return t.run
}

// request is a request's body.
type request struct {
	Op   string          `json:"op"`
	In   *string         `json:"in"`
	At   *string         `json:"at"`
	ID   *string         `json:"id"`
	Data json.RawMessage `json:"data"`
	// Ack answers a set at once, once the timer is stored, and delivers
	// its firing as a new request.
	Ack bool `json:"ack"`
}

// Handle answers set, cancel and list.
func (t *timers) Handle(ctx context.Context, r *driver.Request) *driver.Response {
	rn := t.current()
	if rn == nil {
		return t.refuse(ctx, nil, r, "the timer driver has not started")
	}
	if n := len(r.Body()); n > rn.cfg.MaxBodyBytes {
		return t.refuse(ctx, rn, r, fmt.Sprintf("the body is %d bytes, at most %d (max_body_bytes)", n, rn.cfg.MaxBodyBytes))
	}
	var req request
	if err := decodeStrict(r.Body(), &req); err != nil {
		return t.refuse(ctx, rn, r, "the body is not a timer request: "+err.Error())
	}
	switch req.Op {
	case "set":
		return t.set(ctx, rn, r, &req)
	case "cancel":
		if req.ID == nil || req.In != nil || req.At != nil || req.Data != nil {
			return t.refuse(ctx, rn, r, `cancel takes "id" alone`)
		}
		return t.cancel(ctx, rn, r, *req.ID)
	case "list":
		if req.ID != nil || req.In != nil || req.At != nil || req.Data != nil {
			return t.refuse(ctx, rn, r, "list takes nothing but op")
		}
		return t.list(r.Source())
	}
	return t.refuse(ctx, rn, r, fmt.Sprintf(`unknown op %q: want "set", "cancel" or "list"`, req.Op))
}

// refuse answers an application error, or logs it for a request that
// expects no answer.
func (t *timers) refuse(ctx context.Context, rn *run, r *driver.Request, msg string) *driver.Response {
	if r.WantsResponse() {
		return driver.ReplyJSON(map[string]string{"error": msg})
	}
	if rn != nil {
		rn.node.Log(ctx, slog.LevelWarn, fmt.Sprintf("timer: refused request %d from %s, which expects no answer: %s", r.ID(), r.Source(), msg))
	}
	return nil
}

func (t *timers) set(ctx context.Context, rn *run, r *driver.Request, req *request) *driver.Response {
	now := t.clock.Now()
	var due time.Time
	switch {
	case (req.In == nil) == (req.At == nil):
		return t.refuse(ctx, rn, r, `set takes exactly one of "in" and "at"`)
	case req.In != nil:
		d, err := time.ParseDuration(*req.In)
		if err != nil {
			return t.refuse(ctx, rn, r, fmt.Sprintf(`"in" is not a duration such as "2s" or "1h30m": %v`, err))
		}
		if d < 0 {
			return t.refuse(ctx, rn, r, fmt.Sprintf(`"in" is negative: %s`, *req.In))
		}
		due = now.Add(d)
	default:
		at, err := time.Parse(time.RFC3339Nano, *req.At)
		if err != nil {
			return t.refuse(ctx, rn, r, fmt.Sprintf(`"at" is not an RFC 3339 time such as "2026-12-03T18:00:00Z": %v`, err))
		}
		due = at
	}
	if req.ID != nil {
		if err := checkID(*req.ID); err != nil {
			return t.refuse(ctx, rn, r, err.Error())
		}
	}
	setter := r.Source()
	tm := &timer{setter: setter, due: due, data: req.Data}
	for _, c := range r.Capabilities() {
		if driver.IsMessaging(c, setter) {
			tm.cap = &weftv1.Capability{Issuer: c.GetIssuer(), Params: c.GetParams()}
		}
	}

	t.mu.Lock()
	if n := t.counts[setter]; n >= rn.cfg.MaxTimersPerSetter {
		t.mu.Unlock()
		return t.refuse(ctx, rn, r, fmt.Sprintf("%d timers of yours are pending, at most %d (max_timers_per_setter)", n, rn.cfg.MaxTimersPerSetter))
	}
	if req.ID != nil {
		tm.id = *req.ID
		if t.byKey[key(setter, tm.id)] != nil {
			t.mu.Unlock()
			return t.refuse(ctx, rn, r, fmt.Sprintf("timer %q is set already", tm.id))
		}
	} else {
		for tm.id == "" || t.byKey[key(setter, tm.id)] != nil {
			tm.id = newID()
		}
	}
	tm.key = key(setter, tm.id)
	t.addLocked(tm) // saving: holds the id and counts
	t.mu.Unlock()

	rec := record{V: 1, Setter: setter, ID: tm.id, Due: due, Data: tm.data}
	if tm.cap != nil {
		rec.Cap = &capRecord{Issuer: tm.cap.GetIssuer(), Params: tm.cap.GetParams()}
	}
	b, err := json.Marshal(rec)
	if err == nil {
		err = rn.db.Set(ctx, []byte(tm.key), b)
	}
	if err != nil {
		t.forget(tm)
		return t.refuse(ctx, rn, r, fmt.Sprintf("timer %q could not be stored: %v", tm.id, err))
	}

	var held chan outcome
	if r.WantsResponse() && !req.Ack {
		held = make(chan outcome, 1)
	}
	t.mu.Lock()
	tm.held = held
	t.pushLocked(tm)
	t.armLocked()
	t.mu.Unlock()
	if held == nil {
		if req.Ack && r.WantsResponse() {
			return driver.ReplyJSON(map[string]string{"id": tm.id, "due": stamp(due)})
		}
		return nil
	}
	return t.hold(ctx, rn, r, tm, held)
}

// holdMargin is how long before the requester's timeout the driver lets
// go of a held request: at most 250 ms, at most a tenth of the timeout.
func holdMargin(timeout time.Duration) time.Duration { return min(250*time.Millisecond, timeout/10) }

// hold waits for tm's outcome and answers it, or lets the request go
// shortly before its requester stops waiting; tm then fires as a
// delivery.
func (t *timers) hold(ctx context.Context, rn *run, r *driver.Request, tm *timer, held chan outcome) *driver.Response {
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if dl, ok := ctx.Deadline(); ok {
		var cancelDl context.CancelFunc
		hctx, cancelDl = context.WithDeadline(hctx, dl.Add(-holdMargin(r.Timeout())))
		defer cancelDl()
	}
	defer context.AfterFunc(rn.ctx, cancel)()

	var o outcome
	select {
	case o = <-held:
	case <-hctx.Done():
		t.mu.Lock()
		if tm.held == held {
			tm.held = nil // fires as a delivery
			t.mu.Unlock()
			return nil
		}
		t.mu.Unlock()
		// It fired or was cancelled just now, to a requester that is
		// going: deliver the firing instead.
		if o = <-held; o.firing != nil {
			t.deliver(rn, tm, o.firing)
		}
		return nil
	}
	if o.cancelled {
		return driver.ReplyJSON(map[string]any{"id": tm.id, "cancelled": true})
	}
	t.remove(rn, tm)
	return driver.ReplyJSON(o.firing)
}

func (t *timers) cancel(ctx context.Context, rn *run, r *driver.Request, id string) *driver.Response {
	k := key(r.Source(), id)
	t.mu.Lock()
	tm := t.byKey[k]
	if tm == nil || tm.state != pending {
		t.mu.Unlock()
		return driver.ReplyJSON(map[string]bool{"cancelled": false})
	}
	heap.Remove(&t.queue, tm.index)
	tm.state = cancelling
	t.armLocked()
	t.mu.Unlock()

	if err := rn.db.Delete(ctx, []byte(k)); err != nil {
		t.mu.Lock()
		t.pushLocked(tm)
		t.armLocked()
		t.mu.Unlock()
		return t.refuse(ctx, rn, r, fmt.Sprintf("timer %q could not be cancelled: %v", id, err))
	}
	held := t.forget(tm)
	if held != nil {
		held <- outcome{cancelled: true}
	}
	return driver.ReplyJSON(map[string]bool{"cancelled": true})
}

// listed is a pending timer in list's answer.
type listed struct {
	ID   string          `json:"id"`
	Due  string          `json:"due"`
	Data json.RawMessage `json:"data,omitempty"`
}

func (t *timers) list(setter string) *driver.Response {
	t.mu.Lock()
	var ts []*timer
	for _, tm := range t.byKey {
		if tm.setter == setter && tm.state == pending {
			ts = append(ts, tm)
		}
	}
	t.mu.Unlock()
	slices.SortFunc(ts, func(a, b *timer) int {
		if c := a.due.Compare(b.due); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	out := make([]listed, len(ts))
	for i, tm := range ts {
		out[i] = listed{ID: tm.id, Due: stamp(tm.due), Data: tm.data}
	}
	return driver.ReplyJSON(map[string][]listed{"timers": out})
}

// stamp formats t for a firing or a list.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// checkID checks a setter's id for a timer.
func checkID(id string) error {
	if id == "" || len(id) > MaxIDBytes || !utf8.ValidString(id) {
		return fmt.Errorf(`"id" must be 1 to %d bytes of UTF-8`, MaxIDBytes)
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return fmt.Errorf(`"id" holds the control character %U`, r)
		}
	}
	return nil
}

// newID is a fresh id for a timer: "t-" and 16 hex digits.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "t-" + hex.EncodeToString(b[:])
}

// addLocked makes tm known and counted, saving. t.mu is held.
func (t *timers) addLocked(tm *timer) {
	tm.state = saving
	t.byKey[tm.key] = tm
	t.counts[tm.setter]++
}

// pushLocked queues tm, pending. t.mu is held.
func (t *timers) pushLocked(tm *timer) {
	tm.state = pending
	t.seq++
	tm.seq = t.seq
	heap.Push(&t.queue, tm)
}

// forget drops tm, whose record is gone (or was never written), and
// returns the held request it still had.
func (t *timers) forget(tm *timer) chan outcome {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byKey[tm.key] == tm {
		delete(t.byKey, tm.key)
		if t.counts[tm.setter]--; t.counts[tm.setter] == 0 {
			delete(t.counts, tm.setter)
		}
	}
	held := tm.held
	tm.held = nil
	return held
}

// armLocked makes the clock wake the loop when the earliest timer is
// due. t.mu is held.
func (t *timers) armLocked() {
	if len(t.queue) == 0 {
		if t.stop != nil {
			t.stop()
			t.stop = nil
		}
		return
	}
	due := t.queue[0].due
	if t.stop != nil && t.armed.Equal(due) {
		return
	}
	if t.stop != nil {
		t.stop()
	}
	t.armed = due
	t.stop = t.clock.AfterFunc(due.Sub(t.clock.Now()), func() {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	})
}

// loop fires the timers as they fall due, until the run ends.
func (t *timers) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			t.mu.Lock()
			if t.stop != nil {
				t.stop()
				t.stop = nil
			}
			t.mu.Unlock()
			return
		case <-t.wake:
		}
		if ctx.Err() == nil {
			t.fireDue()
		}
	}
}

// fireDue fires every timer that is due: a held request is handed its
// firing, and the others are delivered, in order.
func (t *timers) fireDue() {
	t.mu.Lock()
	rn := t.run
	now := t.clock.Now()
	type delivery struct {
		tm *timer
		f  *firing
	}
	var out []delivery
	for len(t.queue) > 0 && !t.queue[0].due.After(now) {
		tm := heap.Pop(&t.queue).(*timer)
		tm.state = fired
		f := &firing{ID: tm.id, Due: stamp(tm.due), Fired: stamp(now), LateMS: max(0, now.Sub(tm.due).Milliseconds()), Data: tm.data}
		if tm.held != nil {
			tm.held <- outcome{firing: f}
			tm.held = nil
			continue
		}
		out = append(out, delivery{tm, f})
	}
	// Arm anew even for the same due time: a clock that woke the loop
	// before it (a wall clock set back) must wake it again.
	if t.stop != nil {
		t.stop()
		t.stop = nil
	}
	t.armLocked()
	t.mu.Unlock()
	for _, d := range out {
		t.deliver(rn, d.tm, d.f)
	}
}

// Redelivery: a delivery the node refuses for a reason that may pass —
// the setter is not running yet (the node starts its drivers before the
// installed packages' processes, so a timer due at the start fires before
// its setter is back), the driver does not hold the capability yet (the
// packages' grants come back with them), a full mailbox — is tried again
// after RetryFirst, then twice as long each time up to RetryMax, for
// RetryFor after the first try; then the timer is dropped, logged.
const (
	RetryFirst = 100 * time.Millisecond
	RetryMax   = 10 * time.Second
	RetryFor   = 2 * time.Minute
)

// retryable reports whether a refused delivery may succeed later.
func retryable(err error) bool {
	var se *driver.SendError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Kind {
	case weftv1.SendErrorKind_SEND_ERROR_KIND_NO_SUCH_PROCESS, weftv1.SendErrorKind_SEND_ERROR_KIND_NO_CAPABILITY,
		weftv1.SendErrorKind_SEND_ERROR_KIND_MAILBOX_FULL, weftv1.SendErrorKind_SEND_ERROR_KIND_OFFLINE:
		return true
	}
	return false
}

// deliver sends a firing to its setter as a new request, and deletes the
// timer after. A delivery the node refuses is tried again while it may
// still succeed (see RetryFor), and then logged and the timer dropped.
// When the run is ending, the record stays for the next run.
func (t *timers) deliver(rn *run, tm *timer, f *firing) {
	t.deliverTry(rn, tm, f, t.clock.Now(), RetryFirst)
}

func (t *timers) deliverTry(rn *run, tm *timer, f *firing, first time.Time, wait time.Duration) {
	body, err := json.Marshal(f)
	if err != nil {
		panic("timer: a firing does not encode: " + err.Error()) // its data was decoded JSON
	}
	m := driver.Message{Target: tm.setter, Body: body, Metadata: Metadata}
	if tm.cap != nil {
		m.Capabilities = []*weftv1.Capability{tm.cap}
	}
	_, err = rn.node.Send(rn.ctx, m)
	var se *driver.SendError
	if errors.As(err, &se) && se.Kind == weftv1.SendErrorKind_SEND_ERROR_KIND_NO_CAPABILITY && m.Capabilities != nil {
		// The driver no longer holds the capability it kept (the node
		// restarted); the setter may be public, or have granted it.
		m.Capabilities = nil
		_, err = rn.node.Send(rn.ctx, m)
	}
	if err != nil {
		if rn.ctx.Err() != nil {
			return // the next run fires it again
		}
		if retryable(err) && t.clock.Now().Add(wait).Sub(first) <= RetryFor {
			t.clock.AfterFunc(wait, func() {
				if rn.ctx.Err() == nil {
					t.deliverTry(rn, tm, f, first, min(2*wait, RetryMax))
				}
			})
			return
		}
		rn.node.Log(rn.ctx, slog.LevelWarn, fmt.Sprintf("timer: %s's timer %q fired but could not be delivered, and is dropped: %v", tm.setter, tm.id, err))
	}
	t.remove(rn, tm)
}

// remove deletes a timer that fired, and forgets it.
func (t *timers) remove(rn *run, tm *timer) {
	if err := rn.db.Delete(rn.ctx, []byte(tm.key)); err != nil {
		if rn.ctx.Err() != nil {
			return
		}
		rn.node.Log(rn.ctx, slog.LevelWarn, fmt.Sprintf("timer: %s's timer %q fired, but its record could not be deleted and it will fire again at the next start: %v", tm.setter, tm.id, err))
	}
	t.forget(tm)
}

// queue is a min-heap of pending timers by due time, then by when they
// were queued.
type queue []*timer

func (q queue) Len() int { return len(q) }

func (q queue) Less(i, j int) bool {
	if c := q[i].due.Compare(q[j].due); c != 0 {
		return c < 0
	}
	return q[i].seq < q[j].seq
}

func (q queue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}

func (q *queue) Push(x any) {
	tm := x.(*timer)
	tm.index = len(*q)
	*q = append(*q, tm)
}

func (q *queue) Pop() any {
	old := *q
	tm := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	tm.index = -1
	return tm
}
