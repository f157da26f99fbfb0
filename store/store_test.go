package store_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/weftos/weft/store"
)

const proc = "chat:chat:alice.os"

// openTemp opens a fresh store in a temporary directory and closes it when
// the test ends.
func openTemp(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), store.FileName), store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func mustSetState(t *testing.T, s *store.Store, k string, v []byte) {
	t.Helper()
	if err := s.SetState(k, v); err != nil {
		t.Fatalf("SetState(%q): %v", k, err)
	}
}

func mustPutProcess(t *testing.T, s *store.Store, k string, v []byte) {
	t.Helper()
	if err := s.PutProcess(k, v); err != nil {
		t.Fatalf("PutProcess(%q): %v", k, err)
	}
}

var (
	longestKey  = strings.Repeat("k", store.MaxKeyBytes)
	tooLongKey  = strings.Repeat("k", store.MaxKeyBytes+1)
	emptyNonNil = []byte{}
)

// wantErr checks err against the sentinel want (nil: no error) and that
// its text holds every fragment.
func wantErr(t *testing.T, err, want error, fragments ...string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want errors.Is %v", err, want)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not contain %q", err, f)
		}
	}
}

func TestOpenCreatesFileAndDirectories(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, store.FileName)
	s, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	for p, want := range map[string]os.FileMode{
		path:               0o600,
		dir:                0o700 | os.ModeDir,
		filepath.Dir(dir):  0o700 | os.ModeDir,
		filepath.Dir(path): 0o700 | os.ModeDir,
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("mode of %s = %v, want %v", p, fi.Mode(), want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	tmp := t.TempDir()
	garbage := filepath.Join(tmp, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not bbolt"), 2000), 0o600); err != nil {
		t.Fatal(err)
	}
	fileAsDir := filepath.Join(tmp, "file")
	if err := os.WriteFile(fileAsDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(tmp, "foreign.db")
	db, err := bolt.Open(foreign, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("theirs"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, path string
		fragments  []string
	}{
		{"empty path", "", []string{"store: open", "empty path"}},
		{"not a bbolt file", garbage, []string{"store: open", garbage}},
		{"parent is a file", filepath.Join(fileAsDir, "weft.db"), []string{"store: open", fileAsDir, "create directory"}},
		{"foreign bbolt file", foreign, []string{"store: open", foreign, "not a weft database", "theirs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := store.Open(tc.path, store.Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			for _, f := range tc.fragments {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("error %q does not contain %q", err, f)
				}
			}
		})
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	s, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetState(proc, []byte("kept")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Read the version Open wrote, then pretend a newer weft wrote the file.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte("meta"))
		if meta == nil {
			t.Fatal("no meta bucket")
		}
		if got := binary.BigEndian.Uint64(meta.Get([]byte("schema"))); got != store.SchemaVersion {
			t.Errorf("schema version on disk = %d, want %d", got, store.SchemaVersion)
		}
		v := binary.BigEndian.AppendUint64(nil, store.SchemaVersion+1)
		return meta.Put([]byte("schema"), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = store.Open(path, store.Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open of a newer schema succeeded")
	}
	wantErr(t, err, store.ErrNewerSchema, path, "schema version 2", "knows up to 1")
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	s, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustSetState(t, s, "a:p:x", []byte("one"))
	mustSetState(t, s, "b:p:x", nil)
	mustSetState(t, s, "c:p:x", []byte("gone"))
	if err := s.ClearState("c:p:x"); err != nil {
		t.Fatal(err)
	}
	mustPutProcess(t, s, "a:p:x", []byte("rec-a"))
	mustPutProcess(t, s, "d:p:x", []byte("rec-d"))
	if err := s.DeleteProcess("d:p:x"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		key    string
		want   []byte
		wantOK bool
	}{
		{"a:p:x", []byte("one"), true},
		{"b:p:x", emptyNonNil, true},
		{"c:p:x", nil, false},
	} {
		v, ok, err := s.GetState(tc.key)
		if err != nil || ok != tc.wantOK || !bytes.Equal(v, tc.want) {
			t.Errorf("GetState(%q) = %q, %v, %v; want %q, %v, nil", tc.key, v, ok, err, tc.want, tc.wantOK)
		}
	}
	procs, err := s.Processes()
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 1 || string(procs["a:p:x"]) != "rec-a" {
		t.Errorf("Processes() = %q, want only a:p:x=rec-a", procs)
	}
}

func TestGetState(t *testing.T) {
	s := openTemp(t)
	mustSetState(t, s, "set:p:x", []byte("value"))
	mustSetState(t, s, "empty:p:x", nil)
	mustSetState(t, s, longestKey, []byte("long"))
	mustPutProcess(t, s, "only-proc:p:x", []byte("record")) // another bucket

	for _, tc := range []struct {
		name, key string
		want      []byte
		wantOK    bool
		wantErr   error
		fragments []string
	}{
		{name: "present", key: "set:p:x", want: []byte("value"), wantOK: true},
		{name: "empty value", key: "empty:p:x", want: emptyNonNil, wantOK: true},
		{name: "absent", key: "nobody:p:x"},
		{name: "key only in the process table", key: "only-proc:p:x"},
		{name: "prefix of a present key", key: "set:p"},
		{name: "longest key", key: longestKey, want: []byte("long"), wantOK: true},
		{name: "empty key", key: "", wantErr: store.ErrBadKey, fragments: []string{`store: get state for ""`, "empty"}},
		{name: "key too long", key: tooLongKey, wantErr: store.ErrBadKey, fragments: []string{"store: get state for", "1025 bytes, limit is 1024"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, ok, err := s.GetState(tc.key)
			wantErr(t, err, tc.wantErr, tc.fragments...)
			if ok != tc.wantOK || !bytes.Equal(v, tc.want) {
				t.Fatalf("GetState = %q, %v; want %q, %v", v, ok, tc.want, tc.wantOK)
			}
			if tc.wantOK && v == nil {
				t.Fatal("present value returned as nil slice")
			}
			if !tc.wantOK && v != nil {
				t.Fatalf("absent value returned as %q", v)
			}
		})
	}

	t.Run("returned slice is a copy", func(t *testing.T) {
		v, _, _ := s.GetState("set:p:x")
		copy(v, "XXXXX")
		v2, _, _ := s.GetState("set:p:x")
		if string(v2) != "value" {
			t.Fatalf("after mutating the returned slice, GetState = %q", v2)
		}
	})
}

func TestSetState(t *testing.T) {
	for _, tc := range []struct {
		name      string
		key       string
		value     []byte
		before    []byte // set first when not nil
		wantErr   error
		fragments []string
	}{
		{name: "new", key: proc, value: []byte("v1")},
		{name: "overwrite", key: proc, before: []byte("old value that is longer"), value: []byte("v2")},
		{name: "empty value", key: proc, value: emptyNonNil},
		{name: "nil value stored as empty", key: proc, value: nil},
		{name: "overwrite with empty", key: proc, before: []byte("x"), value: emptyNonNil},
		{name: "binary key and value", key: "\x00\xff:\n", value: []byte{0, 1, 2, 255}},
		{name: "longest key", key: longestKey, value: []byte("v")},
		{name: "4 KiB value", key: proc, value: bytes.Repeat([]byte{7}, 4096)},
		{name: "empty key", key: "", value: []byte("v"), wantErr: store.ErrBadKey,
			fragments: []string{`store: set state for ""`, "invalid key: empty"}},
		{name: "key too long", key: tooLongKey, value: []byte("v"), wantErr: store.ErrBadKey,
			fragments: []string{"store: set state for", `kkkk"…(1025 bytes)`, "1025 bytes, limit is 1024"}},
		{name: "value too large", key: proc, value: make([]byte, store.MaxValueBytes+1), wantErr: store.ErrValueTooLarge,
			fragments: []string{`store: set state for "` + proc + `"`, "67108865 bytes", "limit is 67108864"}},
		{name: "value too large keeps old value", key: proc, before: []byte("old"), value: make([]byte, store.MaxValueBytes+1),
			wantErr: store.ErrValueTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTemp(t)
			if tc.before != nil {
				mustSetState(t, s, tc.key, tc.before)
			}
			err := s.SetState(tc.key, tc.value)
			wantErr(t, err, tc.wantErr, tc.fragments...)
			if tc.wantErr != nil && !errors.Is(tc.wantErr, store.ErrBadKey) {
				// The rejected write left whatever was there.
				v, ok, err := s.GetState(tc.key)
				if err != nil || ok != (tc.before != nil) || !bytes.Equal(v, tc.before) {
					t.Fatalf("after rejected write GetState = %q, %v, %v; want %q", v, ok, err, tc.before)
				}
				return
			}
			if tc.wantErr != nil {
				return
			}
			v, ok, err := s.GetState(tc.key)
			if err != nil || !ok || !bytes.Equal(v, tc.value) {
				t.Fatalf("GetState = %q, %v, %v; want %q, true, nil", v, ok, err, tc.value)
			}
		})
	}

	t.Run("caller's slice is not retained", func(t *testing.T) {
		s := openTemp(t)
		buf := []byte("original")
		mustSetState(t, s, proc, buf)
		copy(buf, "CHANGED!")
		v, _, _ := s.GetState(proc)
		if string(v) != "original" {
			t.Fatalf("GetState = %q after the caller reused its buffer", v)
		}
	})

	t.Run("value of exactly MaxValueBytes", func(t *testing.T) {
		s := openTemp(t)
		big := bytes.Repeat([]byte{0xa5}, store.MaxValueBytes)
		big[len(big)-1] = 0x5a
		mustSetState(t, s, proc, big)
		v, ok, err := s.GetState(proc)
		if err != nil || !ok || !bytes.Equal(v, big) {
			t.Fatalf("GetState: len %d, ok %v, err %v", len(v), ok, err)
		}
	})
}

func TestClearState(t *testing.T) {
	for _, tc := range []struct {
		name      string
		key       string
		present   bool
		wantErr   error
		fragments []string
	}{
		{name: "present", key: proc, present: true},
		{name: "absent", key: proc},
		{name: "empty key", key: "", wantErr: store.ErrBadKey, fragments: []string{`store: clear state for ""`}},
		{name: "key too long", key: tooLongKey, wantErr: store.ErrBadKey, fragments: []string{"store: clear state for"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTemp(t)
			mustSetState(t, s, "other:p:x", []byte("stays"))
			mustPutProcess(t, s, proc, []byte("record stays"))
			if tc.present {
				mustSetState(t, s, tc.key, []byte("v"))
			}
			wantErr(t, s.ClearState(tc.key), tc.wantErr, tc.fragments...)
			if tc.wantErr != nil {
				return
			}
			if v, ok, err := s.GetState(tc.key); err != nil || ok {
				t.Fatalf("after ClearState GetState = %q, %v, %v", v, ok, err)
			}
			if v, _, _ := s.GetState("other:p:x"); string(v) != "stays" {
				t.Fatalf("other state = %q", v)
			}
			if p, _ := s.Processes(); string(p[proc]) != "record stays" {
				t.Fatalf("ClearState touched the process table: %q", p)
			}
		})
	}
}

func TestPutProcess(t *testing.T) {
	for _, tc := range []struct {
		name      string
		key       string
		record    []byte
		before    []byte
		wantErr   error
		fragments []string
	}{
		{name: "new", key: proc, record: []byte("r1")},
		{name: "replace", key: proc, before: []byte("r0"), record: []byte("r1")},
		{name: "empty record", key: proc, record: emptyNonNil},
		{name: "longest key", key: longestKey, record: []byte("r")},
		{name: "empty key", key: "", record: []byte("r"), wantErr: store.ErrBadKey,
			fragments: []string{`store: put process ""`, "empty"}},
		{name: "key too long", key: tooLongKey, record: []byte("r"), wantErr: store.ErrBadKey,
			fragments: []string{"store: put process", "limit is 1024"}},
		{name: "record too large", key: proc, record: make([]byte, store.MaxValueBytes+1), wantErr: store.ErrValueTooLarge,
			fragments: []string{`store: put process "` + proc + `"`, "67108865 bytes", "limit is 67108864"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTemp(t)
			if tc.before != nil {
				mustPutProcess(t, s, tc.key, tc.before)
			}
			wantErr(t, s.PutProcess(tc.key, tc.record), tc.wantErr, tc.fragments...)
			procs, err := s.Processes()
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != nil {
				if len(procs) != 0 {
					t.Fatalf("rejected PutProcess left %d records", len(procs))
				}
				return
			}
			got, ok := procs[tc.key]
			if len(procs) != 1 || !ok || !bytes.Equal(got, tc.record) || got == nil {
				t.Fatalf("Processes() = %q, want {%q: %q}", procs, tc.key, tc.record)
			}
			if _, ok, _ := s.GetState(tc.key); ok {
				t.Fatal("PutProcess wrote state")
			}
		})
	}
}

func TestDeleteProcess(t *testing.T) {
	for _, tc := range []struct {
		name      string
		key       string
		present   bool
		wantErr   error
		fragments []string
	}{
		{name: "present", key: proc, present: true},
		{name: "absent", key: proc},
		{name: "empty key", key: "", wantErr: store.ErrBadKey, fragments: []string{`store: delete process ""`}},
		{name: "key too long", key: tooLongKey, wantErr: store.ErrBadKey, fragments: []string{"store: delete process"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTemp(t)
			mustPutProcess(t, s, "other:p:x", []byte("stays"))
			mustSetState(t, s, proc, []byte("state stays"))
			if tc.present {
				mustPutProcess(t, s, tc.key, []byte("r"))
			}
			wantErr(t, s.DeleteProcess(tc.key), tc.wantErr, tc.fragments...)
			procs, err := s.Processes()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := procs[proc]; ok && tc.wantErr == nil {
				t.Fatalf("record still there after DeleteProcess: %q", procs)
			}
			if string(procs["other:p:x"]) != "stays" {
				t.Fatalf("other record = %q", procs["other:p:x"])
			}
			if v, _, _ := s.GetState(proc); string(v) != "state stays" {
				t.Fatalf("DeleteProcess touched state: %q", v)
			}
		})
	}
}

func TestProcesses(t *testing.T) {
	s := openTemp(t)
	procs, err := s.Processes()
	if err != nil || procs == nil || len(procs) != 0 {
		t.Fatalf("Processes() of an empty table = %v, %v; want empty non-nil map", procs, err)
	}
	want := map[string][]byte{
		"a:p:x":      []byte("ra"),
		"b:p:x":      emptyNonNil,
		"c:q:y.z":    bytes.Repeat([]byte("c"), 10000),
		longestKey:   []byte("long"),
		"\x00binary": {0xff},
	}
	for k, v := range want {
		mustPutProcess(t, s, k, v)
	}
	mustSetState(t, s, "state-only:p:x", []byte("not a record"))
	procs, err = s.Processes()
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != len(want) {
		t.Fatalf("Processes() has %d records, want %d", len(procs), len(want))
	}
	for k, v := range want {
		if got, ok := procs[k]; !ok || !bytes.Equal(got, v) || got == nil {
			t.Errorf("Processes()[%q] = %q, %v; want %q", k, got, ok, v)
		}
	}
	// The slices are copies: changing them changes nothing stored.
	procs["a:p:x"][0] = 'X'
	again, _ := s.Processes()
	if string(again["a:p:x"]) != "ra" {
		t.Fatalf("after mutating a returned record, stored = %q", again["a:p:x"])
	}
}

func TestClosedStore(t *testing.T) {
	s := openTemp(t)
	mustSetState(t, s, proc, []byte("v"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, tc := range []struct {
		name string
		op   func() error
		frag string
	}{
		{"GetState", func() error { _, _, err := s.GetState(proc); return err }, "store: get state for"},
		{"SetState", func() error { return s.SetState(proc, []byte("v")) }, "store: set state for"},
		{"ClearState", func() error { return s.ClearState(proc) }, "store: clear state for"},
		{"PutProcess", func() error { return s.PutProcess(proc, []byte("r")) }, "store: put process"},
		{"DeleteProcess", func() error { return s.DeleteProcess(proc) }, "store: delete process"},
		{"Processes", func() error { _, err := s.Processes(); return err }, "store: list processes"},
		{"Close again", s.Close, "store: close"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.op(), store.ErrClosed, tc.frag, "store is closed")
		})
	}
	if s.Path() == "" {
		t.Error("Path() is empty after Close")
	}
}

// TestLockedInProcess: a second Open of a file this process already holds
// fails. bbolt takes flock(2), which binds to the open file description,
// so the second Open's own descriptor conflicts even in the same process.
func TestLockedInProcess(t *testing.T) {
	s := openTemp(t)
	const timeout = 150 * time.Millisecond
	start := time.Now()
	s2, err := store.Open(s.Path(), store.Options{LockTimeout: timeout})
	elapsed := time.Since(start)
	if err == nil {
		s2.Close()
		t.Fatal("second Open of an open database succeeded")
	}
	wantErr(t, err, store.ErrLocked, s.Path(), "database is in use by another process", "150ms")
	// bbolt polls every 50 ms and gives up a poll early; allow for a
	// loaded machine but catch a wait that ignores the timeout.
	if elapsed > timeout+2*time.Second {
		t.Fatalf("Open took %v with LockTimeout %v", elapsed, timeout)
	}
	t.Logf("second Open failed after %v", elapsed)

	// The holder is unharmed, and once it closes the file opens again.
	mustSetState(t, s, proc, []byte("still mine"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s3, err := store.Open(s.Path(), store.Options{LockTimeout: timeout})
	if err != nil {
		t.Fatalf("Open after the holder closed: %v", err)
	}
	defer s3.Close()
	if v, _, _ := s3.GetState(proc); string(v) != "still mine" {
		t.Fatalf("GetState = %q", v)
	}
}

// TestLockedOtherProcess: another process cannot open a database this one
// holds, and can once it is closed.
func TestLockedOtherProcess(t *testing.T) {
	s := openTemp(t)
	run := func() (int, string) {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), childEnv+"=lock", childPathEnv+"="+s.Path())
		out, err := cmd.Output()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("run lock child: %v", err)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}
	code, out := run()
	if code != lockChildLocked {
		t.Fatalf("child exit code %d (%q), want %d (ErrLocked)", code, out, lockChildLocked)
	}
	for _, f := range []string{"store: open", s.Path(), "database is in use by another process"} {
		if !strings.Contains(out, f) {
			t.Errorf("child's error %q does not contain %q", out, f)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if code, out := run(); code != lockChildOpened {
		t.Fatalf("after Close, child exit code %d (%q), want %d", code, out, lockChildOpened)
	}
}

// TestLockReleasedWhenHolderDies: the lock is the kernel's, so a holder that
// dies without closing (SIGKILL) leaves no stale lock behind.
func TestLockReleasedWhenHolderDies(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=crash", childPathEnv+"="+path, childStartEnv+"=0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	// One reported write proves the child holds the lock.
	if _, err := stdout.Read(make([]byte, 1)); err != nil {
		t.Fatalf("child wrote nothing: %v", err)
	}
	if s, err := store.Open(path, store.Options{LockTimeout: time.Millisecond}); !errors.Is(err, store.ErrLocked) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open while the child writes: %v, want ErrLocked", err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	s, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("Open after the holder was killed: %v", err)
	}
	s.Close()
}
