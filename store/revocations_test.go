package store_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/weftos/weft/store"
)

// TestRevocationsOutliveReopen: marks added are listed, survive closing
// and opening the file again, and go when removed; adding or removing
// twice is no error.
func TestRevocationsOutliveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	s, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := []byte("weft-capability-v1\x00a")
	b := bytes.Repeat([]byte("b"), store.MaxKeyBytes+1) // longer than a key may be
	for _, m := range [][]byte{a, b, a} {
		if err := s.AddRevocation(m); err != nil {
			t.Fatalf("AddRevocation: %v", err)
		}
	}
	if err := s.AddRevocation(nil); !errors.Is(err, store.ErrBadKey) {
		t.Errorf("AddRevocation(nil) = %v, want ErrBadKey", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = store.Open(path, store.Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Revocations()
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, bytes.Compare)
	if len(got) != 2 || !bytes.Equal(got[0], b) || !bytes.Equal(got[1], a) { // sorted: b < a
		t.Fatalf("Revocations after reopening: %d marks, want a and b", len(got))
	}
	for range 2 {
		if err := s.RemoveRevocation(a); err != nil {
			t.Fatalf("RemoveRevocation: %v", err)
		}
	}
	if got, err = s.Revocations(); err != nil || len(got) != 1 || !bytes.Equal(got[0], b) {
		t.Fatalf("Revocations after removing a: %d marks, %v; want b alone", len(got), err)
	}
}
