package install_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/packages/install"
	"github.com/weftos/weft/packages/pkgzip"
	"github.com/weftos/weft/store"
	"github.com/weftos/weft/wasm"
)

// regNode is a node with a registry whose kernel, store and registry can
// be closed and opened again over the same files, as a restart does.
type regNode struct {
	t       *testing.T
	key     *identity.Key
	host    *wasm.Host
	dir     string // the built examples
	dbPath  string
	regDir  string
	st      *store.Store
	k       *kernel.Kernel
	reg     *install.Registry
	running bool
}

func newRegNode(t *testing.T) *regNode {
	t.Helper()
	dir, host := setup(t)
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	n := &regNode{t: t, key: key, host: host, dir: dir, dbPath: filepath.Join(tmp, "weft.db"), regDir: filepath.Join(tmp, "packages")}
	t.Cleanup(func() {
		if n.running {
			n.close()
		}
	})
	n.open()
	return n
}

// open opens the store, a kernel and the registry.
func (n *regNode) open() {
	n.t.Helper()
	st, err := store.Open(n.dbPath, store.Options{})
	if err != nil {
		n.t.Fatal(err)
	}
	k, err := kernel.New(kernel.Config{Keyring: n.key, State: st, Table: st,
		Restart: kernel.RestartPolicy{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, Stable: time.Minute}})
	if err != nil {
		st.Close()
		n.t.Fatal(err)
	}
	n.st, n.k, n.running = st, k, true
	reg, err := install.OpenRegistry(n.regDir, k, n.host, nil)
	if err != nil {
		n.t.Fatal(err)
	}
	n.reg = reg
}

// close closes the kernel and the store.
func (n *regNode) close() {
	n.t.Helper()
	n.running = false
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.k.Close(ctx); err != nil {
		n.t.Errorf("kernel close: %v", err)
	}
	if err := n.st.Close(); err != nil {
		n.t.Errorf("store close: %v", err)
	}
}

// restart closes the node, opens it again and restores its processes.
func (n *regNode) restart() kernel.RestoreReport {
	n.t.Helper()
	n.close()
	n.open()
	rep, err := n.reg.Restore()
	if err != nil {
		n.t.Fatalf("restore: %v", err)
	}
	return rep
}

func (n *regNode) install(zip []byte, ok install.Approval) install.Installed {
	n.t.Helper()
	inst, already, err := n.reg.Install(zip, ok)
	if err != nil || already {
		n.t.Fatalf("install: %+v, already %v, %v", inst, already, err)
	}
	return inst
}

func (n *regNode) ask(id kernel.ProcessId, body string) string {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := n.k.Send(ctx, &kernel.Request{Target: n.k.Address(id), Body: []byte(body), ExpectsResponse: 20 * time.Second})
	if err != nil {
		n.t.Fatalf("ask %s %q: %v", id, body, err)
	}
	return string(m.Body)
}

func (n *regNode) userProcesses() []kernel.ProcessId {
	var out []kernel.ProcessId
	for _, p := range n.k.Processes() {
		if p.ID != kernel.KernelProcess && p.ID != kernel.OperatorProcess {
			out = append(out, p.ID)
		}
	}
	return out
}

func (n *regNode) tableKeys() []string {
	n.t.Helper()
	recs, err := n.st.Processes()
	if err != nil {
		n.t.Fatal(err)
	}
	var keys []string
	for k := range recs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (n *regNode) holds(id, issuer kernel.ProcessId, params string) bool {
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

// files lists the registry directory.
func (n *regNode) files() []string {
	n.t.Helper()
	entries, err := os.ReadDir(n.regDir)
	if err != nil {
		n.t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// zipOf zips the package directory dir.
func zipOf(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := pkgzip.Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// exampleZip zips example name, with edit (if not nil) applied to a copy
// of its directory first.
func (n *regNode) exampleZip(name string, edit func(dir string)) []byte {
	n.t.Helper()
	src := filepath.Join(n.dir, name)
	if edit == nil {
		return zipOf(n.t, src)
	}
	dst := n.t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		n.t.Fatal(err)
	}
	edit(dst)
	return zipOf(n.t, dst)
}

func writeJSON(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not hold %q: %s", path, old, b)
	}
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(b), old, new)), 0o600); err != nil {
		t.Fatal(err)
	}
}

var (
	counterID = pid("counter:counter:examples")
	echoPkg   = kernel.PackageId{Package: "echo", Publisher: "examples"}
)

func TestRegistryInstall(t *testing.T) {
	n := newRegNode(t)
	zip := n.exampleZip("echo", nil)

	insp, err := n.reg.Inspect(zip)
	if err != nil || insp.ID != echoPkg || insp.Version != "0.1.0" || !slices.Equal(insp.Processes, []kernel.ProcessId{echoID}) || insp.Approved != nil || !insp.Installed.IsZero() {
		t.Fatalf("inspect: %+v, %v", insp, err)
	}
	if ps := n.userProcesses(); len(ps) != 0 || len(n.files()) != 0 {
		t.Fatalf("inspect installed something: processes %v, files %v", ps, n.files())
	}

	before := time.Now().Add(-time.Second)
	inst := n.install(zip, install.Approval{All: true})
	if inst.ID != echoPkg || inst.Version != "0.1.0" || !slices.Equal(inst.Processes, []kernel.ProcessId{echoID}) || inst.Installed.Before(before) {
		t.Fatalf("installed %+v", inst)
	}
	if got := n.ask(echoID, "hello"); got != "hello" {
		t.Fatalf("echo answered %q", got)
	}

	// Same version again: nothing happens.
	again, already, err := n.reg.Install(zip, install.Approval{All: true})
	if err != nil || !already || !again.Installed.Equal(inst.Installed) {
		t.Fatalf("reinstall: %+v, already %v, %v", again, already, err)
	}
	// Another version: refused, naming both.
	other := n.exampleZip("echo", func(dir string) {
		writeJSON(t, filepath.Join(dir, "metadata.json"), `"0.1.0"`, `"0.2.0"`)
	})
	if _, _, err := n.reg.Install(other, install.Approval{All: true}); !errors.Is(err, install.ErrOtherVersion) ||
		!strings.Contains(err.Error(), "0.1.0") || !strings.Contains(err.Error(), "0.2.0") || !strings.Contains(err.Error(), "uninstall") {
		t.Fatalf("install of another version: %v, want ErrOtherVersion naming both versions", err)
	}

	if got, ok := n.reg.Get(echoPkg); !ok || got.Version != "0.1.0" {
		t.Fatalf("Get = %+v, %v", got, ok)
	}
	if _, ok := n.reg.Get(kernel.PackageId{Package: "nope", Publisher: "examples"}); ok {
		t.Fatal("Get found a package never installed")
	}
	n.install(n.exampleZip("counter", nil), install.Approval{})
	var ids []string
	for _, p := range n.reg.List() {
		ids = append(ids, p.ID.String())
	}
	if want := []string{"counter:examples", "echo:examples"}; !slices.Equal(ids, want) {
		t.Fatalf("List = %v, want %v", ids, want)
	}

	// On disk: the archive as uploaded and the record, 0600, in a 0700
	// directory.
	if want := []string{"counter@examples.json", "counter@examples.zip", "echo@examples.json", "echo@examples.zip"}; !slices.Equal(n.files(), want) {
		t.Fatalf("files %v, want %v", n.files(), want)
	}
	if fi, err := os.Stat(n.regDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("registry directory: %v, %v", fi, err)
	}
	for _, f := range n.files() {
		if fi, err := os.Stat(filepath.Join(n.regDir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v", f, fi.Mode(), err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(n.regDir, "echo@examples.zip")); err != nil || string(b) != string(zip) {
		t.Fatalf("kept archive differs from the upload (%v)", err)
	}
	var rec map[string]any
	b, err := os.ReadFile(filepath.Join(n.regDir, "echo@examples.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	if rec["id"] != "echo:examples" || rec["version"] != "0.1.0" || rec["state"] != "installed" || len(fmt.Sprint(rec["archive_sha256"])) != 64 || rec["installed"] == nil {
		t.Fatalf("install record: %s", b)
	}
}

func TestRegistryApproval(t *testing.T) {
	n := newRegNode(t)
	n.install(n.exampleZip("echo", nil), install.Approval{All: true})
	chain := n.install(n.exampleZip("chain", nil), install.Approval{})
	if len(chain.Requested) != 1 || chain.Requested[0].Capability.Issuer.Process != echoID || chain.Approved == nil || len(chain.Approved) != 0 {
		t.Fatalf("chain installed with none approved: %+v", chain)
	}
	if n.holds(chainID, echoID, kernel.MessagingParams) {
		t.Fatal("chain holds echo's capability, not approved")
	}
	if _, err := n.reg.Uninstall(context.Background(), chain.ID); err != nil {
		t.Fatal(err)
	}
	chain = n.install(n.exampleZip("chain", nil), install.Approval{Capabilities: chain.Requested})
	if !slices.Equal(chain.Approved, chain.Requested) || !n.holds(chainID, echoID, kernel.MessagingParams) {
		t.Fatalf("chain installed with its request approved: %+v", chain)
	}
}

func TestRegistryRefusesBrokenPackages(t *testing.T) {
	n := newRegNode(t)
	for name, zip := range map[string][]byte{
		"not a zip": []byte("PK, but not really"),
		"bad module": n.exampleZip("echo", func(dir string) {
			if err := os.WriteFile(filepath.Join(dir, "echo.wasm"), []byte("\x00asm\x01\x00\x00\x00garbage"), 0o600); err != nil {
				t.Fatal(err)
			}
		}),
		// Loads, but Start refuses it: the grant's target does not exist.
		"grant to nobody": n.exampleZip("echo", func(dir string) {
			writeJSON(t, filepath.Join(dir, "manifest.json"), `"grant_capabilities": []`, `"grant_capabilities": ["nobody:nowhere:tests"]`)
		}),
	} {
		if inst, _, err := n.reg.Install(zip, install.Approval{All: true}); err == nil {
			t.Errorf("%s: installed %+v", name, inst)
		}
		if name == "grant to nobody" {
			if _, _, err := n.reg.Install(zip, install.Approval{All: true}); !errors.Is(err, install.ErrGrantTarget) {
				t.Errorf("%s: %v, want ErrGrantTarget", name, err)
			}
		}
		if f := n.files(); len(f) != 0 {
			t.Errorf("%s: files left: %v", name, f)
		}
		if ps := n.userProcesses(); len(ps) != 0 {
			t.Errorf("%s: processes left: %v", name, ps)
		}
		if keys := n.tableKeys(); len(keys) != 0 {
			t.Errorf("%s: table records left: %v", name, keys)
		}
		if l := n.reg.List(); len(l) != 0 {
			t.Errorf("%s: listed: %+v", name, l)
		}
	}
	// The registry still works, and after a restart nothing is there.
	n.install(n.exampleZip("echo", nil), install.Approval{All: true})
	if rep := n.restart(); !slices.Equal(rep.Started, []kernel.ProcessId{echoID}) || len(rep.Failed) != 0 {
		t.Fatalf("restore: %+v", rep)
	}
}

func TestRegistryUninstall(t *testing.T) {
	n := newRegNode(t)
	n.install(n.exampleZip("echo", nil), install.Approval{All: true})
	counter := n.exampleZip("counter", func(dir string) {
		// counter gives echo its messaging capability on install.
		writeJSON(t, filepath.Join(dir, "manifest.json"), `"grant_capabilities": []`, `"grant_capabilities": ["echo:echo:examples"]`)
	})
	n.install(counter, install.Approval{All: true})
	for want := 1; want <= 2; want++ {
		if got := n.ask(counterID, ""); got != fmt.Sprint(want) {
			t.Fatalf("counter answered %q, want %d", got, want)
		}
	}
	if !n.holds(echoID, counterID, kernel.MessagingParams) {
		t.Fatal("echo does not hold counter's capability, granted on install")
	}

	removed, err := n.reg.Uninstall(context.Background(), kernel.PackageId{Package: "counter", Publisher: "examples"})
	if err != nil || !slices.Equal(removed, []kernel.ProcessId{counterID}) {
		t.Fatalf("uninstall: %v, %v", removed, err)
	}
	if ps := n.userProcesses(); !slices.Equal(ps, []kernel.ProcessId{echoID}) {
		t.Fatalf("processes after uninstall: %v", ps)
	}
	if keys := n.tableKeys(); !slices.Equal(keys, []string{echoID.String()}) {
		t.Fatalf("table after uninstall: %v", keys)
	}
	if f := n.files(); !slices.Equal(f, []string{"echo@examples.json", "echo@examples.zip"}) {
		t.Fatalf("files after uninstall: %v", f)
	}
	if n.holds(echoID, counterID, kernel.MessagingParams) {
		t.Fatal("echo still holds counter's capability after the uninstall")
	}
	if _, ok := n.reg.Get(kernel.PackageId{Package: "counter", Publisher: "examples"}); ok {
		t.Fatal("counter still listed")
	}
	if _, err := n.reg.Uninstall(context.Background(), kernel.PackageId{Package: "counter", Publisher: "examples"}); !errors.Is(err, install.ErrNotInstalled) {
		t.Fatalf("second uninstall: %v, want ErrNotInstalled", err)
	}
	// Its state went with it.
	n.install(counter, install.Approval{All: true})
	if got := n.ask(counterID, ""); got != "1" {
		t.Fatalf("reinstalled counter answered %q, want 1", got)
	}
}

func TestRegistryRestart(t *testing.T) {
	n := newRegNode(t)
	n.install(n.exampleZip("echo", nil), install.Approval{All: true})
	n.install(n.exampleZip("chain", nil), install.Approval{All: true})
	n.install(n.exampleZip("counter", nil), install.Approval{})
	n.install(n.exampleZip("spawner", nil), install.Approval{})
	for want := 1; want <= 2; want++ {
		if got := n.ask(counterID, ""); got != fmt.Sprint(want) {
			t.Fatalf("counter answered %q, want %d", got, want)
		}
	}
	listed := n.reg.List()

	rep := n.restart()
	want := []kernel.ProcessId{chainID, counterID, echoID, pid("spawner:spawner:examples")}
	if started := slices.SortedFunc(slices.Values(rep.Started), func(a, b kernel.ProcessId) int { return strings.Compare(a.String(), b.String()) }); !slices.Equal(started, want) || len(rep.Failed) != 0 {
		t.Fatalf("restore: %+v", rep)
	}
	if got := n.ask(counterID, ""); got != "3" {
		t.Fatalf("counter answered %q after the restart, want 3", got)
	}
	if !n.holds(chainID, echoID, kernel.MessagingParams) {
		t.Fatal("chain lost echo's capability in the restart")
	}
	if got := n.ask(chainID, "through"); got != "through" {
		t.Fatalf("chain answered %q", got)
	}
	relisted := n.reg.List()
	if len(relisted) != len(listed) {
		t.Fatalf("listed %d packages after the restart, %d before", len(relisted), len(listed))
	}
	for i := range listed {
		a, b := listed[i], relisted[i]
		if a.ID != b.ID || a.Version != b.Version || !a.Installed.Equal(b.Installed) || !slices.Equal(a.Processes, b.Processes) || !slices.Equal(a.Requested, b.Requested) || !slices.Equal(a.Approved, b.Approved) {
			t.Errorf("after the restart %+v, before %+v", b, a)
		}
	}
	// Installing again after a restart is still a no-op.
	if _, already, err := n.reg.Install(n.exampleZip("echo", nil), install.Approval{All: true}); err != nil || !already {
		t.Fatalf("reinstall after restart: already %v, %v", already, err)
	}
}

func TestRegistryRestoreRefusesUnknownPackages(t *testing.T) {
	n := newRegNode(t)
	n.install(n.exampleZip("echo", nil), install.Approval{All: true})
	n.install(n.exampleZip("counter", nil), install.Approval{All: true})
	n.close()
	// The registry's echo is another version than the process's, and
	// counter is not in the registry at all.
	writeJSON(t, filepath.Join(n.regDir, "echo@examples.json"), `"version": "0.1.0"`, `"version": "0.9.0"`)
	for _, f := range []string{"counter@examples.json", "counter@examples.zip"} {
		if err := os.Remove(filepath.Join(n.regDir, f)); err != nil {
			t.Fatal(err)
		}
	}
	n.open()
	rep, err := n.reg.Restore()
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Started) != 0 || len(rep.Failed) != 2 {
		t.Fatalf("restore: %+v", rep)
	}
	if e := rep.Failed[echoID.String()]; e == nil || !strings.Contains(e.Error(), "0.1.0") || !strings.Contains(e.Error(), "0.9.0") {
		t.Errorf("echo: %v, want an error naming both versions", e)
	}
	if e := rep.Failed[counterID.String()]; !errors.Is(e, install.ErrNotInstalled) {
		t.Errorf("counter: %v, want ErrNotInstalled", e)
	}
	// They stay in the persisted table.
	if keys := n.tableKeys(); !slices.Equal(keys, []string{counterID.String(), echoID.String()}) {
		t.Fatalf("table: %v", keys)
	}
}

func TestRegistryRollsBackCrashCutInstalls(t *testing.T) {
	for _, state := range []string{"installing", "removing"} {
		t.Run(state, func(t *testing.T) {
			n := newRegNode(t)
			n.install(n.exampleZip("echo", nil), install.Approval{All: true})
			counter := n.exampleZip("counter", func(dir string) {
				writeJSON(t, filepath.Join(dir, "manifest.json"), `"grant_capabilities": []`, `"grant_capabilities": ["echo:echo:examples"]`)
			})
			n.install(counter, install.Approval{All: true})
			if got := n.ask(counterID, ""); got != "1" {
				t.Fatalf("counter answered %q", got)
			}
			n.close()
			// A crash after Start and before the record said installed
			// (or in the middle of an uninstall); an archive whose record
			// was never written; a temporary file being written.
			writeJSON(t, filepath.Join(n.regDir, "counter@examples.json"), `"state": "installed"`, `"state": "`+state+`"`)
			spawner := zipOf(t, filepath.Join(n.dir, "spawner"))
			for name, b := range map[string][]byte{"spawner@examples.zip": spawner, ".tmp-spawner@examples.json-123": []byte("{")} {
				if err := os.WriteFile(filepath.Join(n.regDir, name), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}

			n.open()
			if l := n.reg.List(); len(l) != 1 || l[0].ID != echoPkg {
				t.Fatalf("listed after the crash: %+v", l)
			}
			rep, err := n.reg.Restore()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(rep.Started, []kernel.ProcessId{echoID}) || len(rep.Failed) != 0 {
				t.Fatalf("restore: %+v", rep)
			}
			if ps := n.userProcesses(); !slices.Equal(ps, []kernel.ProcessId{echoID}) {
				t.Fatalf("processes: %v", ps)
			}
			if keys := n.tableKeys(); !slices.Equal(keys, []string{echoID.String()}) {
				t.Fatalf("table: %v", keys)
			}
			if f := n.files(); !slices.Equal(f, []string{"echo@examples.json", "echo@examples.zip"}) {
				t.Fatalf("files: %v", f)
			}
			if n.holds(echoID, counterID, kernel.MessagingParams) {
				t.Fatal("echo still holds the rolled-back counter's capability")
			}
			// Nothing of counter remains: installed again, it starts
			// from scratch.
			n.install(counter, install.Approval{All: true})
			if got := n.ask(counterID, ""); got != "1" {
				t.Fatalf("reinstalled counter answered %q, want 1", got)
			}
		})
	}
}

func TestRegistryRollbackBeforeRestore(t *testing.T) {
	// An install cut short is rolled back by the next Install of the
	// package too, if Restore has not run.
	n := newRegNode(t)
	zip := n.exampleZip("counter", nil)
	n.install(zip, install.Approval{All: true})
	if got := n.ask(counterID, ""); got != "1" {
		t.Fatalf("counter answered %q", got)
	}
	n.close()
	writeJSON(t, filepath.Join(n.regDir, "counter@examples.json"), `"state": "installed"`, `"state": "installing"`)
	n.open()
	n.install(zip, install.Approval{All: true})
	if got := n.ask(counterID, ""); got != "1" {
		t.Fatalf("reinstalled counter answered %q, want 1", got)
	}
}

func TestRegistryConcurrentInstalls(t *testing.T) {
	n := newRegNode(t)
	zips := map[string][]byte{"echo": n.exampleZip("echo", nil), "counter": n.exampleZip("counter", nil)}
	var wg sync.WaitGroup
	var mu sync.Mutex
	fresh := map[string]int{}
	for i := range 8 {
		for name, zip := range zips {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, already, err := n.reg.Install(zip, install.Approval{All: true})
				if err != nil {
					t.Errorf("install %s #%d: %v", name, i, err)
					return
				}
				n.reg.List()
				mu.Lock()
				if !already {
					fresh[name]++
				}
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	if fresh["echo"] != 1 || fresh["counter"] != 1 {
		t.Fatalf("fresh installs: %v, want one each", fresh)
	}
	if got := n.ask(echoID, "x"); got != "x" {
		t.Fatalf("echo answered %q", got)
	}
}

// A package's grant to a node process that is not in the persisted table
// (a driver, NAME:drivers:weft, started from the node's configuration
// before the registry restores) is given again at every restore.
func TestRegistryRestoreGrantsToNodeProcesses(t *testing.T) {
	timer := pid("timer:drivers:weft")
	startTimer := func(n *regNode) {
		if err := n.k.Start(kernel.Spec{ID: timer, Process: kernel.ProcessFunc(func(ctx context.Context, h *kernel.Handle) error {
			<-ctx.Done()
			return nil
		})}); err != nil {
			t.Fatal(err)
		}
	}
	n := newRegNode(t)
	startTimer(n)
	n.install(n.exampleZip("echo", func(dir string) {
		writeJSON(t, filepath.Join(dir, "manifest.json"), `"grant_capabilities": []`, `"grant_capabilities": ["timer:drivers:weft"]`)
	}), install.Approval{All: true})
	if !n.holds(timer, echoID, kernel.MessagingParams) {
		t.Fatal("the driver does not hold echo's capability, granted on install")
	}
	n.close()
	n.open()
	startTimer(n)
	if _, err := n.reg.Restore(); err != nil {
		t.Fatal(err)
	}
	if !n.holds(timer, echoID, kernel.MessagingParams) {
		t.Fatal("the driver lost echo's capability in the restart")
	}
	// A node process that is gone is no reason to fail the restore.
	n.close()
	n.open()
	if _, err := n.reg.Restore(); err != nil {
		t.Fatalf("restore without the driver: %v", err)
	}
}
