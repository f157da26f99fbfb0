package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/weftos/weft/store"
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

// BenchmarkChangesNote measures what every write adds to note itself in
// a store.Changes: with nobody waiting (the common case), and with a
// goroutine waiting for each next change (every note then closes a
// channel, and the waiter makes the next one).
func BenchmarkChangesNote(b *testing.B) {
	b.Run("idle", func(b *testing.B) {
		var c store.Changes
		b.ReportAllocs()
		for b.Loop() {
			c.Note()
		}
	})
	b.Run("waited", func(b *testing.B) {
		var c store.Changes
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			var seen uint64
			for {
				s, err := c.Wait(ctx, seen)
				if err != nil {
					return
				}
				seen = s
			}
		}()
		b.ReportAllocs()
		for b.Loop() {
			c.Note()
		}
		cancel()
		<-done
	})
}
