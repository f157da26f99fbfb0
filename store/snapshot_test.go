package store

// White-box: TestSnapshotWritesDuringStream needs the hook that runs while
// the database is streamed.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/weftos/weft/store/storetest"
)

const (
	snapPkg   = storetest.Package
	snapDB    = storetest.DB
	snapDrive = storetest.Drive
)

// openNode opens a Store and Drives under dir sharing one Barrier, with a
// database and a drive for snapPkg.
func openNode(t *testing.T, dir string) (*Store, *Drives) {
	t.Helper()
	b := new(Barrier)
	s, err := Open(filepath.Join(dir, FileName), Options{Barrier: b})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	d, err := OpenDrives(filepath.Join(dir, "drives"), s.Usage())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	d.UseBarrier(b)
	if err := s.CreateDB(snapPkg, snapDB); err != nil {
		t.Fatal(err)
	}
	if err := d.Create(snapPkg, snapDrive); err != nil {
		t.Fatal(err)
	}
	return s, d
}

// readSnapshot returns, for each writer, the steps the snapshot's state,
// kv pair and drive file show.
func readSnapshot(t *testing.T, into string, writers int) (state, kv, file []int) {
	t.Helper()
	s, err := Open(filepath.Join(into, FileName), Options{})
	if err != nil {
		t.Fatalf("open the snapshot's database: %v", err)
	}
	defer s.Close()
	state, kv, file, err = storetest.Steps(s, filepath.Join(into, SnapshotDrivesDir), writers)
	if err != nil {
		t.Fatalf("snapshot %s: %v", into, err)
	}
	return state, kv, file
}

// TestSnapshotConcurrentWrites takes snapshots while writers go on, and
// checks that each one is a single instant for every writer: a writer
// writes step N to its state, then its kv pair, then its drive file, so
// any instant shows state ≥ kv ≥ file ≥ state−1, and a whole file.
func TestSnapshotConcurrentWrites(t *testing.T) {
	const (
		writers  = 4
		minSnaps = 12
		minSteps = 8 // every writer must get this far while snapshots are taken
	)
	dir := t.TempDir()
	s, d := openNode(t, dir)

	ws := storetest.Start(s, d, writers)
	defer ws.Stop()

	snaps, newest := 0, 0
	for ; ; snaps++ {
		steps, err := ws.Now()
		if err != nil {
			t.Fatal(err)
		}
		if snaps >= minSnaps {
			done := true
			for w := range writers {
				done = done && steps[w] >= minSteps
			}
			if done {
				break
			}
		}
		into := filepath.Join(dir, fmt.Sprintf("snap-%d", snaps))
		if err := Snapshot(s, d, into, nil); err != nil {
			t.Fatal(err)
		}
		state, kv, file := readSnapshot(t, into, writers)
		if err := storetest.Instant(state, kv, file); err != nil {
			t.Errorf("snapshot %d: %v", snaps, err)
		}
		newest = max(newest, slices.Max(state))
		if err := os.RemoveAll(into); err != nil {
			t.Fatal(err)
		}
	}
	if err := ws.Stop(); err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		return
	}
	// The last snapshot was taken after every writer reached minSteps,
	// so the snapshots must have seen writes.
	if newest == 0 {
		t.Fatalf("%d snapshots saw no write", snaps)
	}
	t.Logf("%d snapshots; newest step seen %d", snaps, newest)

	// Writers rewrote the files a snapshot shared: the live drive must
	// hold each writer's last step, complete.
	steps, _ := ws.Now()
	for w := range writers {
		got, err := storetest.Version(d.ReadFile(snapPkg, snapDrive, storetest.File(w)))
		if err != nil || got != steps[w] {
			t.Errorf("live drive file of writer %d = step %d, %v; want %d", w, got, err, steps[w])
		}
	}
}

// TestSnapshotWritesDuringStream checks that the barrier is released
// before the database is streamed: writes to the state, a database and
// the drives complete while the stream runs, and the snapshot still shows
// the data as it was when it began.
func TestSnapshotWritesDuringStream(t *testing.T) {
	dir := t.TempDir()
	s, d := openNode(t, dir)
	// Grow the file and free the pages again, so that the writes below
	// need not grow bbolt's memory map (which waits for read
	// transactions, the stream's included, to end).
	if err := s.SetState("ballast", make([]byte, 4<<20)); err != nil {
		t.Fatal(err)
	}
	if err := s.ClearState("ballast"); err != nil {
		t.Fatal(err)
	}
	if err := storetest.Step(s, d, 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := d.Append(snapPkg, snapDrive, "log", []byte("old\n")); err != nil {
		t.Fatal(err)
	}

	into := filepath.Join(dir, "snap")
	streamed := false
	err := snapshot(s, d, into, nil, func(stage string) {
		if stage != "streaming" {
			return
		}
		streamed = true
		done := make(chan error, 1)
		go func() {
			err := storetest.Step(s, d, 0, 2)
			if err == nil {
				err = d.Append(snapPkg, snapDrive, "log", []byte("new\n"))
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("write during the stream: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("writes did not finish during the database stream: the barrier is still held")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !streamed {
		t.Fatal("the stream hook never ran")
	}
	state, kv, file := readSnapshot(t, into, 1)
	if state[0] != 1 || kv[0] != 1 || file[0] != 1 {
		t.Errorf("snapshot shows state %d, kv %d, file %d; want step 1, from before the stream", state[0], kv[0], file[0])
	}
	if b, err := os.ReadFile(filepath.Join(into, SnapshotDrivesDir, snapPkg, snapDrive, "log")); err != nil || string(b) != "old\n" {
		t.Errorf("snapshot's appended file = %q, %v; want %q", b, err, "old\n")
	}
	if v, ok, err := s.GetState(storetest.Process(0)); err != nil || !ok || string(v) != "2" {
		t.Errorf("live state = %q, %v, %v; want %q", v, ok, err, "2")
	}
	if b, err := d.ReadFile(snapPkg, snapDrive, "log"); err != nil || string(b) != "old\nnew\n" {
		t.Errorf("live appended file = %q, %v; want %q", b, err, "old\nnew\n")
	}
}

// TestSnapshotInstant checks that the database is read as of an instant
// while the barrier is held: a commit made (bypassing the barrier) once
// it is held is in the snapshot, one made after the links is not.
func TestSnapshotInstant(t *testing.T) {
	dir := t.TempDir()
	s, d := openNode(t, dir)
	commit := func(v string) {
		err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketState).Put([]byte("p"), []byte(v)) })
		if err != nil {
			t.Error(err)
		}
	}
	into := filepath.Join(dir, "snap")
	var stages []string
	err := snapshot(s, d, into, nil, func(stage string) {
		stages = append(stages, stage)
		switch stage {
		case "held":
			commit("held")
		case "linked":
			commit("linked")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(stages, ","); got != "held,linked,streaming" {
		t.Fatalf("stages = %s, want held,linked,streaming", got)
	}
	snap, err := Open(filepath.Join(into, FileName), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	if v, ok, err := snap.GetState("p"); err != nil || !ok || string(v) != "held" {
		t.Errorf("snapshot state = %q, %v, %v; want %q", v, ok, err, "held")
	}
}

// TestSnapshotExtraDirs checks that extra directories are hard-linked
// whole, and that a file later replaced by rename keeps its old content
// in the snapshot.
func TestSnapshotExtraDirs(t *testing.T) {
	dir := t.TempDir()
	s, d := openNode(t, dir)
	reg := filepath.Join(dir, "packages")
	files := map[string]string{
		"index":               "v1",
		"notes:acme/1.0/wasm": "code",
		"notes:acme/1.0/meta": "manifest",
	}
	for name, content := range files {
		p := filepath.Join(reg, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(reg, "empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	into := filepath.Join(dir, "snap")
	if err := Snapshot(s, d, into, map[string]string{"packages": reg}); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		src := filepath.Join(reg, filepath.FromSlash(name))
		dst := filepath.Join(into, "packages", filepath.FromSlash(name))
		b, err := os.ReadFile(dst)
		if err != nil || string(b) != content {
			t.Errorf("snapshot %s = %q, %v; want %q", name, b, err, content)
			continue
		}
		si, err1 := os.Stat(src)
		di, err2 := os.Stat(dst)
		if err1 != nil || err2 != nil || !os.SameFile(si, di) {
			t.Errorf("snapshot %s is not a hard link of the source (%v, %v)", name, err1, err2)
		}
	}
	if fi, err := os.Stat(filepath.Join(into, "packages", "empty")); err != nil || !fi.IsDir() {
		t.Errorf("empty directory not recreated: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(into, SnapshotDrivesDir, snapPkg, snapDrive)); err != nil || !fi.IsDir() {
		t.Errorf("drive not in the snapshot: %v", err)
	}
	// The registry replaces files by rename.
	tmp := filepath.Join(reg, "index.tmp")
	if err := os.WriteFile(tmp, []byte("v2"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(reg, "index")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(into, "packages", "index")); err != nil || string(b) != "v1" {
		t.Errorf("snapshot index after the source was replaced = %q, %v; want %q", b, err, "v1")
	}
}

// TestSnapshotRefusals checks the arguments Snapshot refuses, and that a
// failed snapshot leaves nothing behind.
func TestSnapshotRefusals(t *testing.T) {
	dir := t.TempDir()
	s, d := openNode(t, dir)
	reg := filepath.Join(dir, "packages")
	if err := os.Mkdir(reg, 0o700); err != nil {
		t.Fatal(err)
	}
	into := filepath.Join(dir, "snap")
	for _, tc := range []struct {
		name  string
		into  string
		extra map[string]string
	}{
		{"name weft.db", into, map[string]string{FileName: reg}},
		{"name drives", into, map[string]string{SnapshotDrivesDir: reg}},
		{"name with a slash", into, map[string]string{"a/b": reg}},
		{"name ..", into, map[string]string{"..": reg}},
		{"empty name", into, map[string]string{"": reg}},
		{"empty source", into, map[string]string{"packages": ""}},
		{"missing source", into, map[string]string{"packages": filepath.Join(dir, "missing")}},
		{"into the drives", filepath.Join(dir, "drives", "snap"), nil},
		{"into an extra directory", filepath.Join(reg, "snap"), map[string]string{"packages": reg}},
	} {
		if err := Snapshot(s, d, tc.into, tc.extra); err == nil {
			t.Errorf("%s: Snapshot succeeded", tc.name)
		}
		if _, err := os.Lstat(tc.into); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: the failed snapshot left %q behind (%v)", tc.name, tc.into, err)
		}
	}

	// into exists: refused, and left alone.
	if err := os.Mkdir(into, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Snapshot(s, d, into, nil); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Snapshot into an existing directory = %v, want fs.ErrExist", err)
	}
	if _, err := os.Stat(into); err != nil {
		t.Errorf("Snapshot removed the existing directory: %v", err)
	}

	// The Store and Drives must share a Barrier.
	d.UseBarrier(new(Barrier))
	if err := Snapshot(s, d, filepath.Join(dir, "snap2"), nil); err == nil {
		t.Error("Snapshot with a Store and Drives that do not share a Barrier succeeded")
	}
	d.UseBarrier(s.barrier)

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := Snapshot(s, d, filepath.Join(dir, "snap3"), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Snapshot of a closed Store = %v, want ErrClosed", err)
	}
}

// TestBarrierHoldsStoreWrites checks that a Hold of the shared barrier
// (Drives.Barrier) keeps the Store's writes waiting, and reads going.
func TestBarrierHoldsStoreWrites(t *testing.T) {
	s, d := openNode(t, t.TempDir())
	release := d.Barrier()
	wrote := make(chan error, 1)
	go func() { wrote <- s.SetState(storetest.Process(0), []byte("x")) }()
	// A read goes on under the barrier.
	if _, _, err := s.GetState(storetest.Process(0)); err != nil {
		t.Fatal(err)
	}
	// Give the write a window in which it would finish, were it not held
	// (a durable write takes milliseconds at most).
	select {
	case err := <-wrote:
		release()
		t.Fatalf("a Store write finished while the barrier was held: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	release()
	release() // a second release does nothing
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if v, ok, err := s.GetState(storetest.Process(0)); err != nil || !ok || string(v) != "x" {
		t.Fatalf("state after the release = %q, %v, %v", v, ok, err)
	}
}
