package driver_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftos/weft/abi"
	"github.com/weftos/weft/api/driverv1"
	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/plugins/driver"
)

// funcs is a Driver made of functions; a nil one does nothing.
type funcs struct {
	start  func(context.Context, driver.Start) error
	handle func(context.Context, *driver.Request) *driver.Response
}

func (f *funcs) Start(ctx context.Context, s driver.Start) error {
	if f.start == nil {
		return nil
	}
	return f.start(ctx, s)
}

func (f *funcs) Handle(ctx context.Context, r *driver.Request) *driver.Response {
	if f.handle == nil {
		return nil
	}
	return f.handle(ctx, r)
}

// checked is a Driver with a health check.
type checked struct {
	funcs
	health func(context.Context) error
}

func (c *checked) Health(ctx context.Context) error { return c.health(ctx) }

// fakeNode is weftd's side of the Node, recording what the driver asks.
// Requests to our@missing:app:test fail with no_such_process; others are
// answered "re:" + body. kv_get of "absent" answers WEFT_ENONE, of any
// other key "v:" + key.
type fakeNode struct {
	mu    sync.Mutex
	sends []*driverv1.SendRequest
	ops   []abi.StoreOp
	logs  []*driverv1.LogRequest
}

func (n *fakeNode) Send(_ context.Context, r *driverv1.SendRequest) (*driverv1.SendResponse, error) {
	n.mu.Lock()
	n.sends = append(n.sends, r)
	n.mu.Unlock()
	if r.GetTarget() == "our@missing:app:test" {
		return &driverv1.SendResponse{Id: 8, Result: &driverv1.SendResponse_Error{Error: &weftv1.SendError{
			Kind: weftv1.SendErrorKind_SEND_ERROR_KIND_NO_SUCH_PROCESS, Target: r.GetTarget(), Detail: "nobody"}}}, nil
	}
	md := "answered"
	return &driverv1.SendResponse{
		Id:     7,
		Result: &driverv1.SendResponse_Response{Response: &weftv1.Response{Body: append([]byte("re:"), r.GetRequest().GetBody()...), Metadata: &md}},
		Blob:   &weftv1.Blob{Mime: "text/plain", Bytes: []byte("blob")},
	}, nil
}

func (n *fakeNode) Store(_ context.Context, r *driverv1.StoreRequest) (*driverv1.StoreResponse, error) {
	op, err := abi.DecodeStoreOp(r.GetOp())
	if err != nil {
		return &driverv1.StoreResponse{Code: abi.EINVAL, Error: err.Error()}, nil
	}
	n.mu.Lock()
	n.ops = append(n.ops, op)
	n.mu.Unlock()
	if op.Op == abi.StoreKVGet {
		if string(op.Key) == "absent" {
			return &driverv1.StoreResponse{Code: abi.ENONE, Error: "store: kv_get: no such key"}, nil
		}
		return &driverv1.StoreResponse{Result: append([]byte("v:"), op.Key...)}, nil
	}
	return &driverv1.StoreResponse{}, nil
}

func (n *fakeNode) Log(_ context.Context, r *driverv1.LogRequest) (*driverv1.LogResponse, error) {
	n.mu.Lock()
	n.logs = append(n.logs, r)
	n.mu.Unlock()
	return &driverv1.LogResponse{}, nil
}

// connect serves d over real gRPC in-process, as a driver subprocess
// would, and returns weftd's side of it.
func connect(t *testing.T, d driver.Driver) *driver.Client {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, driver.PluginSet(d))
	// Close asks the server to stop (go-plugin's controller), as weftd
	// does; stopping it here too would race with that.
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(driver.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := raw.(*driver.Client)
	if !ok {
		t.Fatalf("Dispense gave %T, want *driver.Client", raw)
	}
	return c
}

// request is a request message as weftd delivers one.
func request(id uint64, body string, timeout time.Duration) *driver.Request {
	r := &weftv1.Request{Body: []byte(body)}
	if timeout > 0 {
		r.ExpectsResponse = durationpb.New(timeout)
	}
	return driver.NewRequest(&weftv1.Message{Id: id, Source: "n@asker:app:test", Target: "n@d:drivers:weft", Kind: &weftv1.Message_Request{Request: r}})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// The driver reaches the Node served back over the broker, during Start
// and during Handle: sends with their answers and errors, store
// operations with their results and codes, log lines.
func TestShimNode(t *testing.T) {
	ctx := ctxT(t)
	var (
		mu      sync.Mutex // the driver's results, written on gRPC's goroutines
		got     driver.Start
		answer  *driver.Answer
		sendErr error
		value   []byte
		getErr  error
	)
	d := &funcs{
		start: func(ctx context.Context, s driver.Start) error {
			mu.Lock()
			defer mu.Unlock()
			got = s
			var err error
			answer, err = s.Node.Send(ctx, driver.Message{
				Target: "our@peer:app:test", Body: []byte("ping"), Metadata: "md", Timeout: time.Second,
				Capabilities: []*weftv1.Capability{driver.Messaging(s.Address)},
			})
			if err != nil {
				return err
			}
			_, sendErr = s.Node.Send(ctx, driver.Message{Target: "our@missing:app:test"})
			db, err := s.Node.OpenKV(ctx, "db")
			if err != nil {
				return err
			}
			if value, err = db.Get(ctx, []byte("k")); err != nil {
				return err
			}
			_, getErr = db.Get(ctx, []byte("absent"))
			s.Node.Log(ctx, slog.LevelWarn, "hello")
			return nil
		},
	}
	d.handle = func(ctx context.Context, r *driver.Request) *driver.Response {
		mu.Lock()
		node := got.Node
		mu.Unlock()
		a, err := node.Send(ctx, driver.Message{Target: "our@peer:app:test", Body: r.Body()})
		if err != nil {
			return driver.Reply([]byte(err.Error()))
		}
		return driver.Reply([]byte(fmt.Sprint(a.ID)))
	}
	c := connect(t, d)
	node := &fakeNode{}
	if err := c.Start(ctx, driver.Start{Address: "n@d:drivers:weft", NodeID: "n", Config: []byte(`{"a":1}`), Node: driver.NewNode(node)}); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock() // the driver takes mu only during Start and Handle
	if got.Address != "n@d:drivers:weft" || got.NodeID != "n" || string(got.Config) != `{"a":1}` || got.Node == nil {
		t.Errorf("the driver was started with %+v", got)
	}
	if answer == nil || answer.ID != 7 || string(answer.Body) != "re:ping" || answer.Metadata != "answered" || string(answer.Blob.GetBytes()) != "blob" {
		t.Errorf("answer = %+v", answer)
	}
	var se *driver.SendError
	if !errors.As(sendErr, &se) || se.Kind != weftv1.SendErrorKind_SEND_ERROR_KIND_NO_SUCH_PROCESS || se.Target != "our@missing:app:test" {
		t.Errorf("send to a missing process: %v, want a no_such_process SendError", sendErr)
	}
	if string(value) != "v:k" {
		t.Errorf("Get = %q, want v:k", value)
	}
	if !errors.Is(getErr, driver.ErrNoKey) {
		t.Errorf("Get of an absent key: %v, want ErrNoKey", getErr)
	}

	node.mu.Lock()
	if len(node.sends) != 2 {
		t.Fatalf("the node saw %d sends, want 2", len(node.sends))
	}
	s := node.sends[0]
	if s.GetTarget() != "our@peer:app:test" || string(s.GetRequest().GetBody()) != "ping" || s.GetRequest().GetMetadata() != "md" ||
		s.GetRequest().GetExpectsResponse().AsDuration() != time.Second ||
		len(s.GetRequest().GetCapabilities()) != 1 || !driver.IsMessaging(s.GetRequest().GetCapabilities()[0], "n@d:drivers:weft") {
		t.Errorf("the node saw the send %v", s)
	}
	if node.sends[1].GetRequest().GetExpectsResponse() != nil {
		t.Errorf("a send without a timeout expects a response: %v", node.sends[1])
	}
	if len(node.ops) != 3 || node.ops[0].Op != abi.StoreKVOpen || node.ops[0].Name != "db" || node.ops[1].Op != abi.StoreKVGet || string(node.ops[1].Key) != "k" {
		t.Errorf("the node saw the store operations %+v", node.ops)
	}
	if len(node.logs) != 1 || node.logs[0].GetLevel() != driverv1.LogLevel_LOG_LEVEL_WARN || node.logs[0].GetMessage() != "hello" {
		t.Errorf("the node saw the log lines %v", node.logs)
	}
	node.mu.Unlock()

	mu.Unlock()
	resp, err := c.Handle(ctx, request(1, "relay", time.Second))
	mu.Lock()
	if err != nil || resp == nil || string(resp.Body) != "7" {
		t.Fatalf("Handle relaying through the node = %+v, %v", resp, err)
	}
	node.mu.Lock()
	defer node.mu.Unlock()
	if len(node.sends) != 3 || string(node.sends[2].GetRequest().GetBody()) != "relay" {
		t.Errorf("the node did not see the send made while handling: %v", node.sends)
	}
}

// Every field of a request reaches the driver, and every field of its
// answer comes back.
func TestShimHandle(t *testing.T) {
	ctx := ctxT(t)
	var (
		mu   sync.Mutex
		seen *driver.Request
	)
	c := connect(t, &funcs{handle: func(_ context.Context, r *driver.Request) *driver.Response {
		mu.Lock()
		defer mu.Unlock()
		seen = r
		if string(r.Body()) == "nothing" {
			return nil
		}
		return &driver.Response{
			Body:         []byte(strings.ToUpper(string(r.Body()))),
			Metadata:     r.Metadata() + "!",
			Capabilities: r.Capabilities(),
			Blob:         &weftv1.Blob{Mime: "application/x-test", Bytes: []byte{0, 1, 2}},
			Inherit:      true,
		}
	}})
	if err := c.Start(ctx, driver.Start{Config: []byte("{}"), Node: driver.NewNode(&fakeNode{})}); err != nil {
		t.Fatal(err)
	}

	md := "meta"
	caps := []*weftv1.Capability{driver.Messaging("n@asker:app:test"), {Issuer: "n@kv:sys:weft", Params: `{"db":"x"}`, Signature: []byte("sig")}}
	msg := &weftv1.Message{
		Id: 42, Source: "n@asker:app:test", Target: "n@d:drivers:weft",
		Kind: &weftv1.Message_Request{Request: &weftv1.Request{
			Body: []byte("hello"), Metadata: &md, ExpectsResponse: durationpb.New(3 * time.Second), Capabilities: caps,
		}},
		Blob: &weftv1.Blob{Mime: "text/plain", Bytes: []byte("in")},
	}
	resp, err := c.Handle(ctx, driver.NewRequest(msg))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen.ID() != 42 || seen.Source() != "n@asker:app:test" || string(seen.Body()) != "hello" || seen.Metadata() != "meta" ||
		seen.Timeout() != 3*time.Second || !seen.WantsResponse() || string(seen.Blob().GetBytes()) != "in" || !proto.Equal(seen.Proto(), msg) {
		t.Errorf("the driver saw %v, want %v", seen.Proto(), msg)
	}
	if resp == nil || string(resp.Body) != "HELLO" || resp.Metadata != "meta!" || !resp.Inherit ||
		resp.Blob.GetMime() != "application/x-test" || string(resp.Blob.GetBytes()) != "\x00\x01\x02" || len(resp.Capabilities) != 2 ||
		!proto.Equal(resp.Capabilities[0], caps[0]) || !proto.Equal(resp.Capabilities[1], caps[1]) {
		t.Errorf("answer = %+v", resp)
	}

	mu.Unlock()
	resp, err = c.Handle(ctx, request(43, "nothing", 0))
	if err != nil || resp != nil {
		t.Errorf("an answer of nothing = %+v, %v; want nil, nil", resp, err)
	}
	mu.Lock()
	if seen.WantsResponse() || seen.Timeout() != 0 {
		t.Errorf("a request expecting no response: WantsResponse %v, Timeout %v", seen.WantsResponse(), seen.Timeout())
	}
}

// weftd hands the driver many requests at once, and each is answered
// with its own answer: here no Handle returns before all 64 are in.
func TestShimConcurrentHandles(t *testing.T) {
	ctx := ctxT(t)
	const n = 64
	var in atomic.Int32
	all := make(chan struct{})
	c := connect(t, &funcs{handle: func(ctx context.Context, r *driver.Request) *driver.Response {
		if in.Add(1) == n {
			close(all)
		}
		select {
		case <-all:
		case <-ctx.Done():
			return nil
		}
		return driver.Reply(append([]byte("re:"), r.Body()...))
	}})
	if err := c.Start(ctx, driver.Start{Config: []byte("{}"), Node: driver.NewNode(&fakeNode{})}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprint(i)
			resp, err := c.Handle(ctx, request(uint64(i+1), body, 10*time.Second))
			switch {
			case err != nil:
				errs <- err
			case resp == nil || string(resp.Body) != "re:"+body:
				errs <- fmt.Errorf("request %s answered %+v", body, resp)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestShimHealth(t *testing.T) {
	ctx := ctxT(t)
	c := connect(t, &funcs{})
	if err := c.Health(ctx); err != nil {
		t.Errorf("a driver without a health check: %v", err)
	}

	var sick atomic.Bool
	c = connect(t, &checked{health: func(context.Context) error {
		if sick.Load() {
			return errors.New("disk full")
		}
		return nil
	}})
	if err := c.Health(ctx); err != nil {
		t.Errorf("a healthy driver: %v", err)
	}
	sick.Store(true)
	err := c.Health(ctx)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("a failing health check: %v, want Unavailable saying disk full", err)
	}
}

// A driver subprocess serves one run: a second Start is refused; a
// config that is not JSON never reaches the driver; a driver's own
// refusal to start comes back with its words and leaves it startable.
func TestShimStart(t *testing.T) {
	ctx := ctxT(t)
	var starts atomic.Int32
	refuse := true
	c := connect(t, &funcs{start: func(context.Context, driver.Start) error {
		starts.Add(1)
		if refuse {
			refuse = false
			return errors.New("no clock")
		}
		return nil
	}})
	node := driver.NewNode(&fakeNode{})
	if err := c.Start(ctx, driver.Start{Config: []byte("{"), Node: node}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("bad config JSON: %v, want InvalidArgument", err)
	}
	if starts.Load() != 0 {
		t.Errorf("a config that is not JSON reached the driver")
	}
	if err := c.Start(ctx, driver.Start{Config: []byte("{}")}); err == nil {
		t.Errorf("Start without a Node succeeded")
	}
	err := c.Start(ctx, driver.Start{Config: []byte("{}"), Node: node})
	if status.Code(err) != codes.Aborted || !strings.Contains(err.Error(), "no clock") {
		t.Errorf("a driver refusing to start: %v, want Aborted saying no clock", err)
	}
	if err := c.Start(ctx, driver.Start{Config: []byte("{}"), Node: node}); err != nil {
		t.Fatalf("Start after a refused one: %v", err)
	}
	if err := c.Start(ctx, driver.Start{Config: []byte("{}"), Node: node}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("a second Start: %v, want FailedPrecondition", err)
	}
	if n := starts.Load(); n != 2 {
		t.Errorf("the driver was started %d times, want 2", n)
	}
}

func TestShimRefusesNonRequests(t *testing.T) {
	ctx := ctxT(t)
	var handled atomic.Bool
	c := connect(t, &funcs{handle: func(context.Context, *driver.Request) *driver.Response {
		handled.Store(true)
		return nil
	}})
	for _, m := range []*weftv1.Message{
		{Id: 1, Kind: &weftv1.Message_Response{Response: &weftv1.Response{Body: []byte("x")}}},
		{Id: 2, Kind: &weftv1.Message_Error{Error: &weftv1.SendError{}}},
		{Id: 3},
	} {
		if _, err := c.Handle(ctx, driver.NewRequest(m)); status.Code(err) != codes.InvalidArgument {
			t.Errorf("Handle(%v): %v, want InvalidArgument", m, err)
		}
	}
	if handled.Load() {
		t.Errorf("a message that is no request reached the driver")
	}
}

// Local runs a driver in weftd: the same contract, and a panic is an
// error rather than weftd's end.
func TestLocal(t *testing.T) {
	ctx := ctxT(t)
	boom := &checked{
		funcs: funcs{
			start:  func(context.Context, driver.Start) error { panic("start exploded") },
			handle: func(context.Context, *driver.Request) *driver.Response { panic("handle exploded") },
		},
		health: func(context.Context) error { panic("health exploded") },
	}
	c := driver.Local(boom)
	if err := c.Start(ctx, driver.Start{}); err == nil || !strings.Contains(err.Error(), "driver panicked: start exploded") {
		t.Errorf("Start: %v", err)
	}
	if resp, err := c.Handle(ctx, request(1, "x", time.Second)); resp != nil || err == nil || !strings.Contains(err.Error(), "driver panicked: handle exploded") {
		t.Errorf("Handle: %+v, %v", resp, err)
	}
	if err := c.Health(ctx); err == nil || !strings.Contains(err.Error(), "driver panicked: health exploded") {
		t.Errorf("Health: %v", err)
	}

	plain := driver.Local(&funcs{
		start:  func(context.Context, driver.Start) error { return errors.New("refused") },
		handle: func(_ context.Context, r *driver.Request) *driver.Response { return driver.Reply(r.Body()) },
	})
	if err := plain.Start(ctx, driver.Start{}); err == nil || err.Error() != "refused" {
		t.Errorf("Start: %v, want the driver's own error", err)
	}
	if resp, err := plain.Handle(ctx, request(1, "x", time.Second)); err != nil || string(resp.Body) != "x" {
		t.Errorf("Handle: %+v, %v", resp, err)
	}
	if err := plain.Health(ctx); err != nil {
		t.Errorf("Health of a driver without a check: %v", err)
	}
}
