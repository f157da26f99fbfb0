// Package store owns the node's durable data: each process's state value,
// the kernel's process table and the per-package key-value databases in
// one bbolt database file under the node's data directory (Store), the
// per-package file drives in a directory beside it (Drives), and one
// per-package quota over databases and drives (Usage). Snapshot copies
// the database, the drives and directories beside them (the install
// registry) as of one instant while the node keeps writing: the Store's
// and the Drives' writes share one Barrier, and drive files are
// copy-on-write through hard links.
//
// Every write is one bbolt transaction, committed and fsynced before the
// call returns. Reads run in bbolt read transactions, which see a
// consistent snapshot and never block the writer or each other. Values
// handed out are copies owned by the caller.
package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FileName is the conventional name of the database file inside the node's
// data directory. Open takes the full path; it does not add this name.
const FileName = "weft.db"

// DefaultLockTimeout is how long Open waits for another process to release
// the database when Options.LockTimeout is zero.
const DefaultLockTimeout = 100 * time.Millisecond

// MaxKeyBytes is the longest key the store accepts, in bytes.
const MaxKeyBytes = 1024

// MaxValueBytes is the largest value (a state value or a process record)
// the store accepts, in bytes: 64 MiB. bbolt keeps a value in contiguous
// pages and rewrites it whole on every change, so large values are costly
// long before they reach this limit.
const MaxValueBytes = 64 << 20

// Errors callers classify with errors.Is. Every error the store returns is
// wrapped with the operation that failed and, where there is one, the key.
var (
	// ErrLocked: Open could not take the database's lock within
	// Options.LockTimeout because another process (or another Open of the
	// same file in this process) holds it.
	ErrLocked = errors.New("database is in use by another process")
	// ErrClosed: the Store was closed.
	ErrClosed = errors.New("store is closed")
	// ErrBadKey: the key is empty or longer than MaxKeyBytes.
	ErrBadKey = errors.New("invalid key")
	// ErrValueTooLarge: the value is longer than MaxValueBytes.
	ErrValueTooLarge = errors.New("value too large")
	// ErrNewerSchema: the database was written by a newer weft whose schema
	// this code does not know; Open refuses it rather than risk damage.
	ErrNewerSchema = errors.New("database schema is newer than this weft supports")
)

// schemaVersion is the layout this code reads and writes. Bump it, and
// migrate in initSchema, when the meaning of a bucket or key changes.
const schemaVersion uint64 = 1

// Bucket and key names. All buckets are top level and created at Open.
var (
	bucketMeta      = []byte("meta")      // schemaKey → 8-byte big-endian version
	bucketState     = []byte("state")     // process id → state value
	bucketProcTable = []byte("proctable") // process id → kernel's record
	bucketRevoked   = []byte("revoked")   // SHA-256 of a mark → the mark (revocations.go)
	schemaKey       = []byte("schema")
	// bucketKV ("kv", kv.go) holds the key-value databases: a nested
	// bucket per package, in it a nested bucket per database.
)

// dataBuckets are the buckets initSchema creates besides meta.
// A bucket added here is created in a database made by an older weft
// when it opens, with no change of schema version.
var dataBuckets = [][]byte{bucketState, bucketProcTable, bucketKV, bucketRevoked}

// Options tunes Open. The zero value is ready to use.
type Options struct {
	// LockTimeout is how long Open waits for another process to release
	// the database's lock before failing with ErrLocked. Zero (or
	// negative) means DefaultLockTimeout. bbolt retries the lock every 50 ms, so a timeout
	// below 50 ms means a single attempt.
	LockTimeout time.Duration
	// Usage counts each package's bytes against its quota. Open adds
	// what the file's key-value databases hold, so pass a Usage that has
	// not counted this file before (the node's drives count into the
	// same one). Nil means NewUsage(0): the DefaultPackageQuota.
	Usage *Usage
	// Barrier is the write barrier every write of the Store holds shared
	// for its duration. Give the node's Drives the same one
	// (Drives.UseBarrier) so that Snapshot sees both at one instant. Nil
	// means a Barrier of the Store's own.
	Barrier *Barrier
	// Changes is noted once by every write of the Store that returns nil,
	// after its commit. Give the node's Drives (Drives.UseChanges) and
	// install registry the same one. Nil means a Changes of the Store's
	// own (Store.Changes returns it).
	Changes *Changes
}

// Store is the node's open database. Its methods are safe for concurrent
// use; writes are serialised (bbolt has one writer at a time), reads run
// in parallel with each other and with the writer.
type Store struct {
	path    string
	db      *bolt.DB
	usage   *Usage
	barrier *Barrier
	changes *Changes
	closed  atomic.Bool
}

// Open opens the database file at path, creating it (mode 0600) and its
// parent directories (mode 0700) when they are missing, and makes sure its
// buckets and schema version exist, then counts each package's bytes in
// its key-value databases into Options.Usage. It fails with ErrLocked
// when another process holds the file, and with ErrNewerSchema when the
// file was written by a newer version of weft.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("store: open: empty path")
	}
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}

	dir := filepath.Dir(path)
	missing := missingDirs(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: open %q: create directory: %w", path, err)
	}
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, fs.ErrNotExist)

	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: timeout,
		// The hashmap freelist finds free pages in constant time; the
		// default array freelist scans, and degrades badly once a large,
		// long-lived file is fragmented (etcd switched for that reason).
		// The hashmap does not always hand out the lowest free page id,
		// which only affects how compactly the file is reused.
		// Everything else stays at bbolt's defaults: NoSync and
		// NoGrowSync off (fdatasync on every commit), freelist synced
		// to disk (no full scan at Open).
		FreelistType: bolt.FreelistMapType,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("store: open %q: %w (lock not free after %v)", path, ErrLocked, timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %q: %w", path, err)
	}
	if err := db.Update(initSchema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: open %q: %w", path, err)
	}
	// A new file is durable only once the directory entries that name it
	// are: fsync the file's directory and the parent of every directory
	// MkdirAll created.
	if created {
		for _, d := range missing {
			if err := syncDir(filepath.Dir(d)); err != nil {
				_ = db.Close()
				return nil, fmt.Errorf("store: open %q: %w", path, err)
			}
		}
		if err := syncDir(dir); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("store: open %q: %w", path, err)
		}
	}
	usage := opts.Usage
	if usage == nil {
		usage = NewUsage(0)
	}
	if err := db.View(func(tx *bolt.Tx) error { return countKV(tx, usage) }); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: open %q: count usage: %w", path, err)
	}
	barrier := opts.Barrier
	if barrier == nil {
		barrier = new(Barrier)
	}
	changes := opts.Changes
	if changes == nil {
		changes = new(Changes)
	}
	return &Store{path: path, db: db, usage: usage, barrier: barrier, changes: changes}, nil
}

// initSchema writes the schema version and creates the buckets of a new
// database, and checks the version of an existing one. It runs in one
// transaction, so a database either has all of them or none.
func initSchema(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		// Either a brand-new file, or something that is not ours.
		if err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			return fmt.Errorf("not a weft database: bucket %q exists but there is no schema version", name)
		}); err != nil {
			return err
		}
		var err error
		if meta, err = tx.CreateBucket(bucketMeta); err != nil {
			return fmt.Errorf("create bucket %q: %w", bucketMeta, err)
		}
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, schemaVersion)
		if err := meta.Put(schemaKey, v); err != nil {
			return fmt.Errorf("write schema version: %w", err)
		}
	} else {
		raw := meta.Get(schemaKey)
		if len(raw) != 8 {
			return fmt.Errorf("not a weft database: schema version is %d bytes, want 8", len(raw))
		}
		v := binary.BigEndian.Uint64(raw)
		switch {
		case v > schemaVersion:
			return fmt.Errorf("%w: database has schema version %d, this weft knows up to %d; upgrade weft",
				ErrNewerSchema, v, schemaVersion)
		case v == 0:
			return errors.New("not a weft database: schema version 0")
		}
		// v < schemaVersion: migrations go here once there is a version 2.
	}
	for _, name := range dataBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %q: %w", name, err)
		}
	}
	return nil
}

// Close closes the database, waiting for transactions in flight. Calls
// after the first return ErrClosed.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return fmt.Errorf("store: close %q: %w", s.path, ErrClosed)
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close %q: %w", s.path, err)
	}
	return nil
}

// Path returns the path of the database file, as given to Open.
func (s *Store) Path() string { return s.path }

// Usage returns the byte counts and quota the Store charges writes to:
// Options.Usage, or the one Open made.
func (s *Store) Usage() *Usage { return s.usage }

// Changes returns the Changes the Store's writes note (Options.Changes,
// or the Store's own).
func (s *Store) Changes() *Changes { return s.changes }

// missingDirs lists dir and those of its ancestors that do not exist,
// deepest first.
func missingDirs(dir string) []string {
	var out []string
	for {
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			return out
		}
		out = append(out, dir)
		parent := filepath.Dir(dir)
		if parent == dir {
			return out
		}
		dir = parent
	}
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return syncClose(f, dir)
}

// syncClose fsyncs and closes the opened directory dir.
func syncClose(f *os.File, dir string) error {
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %q: %w", dir, err)
	}
	return nil
}
