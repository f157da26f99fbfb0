package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// LockFile is the name of the lock file in the data dir. The weftd that
// holds an exclusive flock on it owns the data dir; the file holds that
// weftd's pid, so that a second one can say who is in the way.
const LockFile = "weftd.lock"

// InUseError reports a data dir that another weftd holds.
type InUseError struct {
	DataDir string
	Lock    string // the lock file's path
	PID     int    // the holder's pid; 0 if it could not be read
}

func (e *InUseError) Error() string {
	if e.PID <= 0 {
		return fmt.Sprintf("data dir %s is in use by another weftd (lock %s)", e.DataDir, e.Lock)
	}
	return fmt.Sprintf("data dir %s is in use by weftd pid %d (lock %s)", e.DataDir, e.PID, e.Lock)
}

// dirLock is a held lock on a data dir.
type dirLock struct {
	f *os.File
}

// lockDataDir takes the data dir's lock without waiting, and writes this
// process's pid into the lock file. It fails with an *InUseError if another
// process (or another open file in this one) holds it.
//
// The lock is a flock, so the kernel releases it when the process dies,
// however it dies: a stale lock file never blocks a restart.
func lockDataDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if !held {
		pid := readPID(f)
		f.Close()
		return nil, &InUseError{DataDir: dir, Lock: path, PID: pid}
	}
	// Overwrite in place, then cut what is left of a longer old pid: a
	// reader sees the old pid or the new one on the first line, never an
	// empty file. (Between our flock and this write it sees the last
	// holder's pid; that window is a few microseconds.)
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if _, err := f.WriteAt(pid, 0); err != nil {
		_ = unlock(f)
		f.Close()
		return nil, fmt.Errorf("lock data dir: write pid to %s: %w", path, err)
	}
	if err := f.Truncate(int64(len(pid))); err != nil {
		_ = unlock(f)
		f.Close()
		return nil, fmt.Errorf("lock data dir: write pid to %s: %w", path, err)
	}
	return &dirLock{f: f}, nil
}

// release empties the lock file, so that it names no pid once nobody holds
// it, and unlocks it. The file itself stays: removing it would let two
// daemons own the dir at once. One that had opened the old file before the
// removal would then lock that unlinked file, while a third creates a new
// one under the same name and locks that.
func (l *dirLock) release() error {
	terr := l.f.Truncate(0)
	uerr := unlock(l.f)
	cerr := l.f.Close()
	return errors.Join(terr, uerr, cerr)
}

// readPID reads the pid on the first line of a lock file; 0 if there is
// none.
func readPID(f *os.File) int {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 64))
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	pid, err := strconv.Atoi(string(bytes.TrimSpace(line)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
