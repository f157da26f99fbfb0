package driver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weftos/weft/abi"
	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/plugins/driver"
)

// keeper keeps what its Start was given, for a test to act as the
// driver.
type keeper struct {
	mu    sync.Mutex
	s     driver.Start
	run   context.Context
	reqs  []*driver.Request
	reply func(context.Context, *driver.Request) *driver.Response
}

func (k *keeper) Start(ctx context.Context, s driver.Start) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.s, k.run = s, ctx
	return nil
}

func (k *keeper) Handle(ctx context.Context, r *driver.Request) *driver.Response {
	k.mu.Lock()
	k.reqs = append(k.reqs, r)
	reply := k.reply
	k.mu.Unlock()
	if reply == nil {
		return driver.Reply(r.Body())
	}
	return reply(ctx, r)
}

func (k *keeper) node() *driver.Node {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.s.Node
}

func started(t *testing.T, d driver.Driver, o driver.HarnessOptions) *driver.Harness {
	t.Helper()
	h := driver.NewHarness(d, o)
	if err := h.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	return h
}

// A request reaches the driver as weftd builds one, and Start is given
// the harness's identity and configuration.
func TestHarnessRequest(t *testing.T) {
	ctx := ctxT(t)
	k := &keeper{}
	h := started(t, k, driver.HarnessOptions{})
	if k.s.Address != "test@driver:drivers:weft" || k.s.NodeID != "test" || string(k.s.Config) != "{}" || k.s.Node == nil {
		t.Errorf("started with the defaults %+v", k.s)
	}

	caps := []*weftv1.Capability{driver.Messaging("n@asker:app:test")}
	blob := &weftv1.Blob{Mime: "text/plain", Bytes: []byte("b")}
	resp, err := h.Request(ctx, driver.HarnessRequest{Source: "n@asker:app:test", Body: []byte("one"), Metadata: "md", Timeout: time.Second, Capabilities: caps, Blob: blob})
	if err != nil || resp == nil || string(resp.Body) != "one" {
		t.Fatalf("Request = %+v, %v", resp, err)
	}
	if _, err := h.Request(ctx, driver.HarnessRequest{Body: []byte("two")}); err != nil {
		t.Fatal(err)
	}
	r1, r2 := k.reqs[0], k.reqs[1]
	m := r1.Proto()
	if m.GetTarget() != h.Address() || r1.Source() != "n@asker:app:test" || string(r1.Body()) != "one" || r1.Metadata() != "md" ||
		r1.Timeout() != time.Second || len(r1.Capabilities()) != 1 || !proto.Equal(r1.Capabilities()[0], caps[0]) || !proto.Equal(r1.Blob(), blob) || m.GetRequest() == nil {
		t.Errorf("the driver saw %v", m)
	}
	if r2.Source() != driver.DefaultSource || r2.WantsResponse() || r2.Metadata() != "" || r2.Proto().GetRequest().Metadata != nil || r2.ID() <= r1.ID() || r1.ID() == 0 {
		t.Errorf("the second request: %v (first id %d)", r2.Proto(), r1.ID())
	}

	o := driver.HarnessOptions{NodeID: "k51abc", Config: []byte(`{"x":1}`)}
	k2 := &keeper{}
	started(t, k2, o)
	if k2.s.Address != "k51abc@driver:drivers:weft" || k2.s.NodeID != "k51abc" || string(k2.s.Config) != `{"x":1}` {
		t.Errorf("started with %+v", k2.s)
	}
}

// What a requester would get when the driver is too late, answers
// nothing, fails, or its run ends.
func TestHarnessAnswers(t *testing.T) {
	ctx := ctxT(t)
	k := &keeper{reply: func(ctx context.Context, r *driver.Request) *driver.Response {
		switch string(r.Body()) {
		case "late":
			<-ctx.Done()
			return driver.Reply([]byte("too late"))
		case "nothing":
			return nil
		case "panic":
			panic("handle exploded")
		}
		return driver.Reply(r.Body())
	}}
	h := started(t, k, driver.HarnessOptions{})

	var se *driver.SendError
	_, err := h.Request(ctx, driver.HarnessRequest{Body: []byte("late"), Timeout: 20 * time.Millisecond})
	if !errors.As(err, &se) || se.Kind != weftv1.SendErrorKind_SEND_ERROR_KIND_TIMEOUT {
		t.Errorf("an answer after the timeout: %v, want a timeout", err)
	}
	if resp, err := h.Request(ctx, driver.HarnessRequest{Body: []byte("nothing"), Timeout: time.Second}); resp != nil || err != nil {
		t.Errorf("an answer of nothing: %+v, %v", resp, err)
	}
	if resp, err := h.Request(ctx, driver.HarnessRequest{Body: []byte("fire and forget")}); err != nil || string(resp.Body) != "fire and forget" {
		t.Errorf("the answer to a request expecting none is returned for the test: %+v, %v", resp, err)
	}
	if _, err := h.Request(ctx, driver.HarnessRequest{Body: []byte("panic"), Timeout: time.Second}); err == nil || !strings.Contains(err.Error(), "driver panicked: handle exploded") {
		t.Errorf("a panic: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(10*time.Millisecond, cancel)
	if _, err := h.Request(cctx, driver.HarnessRequest{Body: []byte("late"), Timeout: time.Minute}); !errors.Is(err, context.Canceled) {
		t.Errorf("a requester that gave up: %v, want context.Canceled", err)
	}

	time.AfterFunc(10*time.Millisecond, h.Stop)
	_, err = h.Request(ctx, driver.HarnessRequest{Body: []byte("late"), Timeout: time.Minute})
	if !errors.As(err, &se) || se.Kind != weftv1.SendErrorKind_SEND_ERROR_KIND_KILLED {
		t.Errorf("a run ending under a request: %v, want killed", err)
	}
	if k.run.Err() == nil {
		t.Errorf("Stop did not end the run's context")
	}
	if _, err := h.Request(ctx, driver.HarnessRequest{Body: []byte("x")}); !errors.Is(err, driver.ErrNotRunning) {
		t.Errorf("a request after Stop: %v, want ErrNotRunning", err)
	}
	if err := h.Health(ctx); !errors.Is(err, driver.ErrNotRunning) {
		t.Errorf("Health after Stop: %v, want ErrNotRunning", err)
	}
}

func TestHarnessStart(t *testing.T) {
	ctx := ctxT(t)
	h := driver.NewHarness(&funcs{}, driver.HarnessOptions{})
	if _, err := h.Request(ctx, driver.HarnessRequest{}); !errors.Is(err, driver.ErrNotRunning) {
		t.Errorf("a request before Start: %v, want ErrNotRunning", err)
	}
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	if err := h.Start(ctx); err == nil {
		t.Errorf("a second Start of a running harness succeeded")
	}

	h = driver.NewHarness(&funcs{start: func(context.Context, driver.Start) error { return errors.New("bad config") }}, driver.HarnessOptions{})
	if err := h.Start(ctx); err == nil || !strings.Contains(err.Error(), "bad config") {
		t.Errorf("Start = %v, want the driver's error", err)
	}
	if _, err := h.Request(ctx, driver.HarnessRequest{}); !errors.Is(err, driver.ErrNotRunning) {
		t.Errorf("a request to a driver that did not start: %v", err)
	}
	h = driver.NewHarness(&funcs{start: func(context.Context, driver.Start) error { panic("boom") }}, driver.HarnessOptions{})
	if err := h.Start(ctx); err == nil || !strings.Contains(err.Error(), "driver panicked: boom") {
		t.Errorf("Start = %v, want the panic", err)
	}
}

func TestHarnessHealth(t *testing.T) {
	ctx := ctxT(t)
	if err := started(t, &funcs{}, driver.HarnessOptions{}).Health(ctx); err != nil {
		t.Errorf("a driver without a check: %v", err)
	}
	h := started(t, &checked{health: func(context.Context) error { return errors.New("disk full") }}, driver.HarnessOptions{})
	if err := h.Health(ctx); err == nil || err.Error() != "disk full" {
		t.Errorf("a failing check: %v", err)
	}
}

// The driver's sends are recorded in order and go to OnSend, whose
// answers and errors reach the driver; by default a send expecting an
// answer finds no process.
func TestHarnessSends(t *testing.T) {
	ctx := ctxT(t)
	k := &keeper{}
	h := started(t, k, driver.HarnessOptions{})
	node := k.node()
	a, err := node.Send(ctx, driver.Message{Target: "our@a:app:test", Body: []byte("1")})
	if err != nil || a.ID == 0 {
		t.Errorf("a send expecting nothing: %+v, %v", a, err)
	}
	var se *driver.SendError
	_, err = node.Send(ctx, driver.Message{Target: "our@b:app:test", Body: []byte("2"), Timeout: time.Second})
	if !errors.As(err, &se) || se.Kind != weftv1.SendErrorKind_SEND_ERROR_KIND_NO_SUCH_PROCESS || se.Target != "our@b:app:test" {
		t.Errorf("a send expecting an answer, by default: %v", err)
	}

	caps := []*weftv1.Capability{driver.Messaging(h.Address())}
	onSend := func(_ context.Context, m driver.Message) (*driver.Answer, error) {
		switch m.Target {
		case "our@full:app:test":
			return nil, &driver.SendError{Kind: weftv1.SendErrorKind_SEND_ERROR_KIND_MAILBOX_FULL, Target: m.Target, Detail: "full"}
		case "our@broken:app:test":
			return nil, errors.New("transport broke")
		}
		return &driver.Answer{Body: append([]byte("re:"), m.Body...), Metadata: "md", Capabilities: m.Capabilities, Blob: &weftv1.Blob{Bytes: []byte("b")}}, nil
	}
	k2 := &keeper{}
	h2 := started(t, k2, driver.HarnessOptions{OnSend: onSend})
	node = k2.node()
	a, err = node.Send(ctx, driver.Message{Target: "our@c:app:test", Body: []byte("3"), Metadata: "m3", Timeout: time.Second, Capabilities: caps})
	if err != nil || string(a.Body) != "re:3" || a.Metadata != "md" || len(a.Capabilities) != 1 || string(a.Blob.GetBytes()) != "b" || a.ID == 0 {
		t.Errorf("an answered send: %+v, %v", a, err)
	}
	if _, err := node.Send(ctx, driver.Message{Target: "our@full:app:test", Timeout: time.Second}); !errors.As(err, &se) || se.Kind != weftv1.SendErrorKind_SEND_ERROR_KIND_MAILBOX_FULL {
		t.Errorf("OnSend's SendError: %v", err)
	}
	if _, err := node.Send(ctx, driver.Message{Target: "our@broken:app:test"}); err == nil || err.Error() != "transport broke" {
		t.Errorf("OnSend's other error: %v", err)
	}

	sent := h2.Sent()
	if len(sent) != 3 || sent[0].Target != "our@c:app:test" || string(sent[0].Body) != "3" || sent[0].Metadata != "m3" ||
		sent[0].Timeout != time.Second || len(sent[0].Capabilities) != 1 || !driver.IsMessaging(sent[0].Capabilities[0], h.Address()) ||
		sent[1].Target != "our@full:app:test" || sent[2].Target != "our@broken:app:test" {
		t.Errorf("Sent = %+v", sent)
	}
	if len(h.Sent()) != 2 {
		t.Errorf("the first harness recorded %d sends, want 2", len(h.Sent()))
	}

	go func() {
		time.Sleep(10 * time.Millisecond)
		_, _ = node.Send(context.Background(), driver.Message{Target: "our@later:app:test"})
	}()
	sent, err = h2.WaitSent(ctx, 4)
	if err != nil || len(sent) != 4 || sent[3].Target != "our@later:app:test" {
		t.Errorf("WaitSent = %+v, %v", sent, err)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if sent, err := h2.WaitSent(short, 5); !errors.Is(err, context.DeadlineExceeded) || len(sent) != 4 {
		t.Errorf("WaitSent for a send that never comes = %d sends, %v", len(sent), err)
	}
}

func TestHarnessLogs(t *testing.T) {
	ctx := ctxT(t)
	k := &keeper{}
	h := started(t, k, driver.HarnessOptions{})
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
		k.node().Log(ctx, l, l.String())
	}
	want := []driver.LogLine{{slog.LevelDebug, "DEBUG"}, {slog.LevelInfo, "INFO"}, {slog.LevelWarn, "WARN"}, {slog.LevelError, "ERROR"}}
	if got := h.Logs(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Logs = %v, want %v", got, want)
	}
}

// A run's Node fails once the run has ended; a new run of a new driver
// value finds what the last one stored; sends and logs stay recorded.
func TestHarnessRestart(t *testing.T) {
	ctx := ctxT(t)
	k1 := &keeper{}
	h := started(t, k1, driver.HarnessOptions{})
	old := k1.node()
	db, err := old.OpenKV(ctx, "state")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(ctx, []byte("k"), []byte("v1")); err != nil {
		t.Fatal(err)
	}
	_, _ = old.Send(ctx, driver.Message{Target: "our@a:app:test"})
	old.Log(ctx, slog.LevelInfo, "first run")

	k2 := &keeper{}
	if err := h.Restart(ctx, k2); err != nil {
		t.Fatal(err)
	}
	if k1.run.Err() == nil {
		t.Errorf("Restart did not end the first run")
	}
	if _, err := db.Get(ctx, []byte("k")); !errors.Is(err, &driver.StoreError{Code: abi.ESTOPPED}) {
		t.Errorf("the old run's store: %v, want WEFT_ESTOPPED", err)
	}
	if _, err := old.Send(ctx, driver.Message{Target: "our@a:app:test"}); err == nil {
		t.Errorf("the old run's Node still sends")
	}
	old.Log(ctx, slog.LevelInfo, "dropped")

	v, err := k2.node().KV("", "state").Get(ctx, []byte("k"))
	if err != nil || string(v) != "v1" {
		t.Errorf("the new run reads %q, %v", v, err)
	}
	if resp, err := h.Request(ctx, driver.HarnessRequest{Body: []byte("x"), Timeout: time.Second}); err != nil || string(resp.Body) != "x" {
		t.Errorf("a request to the new run: %+v, %v", resp, err)
	}
	if len(k1.reqs) != 0 || len(k2.reqs) != 1 {
		t.Errorf("the request went to the old run")
	}
	if len(h.Sent()) != 1 || len(h.Logs()) != 1 || h.Logs()[0].Message != "first run" {
		t.Errorf("after a restart: Sent %v, Logs %v", h.Sent(), h.Logs())
	}

	// Another harness on the same store, and the store's own Node.
	k3 := &keeper{}
	started(t, k3, driver.HarnessOptions{Store: h.Store()})
	if v, err := k3.node().KV("", "state").Get(ctx, []byte("k")); err != nil || string(v) != "v1" {
		t.Errorf("a harness on the same store reads %q, %v", v, err)
	}
	if err := h.Store().Node().KV("", "state").Set(ctx, []byte("k"), []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if v, err := k3.node().KV("", "state").Get(ctx, []byte("k")); err != nil || string(v) != "v2" {
		t.Errorf("after a write through the store's Node: %q, %v", v, err)
	}
	if _, err := h.Store().Node().Send(ctx, driver.Message{Target: "our@a:app:test"}); err == nil {
		t.Errorf("the store's Node sends")
	}
}

// The harness's databases answer as the node's store does.
func TestHarnessKV(t *testing.T) {
	ctx := ctxT(t)
	k := &keeper{}
	started(t, k, driver.HarnessOptions{})
	node := k.node()
	isCode := func(err error, code int32) bool { return errors.Is(err, &driver.StoreError{Code: code}) }

	if _, err := node.KV("", "nope").Get(ctx, []byte("k")); !isCode(err, abi.EPERM) {
		t.Errorf("a database never opened: %v, want WEFT_EPERM", err)
	}
	if _, err := node.OpenKV(ctx, "Bad_Name"); !isCode(err, abi.EINVAL) {
		t.Errorf("a bad database name: %v, want WEFT_EINVAL", err)
	}
	db, err := node.OpenKV(ctx, "db")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.OpenKV(ctx, "db"); err != nil {
		t.Errorf("opening an open database: %v", err)
	}
	if _, err := node.KV("other:pub", "db").Get(ctx, []byte("k")); !isCode(err, abi.EPERM) {
		t.Errorf("another package's database: %v, want WEFT_EPERM", err)
	}
	if v, err := node.KV("drivers:weft", "db").Get(ctx, []byte("k")); !errors.Is(err, driver.ErrNoKey) || v != nil {
		t.Errorf("a missing key by the own package's name: %q, %v; want ErrNoKey", v, err)
	}
	if err := db.Set(ctx, []byte("empty"), nil); err != nil {
		t.Fatal(err)
	}
	if v, err := db.Get(ctx, []byte("empty")); err != nil || v == nil || len(v) != 0 {
		t.Errorf("an empty value: %q, %v", v, err)
	}
	if err := db.Set(ctx, nil, []byte("v")); !isCode(err, abi.EINVAL) {
		t.Errorf("an empty key: %v, want WEFT_EINVAL", err)
	}
	if err := db.Set(ctx, bytes.Repeat([]byte("k"), 1025), nil); !isCode(err, abi.EINVAL) {
		t.Errorf("a key of 1025 bytes: %v, want WEFT_EINVAL", err)
	}
	if err := db.Set(ctx, []byte("big"), make([]byte, 1<<20+1)); !isCode(err, abi.ELIMIT) {
		t.Errorf("a value over 1 MiB: %v, want WEFT_ELIMIT", err)
	}
	if err := db.Delete(ctx, []byte("empty")); err != nil {
		t.Fatal(err)
	}
	if err := db.Delete(ctx, []byte("never")); err != nil {
		t.Errorf("deleting a missing key: %v", err)
	}
	if _, err := db.Get(ctx, []byte("empty")); !errors.Is(err, driver.ErrNoKey) {
		t.Errorf("a deleted key: %v", err)
	}

	for _, key := range []string{"a/3", "a/1", "b/1", "a/2", "a/4", "a"} {
		if err := db.Set(ctx, []byte(key), []byte("v"+key)); err != nil {
			t.Fatal(err)
		}
	}
	pairs, more, err := db.Scan(ctx, []byte("a/"), nil, 2)
	if err != nil || !more || fmt.Sprintf("%s", pairs) != "[{a/1 va/1} {a/2 va/2}]" {
		t.Errorf("first page: %s, more %v, %v", pairs, more, err)
	}
	pairs, more, err = db.Scan(ctx, []byte("a/"), []byte("a/2"), 2)
	if err != nil || more || fmt.Sprintf("%s", pairs) != "[{a/3 va/3} {a/4 va/4}]" {
		t.Errorf("last page: %s, more %v, %v", pairs, more, err)
	}
	all, err := db.All(ctx, nil)
	if err != nil || len(all) != 6 || string(all[0].Key) != "a" || string(all[5].Key) != "b/1" {
		t.Errorf("All = %s, %v", all, err)
	}
	for i := range 1100 {
		if err := db.Set(ctx, fmt.Appendf(nil, "many/%04d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	pairs, more, err = db.Scan(ctx, []byte("many/"), nil, 0)
	if err != nil || len(pairs) != 1000 || !more {
		t.Errorf("a scan without a limit: %d pairs, more %v, %v; want 1000, true", len(pairs), more, err)
	}
	if all, err := db.All(ctx, []byte("many/")); err != nil || len(all) != 1100 {
		t.Errorf("All over pages: %d, %v", len(all), err)
	}
}

// The harness's drives answer as the node's store does.
func TestHarnessDrive(t *testing.T) {
	ctx := ctxT(t)
	k := &keeper{}
	started(t, k, driver.HarnessOptions{})
	node := k.node()
	isCode := func(err error, code int32) bool { return errors.Is(err, &driver.StoreError{Code: code}) }

	if _, err := node.Drive("", "nope").ReadFile(ctx, "f"); !isCode(err, abi.EPERM) {
		t.Errorf("a drive never opened: %v, want WEFT_EPERM", err)
	}
	d, err := node.OpenDrive(ctx, "files")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFile(ctx, "/a/b/c.txt", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFile(ctx, "a//./top.txt", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if b, err := d.ReadFile(ctx, "a/b/c.txt"); err != nil || string(b) != "hello" {
		t.Errorf("ReadFile = %q, %v", b, err)
	}
	if err := d.WriteFile(ctx, "a/b/c.txt", nil); err != nil {
		t.Fatal(err)
	}
	if b, err := d.ReadFile(ctx, "a/b/c.txt"); err != nil || b == nil || len(b) != 0 {
		t.Errorf("an emptied file: %q, %v", b, err)
	}
	es, err := d.ReadDir(ctx, "/a")
	if err != nil || len(es) != 2 || es[0].Name != "b" || !es[0].Dir || es[1].Name != "top.txt" || es[1].Dir || es[1].Size != 1 || es[1].ModTime == 0 {
		t.Errorf("ReadDir(a) = %+v, %v", es, err)
	}
	if es, err := d.ReadDir(ctx, ""); err != nil || len(es) != 1 || es[0].Name != "a" {
		t.Errorf("ReadDir of the root = %+v, %v", es, err)
	}
	for _, c := range []struct {
		what string
		err  error
		code int32
	}{
		{"a missing file", func() error { _, err := d.ReadFile(ctx, "a/none"); return err }(), abi.ENOTFOUND},
		{"reading a directory", func() error { _, err := d.ReadFile(ctx, "a/b"); return err }(), abi.EINVAL},
		{"listing a file", func() error { _, err := d.ReadDir(ctx, "a/top.txt"); return err }(), abi.EINVAL},
		{"listing a missing directory", func() error { _, err := d.ReadDir(ctx, "z"); return err }(), abi.ENOTFOUND},
		{"writing over a directory", d.WriteFile(ctx, "a/b", nil), abi.EINVAL},
		{"writing under a file", d.WriteFile(ctx, "a/top.txt/x", nil), abi.EINVAL},
		{"writing the root", d.WriteFile(ctx, "/", nil), abi.EINVAL},
		{"a .. path", d.WriteFile(ctx, "a/../x", nil), abi.EINVAL},
		{"a reserved name", d.WriteFile(ctx, ".weft-x", nil), abi.EINVAL},
		{"a control character", d.WriteFile(ctx, "a\nb", nil), abi.EINVAL},
		{"removing a directory with files", d.Remove(ctx, "a/b"), abi.EEXIST},
		{"removing a missing file", d.Remove(ctx, "a/none"), abi.ENOTFOUND},
		{"removing the root", d.Remove(ctx, ""), abi.EINVAL},
	} {
		if !isCode(c.err, c.code) {
			t.Errorf("%s: %v, want %s", c.what, c.err, abi.ErrorName(c.code))
		}
	}
	if !errors.Is(func() error { _, err := d.ReadFile(ctx, "none"); return err }(), driver.ErrNotFound) {
		t.Errorf("a missing file is not ErrNotFound")
	}
	if err := d.Remove(ctx, "a/b/c.txt"); err != nil {
		t.Fatal(err)
	}
	if es, err := d.ReadDir(ctx, "a/b"); err != nil || len(es) != 0 {
		t.Errorf("a directory whose file was removed: %+v, %v", es, err)
	}
	if err := d.Remove(ctx, "a/b"); err != nil {
		t.Errorf("removing an empty directory: %v", err)
	}
	if es, err := d.ReadDir(ctx, "a"); err != nil || len(es) != 1 || es[0].Name != "top.txt" {
		t.Errorf("ReadDir(a) after removals = %+v, %v", es, err)
	}
}
