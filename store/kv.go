package store

import (
	"bytes"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Per-package key-value databases. A package ("package:publisher") owns
// any number of named databases; each is a bbolt bucket nested in the
// package's bucket, which is nested in the top-level bucket "kv":
//
//	kv → package → database → key → value
//
// Every write is one bbolt write transaction, committed and fsynced before
// the call returns, and counted against the package's quota in the
// Store's Usage.

// Limits of the key-value databases. Keys are 1 to MaxKeyBytes bytes.
const (
	// MaxKVValueBytes is the largest value a key-value database accepts:
	// 1 MiB. bbolt rewrites a value whole on every change and keeps it in
	// contiguous pages, and a process reads it whole into its memory;
	// bulk data belongs in drives.
	MaxKVValueBytes = 1 << 20
	// MaxKVTxOps is the most operations one KVTx may carry. A transaction
	// is built in memory and committed at once; the bound keeps one
	// process from holding the single writer for long.
	MaxKVTxOps = 10_000
	// MaxKVTxBytes bounds the key and value bytes of one KVTx together
	// (64 MiB), for the same reason.
	MaxKVTxBytes = 64 << 20
	// MaxKVScanPairs is the most pairs one KVScan returns, whatever the
	// limit asked for; the caller pages on with more.
	MaxKVScanPairs = 1000
	// MaxKVScanBytes bounds the key and value bytes one KVScan returns
	// (16 MiB). A scan returns at least one pair, and stops before the
	// pair that would take it past this bound, reporting more.
	MaxKVScanBytes = 16 << 20
	// maxPackageBytes is the longest package name: a domain-name-long
	// package, ':', a 64-byte publisher.
	maxPackageBytes = 253 + 1 + 64
	// maxDBNameBytes is the longest database name.
	maxDBNameBytes = 64
)

// Errors of the key-value databases, for errors.Is. Keys and values are
// checked with ErrBadKey and ErrValueTooLarge; a write past the package's
// quota fails with ErrQuota.
var (
	// ErrNoDB: the package has no database of that name.
	ErrNoDB = errors.New("no such database")
	// ErrDBExists: CreateDB of a database the package already has.
	ErrDBExists = errors.New("database already exists")
	// ErrBadName: a package or database name breaks the naming rules.
	ErrBadName = errors.New("invalid name")
	// ErrTxTooLarge: a KVTx with more than MaxKVTxOps operations or more
	// than MaxKVTxBytes bytes.
	ErrTxTooLarge = errors.New("transaction too large")
)

// bucketKV is the top-level bucket of the key-value databases.
var bucketKV = []byte("kv")

// KVPair is one key and its value, as KVScan returns them.
type KVPair struct{ Key, Value []byte }

// KVOp is one operation of a KVTx: set Key to Value, or, with Delete,
// remove Key (Value is then ignored).
type KVOp struct {
	Key, Value []byte
	Delete     bool
}

// CreateDB creates the database db of package pkg, empty. It fails with
// ErrDBExists when pkg already has it, and with ErrBadName for a bad name.
// Package names are "package:publisher", of [a-z0-9.:-], at most 318
// bytes; database names are 1 to 64 bytes of [a-z0-9-], neither starting
// nor ending with '-'.
func (s *Store) CreateDB(pkg, db string) error {
	err := checkNames(pkg, db)
	if err == nil {
		err = s.update(func(tx *bolt.Tx) error {
			pb, err := tx.Bucket(bucketKV).CreateBucketIfNotExists([]byte(pkg))
			if err != nil {
				return err
			}
			if pb.Bucket([]byte(db)) != nil {
				return ErrDBExists
			}
			_, err = pb.CreateBucket([]byte(db))
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("store: create database %s: %w", dbName(pkg, db), err)
	}
	return nil
}

// DBs returns the names of pkg's databases, sorted. A package without
// databases has none: the result is empty, not an error.
func (s *Store) DBs(pkg string) ([]string, error) {
	var out []string
	err := checkPackage(pkg)
	if err == nil {
		err = s.view(func(tx *bolt.Tx) error {
			pb := tx.Bucket(bucketKV).Bucket([]byte(pkg))
			if pb == nil {
				return nil
			}
			// bbolt iterates in byte order, which is the sorted order.
			return pb.ForEachBucket(func(name []byte) error {
				out = append(out, string(name))
				return nil
			})
		})
	}
	if err != nil {
		return nil, fmt.Errorf("store: list databases of %q: %w", pkg, err)
	}
	return out, nil
}

// DropDB deletes the database db of pkg and everything in it, durably, and
// releases its bytes from the package's usage. It fails with ErrNoDB when
// there is no such database.
func (s *Store) DropDB(pkg, db string) error {
	var freed int64
	err := checkNames(pkg, db)
	if err == nil {
		err = s.update(func(tx *bolt.Tx) error {
			pb := tx.Bucket(bucketKV).Bucket([]byte(pkg))
			if pb == nil || pb.Bucket([]byte(db)) == nil {
				return ErrNoDB
			}
			freed = bucketBytes(pb.Bucket([]byte(db)))
			if err := pb.DeleteBucket([]byte(db)); err != nil {
				return err
			}
			// A package with no databases left leaves no trace.
			if k, _ := pb.Cursor().First(); k == nil {
				return tx.Bucket(bucketKV).DeleteBucket([]byte(pkg))
			}
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("store: drop database %s: %w", dbName(pkg, db), err)
	}
	s.usage.release(pkg, freed)
	return nil
}

// KVGet returns the value of key in database db of pkg. ok is false when
// the key is absent; an empty value that was set is a non-nil empty slice
// with ok true. The slice is a copy owned by the caller.
func (s *Store) KVGet(pkg, db string, key []byte) (value []byte, ok bool, err error) {
	err = checkNames(pkg, db)
	if err == nil {
		err = checkKVKey(key)
	}
	if err == nil {
		err = s.view(func(tx *bolt.Tx) error {
			b, err := kvBucket(tx, pkg, db)
			if err != nil {
				return err
			}
			if v, found := lookup(b, key); found {
				value, ok = clone(v), true
			}
			return nil
		})
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: kv get %s key %s: %w", dbName(pkg, db), quoteKey(string(key)), err)
	}
	return value, ok, nil
}

// KVSet sets key to value in database db of pkg, replacing any earlier
// value. When it returns nil the write is committed and fsynced. A write
// that would take the package past its quota fails with ErrQuota and
// changes nothing.
func (s *Store) KVSet(pkg, db string, key, value []byte) error {
	if err := s.kvWrite(pkg, db, []KVOp{{Key: key, Value: value}}); err != nil {
		return fmt.Errorf("store: kv set %s key %s: %w", dbName(pkg, db), quoteKey(string(key)), err)
	}
	return nil
}

// KVDelete removes key from database db of pkg, durably. Deleting a
// missing key is not an error, and a delete never fails for the quota.
func (s *Store) KVDelete(pkg, db string, key []byte) error {
	if err := s.kvWrite(pkg, db, []KVOp{{Key: key, Delete: true}}); err != nil {
		return fmt.Errorf("store: kv delete %s key %s: %w", dbName(pkg, db), quoteKey(string(key)), err)
	}
	return nil
}

// KVTx applies ops in order, all in one bbolt transaction: when it returns
// nil every operation is committed and fsynced; when it returns an error
// none was applied. Later operations see earlier ones (setting a key twice
// keeps the second value). Every key and value is checked before anything
// is written; a transaction whose net growth would take the package past
// its quota fails with ErrQuota, one that shrinks the package never does.
// It fails with ErrTxTooLarge past MaxKVTxOps operations or MaxKVTxBytes
// bytes. An empty ops only checks that the database exists.
func (s *Store) KVTx(pkg, db string, ops []KVOp) error {
	if err := s.kvWrite(pkg, db, ops); err != nil {
		return fmt.Errorf("store: kv transaction on %s (%d operations): %w", dbName(pkg, db), len(ops), err)
	}
	return nil
}

// KVScan returns up to limit pairs of database db of pkg whose keys start
// with prefix (empty: every key) and sort after `after` (empty: from the
// first), in key order, all from one consistent snapshot. more reports
// whether further pairs match; to page on, pass the last key returned as
// after. limit is capped at MaxKVScanPairs and a page at MaxKVScanBytes;
// a limit below 1 is an error. The slices are copies owned by the caller.
func (s *Store) KVScan(pkg, db string, prefix, after []byte, limit int) (pairs []KVPair, more bool, err error) {
	err = checkNames(pkg, db)
	switch {
	case err != nil:
	case len(prefix) > MaxKeyBytes:
		err = fmt.Errorf("%w: prefix is %d bytes, limit is %d", ErrBadKey, len(prefix), MaxKeyBytes)
	case len(after) > MaxKeyBytes:
		err = fmt.Errorf("%w: after is %d bytes, limit is %d", ErrBadKey, len(after), MaxKeyBytes)
	case limit < 1:
		err = fmt.Errorf("limit is %d, want at least 1", limit)
	}
	limit = min(limit, MaxKVScanPairs)
	if err == nil {
		err = s.view(func(tx *bolt.Tx) error {
			b, err := kvBucket(tx, pkg, db)
			if err != nil {
				return err
			}
			c := b.Cursor()
			var k, v []byte
			switch {
			case len(after) > 0 && bytes.Compare(after, prefix) >= 0:
				k, v = c.Seek(after)
				if k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			case len(prefix) > 0:
				k, v = c.Seek(prefix)
			default:
				k, v = c.First()
			}
			size := 0
			for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				size += len(k) + len(v)
				if len(pairs) == limit || (len(pairs) > 0 && size > MaxKVScanBytes) {
					more = true
					break
				}
				pairs = append(pairs, KVPair{Key: clone(k), Value: clone(v)})
			}
			return nil
		})
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: kv scan %s prefix %s: %w", dbName(pkg, db), quoteKey(string(prefix)), err)
	}
	return pairs, more, nil
}

// kvWrite checks ops and applies them in one write transaction, counting
// the net change in logical bytes against pkg's quota: growth is reserved
// inside the transaction, before the commit, and given back if the commit
// fails; shrinkage is released only once the commit succeeded, so that the
// usage never undercounts what is on disk.
func (s *Store) kvWrite(pkg, db string, ops []KVOp) error {
	if err := checkNames(pkg, db); err != nil {
		return err
	}
	if len(ops) > MaxKVTxOps {
		return fmt.Errorf("%w: %d operations, limit is %d (MaxKVTxOps)", ErrTxTooLarge, len(ops), MaxKVTxOps)
	}
	// Name the bad operation only where there is more than one.
	opErr := func(i int, err error) error {
		if len(ops) == 1 {
			return err
		}
		return fmt.Errorf("operation %d, key %s: %w", i, quoteKey(string(ops[i].Key)), err)
	}
	total := 0
	for i, op := range ops {
		if err := checkKVKey(op.Key); err != nil {
			return opErr(i, err)
		}
		if op.Delete {
			total += len(op.Key)
			continue
		}
		if len(op.Value) > MaxKVValueBytes {
			return opErr(i, fmt.Errorf("%w: value is %d bytes, limit is %d (MaxKVValueBytes)",
				ErrValueTooLarge, len(op.Value), MaxKVValueBytes))
		}
		total += len(op.Key) + len(op.Value)
	}
	if total > MaxKVTxBytes {
		return fmt.Errorf("%w: %d bytes of keys and values, limit is %d (MaxKVTxBytes)", ErrTxTooLarge, total, MaxKVTxBytes)
	}
	if len(ops) == 0 {
		return s.view(func(tx *bolt.Tx) error {
			_, err := kvBucket(tx, pkg, db)
			return err
		})
	}

	var delta, reserved int64
	err := s.update(func(tx *bolt.Tx) error {
		b, err := kvBucket(tx, pkg, db)
		if err != nil {
			return err
		}
		for _, op := range ops {
			// Reads in a write transaction see its own earlier writes,
			// so a key written twice is counted once.
			if old, found := lookup(b, op.Key); found {
				delta -= int64(len(op.Key) + len(old))
			}
			if op.Delete {
				err = b.Delete(op.Key)
			} else {
				err = b.Put(op.Key, op.Value)
				delta += int64(len(op.Key) + len(op.Value))
			}
			if err != nil {
				return err
			}
		}
		if delta > 0 {
			if err := s.usage.Reserve(pkg, delta); err != nil {
				return err
			}
			reserved = delta
		}
		return nil
	})
	if err != nil {
		s.usage.release(pkg, reserved)
		return err
	}
	if delta < 0 {
		s.usage.release(pkg, -delta)
	}
	return nil
}

// release stops counting n bytes of pkg (n ≥ 0): bytes freed on disk, or a
// reservation given back.
func (u *Usage) release(pkg string, n int64) {
	if n > 0 {
		_ = u.Reserve(pkg, -n) // a negative delta always succeeds
	}
}

// countKV adds what each package keeps in its databases to u: what Open
// finds on disk.
func countKV(tx *bolt.Tx, u *Usage) error {
	return tx.Bucket(bucketKV).ForEachBucket(func(pkg []byte) error {
		pb := tx.Bucket(bucketKV).Bucket(pkg)
		var n int64
		if err := pb.ForEachBucket(func(db []byte) error {
			n += bucketBytes(pb.Bucket(db))
			return nil
		}); err != nil {
			return err
		}
		u.Add(string(pkg), n)
		return nil
	})
}

// bucketBytes is the logical size of a database: its key and value bytes.
func bucketBytes(b *bolt.Bucket) int64 {
	var n int64
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		n += int64(len(k) + len(v))
	}
	return n
}

// kvBucket finds the bucket of database db of pkg, or fails with ErrNoDB.
func kvBucket(tx *bolt.Tx, pkg, db string) (*bolt.Bucket, error) {
	pb := tx.Bucket(bucketKV).Bucket([]byte(pkg))
	if pb == nil {
		return nil, ErrNoDB
	}
	b := pb.Bucket([]byte(db))
	if b == nil {
		return nil, ErrNoDB
	}
	return b, nil
}

// lookup reads key from b. A cursor tells a present empty value from an
// absent key without relying on how bbolt represents empty slices.
func lookup(b *bolt.Bucket, key []byte) (value []byte, ok bool) {
	k, v := b.Cursor().Seek(key)
	if k != nil && bytes.Equal(k, key) {
		return v, true
	}
	return nil, false
}

// checkKVKey enforces the key rules: 1 to MaxKeyBytes bytes, any bytes.
func checkKVKey(key []byte) error {
	switch {
	case len(key) == 0:
		return fmt.Errorf("%w: empty", ErrBadKey)
	case len(key) > MaxKeyBytes:
		return fmt.Errorf("%w: %d bytes, limit is %d", ErrBadKey, len(key), MaxKeyBytes)
	}
	return nil
}

func checkNames(pkg, db string) error {
	if err := checkPackage(pkg); err != nil {
		return err
	}
	return checkDBName(db)
}

// checkPackage enforces the package name rules: 1 to maxPackageBytes
// bytes of [a-z0-9.:-]. The kernel validates the full syntax; this is the
// store's own guard, enough that a name can never reach another package's
// bucket.
func checkPackage(pkg string) error {
	switch {
	case pkg == "":
		return fmt.Errorf("%w: empty package name", ErrBadName)
	case len(pkg) > maxPackageBytes:
		return fmt.Errorf("%w: package name is %d bytes, limit is %d", ErrBadName, len(pkg), maxPackageBytes)
	}
	for i := range len(pkg) {
		if c := pkg[i]; !isLowerAlnum(c) && c != '.' && c != ':' && c != '-' {
			return fmt.Errorf("%w: package name %s has %q at byte %d; allowed are a-z 0-9 . : -",
				ErrBadName, quoteKey(pkg), c, i)
		}
	}
	return nil
}

// checkDBName enforces the database name rules: 1 to 64 bytes of
// [a-z0-9-], not starting or ending with '-'.
func checkDBName(db string) error {
	switch {
	case db == "":
		return fmt.Errorf("%w: empty database name", ErrBadName)
	case len(db) > maxDBNameBytes:
		return fmt.Errorf("%w: database name is %d bytes, limit is %d", ErrBadName, len(db), maxDBNameBytes)
	case db[0] == '-' || db[len(db)-1] == '-':
		return fmt.Errorf("%w: database name %q starts or ends with '-'", ErrBadName, db)
	}
	for i := range len(db) {
		if c := db[i]; !isLowerAlnum(c) && c != '-' {
			return fmt.Errorf("%w: database name %s has %q at byte %d; allowed are a-z 0-9 -",
				ErrBadName, quoteKey(db), c, i)
		}
	}
	return nil
}

func isLowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

// dbName names a database in an error message.
func dbName(pkg, db string) string {
	return quoteKey(pkg) + "/" + quoteKey(db)
}
