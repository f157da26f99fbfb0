package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/api/weftv1/weftv1connect"
)

// BenchmarkSendEchoTaps is BenchmarkSendEcho/parallel16 (16 clients
// calling the Wasm echo at once over the Unix socket) while Tap streams
// are open over HTTP/2 on the same socket: none; n whose client reads
// every envelope; n whose client never reads. The stalled streams are
// filled before the timer starts, so what is timed is a node whose taps
// all drop. ns/op is wall time per call (calls per second is 1e9 / ns/op);
// p99-ms is the slowest 1% of calls.
func BenchmarkSendEchoTaps(b *testing.B) {
	for _, c := range []struct {
		taps    int
		reading bool
	}{
		{0, false},
		{64, true}, {64, false}, // the default taps_per_node
		{1000, true}, {1000, false}, // issue 12's attack
	} {
		name := "none"
		switch {
		case c.taps > 0 && c.reading:
			name = fmt.Sprintf("reading-%d", c.taps)
		case c.taps > 0:
			name = fmt.Sprintf("stalled-%d", c.taps)
		}
		node := startNode(b, b.TempDir(), "--install", exampleDir(b, "echo"), "--limit", fmt.Sprintf("taps_per_node=%d", max(c.taps, 1)))
		stop := openBenchTaps(b, node.sock, c.taps, c.reading)
		if !c.reading {
			// Enough to fill every stalled stream's window, the node's
			// writer and the tap's buffer of 256, several times over.
			ec := weftv1connect.NewMessageServiceClient(unixClient(node.sock), "http://weftd")
			for range 2000 {
				if err := askEcho(context.Background(), ec); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.Run(name, func(b *testing.B) {
			var mu sync.Mutex
			var lat []time.Duration
			b.SetParallelism(8) // × GOMAXPROCS (2 here) = 16 clients
			b.RunParallel(func(pb *testing.PB) {
				hc := unixClient(node.sock)
				defer hc.CloseIdleConnections()
				ec := weftv1connect.NewMessageServiceClient(hc, "http://weftd")
				var mine []time.Duration
				for pb.Next() {
					start := time.Now()
					if err := askEcho(context.Background(), ec); err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(start))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			if len(lat) > 0 {
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
		stop()
		node.stop(b)
	}
}

// openBenchTaps opens n Tap streams on sock and returns once the node has
// opened every one. A reading stream's client takes every envelope as it
// comes; a stalled one never reads. stop ends them all.
func openBenchTaps(b *testing.B, sock string, n int, reading bool) (stop func()) {
	b.Helper()
	hc := tapHTTPClient(sock, !reading)
	c := weftv1connect.NewMessageServiceClient(hc, "http://weftd")
	ctx, cancel := context.WithCancel(context.Background())
	var readers sync.WaitGroup
	for range n {
		s, err := c.Tap(ctx, connect.NewRequest(&weftv1.TapRequest{}))
		if err != nil {
			b.Fatal(err)
		}
		s.ResponseHeader() // the tap is open once the headers are here
		if reading {
			readers.Go(func() {
				for s.Receive() {
				}
			})
		}
	}
	return func() {
		cancel()
		readers.Wait()
		hc.CloseIdleConnections()
	}
}
