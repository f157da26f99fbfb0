package install_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/internal/wasmtest"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/packages"
	"github.com/weftos/weft/packages/install"
	"github.com/weftos/weft/store"
	"github.com/weftos/weft/wasm"
)

// The examples are built once per test binary, on first use, and every
// test shares one wasm.Host.
var shared wasmtest.Examples

func setup(t *testing.T) (dir string, host *wasm.Host) {
	t.Helper()
	return shared.Get(t, "../..")
}

func TestMain(m *testing.M) {
	os.Exit(shared.Teardown(m.Run()))
}

// node is a kernel with a store (state and table) on the shared host.
type node struct {
	t    *testing.T
	key  *identity.Key
	k    *kernel.Kernel
	st   *store.Store
	host *wasm.Host
	dir  string
}

func newNode(t *testing.T, lim kernel.Limits) *node {
	t.Helper()
	dir, host := setup(t)
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "weft.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := kernel.New(kernel.Config{Keyring: key, State: st, Table: st, Limits: lim,
		Restart: kernel.RestartPolicy{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, Stable: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := k.Close(ctx); err != nil {
			t.Errorf("kernel close: %v", err)
		}
		st.Close()
	})
	return &node{t: t, key: key, k: k, st: st, host: host, dir: dir}
}

// bareNode is a kernel without a store and a Wasm host of its own, for a
// test's own packages; both are closed when the test ends.
func bareNode(t *testing.T) (*kernel.Kernel, *wasm.Host) {
	t.Helper()
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	k, err := kernel.New(kernel.Config{Keyring: key})
	if err != nil {
		t.Fatal(err)
	}
	host, err := wasm.NewHost(context.Background(), wasm.Config{CacheDir: wasmtest.CacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := k.Close(ctx); err != nil {
			t.Errorf("kernel close: %v", err)
		}
		if err := host.Close(ctx); err != nil {
			t.Errorf("host close: %v", err)
		}
	})
	return k, host
}

func (n *node) load(name string) *packages.Package {
	n.t.Helper()
	pkg, err := packages.LoadDir(filepath.Join(n.dir, name), n.k.Limits())
	if err != nil {
		n.t.Fatalf("load %s: %v", name, err)
	}
	return pkg
}

func (n *node) install(name string, ok install.Approval) []kernel.ProcessId {
	n.t.Helper()
	started, err := install.Start(n.k, n.host, n.load(name), ok)
	if err != nil {
		n.t.Fatalf("install %s: %v", name, err)
	}
	return started
}

func (n *node) ask(id kernel.ProcessId, body string) *kernel.Message {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := n.k.Send(ctx, &kernel.Request{
		Target:          n.k.Address(id),
		Body:            []byte(body),
		ExpectsResponse: 20 * time.Second,
	})
	if err != nil {
		n.t.Fatalf("ask %s %q: %v", id, body, err)
	}
	return m
}

// holds reports whether id holds the capability issued by issuer with
// params.
func (n *node) holds(id, issuer kernel.ProcessId, params string) bool {
	n.t.Helper()
	caps, err := n.k.CapabilitiesOf(id)
	if err != nil {
		n.t.Fatal(err)
	}
	for _, c := range caps {
		if c.Issuer.Process == issuer && c.Params == params {
			return true
		}
	}
	return false
}

// userProcesses lists the processes that are not the node's own.
func (n *node) userProcesses() []kernel.ProcessId {
	var out []kernel.ProcessId
	for _, p := range n.k.Processes() {
		if p.ID != kernel.KernelProcess && p.ID != kernel.OperatorProcess {
			out = append(out, p.ID)
		}
	}
	return out
}

func (n *node) table() map[string][]byte {
	n.t.Helper()
	recs, err := n.st.Processes()
	if err != nil {
		n.t.Fatal(err)
	}
	return recs
}

func pid(s string) kernel.ProcessId {
	p, err := kernel.ParseProcessId(s)
	if err != nil {
		panic(err)
	}
	return p
}

var (
	echoID  = pid("echo:echo:examples")
	chainID = pid("chain:chain:examples")
)

func TestExamplesAnswer(t *testing.T) {
	n := newNode(t, kernel.Limits{})
	for _, name := range []string{"echo", "cecho", "counter", "chain", "spawner"} {
		started := n.install(name, install.Approval{All: true})
		if want := pid(name + ":" + name + ":examples"); !slices.Equal(started, []kernel.ProcessId{want}) {
			t.Fatalf("install %s started %v, want [%s]", name, started, want)
		}
	}
	if got := string(n.ask(echoID, "hello").Body); got != "hello" {
		t.Errorf("echo answered %q", got)
	}
	if got := string(n.ask(pid("cecho:cecho:examples"), "hello").Body); got != "hello" {
		t.Errorf("cecho answered %q", got)
	}
	for want := 1; want <= 3; want++ {
		if got := string(n.ask(pid("counter:counter:examples"), "").Body); got != fmt.Sprint(want) {
			t.Errorf("counter answered %q, want %d", got, want)
		}
	}
	ans := n.ask(chainID, "through the chain")
	if string(ans.Body) != "through the chain" || ans.Source().Process != echoID {
		t.Errorf("chain: %q from %s, want the body back from echo", ans.Body, ans.Source())
	}
	sp := pid("spawner:spawner:examples")
	ans = n.ask(sp, "job")
	src := ans.Source().Process
	if string(ans.Body) != "job" || src.Package != "spawner" || src == sp || ans.Metadata != n.k.Address(src).String() {
		t.Errorf("spawner: %q from %s (metadata %q), want the body back from a child", ans.Body, ans.Source(), ans.Metadata)
	}
}

func TestApproval(t *testing.T) {
	echoMsg := kernel.MessagingParams
	n := newNode(t, kernel.Limits{})
	n.install("echo", install.Approval{All: true})

	// None approved: chain does not hold echo's messaging capability, and
	// still works, echo being public.
	n.install("chain", install.Approval{})
	if n.holds(chainID, echoID, echoMsg) {
		t.Fatal("chain holds echo's messaging capability though none was approved")
	}
	if got := string(n.ask(chainID, "x").Body); got != "x" {
		t.Fatalf("chain answered %q", got)
	}
	remove(t, n.k, chainID)

	// All approved.
	n.install("chain", install.Approval{All: true})
	if !n.holds(chainID, echoID, echoMsg) {
		t.Fatal("chain does not hold echo's messaging capability with All approved")
	}
	remove(t, n.k, chainID)

	// Listed, with this node's id instead of "our".
	pkg := n.load("chain")
	req := pkg.Requested()
	if len(req) != 1 {
		t.Fatalf("chain requests %v", req)
	}
	req[0].Capability.Issuer.Node = n.k.NodeID()
	if _, err := install.Start(n.k, n.host, pkg, install.Approval{Capabilities: req}); err != nil {
		t.Fatal(err)
	}
	if !n.holds(chainID, echoID, echoMsg) {
		t.Fatal("chain does not hold echo's messaging capability, approved by name")
	}
}

func TestApprovalOfWhatWasNotRequestedIsRefused(t *testing.T) {
	n := newNode(t, kernel.Limits{})
	pkg := n.load("chain")
	for _, r := range []packages.CapabilityRequest{
		{Process: chainID, Capability: packages.NetworkCapability},
		{Process: chainID, Capability: kernel.Capability{Issuer: kernel.Address{Node: kernel.OurNode, Process: pid("counter:counter:examples")}, Params: kernel.MessagingParams}},
		// Requested, but by another process.
		{Process: pid("other:chain:examples"), Capability: pkg.Requested()[0].Capability},
	} {
		_, err := install.Start(n.k, n.host, pkg, install.Approval{Capabilities: []packages.CapabilityRequest{r}})
		if !errors.Is(err, install.ErrNotRequested) {
			t.Errorf("approving %s for %s: %v, want ErrNotRequested", r.Capability, r.Process, err)
		}
	}
	if ps := n.userProcesses(); len(ps) != 0 {
		t.Fatalf("processes started: %v", ps)
	}
}

// twin is a package of two processes a and b of the echo module, as a
// copy of the loaded echo package.
func twin(n *node) *packages.Package {
	echo := n.load("echo")
	id := kernel.PackageId{Package: "twin", Publisher: "tests"}
	pkg := &packages.Package{ID: id, Version: "1.0.0", Modules: maps.Clone(echo.Modules)}
	for _, name := range []string{"a", "b"} {
		p := echo.Processes[0]
		p.Name = name
		p.ID = kernel.ProcessId{Name: name, Package: id.Package, Publisher: id.Publisher}
		pkg.Processes = append(pkg.Processes, p)
	}
	return pkg
}

func TestBrokenModuleStartsNothing(t *testing.T) {
	n := newNode(t, kernel.Limits{})
	pkg := twin(n)
	bad := slices.Clone(pkg.Modules["echo.wasm"])
	for i := len(bad) / 2; i < len(bad)/2+64; i++ {
		bad[i] = 0xff
	}
	pkg.Modules["z.wasm"] = bad // compiled after echo.wasm
	pkg.Processes[1].WasmPath = "z.wasm"
	_, err := install.Start(n.k, n.host, pkg, install.Approval{All: true})
	if err == nil || !strings.Contains(err.Error(), "z.wasm") {
		t.Fatalf("install with a broken module: %v, want an error naming z.wasm", err)
	}
	if ps := n.userProcesses(); len(ps) != 0 {
		t.Fatalf("processes started: %v", ps)
	}
	if recs := n.table(); len(recs) != 0 {
		t.Fatalf("table records left: %v", slices.Collect(maps.Keys(recs)))
	}
}

func TestFailedStartUndoesTheInstall(t *testing.T) {
	// Two processes on the node: echo and a start, b cannot, and a must
	// go (with its grant to echo never made).
	n := newNode(t, kernel.Limits{ProcessesPerNode: 2})
	n.install("echo", install.Approval{All: true})
	pkg := twin(n)
	pkg.Processes[0].GrantTo = []kernel.ProcessId{echoID}
	_, err := install.Start(n.k, n.host, pkg, install.Approval{All: true})
	if !errors.Is(err, kernel.ErrLimit) {
		t.Fatalf("install past processes_per_node: %v, want ErrLimit", err)
	}
	if n.holds(echoID, pkg.Processes[0].ID, kernel.MessagingParams) {
		t.Fatal("echo holds the messaging capability of a, which was removed")
	}
	remove(t, n.k, echoID)
	if ps := n.userProcesses(); len(ps) != 0 {
		t.Fatalf("processes left: %v", ps)
	}
	if recs := n.table(); len(recs) != 0 {
		t.Fatalf("table records left: %v", slices.Collect(maps.Keys(recs)))
	}
}

func TestGrants(t *testing.T) {
	n := newNode(t, kernel.Limits{})
	n.install("echo", install.Approval{All: true})
	pkg := twin(n)
	a, b := pkg.Processes[0].ID, pkg.Processes[1].ID
	read := `{"read":true}`
	pkg.Processes[0].GrantTo = []kernel.ProcessId{b, echoID}
	pkg.Processes[0].GrantCapabilities = []packages.Grant{{To: b, Capability: kernel.Capability{Issuer: kernel.Address{Node: kernel.OurNode, Process: a}, Params: read}}}

	// A grant to a process that does not exist refuses the install.
	missing := slices.Clone(pkg.Processes)
	missing[1].GrantTo = []kernel.ProcessId{pid("nobody:nowhere:tests")}
	_, err := install.Start(n.k, n.host, &packages.Package{ID: pkg.ID, Version: pkg.Version, Modules: pkg.Modules, Processes: missing}, install.Approval{All: true})
	if !errors.Is(err, install.ErrGrantTarget) {
		t.Fatalf("grant to a missing process: %v, want ErrGrantTarget", err)
	}
	if ps := n.userProcesses(); !slices.Equal(ps, []kernel.ProcessId{echoID}) {
		t.Fatalf("processes: %v", ps)
	}

	// Grants go to processes of the package and to existing ones.
	if _, err := install.Start(n.k, n.host, pkg, install.Approval{All: true}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		holder kernel.ProcessId
		params string
	}{{b, kernel.MessagingParams}, {b, read}, {echoID, kernel.MessagingParams}} {
		if !n.holds(c.holder, a, c.params) {
			t.Errorf("%s does not hold %s's %s", c.holder, a, c.params)
		}
	}
	if n.holds(a, b, kernel.MessagingParams) {
		t.Errorf("a holds b's messaging capability, which nobody granted")
	}
	// The grant to echo is in echo's persisted record.
	if rec := string(n.table()[echoID.String()]); !strings.Contains(rec, a.String()) {
		t.Errorf("echo's table record does not hold a's capability: %s", rec)
	}
	if got := string(n.ask(b, "twin").Body); got != "twin" {
		t.Errorf("b answered %q", got)
	}
}

func TestPersistedDataRestores(t *testing.T) {
	n := newNode(t, kernel.Limits{})
	n.install("echo", install.Approval{All: true})
	var rec struct {
		Data []byte `json:"data"`
	}
	raw := n.table()[echoID.String()]
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatalf("table record %s: %v", raw, err)
	}
	want := `{"package":"echo:examples","version":"0.1.0","wasm_path":"echo.wasm"}`
	if string(rec.Data) != want {
		t.Fatalf("data = %s, want %s", rec.Data, want)
	}
	d, err := install.ParseData(rec.Data)
	if err != nil || d != (install.Data{Package: "echo:examples", Version: "0.1.0", WasmPath: "echo.wasm"}) {
		t.Fatalf("ParseData = %+v, %v", d, err)
	}
	for _, bad := range []string{`{"package":"echo:examples","version":"0.1.0","wasm_path":"echo.wasm","x":1}`, `{"package":"echo","version":"0.1.0","wasm_path":"echo.wasm"}`, `{"package":"echo:examples","version":"0.1.0","wasm_path":"../e.wasm"}`, `{"package":"echo:examples","wasm_path":"echo.wasm"}`} {
		if _, err := install.ParseData([]byte(bad)); err == nil {
			t.Errorf("ParseData(%s) accepted it", bad)
		}
	}

	// A node restart: the kernel restores echo from its record, making the
	// process from the Data as a daemon would.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.k.Close(ctx); err != nil {
		t.Fatal(err)
	}
	k2, err := kernel.New(kernel.Config{Keyring: n.key, State: n.st, Table: n.st})
	if err != nil {
		t.Fatal(err)
	}
	defer k2.Close(context.Background())
	rep, err := k2.Restore(func(id kernel.ProcessId, data []byte) (kernel.Process, error) {
		d, err := install.ParseData(data)
		if err != nil {
			return nil, err
		}
		pkg, err := packages.LoadDir(filepath.Join(n.dir, strings.Split(d.Package, ":")[0]), k2.Limits())
		if err != nil {
			return nil, err
		}
		mods, err := install.Compile(n.host, pkg)
		if err != nil {
			return nil, err
		}
		m, err := mods.Resolve(d.WasmPath)
		if err != nil {
			return nil, err
		}
		return m.Process(wasm.ProcessOptions{Resolve: mods.Resolve}), nil
	})
	if err != nil || len(rep.Failed) != 0 || !slices.Equal(rep.Started, []kernel.ProcessId{echoID}) {
		t.Fatalf("restore: %+v, %v", rep, err)
	}
	n.k = k2
	if got := string(n.ask(echoID, "again").Body); got != "again" {
		t.Fatalf("restored echo answered %q", got)
	}
}

func TestResolve(t *testing.T) {
	_, host := setup(t)
	n := newNode(t, kernel.Limits{})
	mods, err := install.Compile(host, n.load("spawner"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"spawner.wasm", "/spawner.wasm"} {
		if m, err := mods.Resolve(p); err != nil || m == nil {
			t.Errorf("Resolve(%q) = %v, %v", p, m, err)
		}
	}
	for _, p := range []string{"echo.wasm", "../spawner.wasm", "//spawner.wasm", "spawner"} {
		if _, err := mods.Resolve(p); err == nil {
			t.Errorf("Resolve(%q) found a module", p)
		}
	}
}

func remove(t *testing.T, k *kernel.Kernel, id kernel.ProcessId) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := k.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
}
