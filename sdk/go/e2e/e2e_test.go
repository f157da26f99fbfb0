//go:build !wasip1

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/internal/wasmtest"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/packages"
	"github.com/weftos/weft/wasm"
)

// goExamples are the Go example packages under examples/.
var goExamples = []string{"echo", "counter", "chain", "spawner", "notes"}

// built holds the modules, built once per test binary, and the Host every
// test shares, so that each module compiles once (under -race, wazero
// takes about 10 s to compile a Go guest; its machine code is cached on
// disk across runs, in the user's cache directory, like Go's own).
var built struct {
	once sync.Once
	dir  string // package directories: dir/NAME/{manifest.json,metadata.json,NAME.wasm}
	host *wasm.Host
	err  error
}

// repoRoot is the module root, two directories up.
func repoRoot(t *testing.T) string {
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// buildAll builds the Go examples into package directories, the way
// scripts/build-examples.sh does, the probe into dir/probe.wasm and
// procstore's Go store probe into dir/goprobe.wasm.
func buildAll(t *testing.T) string {
	built.once.Do(func() {
		root := repoRoot(t)
		dir, err := os.MkdirTemp("", "weft-e2e-")
		if err != nil {
			built.err = err
			return
		}
		built.dir = dir
		type job struct{ src, out string }
		jobs := []job{
			{"./sdk/go/e2e/testdata/probe", filepath.Join(dir, "probe.wasm")},
			{"./procstore/testdata/goprobe", filepath.Join(dir, "goprobe.wasm")},
		}
		for _, name := range goExamples {
			pkg := filepath.Join(dir, name)
			if err := os.MkdirAll(pkg, 0o755); err != nil {
				built.err = err
				return
			}
			for _, f := range []string{"manifest.json", "metadata.json"} {
				b, err := os.ReadFile(filepath.Join(root, "examples", name, f))
				if err == nil {
					err = os.WriteFile(filepath.Join(pkg, f), b, 0o644)
				}
				if err != nil {
					built.err = err
					return
				}
			}
			jobs = append(jobs, job{"./examples/" + name, filepath.Join(pkg, name+".wasm")})
		}
		goTool := os.Getenv("GO")
		if goTool == "" {
			goTool = "go"
		}
		errs := make([]error, len(jobs))
		var wg sync.WaitGroup
		for i, j := range jobs {
			wg.Go(func() {
				cmd := exec.Command(goTool, "build", "-buildmode=c-shared", "-o", j.out, j.src)
				cmd.Dir = root
				cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
				if out, err := cmd.CombinedOutput(); err != nil {
					errs[i] = fmt.Errorf("go build %s: %v\n%s", j.src, err, out)
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				built.err = err
				return
			}
		}
		built.host, built.err = wasm.NewHost(context.Background(), wasm.Config{CacheDir: wasmtest.CacheDir()})
		if built.err != nil {
			return
		}
		// Compile every module at once, on every core.
		for i, j := range jobs {
			wg.Go(func() {
				b, err := os.ReadFile(j.out)
				if err == nil {
					_, err = built.host.Compile(filepath.Base(j.out), b)
				}
				errs[i] = err
			})
		}
		wg.Wait()
		built.err = errors.Join(errs...)
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.dir
}

func TestMain(m *testing.M) {
	os.Exit(wasmtest.Teardown(m.Run(), built.host, built.dir))
}

// memState is a kernel.StateStore in memory.
type memState struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memState) GetState(p string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[p]
	return bytes.Clone(v), ok, nil
}

func (s *memState) SetState(p string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[p] = bytes.Clone(v)
	return nil
}

func (s *memState) ClearState(p string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, p)
	return nil
}

// node is a kernel on the shared wasm.Host, torn down with the test.
type node struct {
	t     *testing.T
	k     *kernel.Kernel
	host  *wasm.Host
	state *memState
	logs  *logBuffer
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newNode(t *testing.T) *node {
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st := &memState{m: map[string][]byte{}}
	k, err := kernel.New(kernel.Config{Keyring: key, State: st, Logger: log,
		Restart: kernel.RestartPolicy{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, Stable: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	buildAll(t)
	n := &node{t: t, k: k, host: built.host, state: st, logs: logs}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := k.Close(ctx); err != nil {
			t.Errorf("kernel close: %v", err)
		}
		if t.Failed() {
			t.Logf("node log:\n%s", logs.String())
		}
	})
	return n
}

// install loads the package directory of an example (checking its
// manifest and modules as the node would) and starts its processes.
func (n *node) install(name string) *packages.Package {
	t := n.t
	pkg, err := packages.LoadDir(filepath.Join(buildAll(t), name), n.k.Limits())
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	mods := map[string]*wasm.Module{}
	var resolve func(string) (*wasm.Module, error)
	resolve = func(p string) (*wasm.Module, error) {
		p = strings.TrimPrefix(p, "/")
		if m, ok := mods[p]; ok {
			return m, nil
		}
		b, ok := pkg.Modules[p]
		if !ok {
			return nil, fmt.Errorf("no module %s in %s", p, pkg.ID)
		}
		m, err := n.host.Compile(pkg.ID.String()+"/"+p, b)
		if err != nil {
			return nil, err
		}
		mods[p] = m
		return m, nil
	}
	var mu sync.Mutex // resolve runs on process goroutines (spawn)
	locked := func(p string) (*wasm.Module, error) {
		mu.Lock()
		defer mu.Unlock()
		return resolve(p)
	}
	for _, p := range pkg.Processes {
		mod, err := locked(p.WasmPath)
		if err != nil {
			t.Fatalf("compile %s: %v", p.WasmPath, err)
		}
		err = n.k.Start(kernel.Spec{
			ID:           p.ID,
			Process:      mod.Process(wasm.ProcessOptions{Resolve: locked}),
			OnExit:       p.OnExit,
			Public:       p.Public,
			Capabilities: p.RequestCapabilities,
			GrantTo:      p.GrantTo,
		})
		if err != nil {
			t.Fatalf("start %s: %v", p.ID, err)
		}
	}
	return pkg
}

// startProbe starts testdata/probe as name:probe:tests.
func (n *node) startProbe(name string, public bool, caps ...kernel.Capability) kernel.ProcessId {
	t := n.t
	b, err := os.ReadFile(filepath.Join(buildAll(t), "probe.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := n.host.Compile("probe", b)
	if err != nil {
		t.Fatal(err)
	}
	id := kernel.ProcessId{Name: name, Package: "probe", Publisher: "tests"}
	if err := n.k.Start(kernel.Spec{ID: id, Process: mod.Process(wasm.ProcessOptions{}), Public: public, Capabilities: caps}); err != nil {
		t.Fatal(err)
	}
	return id
}

// ask sends body to pid as the operator and returns the answer.
func (n *node) ask(pid kernel.ProcessId, body string) *kernel.Message {
	n.t.Helper()
	m, err := n.askErr(pid, body, nil)
	if err != nil {
		n.t.Fatalf("ask %s %q: %v", pid, body, err)
	}
	return m
}

func (n *node) askErr(pid kernel.ProcessId, body string, blob *kernel.Blob) (*kernel.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return n.k.Send(ctx, &kernel.Request{
		Target:          kernel.Address{Node: kernel.OurNode, Process: pid},
		Body:            []byte(body),
		Blob:            blob,
		ExpectsResponse: 20 * time.Second, // the first run compiles the guest
	})
}

func pid(s string) kernel.ProcessId {
	p, err := kernel.ParseProcessId(s)
	if err != nil {
		panic(err)
	}
	return p
}

func TestEcho(t *testing.T) {
	n := newNode(t)
	n.install("echo")
	for _, body := range []string{"hello", "", strings.Repeat("x", 100_000)} {
		if got := n.ask(pid("echo:echo:examples"), body); string(got.Body) != body {
			t.Fatalf("echo answered %d bytes, want %d", len(got.Body), len(body))
		}
	}
}

func TestCounterKeepsItsCountAcrossRestarts(t *testing.T) {
	n := newNode(t)
	n.install("counter")
	c := pid("counter:counter:examples")
	for want := 1; want <= 3; want++ {
		if got := string(n.ask(c, "").Body); got != fmt.Sprint(want) {
			t.Fatalf("count = %q, want %d", got, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.k.Restart(ctx, c); err != nil {
		t.Fatal(err)
	}
	// Restart returns before the new incarnation takes messages.
	if _, err := n.k.WaitProcess(ctx, c, func(p kernel.ProcessInfo) bool { return p.State == kernel.StateRunning }); err != nil {
		t.Fatal(err)
	}
	if got := string(n.ask(c, "").Body); got != "4" {
		t.Fatalf("count after a restart = %q, want 4", got)
	}
	if v, ok, _ := n.state.GetState(c.String()); !ok || string(v) != "4" {
		t.Fatalf("state = %q, %v", v, ok)
	}
}

func TestChainForwardsToEcho(t *testing.T) {
	n := newNode(t)
	n.install("echo")
	n.install("chain")
	chain := pid("chain:chain:examples")
	ans := n.ask(chain, "through the chain")
	if string(ans.Body) != "through the chain" {
		t.Fatalf("chain answered %q", ans.Body)
	}
	if src := ans.Source(); src.Process != pid("echo:echo:examples") {
		t.Fatalf("the answer came from %s, want echo (inherit)", src)
	}
	// chain holds echo's messaging capability, from its manifest.
	caps, err := n.k.CapabilitiesOf(chain)
	if err != nil {
		t.Fatal(err)
	}
	held := false
	for _, c := range caps {
		if c.Issuer.Process == pid("echo:echo:examples") && c.Params == kernel.MessagingParams {
			held = true
		}
	}
	if !held {
		t.Fatalf("chain holds %v, not echo's messaging capability", caps)
	}
}

func TestSpawnerChildrenAnswerAndExit(t *testing.T) {
	n := newNode(t)
	n.install("spawner")
	sp := pid("spawner:spawner:examples")
	seen := map[string]bool{}
	for i := range 3 {
		body := fmt.Sprintf("job %d", i)
		ans := n.ask(sp, body)
		if string(ans.Body) != body {
			t.Fatalf("answer %q, want %q", ans.Body, body)
		}
		child, err := kernel.ParseAddress(ans.Metadata)
		if err != nil {
			t.Fatalf("child address %q: %v", ans.Metadata, err)
		}
		if child.Process.Name == "spawner" || child.Process.Package != "spawner" || seen[child.Process.Name] {
			t.Fatalf("answered by %s (seen %v)", child, seen)
		}
		if src := ans.Source(); src.Process != child.Process {
			t.Fatalf("answer's source %s is not the child %s", src, child)
		}
		seen[child.Process.Name] = true
	}
	// Each child exits once it has answered.
	deadline := time.Now().Add(10 * time.Second)
	for {
		live := 0
		for _, p := range n.k.Processes() {
			if p.Parent != nil && *p.Parent == sp && p.State == kernel.StateRunning {
				live++
			}
		}
		if live == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d children still running: %+v", live, n.k.Processes())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSDKThroughTheNode runs the probe's checks: the SDK against the real
// host functions and kernel.
func TestSDKThroughTheNode(t *testing.T) {
	n := newNode(t)
	n.install("echo")
	sink := n.startProbe("sink", false)
	sinkCap := kernel.Capability{Issuer: kernel.Address{Node: kernel.OurNode, Process: sink}, Params: kernel.MessagingParams}
	probe := n.startProbe("probe", true, sinkCap)
	self := n.k.Address(probe).String()

	checks := []struct{ body, want string }{
		{"self", self},
		{"state", "ok"},
		{"call ping", n.k.Address(pid("echo:echo:examples")).String() + " ping"},
		{"call-missing", "no_such_process"},
		{"call-timeout " + sink.String(), "timeout id>0:true ctx=ctx-1"},
		{"async a1", "response id-match:true ctx=ctx-a1 body=a1"},
		{"spawn-bad", "not found"},
		{"respond-twice", "first"},
	}
	for _, c := range checks {
		if got := string(n.ask(probe, c.body).Body); got != c.want {
			t.Errorf("%s: got %q, want %q", c.body, got, c.want)
		}
	}

	ans, err := n.askErr(probe, "blob", &kernel.Blob{Mime: "text/plain", Bytes: []byte("blob bytes")})
	if err != nil || string(ans.Body) != "text/plain 10 blob bytes" {
		t.Fatalf("blob: %q, %v", ans.Body, err)
	}

	sinkAddr := n.k.Address(sink).String()
	if caps := string(n.ask(probe, "caps").Body); caps != sinkAddr+" "+kernel.MessagingParams {
		t.Errorf("caps of the probe = %q, want sink's messaging capability", caps)
	}
	if got := string(n.ask(probe, "drop "+sink.String()).Body); got != "dropped" {
		t.Errorf("drop: %q", got)
	}
	if caps := string(n.ask(probe, "caps").Body); caps != "" {
		t.Errorf("caps of the probe after Drop = %q, want none", caps)
	}
	if strings.Contains(n.logs.String(), "second respond") {
		t.Errorf("a second Respond did not fail with ErrNoRequest:\n%s", n.logs.String())
	}

	// A handler returning ErrStopped ends the process cleanly: on_exit
	// none leaves it stopped, with no error.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := n.k.Send(ctx, &kernel.Request{Target: n.k.Address(probe), Body: []byte("exit")}); err != nil {
		t.Fatal(err)
	}
	info, err := n.k.WaitProcess(ctx, probe, func(p kernel.ProcessInfo) bool { return p.State != kernel.StateRunning })
	if err != nil {
		t.Fatal(err)
	}
	if info.LastError != "" {
		t.Fatalf("probe exited with %q", info.LastError)
	}
}

// TestSDKDeferFanOut: the probe defers a request (Message.Defer), asks
// another process on its behalf, handles other requests meanwhile, and
// answers the deferred one when that answer comes back
// (Deferred.Respond), each requester getting its own answer.
func TestSDKDeferFanOut(t *testing.T) {
	n := newNode(t)
	n.install("echo")
	probe := n.startProbe("probe", true)

	// slow holds the request it takes until the test lets it answer.
	slow := pid("slow:probe:tests")
	took, release := make(chan string, 1), make(chan struct{})
	err := n.k.Start(kernel.Spec{ID: slow, Public: true, Process: kernel.ProcessFunc(func(ctx context.Context, h *kernel.Handle) error {
		for {
			m, err := h.Await()
			if err != nil {
				return nil
			}
			took <- string(m.Body)
			select {
			case <-release:
				if err := h.Respond(&kernel.Response{Body: bytes.ToUpper(m.Body)}); err != nil {
					return err
				}
			case <-ctx.Done():
				return nil
			}
		}
	})})
	if err != nil {
		t.Fatal(err)
	}

	type result struct {
		body string
		err  error
	}
	ask := func(body string) <-chan result {
		ch := make(chan result, 1)
		go func() {
			m, err := n.askErr(probe, body, nil)
			if err != nil {
				ch <- result{err: err}
				return
			}
			ch <- result{body: string(m.Body)}
		}()
		return ch
	}
	wait := func(ch <-chan result) string {
		t.Helper()
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatal(r.err)
			}
			return r.body
		case <-time.After(30 * time.Second):
			t.Fatal("no answer from the probe")
			return ""
		}
	}

	first := ask("fanout " + n.k.Address(slow).String() + " one")
	select {
	case got := <-took:
		if got != "one" {
			t.Fatalf("slow took %q", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("slow took nothing")
	}
	// The first is deferred, its answer held by slow: the probe takes and
	// answers others meanwhile, a deferred one among them.
	if got := wait(ask("fanout echo:echo:examples two")); got != "fanned in: two" {
		t.Errorf("the second fan-out got %q", got)
	}
	if got := string(n.ask(probe, "self").Body); got != n.k.Address(probe).String() {
		t.Errorf("self while a request is deferred: %q", got)
	}
	select {
	case r := <-first:
		t.Fatalf("the first fan-out was answered before slow answered: %+v", r)
	default:
	}
	close(release)
	if got := wait(first); got != "fanned in: ONE" {
		t.Errorf("the first fan-out got %q", got)
	}
	if logs := n.logs.String(); strings.Contains(logs, "probe: respond after defer") || strings.Contains(logs, "probe: second deferred respond") {
		t.Errorf("a Respond after Defer, or a second Deferred.Respond, did not fail with ErrNoRequest:\n%s", logs)
	}
}
