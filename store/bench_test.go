package store_test

import (
	"fmt"
	"testing"
)

const benchKeys = 64

func benchKey(i int) string { return fmt.Sprintf("proc-%d:bench:test", i%benchKeys) }

// BenchmarkSetState measures one durable 4 KiB state write: a bbolt
// transaction, committed with fdatasync, from a single goroutine.
func BenchmarkSetState(b *testing.B) {
	s := openTemp(b)
	value := make([]byte, 4096)
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		value[0] = byte(i)
		if err := s.SetState(benchKey(i), value); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkGetState measures reading a 4 KiB state value, copy included.
func BenchmarkGetState(b *testing.B) {
	s := openTemp(b)
	value := make([]byte, 4096)
	for i := range benchKeys {
		if err := s.SetState(benchKey(i), value); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok, err := s.GetState(benchKey(i)); err != nil || !ok {
			b.Fatal(ok, err)
		}
		i++
	}
}
