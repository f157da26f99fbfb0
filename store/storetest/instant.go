// Package storetest owns the store's point-in-time check, for the tests of
// everything that copies a node's data at an instant (store.Snapshot, and
// backups with their restores): writers that change a process state, a
// key-value pair and a drive file one after another, and the check that a
// copy shows one instant of every writer.
//
// It takes the store through small interfaces rather than importing it, so
// that store's own white-box tests can use it too.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
)

// The package, database and drive the writers write to. A test creates
// the database and the drive before the first Step.
const (
	Package = "notes:acme"
	DB      = "db"
	Drive   = "files"
)

// Writes is what a writer changes in the store.
type Writes interface {
	SetState(process string, value []byte) error
	KVSet(pkg, db string, key, value []byte) error
}

// DriveWrites is what a writer changes in the drives.
type DriveWrites interface {
	WriteFile(pkg, drive, path string, data []byte) error
	WriteAt(pkg, drive, path string, off int64, data []byte) error
}

// Reads is what Steps reads of a copy's database (a store opened on it).
type Reads interface {
	GetState(process string) ([]byte, bool, error)
	KVGet(pkg, db string, key []byte) ([]byte, bool, error)
}

// Process, Key and File name writer w's state, key-value pair and drive
// file.
func Process(w int) string { return fmt.Sprintf("w%d:%s", w, Package) }
func Key(w int) []byte     { return fmt.Appendf(nil, "w%d", w) }
func File(w int) string    { return fmt.Sprintf("dir/w%d", w) }

// FileVersion is the content of a writer's drive file at step n: 512
// equal lines, so that a mix of two versions does not parse.
func FileVersion(n int) []byte {
	return bytes.Repeat(fmt.Appendf(nil, "%08d\n", n), 512)
}

// Version returns the step a drive file holds, from what reading it
// returned; a missing file is step 0.
func Version(b []byte, err error) (int, error) {
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(b) < 9 {
		return 0, fmt.Errorf("drive file of %d bytes is not a version", len(b))
	}
	n, err := strconv.Atoi(string(b[:8]))
	if err != nil || !bytes.Equal(b, FileVersion(n)) {
		return 0, fmt.Errorf("drive file is not one whole version (starts %q, %d bytes)", b[:9], len(b))
	}
	return n, nil
}

// step decodes a state or key-value value; absent is 0.
func step(v []byte, ok bool, err error) (int, error) {
	if err != nil || !ok {
		return 0, err
	}
	return strconv.Atoi(string(v))
}

// Step makes writer w's step n: state, then key-value pair, then drive
// file, each once the one before has returned. Odd steps replace the file
// (WriteFile), even ones overwrite it in place (WriteAt), which must break
// any link a snapshot shares.
func Step(s Writes, d DriveWrites, w, n int) error {
	v := []byte(strconv.Itoa(n))
	if err := s.SetState(Process(w), v); err != nil {
		return err
	}
	if err := s.KVSet(Package, DB, Key(w), v); err != nil {
		return err
	}
	if n%2 == 1 {
		return d.WriteFile(Package, Drive, File(w), FileVersion(n))
	}
	return d.WriteAt(Package, Drive, File(w), 0, FileVersion(n))
}

// Steps returns, for each of the writers, the step a copy's state,
// key-value pair and drive file show. drives is the copy's drives
// directory (a directory per package, in it one per drive).
func Steps(db Reads, drives string, writers int) (state, kv, file []int, err error) {
	for w := range writers {
		st, err := step(db.GetState(Process(w)))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("state of writer %d: %w", w, err)
		}
		k, err := step(db.KVGet(Package, DB, Key(w)))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("key-value pair of writer %d: %w", w, err)
		}
		f, err := Version(os.ReadFile(filepath.Join(drives, Package, Drive, filepath.FromSlash(File(w)))))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("drive file of writer %d: %w", w, err)
		}
		state, kv, file = append(state, st), append(kv, k), append(file, f)
	}
	return state, kv, file, nil
}

// Instant reports whether steps read by Steps are one instant for every
// writer: a writer writes step N to its state, then its key-value pair,
// then its drive file, so any instant shows state ≥ kv ≥ file ≥ state−1.
func Instant(state, kv, file []int) error {
	var errs []error
	for w := range state {
		if !(state[w] >= kv[w] && kv[w] >= file[w] && file[w] >= state[w]-1) {
			errs = append(errs, fmt.Errorf("writer %d: state %d, key-value %d, file %d; want state ≥ key-value ≥ file ≥ state−1",
				w, state[w], kv[w], file[w]))
		}
	}
	return errors.Join(errs...)
}

// Writers are writers stepping on, each as fast as the store lets it,
// until Stop: what copies a node's data at an instant is tested while
// they write.
type Writers struct {
	mu   sync.Mutex
	cond *sync.Cond
	n    []int // each writer's last step done
	err  error
	stop chan struct{}
	wg   sync.WaitGroup
}

// Start starts n writers on s and d.
func Start(s Writes, d DriveWrites, n int) *Writers {
	ws := &Writers{n: make([]int, n), stop: make(chan struct{})}
	ws.cond = sync.NewCond(&ws.mu)
	for w := range n {
		ws.wg.Add(1)
		go func() {
			defer ws.wg.Done()
			for i := 1; ; i++ {
				select {
				case <-ws.stop:
					return
				default:
				}
				err := Step(s, d, w, i)
				ws.mu.Lock()
				if err != nil && ws.err == nil {
					ws.err = fmt.Errorf("writer %d step %d: %w", w, i, err)
				}
				if err == nil {
					ws.n[w] = i
				}
				ws.mu.Unlock()
				ws.cond.Broadcast()
				if err != nil {
					return
				}
			}
		}()
	}
	return ws
}

// Now returns each writer's last step done, and the first writer's error.
func (ws *Writers) Now() ([]int, error) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return slices.Clone(ws.n), ws.err
}

// WaitPast waits until every writer is past its step in from, and
// returns where they are; or the first writer's error.
func (ws *Writers) WaitPast(from []int) ([]int, error) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for {
		if ws.err != nil {
			return nil, ws.err
		}
		past := true
		for w := range ws.n {
			past = past && ws.n[w] > from[w]
		}
		if past {
			return slices.Clone(ws.n), nil
		}
		ws.cond.Wait()
	}
}

// Stop stops the writers, waits for them, and returns the first one's
// error. It may be called more than once.
func (ws *Writers) Stop() error {
	ws.mu.Lock()
	select {
	case <-ws.stop:
	default:
		close(ws.stop)
	}
	ws.mu.Unlock()
	ws.wg.Wait()
	_, err := ws.Now()
	return err
}
