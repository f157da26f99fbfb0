package driver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftos/weft/abi"
	"github.com/weftos/weft/api/driverv1"
	"github.com/weftos/weft/api/weftv1"
)

// Harness runs a Driver in the calling process against a fake node, so
// that a driver's author can test it without weftd: requests go to the
// driver as weftd would deliver them (through Local, so a panic is an
// error), the driver's sends go to HarnessOptions.OnSend and are
// recorded, its log lines are recorded, and its databases and drives are
// a MemStore that outlives a run, for testing what a driver keeps across
// restarts.
//
// The harness is no kernel: it checks no capabilities (OnSend sees what
// the driver attached and may refuse as the kernel would), enforces no
// message limits, and runs each request on the goroutine of Request.
// Safe for concurrent use.
type Harness struct {
	o     HarnessOptions
	store *MemStore
	ids   atomic.Uint64

	mu      sync.Mutex
	d       Driver
	run     *harnessRun
	sent    []Message
	logs    []LogLine
	changed chan struct{} // closed and replaced when sent grows
}

// HarnessOptions configures a Harness; every field has a default.
type HarnessOptions struct {
	// NodeID is the node's id ("test").
	NodeID string
	// Address is the driver's address (NodeID + "@driver:drivers:weft").
	// Its package is the one whose databases and drives the driver
	// reaches with an empty package name.
	Address string
	// Config is the driver's configuration, a JSON object ("{}").
	Config json.RawMessage
	// OnSend is what the node does with a request the driver sends, after
	// the harness has recorded it. A *SendError it returns reaches the
	// driver as the kernel's would; another error as a failure of the
	// transport. The default delivers a request that expects no response
	// and fails one that expects a response with no_such_process: the
	// harness runs no process that could answer it.
	OnSend func(ctx context.Context, m Message) (*Answer, error)
	// Store holds the driver's package's databases and drives (a new,
	// empty one). Give one Harness's Store to another to run a driver on
	// what an earlier one stored.
	Store *MemStore
}

// HarnessRequest is a request to the driver under test.
type HarnessRequest struct {
	// Source is the requester's address ("test@tester:app:test").
	Source   string
	Body     []byte
	Metadata string
	// Timeout is how long the requester waits for the answer; 0 expects
	// none.
	Timeout time.Duration
	// Capabilities are attached to the request; the driver holds them
	// from then on.
	Capabilities []*weftv1.Capability
	Blob         *weftv1.Blob
}

// LogLine is a line the driver logged.
type LogLine struct {
	Level   slog.Level
	Message string
}

// DefaultSource is the address requests come from when
// HarnessRequest.Source is empty.
const DefaultSource = "test@tester:app:test"

// ErrNotRunning is returned by Request when no run of the driver is
// going: before Start, after Stop, or after the run's context ended.
var ErrNotRunning = errors.New("harness: the driver is not running")

// harnessRun is one run of a driver: its Conn and the context that ends
// with the run.
type harnessRun struct {
	conn Conn
	ctx  context.Context
	end  context.CancelFunc
}

// NewHarness returns a harness for d. Nothing runs until Start.
func NewHarness(d Driver, o HarnessOptions) *Harness {
	if o.NodeID == "" {
		o.NodeID = "test"
	}
	if o.Address == "" {
		o.Address = o.NodeID + "@driver:drivers:weft"
	}
	if len(o.Config) == 0 {
		o.Config = json.RawMessage("{}")
	}
	if o.OnSend == nil {
		o.OnSend = deliverOnly
	}
	if o.Store == nil {
		o.Store = NewMemStore()
	}
	return &Harness{o: o, store: o.Store, d: d, changed: make(chan struct{})}
}

// deliverOnly is the default OnSend.
func deliverOnly(_ context.Context, m Message) (*Answer, error) {
	if m.Timeout == 0 {
		return &Answer{}, nil
	}
	return nil, &SendError{
		Kind:   weftv1.SendErrorKind_SEND_ERROR_KIND_NO_SUCH_PROCESS,
		Target: m.Target,
		Detail: "the harness runs no process that could answer (set HarnessOptions.OnSend)",
	}
}

// Start starts a run of the driver: it calls the driver's Start with the
// harness's address, node id, configuration and a Node, and returns its
// error. The run lasts until Stop, Restart or the end of ctx, and ctx is
// the context the driver is given for it.
func (h *Harness) Start(ctx context.Context) error {
	h.mu.Lock()
	if h.run != nil && h.run.ctx.Err() == nil {
		h.mu.Unlock()
		return errors.New("harness: start: started already (Stop first, or Restart)")
	}
	d := h.d
	h.mu.Unlock()

	rctx, end := context.WithCancel(ctx)
	run := &harnessRun{conn: Local(d), ctx: rctx, end: end}
	node := NewNode(&harnessConn{h: h, run: rctx, pkg: packageOf(h.o.Address)})
	if err := run.conn.Start(rctx, Start{Address: h.o.Address, NodeID: h.o.NodeID, Config: h.o.Config, Node: node}); err != nil {
		end()
		return fmt.Errorf("harness: start: %w", err)
	}
	h.mu.Lock()
	h.run = run
	h.mu.Unlock()
	return nil
}

// Stop ends the run: its context is done, requests being handled see
// their contexts end, and the Node it was given fails every call from
// then on (as a run's Node does in weftd). The store is kept.
func (h *Harness) Stop() {
	h.mu.Lock()
	run := h.run
	h.mu.Unlock()
	if run != nil {
		run.end()
	}
}

// Restart ends the run, as Stop, and starts a new one of d — a fresh
// driver value, as weftd starts one for each run — on the same store.
// What was sent and logged so far stays recorded.
func (h *Harness) Restart(ctx context.Context, d Driver) error {
	h.Stop()
	h.mu.Lock()
	h.d = d
	h.mu.Unlock()
	return h.Start(ctx)
}

// Store is the harness's store, which outlives its runs.
func (h *Harness) Store() *MemStore { return h.store }

// Address is the driver's address.
func (h *Harness) Address() string { return h.o.Address }

// current is the run going on, or nil.
func (h *Harness) current() *harnessRun {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.run == nil || h.run.ctx.Err() != nil {
		return nil
	}
	return h.run
}

// Request hands the driver a request built as weftd builds one (a new
// id, the source, the driver's address as target) and returns its
// answer. The driver's context ends at the request's timeout, when ctx
// ends or when the run ends, and what the requester would then get is
// returned instead of the answer: a *SendError of kind timeout or killed,
// or ctx's error.
//
// A nil Response with a nil error is an answer of nothing: for a request
// that expects a response, the requester would see a timeout. For a
// request that expects none, weftd drops any answer; Request returns it,
// so that a test can check there is none.
func (h *Harness) Request(ctx context.Context, r HarnessRequest) (*Response, error) {
	run := h.current()
	if run == nil {
		return nil, ErrNotRunning
	}
	src := r.Source
	if src == "" {
		src = DefaultSource
	}
	req := &weftv1.Request{Body: r.Body, Capabilities: r.Capabilities}
	if r.Metadata != "" {
		req.Metadata = &r.Metadata
	}
	if r.Timeout > 0 {
		req.ExpectsResponse = durationpb.New(r.Timeout)
	}
	m := &weftv1.Message{
		Id:     h.ids.Add(1),
		Source: src,
		Target: h.o.Address,
		Kind:   &weftv1.Message_Request{Request: req},
		Blob:   r.Blob,
	}

	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(run.ctx, cancel)()
	deadline := time.Now().Add(r.Timeout)
	if r.Timeout > 0 {
		var cancelT context.CancelFunc
		hctx, cancelT = context.WithDeadline(hctx, deadline)
		defer cancelT()
	}
	resp, err := run.conn.Handle(hctx, NewRequest(m))
	// The run's end and the deadline reach hctx on goroutines of their
	// own: they are read from the run and the clock.
	switch {
	case err != nil:
		return nil, fmt.Errorf("harness: request %d: %w", m.Id, err)
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case r.Timeout == 0:
		return resp, nil
	case run.ctx.Err() != nil:
		return nil, &SendError{Kind: weftv1.SendErrorKind_SEND_ERROR_KIND_KILLED, Target: h.o.Address, Detail: "the driver's run ended before its answer was taken"}
	case !time.Now().Before(deadline):
		return nil, &SendError{Kind: weftv1.SendErrorKind_SEND_ERROR_KIND_TIMEOUT, Target: h.o.Address, Detail: fmt.Sprintf("no answer within %v", r.Timeout)}
	}
	return resp, nil
}

// Health asks the driver whether it can serve, as weftd does
// periodically; nil for a driver that is no HealthChecker.
func (h *Harness) Health(ctx context.Context) error {
	run := h.current()
	if run == nil {
		return ErrNotRunning
	}
	return run.conn.Health(ctx)
}

// Sent returns the requests the driver sent, in order, over all runs.
func (h *Harness) Sent() []Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Message(nil), h.sent...)
}

// WaitSent waits until the driver has sent at least n requests and
// returns them all; or ctx's error with those sent so far.
func (h *Harness) WaitSent(ctx context.Context, n int) ([]Message, error) {
	for {
		h.mu.Lock()
		sent, changed := append([]Message(nil), h.sent...), h.changed
		h.mu.Unlock()
		if len(sent) >= n {
			return sent, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return sent, fmt.Errorf("harness: waiting for %d sends, %d so far: %w", n, len(sent), ctx.Err())
		}
	}
}

// Logs returns the lines the driver logged, in order, over all runs.
func (h *Harness) Logs() []LogLine {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]LogLine(nil), h.logs...)
}

// harnessConn is the NodeConn of one run.
type harnessConn struct {
	h   *Harness
	run context.Context
	pkg string // the driver's own package
}

// errRunEnded is what a run's Node answers once the run has ended.
var errRunEnded = errors.New("harness: the driver's run has ended")

func (c *harnessConn) Send(ctx context.Context, r *driverv1.SendRequest) (*driverv1.SendResponse, error) {
	if c.run.Err() != nil {
		return nil, errRunEnded
	}
	m := Message{
		Target:       r.GetTarget(),
		Body:         r.GetRequest().GetBody(),
		Metadata:     r.GetRequest().GetMetadata(),
		Capabilities: r.GetRequest().GetCapabilities(),
		Blob:         r.GetBlob(),
	}
	if d := r.GetRequest().GetExpectsResponse(); d != nil {
		m.Timeout = d.AsDuration()
	}
	h := c.h
	h.mu.Lock()
	h.sent = append(h.sent, m)
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()

	id := h.ids.Add(1)
	a, err := h.o.OnSend(ctx, m)
	var se *SendError
	switch {
	case errors.As(err, &se):
		return &driverv1.SendResponse{Id: id, Result: &driverv1.SendResponse_Error{Error: &weftv1.SendError{Kind: se.Kind, Target: se.Target, Detail: se.Detail}}}, nil
	case err != nil:
		return nil, err
	case a == nil:
		return nil, errors.New("harness: OnSend returned neither an answer nor an error")
	}
	if a.ID != 0 {
		id = a.ID
	}
	out := &driverv1.SendResponse{Id: id}
	if m.Timeout > 0 {
		resp := &weftv1.Response{Body: a.Body, Capabilities: a.Capabilities}
		if a.Metadata != "" {
			resp.Metadata = &a.Metadata
		}
		out.Result = &driverv1.SendResponse_Response{Response: resp}
		out.Blob = a.Blob
	}
	return out, nil
}

func (c *harnessConn) Store(_ context.Context, r *driverv1.StoreRequest) (*driverv1.StoreResponse, error) {
	if c.run.Err() != nil {
		return &driverv1.StoreResponse{Code: abi.ESTOPPED, Error: errRunEnded.Error()}, nil
	}
	return c.h.store.serve(r.GetOp(), c.pkg), nil
}

func (c *harnessConn) Log(_ context.Context, r *driverv1.LogRequest) (*driverv1.LogResponse, error) {
	if c.run.Err() != nil {
		return &driverv1.LogResponse{}, nil // dropped, as weftd drops a stopped process's lines
	}
	level := slog.LevelInfo
	switch r.GetLevel() {
	case driverv1.LogLevel_LOG_LEVEL_DEBUG:
		level = slog.LevelDebug
	case driverv1.LogLevel_LOG_LEVEL_WARN:
		level = slog.LevelWarn
	case driverv1.LogLevel_LOG_LEVEL_ERROR:
		level = slog.LevelError
	}
	c.h.mu.Lock()
	c.h.logs = append(c.h.logs, LogLine{Level: level, Message: r.GetMessage()})
	c.h.mu.Unlock()
	return &driverv1.LogResponse{}, nil
}

// packageOf is the package:publisher of an address node@name:package:publisher.
func packageOf(addr string) string {
	_, p, _ := strings.Cut(addr, "@")
	_, pkg, _ := strings.Cut(p, ":")
	return pkg
}
