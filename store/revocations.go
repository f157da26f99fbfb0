package store

import (
	"crypto/sha256"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// AddRevocation keeps a revocation mark: the kernel's encoding of a
// capability issued on this node that was revoked, opaque to the store.
// When it returns nil the mark is committed and fsynced. Adding a mark
// that is kept already is no error. A mark is at most MaxValueBytes.
func (s *Store) AddRevocation(mark []byte) error {
	if err := s.putMark(mark); err != nil {
		return fmt.Errorf("store: add revocation: %w", err)
	}
	return nil
}

// RemoveRevocation forgets a revocation mark, durably; removing one that
// is not kept is no error.
func (s *Store) RemoveRevocation(mark []byte) error {
	sum := sha256.Sum256(mark)
	if err := s.delete(bucketRevoked, string(sum[:])); err != nil {
		return fmt.Errorf("store: remove revocation: %w", err)
	}
	return nil
}

// Revocations returns every revocation mark kept, as copies owned by the
// caller, in no particular order.
func (s *Store) Revocations() ([][]byte, error) {
	var out [][]byte
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRevoked).ForEach(func(_, v []byte) error {
			out = append(out, clone(v))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: list revocations: %w", err)
	}
	return out, nil
}

// putMark keys a mark by its SHA-256, so that a mark of any length up to
// MaxValueBytes has a key bbolt takes.
func (s *Store) putMark(mark []byte) error {
	if len(mark) == 0 {
		return fmt.Errorf("%w: empty revocation mark", ErrBadKey)
	}
	sum := sha256.Sum256(mark)
	return s.put(bucketRevoked, string(sum[:]), mark)
}
