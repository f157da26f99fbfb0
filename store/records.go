package store

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// GetState returns the state value of process (a process id,
// "name:package:publisher"). ok is false when the process has no state; an
// empty value that was set is returned as a non-nil empty slice with ok
// true. The slice is a copy owned by the caller.
func (s *Store) GetState(process string) (value []byte, ok bool, err error) {
	value, ok, err = s.get(bucketState, process)
	if err != nil {
		return nil, false, fmt.Errorf("store: get state for %s: %w", quoteKey(process), err)
	}
	return value, ok, nil
}

// SetState replaces the state value of process. When it returns nil the
// value is committed and fsynced. An empty value is stored as such and is
// distinct from no state.
func (s *Store) SetState(process string, value []byte) error {
	if err := s.put(bucketState, process, value); err != nil {
		return fmt.Errorf("store: set state for %s: %w", quoteKey(process), err)
	}
	return nil
}

// ClearState removes the state value of process, durably. Clearing a
// process that has no state is not an error.
func (s *Store) ClearState(process string) error {
	if err := s.delete(bucketState, process); err != nil {
		return fmt.Errorf("store: clear state for %s: %w", quoteKey(process), err)
	}
	return nil
}

// PutProcess stores the kernel's record for process in the process table,
// replacing any earlier one. The record is opaque to the store. When it
// returns nil the record is committed and fsynced.
func (s *Store) PutProcess(process string, record []byte) error {
	if err := s.put(bucketProcTable, process, record); err != nil {
		return fmt.Errorf("store: put process %s: %w", quoteKey(process), err)
	}
	return nil
}

// DeleteProcess removes the record of process from the process table,
// durably. Deleting a process that has no record is not an error.
func (s *Store) DeleteProcess(process string) error {
	if err := s.delete(bucketProcTable, process); err != nil {
		return fmt.Errorf("store: delete process %s: %w", quoteKey(process), err)
	}
	return nil
}

// Processes returns every record of the process table, keyed by process
// id, as read in one consistent snapshot. The map and the slices are
// copies owned by the caller.
func (s *Store) Processes() (map[string][]byte, error) {
	out := make(map[string][]byte)
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketProcTable).ForEach(func(k, v []byte) error {
			out[string(k)] = clone(v)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: list processes: %w", err)
	}
	return out, nil
}

// get reads one key of a top-level bucket.
func (s *Store) get(bucket []byte, key string) (value []byte, ok bool, err error) {
	if err := checkKey(key); err != nil {
		return nil, false, err
	}
	err = s.view(func(tx *bolt.Tx) error {
		// A cursor tells a present empty value from an absent key
		// without relying on how bbolt represents empty slices.
		k, v := tx.Bucket(bucket).Cursor().Seek([]byte(key))
		if k != nil && string(k) == key {
			value, ok = clone(v), true
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return value, ok, nil
}

// put writes one key of a top-level bucket in its own transaction.
func (s *Store) put(bucket []byte, key string, value []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if len(value) > MaxValueBytes {
		return fmt.Errorf("%w: value is %d bytes, limit is %d (MaxValueBytes)",
			ErrValueTooLarge, len(value), MaxValueBytes)
	}
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Put([]byte(key), value)
	})
}

// delete removes one key of a top-level bucket in its own transaction.
func (s *Store) delete(bucket []byte, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Delete([]byte(key))
	})
}

// view runs fn in a read transaction, reporting ErrClosed for a closed
// store.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return closedErr(s.db.View(fn))
}

// update runs fn in a write transaction, committed and fsynced before it
// returns, holding the write barrier shared throughout, reporting
// ErrClosed for a closed store. A commit that succeeded is noted in the
// Store's Changes, once the barrier is left.
func (s *Store) update(fn func(*bolt.Tx) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	err := func() error {
		defer s.barrier.Enter()()
		return closedErr(s.db.Update(fn))
	}()
	if err == nil {
		s.changes.Note()
	}
	return err
}

// closedErr maps bbolt's error for a transaction begun on a closed
// database, which a call racing with Close can meet, to ErrClosed.
func closedErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// checkKey enforces the key rules shared by every bucket.
func checkKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty", ErrBadKey)
	case len(key) > MaxKeyBytes:
		return fmt.Errorf("%w: %d bytes, limit is %d", ErrBadKey, len(key), MaxKeyBytes)
	}
	return nil
}

// quoteKey quotes key for an error message, shortened when it is long.
func quoteKey(key string) string {
	const show = 64
	if len(key) <= show {
		return fmt.Sprintf("%q", key)
	}
	return fmt.Sprintf("%q…(%d bytes)", key[:show], len(key))
}

// clone copies a slice that is only valid inside a transaction; the copy
// of an empty slice is empty and non-nil.
func clone(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}
