package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// SnapshotDrivesDir is the directory of a Snapshot that holds the drives:
// <into>/drives/<package>/<drive>/<path>. The database is <into>/weft.db
// (FileName), each extra directory <into>/<name>.
const SnapshotDrivesDir = "drives"

// Barrier lines up the writers of the node's data so that Snapshot sees
// them all at one instant. Every write of a Store and of a Drives holds
// it shared for its whole duration (Enter); Snapshot and Drives.Barrier
// hold it exclusively (Hold), which waits for the writes in flight to
// finish and keeps new ones waiting. Reads never take it. The zero value
// is ready to use; share one between the Store (Options.Barrier) and the
// Drives (UseBarrier).
//
// It is not reentrant: a goroutine inside Enter must not call a write of
// the Store or the Drives, nor Hold, nor Snapshot, and one that holds it
// must not write: once a Hold waits, a second Enter waits behind it.
type Barrier struct {
	mu sync.RWMutex
}

// Enter holds b shared for one write and returns its end, which must be
// called exactly once. It is for writers outside this package whose files
// a Snapshot links as an extra directory (e.g. the install registry), so
// that the snapshot sees their writes in order with the database's.
func (b *Barrier) Enter() (leave func()) {
	b.mu.RLock()
	return b.mu.RUnlock
}

// Hold holds b exclusively once the writes in flight have finished, and
// keeps every writer waiting until release is called (calling it again
// does nothing).
func (b *Barrier) Hold() (release func()) {
	b.mu.Lock()
	var once sync.Once
	return func() { once.Do(b.mu.Unlock) }
}

// UseBarrier makes the drives' writes hold b instead of the barrier of
// their own, so that they line up with a Store opened with the same
// Options.Barrier. Call it before the first write: a write in flight
// holds the barrier it began with, which a Hold of b does not wait for.
func (d *Drives) UseBarrier(b *Barrier) {
	if b != nil {
		d.barrier.Store(b)
	}
}

// share holds the drives' barrier shared for one write and returns its
// end, to be deferred with the address of the call's error: it leaves the
// barrier and, when the call returns nil, notes the change in the drives'
// Changes.
func (d *Drives) share() (leave func(err *error)) {
	left := d.barrier.Load().Enter()
	return func(err *error) {
		left()
		if *err == nil {
			d.changes.Load().Note()
		}
	}
}

// Snapshot writes a point-in-time copy of the node's data into the
// directory into, which must not exist, must be on the file system of
// the drives and of every extra directory, and must be inside none of
// them:
//
//   - <into>/weft.db: the Store's database as of one instant, written by
//     a bbolt read transaction (Tx.WriteTo) begun while the barrier is
//     held; the file opens with Open like any other.
//   - <into>/drives: the drives as Drives.Snapshot makes them, every file
//     hard-linked (copy-on-write: later writes never reach the snapshot).
//   - <into>/<name> for each name → source directory of extraDirs: every
//     regular file under the source hard-linked, directories recreated,
//     anything else (symbolic links) left out. Those files must only ever
//     be replaced by rename, never written in place; writers that take
//     Barrier.Enter are seen in order with the database.
//
// The Store and the Drives must share one Barrier (Options.Barrier,
// Drives.UseBarrier). Snapshot holds it exclusively only while it begins
// the read transaction and makes the links; the database is streamed
// after it is released, while writes go on (a writer that must grow the
// database file's memory map waits for the stream to end, and pages freed
// meanwhile are reused only after it). extraDirs names are single path
// elements other than "weft.db" and "drives".
//
// Nothing is fsynced: a snapshot is for a backup to read now, not to
// survive a crash. On an error Snapshot removes what it made. Delete the
// snapshot with os.RemoveAll when done, so that drive writes stop paying
// for copies.
func Snapshot(s *Store, d *Drives, into string, extraDirs map[string]string) error {
	return snapshot(s, d, into, extraDirs, nil)
}

// snapshot is Snapshot; hook, when set (by tests), runs at named stages:
// "held" once the barrier is held, "linked" once the links are made
// (still held), "streaming" once the database stream has written its
// first bytes.
func snapshot(s *Store, d *Drives, into string, extraDirs map[string]string, hook func(stage string)) (err error) {
	at := func(stage string) {
		if hook != nil {
			hook(stage)
		}
	}
	fail := func(err error) error { return fmt.Errorf("store: snapshot into %q: %w", into, err) }
	if s == nil || d == nil {
		return fail(errors.New("need a Store and its Drives"))
	}
	if s.barrier != d.barrier.Load() {
		return fail(errors.New("the Store and the Drives do not share a Barrier (Options.Barrier, Drives.UseBarrier)"))
	}
	if s.closed.Load() {
		return fail(ErrClosed)
	}
	if err := d.checkOpen(); err != nil {
		return fail(err)
	}
	names := make([]string, 0, len(extraDirs))
	for name, src := range extraDirs {
		if name == "" || name == "." || name == FileName || name == SnapshotDrivesDir ||
			!filepath.IsLocal(name) || strings.ContainsRune(name, filepath.Separator) || strings.Contains(name, "/") {
			return fail(fmt.Errorf("extra directory name %q: want one path element other than %q and %q", name, FileName, SnapshotDrivesDir))
		}
		if src == "" {
			return fail(fmt.Errorf("extra directory %q: empty source path", name))
		}
		names = append(names, name)
	}
	sort.Strings(names)
	sources := []string{d.dir}
	for _, name := range names {
		sources = append(sources, extraDirs[name])
	}
	for _, src := range sources {
		if in, err := within(src, into); err != nil {
			return fail(err)
		} else if in {
			return fail(fmt.Errorf("the snapshot cannot be inside %q, which it copies", src))
		}
	}

	if err := os.Mkdir(into, 0o700); err != nil {
		return fail(err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(into)
		}
	}()

	release := s.barrier.Hold()
	at("held")
	tx, err := s.db.Begin(false)
	if err != nil {
		release()
		return fail(fmt.Errorf("begin read transaction: %w", closedErr(err)))
	}
	defer func() { _ = tx.Rollback() }()
	err = d.linkInto(filepath.Join(into, SnapshotDrivesDir))
	if err != nil {
		err = fmt.Errorf("drives: %w", err)
	}
	for _, name := range names {
		if err != nil {
			break
		}
		if err = linkTree(extraDirs[name], filepath.Join(into, name)); err != nil {
			err = fmt.Errorf("extra directory %q: %w", name, err)
		}
	}
	if err == nil {
		at("linked")
	}
	release()
	if err != nil {
		return fail(err)
	}

	if err := writeTx(tx, filepath.Join(into, FileName), func() { at("streaming") }); err != nil {
		return fail(fmt.Errorf("database: %w", err))
	}
	return nil
}

// writeTx streams the database as tx sees it into a new file at p.
func writeTx(tx *bolt.Tx, p string, streaming func()) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = tx.WriteTo(&hookWriter{w: f, hook: streaming})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// hookWriter runs hook once, after its first write.
type hookWriter struct {
	w    io.Writer
	hook func()
	done bool
}

func (h *hookWriter) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	if !h.done {
		h.done = true
		h.hook()
	}
	return n, err
}

// linkTree recreates the directory src as dst (which must not exist),
// hard-linking every regular file.
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case e.IsDir():
			return os.Mkdir(target, 0o700)
		case e.Type().IsRegular():
			return os.Link(p, target)
		}
		return nil
	})
}

// within reports whether p is dir or inside it, by their absolute paths.
func within(dir, p string) (bool, error) {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return false, err
	}
	absP, err := filepath.Abs(p)
	if err != nil {
		return false, err
	}
	rel, err := filepath.Rel(absDir, absP)
	return err == nil && (filepath.IsLocal(rel) || rel == "."), nil
}
