package backup_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftos/weft/backup"
	"github.com/weftos/weft/backup/object"
	"github.com/weftos/weft/backup/repo"
	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/store"
)

// node is a node's data as weftd opens it for backups: a store, drives and
// a registry directory sharing one barrier and one Changes, and a node key.
type node struct {
	dir     string
	st      *store.Store
	drives  *store.Drives
	changes *store.Changes
	key     *identity.Key
}

const pkg = "notes:acme"

func newNode(t *testing.T) *node {
	t.Helper()
	dir := t.TempDir()
	key, _, err := identity.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, c := new(store.Barrier), new(store.Changes)
	st, err := store.Open(filepath.Join(dir, store.FileName), store.Options{Barrier: b, Changes: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	drives, err := store.OpenDrives(filepath.Join(dir, "drives"), st.Usage())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drives.Close() })
	drives.UseBarrier(b)
	drives.UseChanges(c)
	if err := os.MkdirAll(filepath.Join(dir, "packages"), 0o700); err != nil {
		t.Fatal(err)
	}
	n := &node{dir: dir, st: st, drives: drives, changes: c, key: key}
	if err := st.CreateDB(pkg, "db"); err != nil {
		t.Fatal(err)
	}
	if err := drives.Create(pkg, "files"); err != nil {
		t.Fatal(err)
	}
	return n
}

// write changes the node's data: a state, a key, a drive file, a
// registry file.
func (n *node) write(t *testing.T, i int, data []byte) {
	t.Helper()
	if err := n.st.SetState("notes:notes:acme", small(data)); err != nil {
		t.Fatal(err)
	}
	if err := n.st.KVSet(pkg, "db", []byte("k"), small(data)); err != nil {
		t.Fatal(err)
	}
	if err := n.drives.WriteFile(pkg, "files", "big.bin", data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.dir, "packages", "rec.json"), []byte(strings.Repeat("r", i+1)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// small is what of data goes in a state and a key-value pair (each
// bounded to 1 MiB).
func small(data []byte) []byte { return data[:min(len(data), 256<<10)] }

func (n *node) source() backup.Source {
	return backup.Source{Store: n.st, Drives: n.drives,
		Dirs:  map[string]string{"packages": filepath.Join(n.dir, "packages")},
		Files: map[string]string{identity.KeyFile: filepath.Join(n.dir, identity.KeyFile)}}
}

func testKey(t *testing.T) *backup.Key {
	t.Helper()
	data, err := backup.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	k, err := backup.ParseKey(data)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newEngine(t *testing.T, n *node, key *backup.Key, ts []backup.Target, mod func(*backup.Config)) *backup.Engine {
	t.Helper()
	cfg := backup.Config{Targets: ts, Key: key, Source: n.source(), DataDir: n.dir, NodeID: n.key.NodeID(),
		Version: "test", Hostname: "host", Changes: n.changes, PackSize: 64 << 10}
	if mod != nil {
		mod(&cfg)
	}
	e, err := backup.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// random returns n bytes no compressor shrinks.
func random(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// failing is a backend whose Puts fail once it has let through the number
// failAfter set (never while it is negative).
type failing struct {
	object.Backend
	mu   sync.Mutex
	left int
}

func (f *failing) failAfter(n int) {
	f.mu.Lock()
	f.left = n
	f.mu.Unlock()
}

func (f *failing) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	f.mu.Lock()
	fail := f.left == 0
	if f.left > 0 {
		f.left--
	}
	f.mu.Unlock()
	if fail {
		return errors.New("injected: the target is down")
	}
	return f.Backend.Put(ctx, name, r, size)
}

func TestRunToTwoTargetsAndRestore(t *testing.T) {
	n := newNode(t)
	key := testKey(t)
	a, b := object.NewMem("a"), object.NewMem("b")
	e := newEngine(t, n, key, []backup.Target{{Name: "a", Backend: a}, {Name: "b", Backend: b}}, nil)
	ctx := context.Background()

	// Not initialised yet: a run says so per target, and fails no call.
	res, err := e.Run(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !errors.Is(r.Err, backup.ErrNotInitialized) {
			t.Fatalf("run before init: %s: %v", r.Target, r.Err)
		}
	}
	inits, err := e.Init(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range inits {
		if r.Err != nil || !r.Created {
			t.Fatalf("init %s: created %v, %v", r.Target, r.Created, r.Err)
		}
	}
	if again, _ := e.Init(ctx, nil); again[0].Created || again[0].Err != nil {
		t.Fatalf("second init: %+v", again[0])
	}

	// Larger than a few chunks (512 KiB to 8 MiB), so that a small change
	// leaves most of them as they were.
	n.write(t, 0, random(8<<20, 1))
	var events []backup.Progress
	res, err = e.Run(ctx, nil, func(p backup.Progress) { events = append(events, p) })
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil || r.Snapshot == "" {
			t.Fatalf("run %s: %+v", r.Target, r)
		}
		if r.Manifest.NodeID != n.key.NodeID() {
			t.Fatalf("manifest node id %s", r.Manifest.NodeID)
		}
	}
	if last := events[len(events)-1]; last.Phase != "done" || last.ScannedBytes != last.TotalBytes || last.TotalBytes < 8<<20 ||
		last.Targets[0].UploadedBytes == 0 || last.Targets[1].UploadedBytes == 0 {
		t.Fatalf("last progress: %+v", last)
	}
	// Staging is gone once the run ends.
	if _, err := os.Stat(filepath.Join(n.dir, backup.StagingDir)); err == nil {
		if ents, _ := os.ReadDir(filepath.Join(n.dir, backup.StagingDir)); len(ents) > 0 {
			t.Fatalf("staging left behind: %v", ents)
		}
	}

	// A second run after a small change uploads only the changed chunks.
	data := random(8<<20, 1)
	copy(data[1<<20:], "changed")
	n.write(t, 1, data)
	res2, err := e.Run(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res2 {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		// The chunks around the change and the database's: less than the
		// first, the rest reused (how much less depends on where the
		// repository's random polynomial cuts chunks: BenchmarkBackup
		// measures it on 1 GiB).
		if r.Stats.PackBytes >= res[i].Stats.PackBytes || r.Stats.BlobsReused == 0 {
			t.Fatalf("%s: second run uploaded %d bytes reusing %d blobs, the first %d", r.Target, r.Stats.PackBytes, r.Stats.BlobsReused, res[i].Stats.PackBytes)
		}
	}

	lists, err := e.Snapshots(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lists {
		if l.Err != nil || len(l.Snapshots) != 2 {
			t.Fatalf("snapshots of %s: %d, %v", l.Target, len(l.Snapshots), l.Err)
		}
	}
	st := e.Status()
	if st.Targets[0].Runs != 3 || st.Targets[0].LastSnapshot != res2[0].Snapshot || st.Targets[0].LastError != "" {
		t.Fatalf("status: %+v", st.Targets[0])
	}

	// Each target restores the node as it was at the second run.
	for _, tg := range []backup.Target{{Name: "a", Backend: a}, {Name: "b", Backend: b}} {
		dst := filepath.Join(t.TempDir(), "restored")
		if err := os.Mkdir(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		r, err := backup.Restore(ctx, backup.RestoreConfig{Target: tg, Key: key, DataDir: dst,
			Names: []string{store.FileName, "drives", "packages", identity.KeyFile}, Required: []string{store.FileName, identity.KeyFile}})
		if err != nil {
			t.Fatalf("restore from %s: %v", tg.Name, err)
		}
		if r.NodeID != n.key.NodeID() || r.Snapshot.ID.String() != res2[0].Snapshot && tg.Name == "a" {
			t.Fatalf("restored %+v", r)
		}
		checkRestored(t, dst, n, data, "rr")
	}
}

// checkRestored opens a restored data dir and compares it with what the
// node wrote.
func checkRestored(t *testing.T, dst string, n *node, data []byte, rec string) {
	t.Helper()
	fi, err := os.Stat(dst)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode: %v, %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(dst, identity.KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("node key mode: %v", err)
	}
	k, err := identity.Load(dst)
	if err != nil || k.NodeID() != n.key.NodeID() {
		t.Fatalf("node key: %v", err)
	}
	st, err := store.Open(filepath.Join(dst, store.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got, _, err := st.GetState("notes:notes:acme"); err != nil || !bytes.Equal(got, small(data)) {
		t.Fatalf("state: %d bytes, %v", len(got), err)
	}
	if got, _, err := st.KVGet(pkg, "db", []byte("k")); err != nil || !bytes.Equal(got, small(data)) {
		t.Fatalf("kv: %d bytes, %v", len(got), err)
	}
	if got, err := os.ReadFile(filepath.Join(dst, "drives", pkg, "files", "big.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("drive file: %d bytes, %v", len(got), err)
	}
	if got, err := os.ReadFile(filepath.Join(dst, "packages", "rec.json")); err != nil || string(got) != rec {
		t.Fatalf("registry file: %q, %v", got, err)
	}
	for _, leftover := range []string{backup.StagingDir, backup.RestoreMarker} {
		if _, err := os.Stat(filepath.Join(dst, leftover)); err == nil {
			t.Fatalf("%s left in the data dir", leftover)
		}
	}
}

func TestRunOneTargetFails(t *testing.T) {
	n := newNode(t)
	key := testKey(t)
	good := object.NewMem("good")
	bad := &failing{Backend: object.NewMem("bad"), left: -1}
	e := newEngine(t, n, key, []backup.Target{{Name: "bad", Backend: bad}, {Name: "good", Backend: good}}, nil)
	ctx := context.Background()
	if _, err := e.Init(ctx, nil); err != nil {
		t.Fatal(err)
	}
	n.write(t, 0, random(400<<10, 2))
	bad.failAfter(2) // two packs, then down
	res, err := e.Run(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "the target is down") {
		t.Fatalf("bad target: %v", res[0].Err)
	}
	if res[1].Err != nil || res[1].Snapshot == "" {
		t.Fatalf("good target: %+v", res[1])
	}
	st := e.Status()
	if st.Targets[0].Failures != 1 || st.Targets[0].LastError == "" || st.Targets[1].LastError != "" {
		t.Fatalf("status: %+v", st.Targets)
	}
	// Back up: the next run completes it, uploading what it lacks.
	bad.failAfter(-1)
	res, err = e.Run(ctx, nil, nil)
	if err != nil || res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("run after the target came back: %v, %+v", err, res)
	}
	vs, err := e.Verify(ctx, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Err != nil || !v.Check.OK() {
			t.Fatalf("verify %s: %v %+v", v.Target, v.Err, v.Check)
		}
	}
}

// blocking is a backend whose Puts of packs wait for release once armed.
type blocking struct {
	object.Backend
	armed   atomic.Bool
	reached chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blocking) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if b.armed.Load() && strings.HasPrefix(name, "data/") {
		b.once.Do(func() { close(b.reached) })
		select {
		case <-b.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return b.Backend.Put(ctx, name, r, size)
}

func TestOneOperationAtATime(t *testing.T) {
	n := newNode(t)
	bl := &blocking{Backend: object.NewMem("slow"), reached: make(chan struct{}), release: make(chan struct{})}
	e := newEngine(t, n, testKey(t), []backup.Target{{Name: "slow", Backend: bl}}, nil)
	ctx := context.Background()
	if _, err := e.Init(ctx, nil); err != nil {
		t.Fatal(err)
	}
	n.write(t, 0, random(100<<10, 3))
	bl.armed.Store(true)
	done := make(chan error, 1)
	go func() {
		res, err := e.Run(ctx, nil, nil)
		if err == nil {
			err = res[0].Err
		}
		done <- err
	}()
	<-bl.reached
	if st := e.Status(); st.Running != "run" || st.Progress.Phase != "upload" {
		t.Fatalf("status while running: %q %q", st.Running, st.Progress.Phase)
	}
	for name, op := range map[string]func() error{
		"run":    func() error { _, err := e.Run(ctx, nil, nil); return err },
		"prune":  func() error { _, err := e.Prune(ctx, nil); return err },
		"verify": func() error { _, err := e.Verify(ctx, nil, false); return err },
		"init":   func() error { _, err := e.Init(ctx, nil); return err },
	} {
		if err := op(); !errors.Is(err, backup.ErrBusy) {
			t.Errorf("%s during a run: %v, want ErrBusy", name, err)
		}
	}
	// Listing goes on beside a run.
	if _, err := e.Snapshots(ctx, nil); err != nil {
		t.Fatal(err)
	}
	close(bl.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(ctx, []string{"nope"}, nil); !errors.Is(err, backup.ErrNoTarget) {
		t.Fatalf("unknown target: %v", err)
	}
}

// snapshotSignal is a backend that tells when a snapshot is written.
type snapshotSignal struct {
	object.Backend
	wrote chan string
}

func (s *snapshotSignal) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	err := s.Backend.Put(ctx, name, r, size)
	if err == nil && strings.HasPrefix(name, "snapshots/") {
		s.wrote <- name
	}
	return err
}

func TestScheduleAfterWrite(t *testing.T) {
	n := newNode(t)
	sig := &snapshotSignal{Backend: object.NewMem("s"), wrote: make(chan string, 16)}
	e := newEngine(t, n, testKey(t), []backup.Target{{Name: "s", Backend: sig}}, func(c *backup.Config) {
		c.AfterWrite = 20 * time.Millisecond
	})
	ctx := context.Background()
	if _, err := e.Init(ctx, nil); err != nil {
		t.Fatal(err)
	}
	e.Start()
	for i := range 3 {
		n.write(t, i, random(10<<10, byte(i)))
		select {
		case <-sig.wrote:
		case <-time.After(30 * time.Second):
			t.Fatalf("write %d: no backup ran after it", i)
		}
		lists, err := e.Snapshots(ctx, nil)
		if err != nil || len(lists[0].Snapshots) < i+1 {
			t.Fatalf("after write %d: %v", i, err)
		}
	}
	e.Close()
	st := e.Status()
	if st.Targets[0].Runs < 3 || st.Targets[0].LastError != "" {
		t.Fatalf("status: %+v", st.Targets[0])
	}
}

func TestScheduleInterval(t *testing.T) {
	n := newNode(t)
	sig := &snapshotSignal{Backend: object.NewMem("s"), wrote: make(chan string, 16)}
	e := newEngine(t, n, testKey(t), []backup.Target{{Name: "s", Backend: sig}}, func(c *backup.Config) {
		c.Interval = 30 * time.Millisecond
	})
	if _, err := e.Init(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	e.Start()
	for i := range 2 {
		select {
		case <-sig.wrote:
		case <-time.After(30 * time.Second):
			t.Fatalf("interval run %d did not come", i)
		}
	}
	if st := e.Status(); st.NextRun.IsZero() || st.Interval != 30*time.Millisecond {
		t.Fatalf("status: %+v", st)
	}
}

func TestRestoreRefusals(t *testing.T) {
	n := newNode(t)
	key := testKey(t)
	m := object.NewMem("m")
	e := newEngine(t, n, key, []backup.Target{{Name: "m", Backend: m}}, nil)
	ctx := context.Background()
	if _, err := e.Init(ctx, nil); err != nil {
		t.Fatal(err)
	}
	n.write(t, 0, random(50<<10, 4))
	if _, err := e.Run(ctx, nil, nil); err != nil {
		t.Fatal(err)
	}
	names := []string{store.FileName, "drives", "packages", identity.KeyFile}
	restore := func(dst, snap string, k *backup.Key, tg object.Backend) error {
		_, err := backup.Restore(ctx, backup.RestoreConfig{Target: backup.Target{Name: "m", Backend: tg}, Key: k, Snapshot: snap, DataDir: dst, Names: names, Required: names})
		return err
	}
	empty := func() string { d := filepath.Join(t.TempDir(), "d"); os.Mkdir(d, 0o700); return d }

	full := empty()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o600)
	if err := restore(full, "", key, m); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("into a non-empty dir: %v", err)
	}
	for _, snap := range []string{"nothex!", "abc", "0000000000"} {
		d := empty()
		if err := restore(d, snap, key, m); err == nil {
			t.Fatalf("snapshot %q: restored", snap)
		}
		assertEmpty(t, d)
	}
	d := empty()
	if err := restore(d, "", testKey(t), m); !errors.Is(err, repo.ErrWrongKey) {
		t.Fatalf("another key: %v", err)
	}
	assertEmpty(t, d)

	// A tampered pack: the restore fails and leaves the dir as it was.
	var packs []string
	m.List(ctx, "data/", func(in object.Info) error { packs = append(packs, in.Name); return nil })
	for _, p := range packs {
		b := m.Bytes(p)
		b[len(b)/2] ^= 1
		m.Set(p, b)
	}
	d = empty()
	if err := restore(d, "latest", key, m); !errors.Is(err, repo.ErrCorrupt) {
		t.Fatalf("tampered packs: %v", err)
	}
	assertEmpty(t, d)
}

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 0 {
		t.Fatalf("%s after a failed restore: %v, %v", dir, ents, err)
	}
}

func TestNewCleansStaging(t *testing.T) {
	n := newNode(t)
	left := filepath.Join(n.dir, backup.StagingDir, "run-1", "node")
	if err := os.MkdirAll(left, 0o700); err != nil {
		t.Fatal(err)
	}
	newEngine(t, n, testKey(t), nil, nil)
	if _, err := os.Stat(filepath.Join(n.dir, backup.StagingDir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("staging after New: %v", err)
	}
}

// Optional files go into a snapshot when they exist and are left out
// when they do not; a restore brings back those it holds.
func TestOptionalFiles(t *testing.T) {
	n := newNode(t)
	key := testKey(t)
	m := object.NewMem("m")
	peers := filepath.Join(n.dir, "peers.json")
	if err := os.WriteFile(peers, []byte(`{"peers":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, n, key, []backup.Target{{Name: "m", Backend: m}}, func(c *backup.Config) {
		c.Source.Optional = map[string]string{"peers.json": peers, "aliases.json": filepath.Join(n.dir, "aliases.json")}
	})
	ctx := context.Background()
	if _, err := e.Init(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if res, err := e.Run(ctx, nil, nil); err != nil || res[0].Err != nil {
		t.Fatalf("run with an optional file missing: %v %+v", err, res)
	}
	dst := filepath.Join(t.TempDir(), "restored")
	if err := os.Mkdir(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	names := []string{store.FileName, "drives", "packages", identity.KeyFile, "peers.json", "aliases.json"}
	if _, err := backup.Restore(ctx, backup.RestoreConfig{Target: backup.Target{Name: "m", Backend: m}, Key: key, DataDir: dst,
		Names: names, Required: names[:4]}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "peers.json")); err != nil || string(b) != `{"peers":[]}` {
		t.Fatalf("peers.json restored: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dst, "aliases.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("aliases.json, absent from the node, restored: %v", err)
	}
}
