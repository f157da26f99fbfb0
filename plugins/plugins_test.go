package plugins_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/plugins"
	"github.com/weftos/weft/plugins/driver"
)

// A driver subprocess answers requests, one and many at once, and is a
// process like any other in the kernel's table.
func TestDriverAnswers(t *testing.T) {
	e := newEnv(t)
	m := e.start(t, probe(t, "probe"))
	if got := e.mustAsk(t, "probe", "echo hello"); got != "echo hello" {
		t.Fatalf("echo: %q", got)
	}
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf("echo %d", i)
			if got, err := e.ask("probe", body, 20*time.Second); err != nil || got != body {
				t.Errorf("ask %d: %q, %v", i, got, err)
			}
		}()
	}
	wg.Wait()
	in, err := e.k.Process(plugins.ID("probe"))
	if err != nil || in.State != kernel.StateRunning {
		t.Fatalf("process: %+v, %v", in, err)
	}
	list := m.List()
	if len(list) != 1 || list[0].Pid == 0 || list[0].Calls != 65 || list[0].Refused != "" {
		t.Fatalf("list: %+v", list)
	}
	pid, _ := strconv.Atoi(e.mustAsk(t, "probe", "pid"))
	if pid != list[0].Pid {
		t.Errorf("the driver says pid %d, the list %d", pid, list[0].Pid)
	}
}

// A driver SIGKILLed mid-request: what waited on it fails at once with
// killed, not at its timeout; the driver comes back and answers again.
func TestDriverKilledMidRequest(t *testing.T) {
	e := newEnv(t)
	m := e.start(t, probe(t, "probe"))
	errc := make(chan error, 1)
	go func() {
		_, err := e.ask("probe", "block", time.Hour)
		errc <- err
	}()
	eventually(t, "the driver takes the request", func() bool { return m.List()[0].Calls == 1 })
	if err := syscall.Kill(m.List()[0].Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		wantKind(t, err, kernel.ErrKilled)
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting request did not fail within 10 s of the driver's death")
	}
	e.wait(t, "probe", "it restarted", func(in kernel.ProcessInfo) bool { return in.Restarts >= 1 && in.State == kernel.StateRunning })
	if got := e.mustAsk(t, "probe", "echo again"); got != "echo again" {
		t.Fatalf("after the restart: %q", got)
	}
}

// A driver that exits by itself in the middle of a request.
func TestDriverCrashes(t *testing.T) {
	e := newEnv(t)
	e.start(t, probe(t, "probe"))
	_, err := e.ask("probe", "crash", time.Hour)
	wantKind(t, err, kernel.ErrKilled)
	in := e.wait(t, "probe", "it restarted", func(in kernel.ProcessInfo) bool { return in.Restarts >= 1 })
	if !strings.Contains(in.LastError, "exited") && !strings.Contains(in.LastError, "request") {
		t.Errorf("last error %q does not say it exited", in.LastError)
	}
	e.mustAsk(t, "probe", "echo")
}

// A driver that hangs is caught by its health check within
// HealthInterval+HealthTimeout, and restarted.
func TestDriverHangs(t *testing.T) {
	e := newEnv(t)
	e.start(t, probe(t, "probe"))
	t0 := time.Now()
	_, err := e.ask("probe", "hang", time.Hour)
	wantKind(t, err, kernel.ErrKilled)
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("caught after %v", d)
	}
	in := e.wait(t, "probe", "it restarted", func(in kernel.ProcessInfo) bool { return in.Restarts >= 1 })
	if !strings.Contains(in.LastError, "health check") {
		t.Errorf("last error %q does not name the health check", in.LastError)
	}
	e.mustAsk(t, "probe", "echo")
}

// A binary whose checksum is not its declaration's is refused, naming
// both sums, and the rest of the node goes on.
func TestChecksumMismatch(t *testing.T) {
	e := newEnv(t)
	bad := probe(t, "bad")
	bad.SHA256 = strings.Repeat("ab", 32)
	m := e.start(t, bad, probe(t, "good"))
	list := m.List()
	if !strings.Contains(list[0].Refused, sum(t, probeBin)) || !strings.Contains(list[0].Refused, bad.SHA256) {
		t.Errorf("refused: %q, want both sums", list[0].Refused)
	}
	if _, err := e.k.Process(plugins.ID("bad")); err == nil {
		t.Error("a refused driver is in the process table")
	}
	e.mustAsk(t, "good", "echo")
	if err := m.Restart(context.Background(), "bad"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("restart of a refused driver: %v", err)
	}
}

// Binaries that are not drivers, or speak another protocol version, fail
// with an error that says so, and are restarted with backoff, not in a
// tight loop.
func TestNotADriver(t *testing.T) {
	for _, c := range []struct{ path, want string }{
		{"/bin/true", "is not a weft driver"},
		{probeV2, "another version of the driver protocol"},
	} {
		t.Run(c.path, func(t *testing.T) {
			e := newEnv(t)
			d := plugins.Decl{Name: "x", Path: c.path, SHA256: sum(t, c.path), StartTimeout: 5 * time.Second}
			e.start(t, d)
			in := e.wait(t, "x", "it failed twice", func(in kernel.ProcessInfo) bool { return in.Restarts >= 2 })
			if !strings.Contains(in.LastError, c.want) {
				t.Errorf("last error %q, want %q", in.LastError, c.want)
			}
		})
	}
}

// A driver's Start that fails ends the run; on_exit applies.
func TestStartFails(t *testing.T) {
	e := newEnv(t)
	d := probe(t, "probe")
	d.Config = []byte(`{"fail_start": true}`)
	e.start(t, d)
	in := e.wait(t, "probe", "it failed", func(in kernel.ProcessInfo) bool { return in.Restarts >= 1 })
	if !strings.Contains(in.LastError, "told to fail") {
		t.Errorf("last error %q", in.LastError)
	}
}

// A driver sends with its own capabilities only, reaches its own
// databases, and its bad sends are refused and counted.
func TestDriverSendsAndStores(t *testing.T) {
	e := newEnv(t)
	if err := e.k.Start(kernel.Spec{ID: kernel.ProcessId{Name: "echo", Package: "p", Publisher: "test"}, Process: kernel.ProcessFunc(echoProc)}); err != nil {
		t.Fatal(err)
	}
	m := e.start(t, probe(t, "probe"))
	if got := e.mustAsk(t, "probe", "send our@echo:p:test hi"); !strings.Contains(got, "no_capability") {
		t.Errorf("send without the capability: %q", got)
	}
	if got := e.mustAsk(t, "probe", "send our@nobody:p:test hi"); !strings.Contains(got, "no_such_process") {
		t.Errorf("send to nobody: %q", got)
	}
	if got := e.mustAsk(t, "probe", "send bad-address hi"); !strings.Contains(got, "error") {
		t.Errorf("send to a bad address: %q", got)
	}
	if err := e.k.Grant(kernel.Capability{Issuer: e.k.Address(kernel.ProcessId{Name: "echo", Package: "p", Publisher: "test"}), Params: kernel.MessagingParams}, plugins.ID("probe")); err != nil {
		t.Fatal(err)
	}
	if got := e.mustAsk(t, "probe", "send our@echo:p:test hi"); got != "hi" {
		t.Errorf("send with the capability: %q", got)
	}
	if got := e.mustAsk(t, "probe", "kv k v1"); got != "v1" {
		t.Errorf("kv: %q", got)
	}
	if got := e.mustAsk(t, "probe", "kvother p:test db k"); !strings.Contains(got, "error") {
		t.Errorf("another package's database: %q", got)
	}
	if got := e.mustAsk(t, "probe", fmt.Sprintf("big our@echo:p:test %d", 2<<20)); !strings.Contains(got, "too_large") {
		t.Errorf("an oversized body: %q", got)
	}
	if m.List()[0].RefusedOps < 4 {
		t.Errorf("refused operations: %d", m.List()[0].RefusedOps)
	}
	// The driver's state survives its restart.
	if err := m.Restart(context.Background(), "probe"); err != nil {
		t.Fatal(err)
	}
	if got := e.mustAsk(t, "probe", "kv k"); got != "v1" {
		t.Errorf("kv after a restart: %q", got)
	}
}

// A driver flooding a process fills its mailbox: the sends past it are
// refused, and the driver and the node go on.
func TestDriverFloods(t *testing.T) {
	e := newEnv(t)
	sink := kernel.ProcessId{Name: "sink", Package: "p", Publisher: "test"}
	if err := e.k.Start(kernel.Spec{ID: sink, Public: true, Process: kernel.ProcessFunc(func(ctx context.Context, h *kernel.Handle) error {
		<-ctx.Done()
		return nil
	})}); err != nil {
		t.Fatal(err)
	}
	e.start(t, probe(t, "probe"))
	n := e.k.Limits().MailboxLength + 100
	got := e.mustAsk(t, "probe", fmt.Sprintf("flood our@sink:p:test %d", n))
	if want := fmt.Sprintf("ok %d failed 100", e.k.Limits().MailboxLength); got != want {
		t.Errorf("flood: %q, want %q", got, want)
	}
	e.mustAsk(t, "probe", "echo")
}

// The same driver runs in weftd from a factory, with the same contract.
func TestInProcess(t *testing.T) {
	e := newEnv(t)
	m := e.start(t, plugins.Decl{Name: "local", Public: true, Factory: func() driver.Driver { return &upper{} }})
	if got := e.mustAsk(t, "local", "hi"); got != "HI" {
		t.Errorf("in-process: %q", got)
	}
	if got := e.mustAsk(t, "local", "run"); got != "<nil>" {
		t.Errorf("the run's context after Start: %s", got)
	}
	if _, err := e.ask("local", "panic", time.Minute); err == nil {
		t.Error("a panic answered")
	}
	e.wait(t, "local", "it restarted", func(in kernel.ProcessInfo) bool { return in.Restarts >= 1 && in.State == kernel.StateRunning })
	if got := e.mustAsk(t, "local", "again"); got != "AGAIN" || m.List()[0].Pid != 0 {
		t.Errorf("after the panic: %q, pid %d", got, m.List()[0].Pid)
	}
}

// upper answers in upper case; "run" says whether its run's context,
// kept from Start, is still live.
type upper struct{ run context.Context }

func (u *upper) Start(ctx context.Context, _ driver.Start) error { u.run = ctx; return nil }
func (u *upper) Handle(_ context.Context, r *driver.Request) *driver.Response {
	switch string(r.Body()) {
	case "panic":
		panic("told to")
	case "run":
		return driver.Reply([]byte(fmt.Sprint(u.run.Err())))
	}
	return driver.Reply([]byte(strings.ToUpper(string(r.Body()))))
}

func echoProc(ctx context.Context, h *kernel.Handle) error {
	for {
		m, err := h.Await()
		if err != nil {
			return nil
		}
		if m.WantsResponse() {
			_ = h.Respond(&kernel.Response{Body: m.Body})
		}
	}
}

// eventually waits until cond holds, checking every few milliseconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 20 s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
