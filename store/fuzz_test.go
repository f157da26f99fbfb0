package store_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/weftos/weft/store"
)

// FuzzStateRoundTrip: SetState followed by GetState returns exactly the
// value set, or both fail with ErrBadKey for a key the store rejects.
//
//weft:fuzzslow 20
func FuzzStateRoundTrip(f *testing.F) {
	f.Add("chat:chat:alice.os", []byte("hello"))
	f.Add("", []byte("v"))
	f.Add("k", []byte{})
	s := openTemp(f)
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		badKey := key == "" || len(key) > store.MaxKeyBytes
		err := s.SetState(key, value)
		if badKey {
			if !errors.Is(err, store.ErrBadKey) {
				t.Fatalf("SetState(%.40q) = %v, want ErrBadKey", key, err)
			}
			if _, _, err := s.GetState(key); !errors.Is(err, store.ErrBadKey) {
				t.Fatalf("GetState(%.40q) = %v, want ErrBadKey", key, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("SetState(%q, %d bytes): %v", key, len(value), err)
		}
		got, ok, err := s.GetState(key)
		if err != nil || !ok || !bytes.Equal(got, value) || got == nil {
			t.Fatalf("GetState(%q) = %q, %v, %v; want %q", key, got, ok, err, value)
		}
		if err := s.ClearState(key); err != nil {
			t.Fatalf("ClearState(%q): %v", key, err)
		}
		if got, ok, err := s.GetState(key); err != nil || ok {
			t.Fatalf("after ClearState GetState(%q) = %q, %v, %v", key, got, ok, err)
		}
	})
}
