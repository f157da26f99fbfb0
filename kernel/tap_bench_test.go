package kernel

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkTapDelivery is BenchmarkKernelRoundTrip's round trip (a request
// and its response, two deliveries each offered to every tap) with taps
// open: none; n taps whose readers take every envelope at once; n taps
// nobody reads, so each is full, after its first 128 round trips, and
// drops. ns/op is wall time on the machine, the readers' own work
// included.
func BenchmarkTapDelivery(b *testing.B) {
	for _, c := range []struct {
		name    string
		n       int
		reading bool
	}{
		{"none", 0, false},
		{"reading-64", 64, true}, // the default taps_per_node
		{"stalled-64", 64, false},
		{"reading-1000", 1000, true}, // issue 12's attack
		{"stalled-1000", 1000, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			k := benchKernel(b, Limits{TapsPerNode: max(c.n, 1)})
			var readers sync.WaitGroup
			done := make(chan struct{})
			for range c.n {
				t := openTap(b, k, TapOptions{})
				defer t.Close()
				if c.reading {
					readers.Go(func() {
						for {
							select {
							case <-t.C:
							case <-done:
								return
							}
						}
					})
				}
			}
			defer readers.Wait()
			defer close(done)
			benchRoundTrips(b, k)
		})
	}
}

// benchKernel is a kernel within lim with an echo process,
// echo:bench:test.
func benchKernel(b *testing.B, lim Limits) *Kernel {
	b.Helper()
	k, err := New(Config{Keyring: newKeyring("bench"), Limits: lim})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { k.Close(context.Background()) })
	err = k.Start(Spec{ID: pid("echo:bench:test"), Public: true, Process: benchEcho})
	if err != nil {
		b.Fatal(err)
	}
	return k
}

// benchRoundTrips sends b.N requests to echo:bench:test from a client
// process, one at a time, and awaits each response.
func benchRoundTrips(b *testing.B, k *Kernel) {
	b.Helper()
	target := addr("our@echo:bench:test")
	done := make(chan error, 1)
	err := k.Start(Spec{
		ID: pid("client:bench:test"),
		Process: ProcessFunc(func(ctx context.Context, h *Handle) error {
			req := &Request{Target: target, Body: []byte("hello"), ExpectsResponse: time.Minute}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := h.Send(req); err != nil {
					done <- err
					return err
				}
				if m, err := h.Await(); err != nil || m.Kind != KindResponse {
					done <- fmt.Errorf("await: %v %v", m, err)
					return err
				}
			}
			b.StopTimer()
			done <- nil
			return nil
		}),
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
