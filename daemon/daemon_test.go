package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftos/weft/daemon"
	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/store"
)

// failAfter bounds every wait, so that a broken daemon fails the test
// rather than hanging it; nothing waits on it for synchronisation.
const failAfter = 30 * time.Second

// syncBuffer is a log sink the daemon's goroutines may write while the
// test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// records returns the JSON log records written so far.
func (b *syncBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(b.buf.String()) {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// node is a daemon running in the background.
type node struct {
	info   daemon.Info
	cancel context.CancelFunc
	done   chan error // Run's result
	logs   *syncBuffer
}

// start runs a daemon on dir and returns once it is ready, failing the
// test if Run returns first. The daemon is stopped when the test ends.
func start(t *testing.T, dir string) *node {
	t.Helper()
	n, err := startErr(t, dir)
	if err != nil {
		t.Fatalf("Run returned before ready: %v", err)
	}
	return n
}

// startErr runs a daemon on dir and returns once it is ready (err nil) or
// Run has returned (with err, which may be nil).
func startErr(t *testing.T, dir string) (*node, error) {
	t.Helper()
	return startWith(t, dir, nil)
}

// loopbackListen is where a test's node listens for other nodes: a free
// TCP port of 127.0.0.1, never the default port on every interface.
var loopbackListen = []string{"/ip4/127.0.0.1/tcp/0"}

// startWith is startErr with the config edited by edit.
func startWith(t *testing.T, dir string, edit func(*daemon.Config)) (*node, error) {
	t.Helper()
	cfg := daemon.DefaultConfig()
	cfg.DataDir = dir
	cfg.Socket = filepath.Join(shortDir(t), "weftd.sock")
	cfg.Version = "test"
	cfg.Network.Listen = loopbackListen
	if edit != nil {
		edit(&cfg)
	}
	logs := &syncBuffer{}
	logger, err := daemon.NewLogger(logs, slog.LevelDebug, "json")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{cancel: cancel, done: make(chan error, 1), logs: logs}
	ready := make(chan daemon.Info, 1)
	go func() {
		n.done <- daemon.New(cfg, logger).Run(ctx, func(i daemon.Info) { ready <- i })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-n.done:
		case <-time.After(failAfter):
			t.Errorf("daemon on %s did not stop", dir)
		}
	})
	select {
	case n.info = <-ready:
		return n, nil
	case err := <-n.done:
		n.done <- err // for Cleanup
		if err == nil {
			err = errors.New("Run returned nil without becoming ready")
		}
		return nil, err
	case <-time.After(failAfter):
		t.Fatalf("daemon on %s not ready after %v", dir, failAfter)
	}
	return nil, nil
}

// shortDir is a new directory for a Unix socket, whose path may hold no
// more than 107 bytes; removed when the test ends.
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "wd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// stop cancels the daemon and returns Run's result.
func (n *node) stop(t *testing.T) error {
	t.Helper()
	n.cancel()
	select {
	case err := <-n.done:
		n.done <- err // for Cleanup
		return err
	case <-time.After(failAfter):
		t.Fatalf("daemon did not stop after %v", failAfter)
	}
	return nil
}

func logged(recs []map[string]any, msg string) []map[string]any {
	var out []map[string]any
	for _, r := range recs {
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

func TestRunStartsAndStops(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node") // missing: Run creates it
	n := start(t, dir)

	if n.info.DataDir != dir {
		t.Errorf("Info.DataDir = %q, want %q", n.info.DataDir, dir)
	}
	if n.info.NodeID == "" || n.info.Started.IsZero() {
		t.Errorf("Info = %+v, want a node id and a start time", n.info)
	}
	for name, want := range map[string]os.FileMode{
		"":               0o700 | os.ModeDir,
		identity.KeyFile: 0o600,
		store.FileName:   0o600,
		daemon.LockFile:  0o600,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("stat %s: %v", name, err)
			continue
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", filepath.Join(dir, name), fi.Mode(), want)
		}
	}
	lock, err := os.ReadFile(filepath.Join(dir, daemon.LockFile))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d\n", os.Getpid()); string(lock) != want {
		t.Errorf("lock file holds %q while running, want %q", lock, want)
	}

	if err := n.stop(t); err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}
	recs := n.logs.records(t)
	for _, msg := range []string{"weftd starting", "node key created", "node ready", "weftd stopped"} {
		if len(logged(recs, msg)) != 1 {
			t.Errorf("log has %d %q lines, want 1", len(logged(recs, msg)), msg)
		}
	}
	if r := logged(recs, "node ready"); len(r) == 1 && (r[0]["node_id"] != n.info.NodeID || r[0]["data_dir"] != dir) {
		t.Errorf("node ready logged %v, want node_id %s and data_dir %s", r[0], n.info.NodeID, dir)
	}
	// The parts started in the declared order and stopped in reverse.
	starts, stops := partsLogged(recs, "part started"), partsLogged(recs, "part stopped")
	if !slices.Equal(starts, nodeParts) {
		t.Errorf("parts started %q, want %q", starts, nodeParts)
	}
	if want := reversed(withStop(nodeParts)); !slices.Equal(stops, want) {
		t.Errorf("parts stopped %q, want %q", stops, want)
	}
	// The lock file stays, naming nobody.
	lock, err = os.ReadFile(filepath.Join(dir, daemon.LockFile))
	if err != nil || len(lock) != 0 {
		t.Errorf("lock file after stop: %q, %v; want it empty", lock, err)
	}

	// Again on the same dir: the same node.
	again := start(t, dir)
	if again.info.NodeID != n.info.NodeID {
		t.Errorf("second run has node id %s, first had %s", again.info.NodeID, n.info.NodeID)
	}
	if len(logged(again.logs.records(t), "node key loaded")) != 1 {
		t.Errorf("second run did not log that it loaded the key")
	}
	if err := again.stop(t); err != nil {
		t.Fatalf("second Run = %v", err)
	}
}

// nodeParts are the daemon's parts in the order they start: processes stop
// before their runtime and their data, the API before the kernel.
var nodeParts = []string{"data dir", "node key", "store", "drives", "Wasm host", "kernel", "network", "drivers", "packages", "backups", "control API"}

// withStop is parts less those with nothing to stop.
func withStop(parts []string) []string {
	return slices.DeleteFunc(slices.Clone(parts), func(p string) bool { return p == "node key" || p == "packages" })
}

func reversed(s []string) []string {
	s = slices.Clone(s)
	slices.Reverse(s)
	return s
}

// partsLogged is the parts named by the log lines msg, in order.
func partsLogged(recs []map[string]any, msg string) []string {
	var out []string
	for _, r := range logged(recs, msg) {
		out = append(out, fmt.Sprint(r["part"]))
	}
	return out
}

func TestAFailedPartStopsThoseBefore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	// The socket's directory cannot be made: a file stands in its way.
	blocker := filepath.Join(shortDir(t), "f")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := daemon.DefaultConfig()
	cfg.DataDir = dir
	cfg.Socket = filepath.Join(blocker, "weftd.sock")
	cfg.Network.Listen = loopbackListen
	logs := &syncBuffer{}
	logger, err := daemon.NewLogger(logs, slog.LevelDebug, "json")
	if err != nil {
		t.Fatal(err)
	}
	err = daemon.New(cfg, logger).Run(context.Background(), func(daemon.Info) { t.Error("ready called") })
	if err == nil || !strings.Contains(err.Error(), "weftd: start control API: ") {
		t.Fatalf("Run = %v, want an error naming the control API", err)
	}
	recs := logs.records(t)
	started := partsLogged(recs, "part started")
	if want := nodeParts[:len(nodeParts)-1]; !slices.Equal(started, want) {
		t.Errorf("parts started %q, want %q", started, want)
	}
	if stops, want := partsLogged(recs, "part stopped"), reversed(withStop(started)); !slices.Equal(stops, want) {
		t.Errorf("parts stopped %q, want %q", stops, want)
	}
	// Everything was let go: the same dir starts again.
	start(t, dir).stop(t)
}

func TestRunRefusesADirInUse(t *testing.T) {
	dir := t.TempDir()
	first := start(t, dir)

	_, err := startErr(t, dir)
	var inUse *daemon.InUseError
	if !errors.As(err, &inUse) {
		t.Fatalf("second Run on %s = %v, want an *InUseError", dir, err)
	}
	lock := filepath.Join(dir, daemon.LockFile)
	want := fmt.Sprintf("data dir %s is in use by weftd pid %d (lock %s)", dir, os.Getpid(), lock)
	if inUse.PID != os.Getpid() || !strings.Contains(err.Error(), want) {
		t.Errorf("second Run: %v (pid %d), want it to say %q", err, inUse.PID, want)
	}

	// The first is unharmed: still running, still holding the lock.
	select {
	case err := <-first.done:
		t.Fatalf("first Run returned %v while the second was refused", err)
	default:
	}
	if b, err := os.ReadFile(lock); err != nil || string(b) != fmt.Sprintf("%d\n", os.Getpid()) {
		t.Errorf("lock file after the refusal: %q, %v", b, err)
	}
	if err := first.stop(t); err != nil {
		t.Fatalf("first Run = %v", err)
	}

	// Free again, and still the same node.
	third := start(t, dir)
	if third.info.NodeID != first.info.NodeID {
		t.Errorf("node id changed from %s to %s", first.info.NodeID, third.info.NodeID)
	}
}

func TestRunRefusesAWritableDataDir(t *testing.T) {
	for _, mode := range []os.FileMode{0o770, 0o707, 0o777} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Chmod(dir, mode); err != nil {
				t.Fatal(err)
			}
			_, err := startErr(t, dir)
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("data dir %s has mode %04o", dir, mode)) {
				t.Fatalf("Run on a dir with mode %v = %v, want a refusal naming the dir and its mode", mode, err)
			}
			ents, err := os.ReadDir(dir)
			if err != nil || len(ents) != 0 {
				t.Errorf("refused dir holds %v (%v), want nothing written", ents, err)
			}
		})
	}
}

func TestRunLeavesUnrestorableProcesses(t *testing.T) {
	dir := t.TempDir()
	const id = "echo:echo:examples"
	// A process of a package the registry does not hold (its files were
	// lost, say).
	record := []byte(`{"v":1,"id":"echo:echo:examples","on_exit":"none","data":"eyJwYWNrYWdlIjoiZWNobzpleGFtcGxlcyIsInZlcnNpb24iOiIwLjEuMCIsIndhc21fcGF0aCI6ImVjaG8ud2FzbSJ9"}`)
	st, err := store.Open(filepath.Join(dir, store.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutProcess(id, record); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	n := start(t, dir) // the node becomes ready regardless
	if err := n.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}

	recs := n.logs.records(t)
	var found bool
	for _, r := range recs {
		if r["level"] == "ERROR" && r["process"] == id {
			found = true
			if e, _ := r["err"].(string); !strings.Contains(e, "package not installed") {
				t.Errorf("error logged for %s: %q, want it to say its package is not installed", id, e)
			}
		}
	}
	if !found {
		t.Errorf("no error logged naming %s; log: %v", id, recs)
	}
	if r := logged(recs, "node ready"); len(r) != 1 || r[0]["processes_restored"] != 0.0 || r[0]["processes_not_restored"] != 1.0 {
		t.Errorf("node ready logged %v, want 0 restored and 1 not restored", r)
	}

	st, err = store.Open(filepath.Join(dir, store.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	table, err := st.Processes()
	if err != nil {
		t.Fatal(err)
	}
	if len(table) != 1 || !bytes.Equal(table[id], record) {
		t.Errorf("table after the run: %q, want only %s's record, untouched", table, id)
	}
}

func TestRunTwice(t *testing.T) {
	cfg := daemon.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Socket = filepath.Join(shortDir(t), "weftd.sock")
	cfg.Network.Listen = loopbackListen
	d := daemon.New(cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run starts, sees ctx done, and stops without becoming ready.
	if err := d.Run(ctx, func(daemon.Info) { t.Error("ready called with ctx already done") }); err != nil {
		t.Fatalf("first Run = %v", err)
	}
	if err := d.Run(ctx, nil); err == nil {
		t.Fatal("second Run on one Daemon succeeded")
	}
}

func TestNewLogger(t *testing.T) {
	for _, f := range []string{"text", "json"} {
		if _, err := daemon.NewLogger(&bytes.Buffer{}, slog.LevelInfo, f); err != nil {
			t.Errorf("NewLogger(%q) = %v", f, err)
		}
	}
	if _, err := daemon.NewLogger(&bytes.Buffer{}, slog.LevelInfo, "xml"); err == nil {
		t.Error(`NewLogger("xml") succeeded`)
	}
}
