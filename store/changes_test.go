package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/weftos/weft/store"
)

// openChanged opens a Store and Drives sharing one Changes, with a
// database and a drive for package "notes:acme", and a quota of 1 MiB.
func openChanged(t *testing.T) (*store.Store, *store.Drives, *store.Changes) {
	t.Helper()
	dir := t.TempDir()
	c := new(store.Changes)
	s, err := store.Open(filepath.Join(dir, store.FileName), store.Options{Usage: store.NewUsage(1 << 20), Changes: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if s.Changes() != c {
		t.Fatal("Store.Changes is not Options.Changes")
	}
	d, err := store.OpenDrives(filepath.Join(dir, "drives"), s.Usage())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	d.UseChanges(c)
	if err := s.CreateDB("notes:acme", "db"); err != nil {
		t.Fatal(err)
	}
	if err := d.Create("notes:acme", "files"); err != nil {
		t.Fatal(err)
	}
	return s, d, c
}

// TestChangesNotedByEveryWrite: each kind of write of the Store and the
// Drives that returns nil adds exactly one to Seq and closes the channel
// of a waiter; reads, and writes refused before they change anything,
// note nothing.
func TestChangesNotedByEveryWrite(t *testing.T) {
	s, d, c := openChanged(t)
	const pkg, db, drv = "notes:acme", "db", "files"
	big := make([]byte, 2<<20)
	steps := []struct {
		name  string
		do    func() error
		write bool // a change: must note once; otherwise must note nothing
	}{
		{"SetState", func() error { return s.SetState("p:notes:acme", []byte("v")) }, true},
		{"GetState", func() error { _, _, err := s.GetState("p:notes:acme"); return err }, false},
		{"ClearState", func() error { return s.ClearState("p:notes:acme") }, true},
		{"PutProcess", func() error { return s.PutProcess("p:notes:acme", []byte("r")) }, true},
		{"Processes", func() error { _, err := s.Processes(); return err }, false},
		{"DeleteProcess", func() error { return s.DeleteProcess("p:notes:acme") }, true},
		{"CreateDB", func() error { return s.CreateDB(pkg, "other") }, true},
		{"DBs", func() error { _, err := s.DBs(pkg); return err }, false},
		{"KVSet", func() error { return s.KVSet(pkg, db, []byte("k"), []byte("v")) }, true},
		{"KVGet", func() error { _, _, err := s.KVGet(pkg, db, []byte("k")); return err }, false},
		{"KVScan", func() error { _, _, err := s.KVScan(pkg, db, nil, nil, 10); return err }, false},
		{"KVTx", func() error {
			return s.KVTx(pkg, db, []store.KVOp{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("k"), Delete: true}})
		}, true},
		{"KVTx empty", func() error { return s.KVTx(pkg, db, nil) }, false},
		{"KVDelete", func() error { return s.KVDelete(pkg, db, []byte("a")) }, true},
		{"DropDB", func() error { return s.DropDB(pkg, "other") }, true},
		{"drive Create", func() error { return d.Create(pkg, "more") }, true},
		{"drive List", func() error { _, err := d.List(pkg); return err }, false},
		{"WriteFile", func() error { return d.WriteFile(pkg, drv, "a/f", []byte("hello")) }, true},
		{"Append", func() error { return d.Append(pkg, drv, "a/f", []byte(" world")) }, true},
		{"WriteAt", func() error { return d.WriteAt(pkg, drv, "a/f", 0, []byte("H")) }, true},
		{"ReadFile", func() error { _, err := d.ReadFile(pkg, drv, "a/f"); return err }, false},
		{"ReadAt", func() error { _, err := d.ReadAt(pkg, drv, "a/f", 1, 3); return err }, false},
		{"ReadDir", func() error { _, err := d.ReadDir(pkg, drv, "a"); return err }, false},
		{"Stat", func() error { _, err := d.Stat(pkg, drv, "a/f"); return err }, false},
		{"Mkdir", func() error { return d.Mkdir(pkg, drv, "b/c") }, true},
		{"Rename", func() error { return d.Rename(pkg, drv, "a/f", "b/f") }, true},
		{"Rename onto itself", func() error { return d.Rename(pkg, drv, "b/f", "b/f") }, false},
		{"RemovePath", func() error { return d.RemovePath(pkg, drv, "b", true) }, true},
		{"drive Remove", func() error { return d.Remove(pkg, "more") }, true},
	}
	for _, st := range steps {
		before := c.Seq()
		ch := c.Changed(before)
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		after := c.Seq()
		closed := false
		select {
		case <-ch:
			closed = true
		default:
		}
		switch {
		case st.write && (after != before+1 || !closed):
			t.Errorf("%s: Seq %d → %d, waiter woken %v; want one change noted", st.name, before, after, closed)
		case !st.write && (after != before || closed):
			t.Errorf("%s (a read): Seq %d → %d, waiter woken %v; want nothing noted", st.name, before, after, closed)
		}
	}

	// Refusals change nothing and note nothing.
	refusals := []struct {
		name string
		err  error
		do   func() error
	}{
		{"SetState empty key", store.ErrBadKey, func() error { return s.SetState("", nil) }},
		{"CreateDB existing", store.ErrDBExists, func() error { return s.CreateDB(pkg, db) }},
		{"KVSet missing db", store.ErrNoDB, func() error { return s.KVSet(pkg, "none", []byte("k"), nil) }},
		{"DropDB missing", store.ErrNoDB, func() error { return s.DropDB(pkg, "none") }},
		{"KVSet over quota", store.ErrQuota, func() error { return s.KVSet(pkg, db, []byte("k"), big[:store.MaxKVValueBytes]) }},
		{"drive Create existing", store.ErrDriveExists, func() error { return d.Create(pkg, drv) }},
		{"WriteFile over quota", store.ErrQuota, func() error { return d.WriteFile(pkg, drv, "big", big) }},
		{"WriteFile bad path", store.ErrBadPath, func() error { return d.WriteFile(pkg, drv, "../x", nil) }},
	}
	for _, r := range refusals {
		before := c.Seq()
		if err := r.do(); !errors.Is(err, r.err) {
			t.Fatalf("%s: %v, want %v", r.name, err, r.err)
		}
		if after := c.Seq(); after != before {
			t.Errorf("%s: Seq %d → %d, want nothing noted", r.name, before, after)
		}
	}
}

// TestChangesWait: Wait returns at once when changes happened since
// after, however many (they coalesce), blocks until the next change
// otherwise, and ends with its context. Every waiter wakes.
func TestChangesWait(t *testing.T) {
	var c store.Changes
	ctx := context.Background()
	for range 5 {
		c.Note()
	}
	if s, err := c.Wait(ctx, 0); s != 5 || err != nil {
		t.Fatalf("Wait(0) after 5 changes: %d, %v; want 5", s, err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if s, err := c.Wait(cancelled, 5); s != 5 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait(5) with no change and a cancelled context: %d, %v", s, err)
	}

	const waiters = 4
	got := make(chan uint64, waiters)
	var started sync.WaitGroup
	for range waiters {
		started.Add(1)
		go func() {
			ch := c.Changed(5)
			started.Done()
			<-ch
			got <- c.Seq()
		}()
	}
	started.Wait()
	select {
	case s := <-got:
		t.Fatalf("a waiter woke at %d before any change", s)
	default:
	}
	c.Note()
	for range waiters {
		if s := <-got; s != 6 {
			t.Fatalf("a waiter woke at %d, want 6", s)
		}
	}
}

// TestChangesNoLostWakeup: goroutines note changes while another waits
// for each next one with Wait; the waiter must reach the final count (a
// lost wakeup would hang it until the test's timeout).
func TestChangesNoLostWakeup(t *testing.T) {
	var c store.Changes
	const noters, each = 8, 2000
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range noters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range each {
				c.Note()
				runtime.Gosched() // interleave with the waiter
			}
		}()
	}
	close(start)
	var seen, wakes uint64
	for seen < noters*each {
		s, err := c.Wait(context.Background(), seen)
		if err != nil || s <= seen {
			t.Fatalf("Wait(%d): %d, %v", seen, s, err)
		}
		seen = s
		wakes++
	}
	wg.Wait()
	if seen != noters*each || c.Seq() != noters*each {
		t.Fatalf("seen %d, Seq %d, want %d", seen, c.Seq(), noters*each)
	}
	t.Logf("%d changes, %d wakes", seen, wakes)
}
