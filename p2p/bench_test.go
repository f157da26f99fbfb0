package p2p

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// inFlight runs a benchmark's b.N round trips from workers goroutines at
// once: worker w makes n of them, one after another, with run(w, n) (the
// shares add up to b.N). It reports the round trips per second as msgs/s
// and, where the bytes go by write(2), the write system calls per round
// trip as writes/op; it fails the benchmark with the first error.
func inFlight(b *testing.B, workers int, run func(w, n int) error) {
	b.Helper()
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	w0 := syscallWrites(b)
	b.ResetTimer()
	for w := range workers {
		n := b.N / workers
		if w == 0 {
			n += b.N % workers
		}
		if n == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(w, n); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	// Over QUIC the bytes go by sendmsg, which syscw does not count: a
	// few writes a hundred round trips, at most, are not the transport's.
	if writes := syscallWrites(b) - w0; writes > int64(b.N)/100 {
		b.ReportMetric(float64(writes)/float64(b.N), "writes/op")
	}
}

// syscallWrites is the number of write system calls this process (both
// nodes of a benchmark) has made: syscw in /proc/self/io. Over loopback
// TCP each yamux frame is one: go-yamux does not coalesce frames, and
// Noise seals each write as a message of its own.
func syscallWrites(b *testing.B) int64 {
	b.Helper()
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatalf("/proc/self/io: %q: %v", line, err)
			}
			return n
		}
	}
	b.Fatalf("/proc/self/io has no syscw: %q", data)
	return 0
}

// inFlightName names the sub-benchmark of n round trips in flight.
func inFlightName(n int) string {
	if n == 1 {
		return "serial"
	}
	return strconv.Itoa(n) + "-in-flight"
}

// times repeats op n times, stopping at its first error.
func times(n int, op func() error) error {
	for range n {
		if err := op(); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkRemoteEcho is a request from node A's operator to the echo
// process on node B (a Go process) and its response back, over TCP on
// loopback: one at a time, and 64 in flight.
func BenchmarkRemoteEcho(b *testing.B) {
	a, bn := startNode(b), startNode(b, noRateLimit)
	if _, err := a.Connect(context.Background(), bn.addr(b, "/tcp/")); err != nil {
		b.Fatal(err)
	}
	target := bn.echoAt()
	mustEcho(b, a, target, "warm")
	call := func() error {
		_, err := a.call(target, "hello", 10*time.Second)
		return err
	}
	for _, n := range []int{1, 64} {
		b.Run(inFlightName(n), func(b *testing.B) {
			inFlight(b, n, func(_, n int) error { return times(n, call) })
		})
	}
}

// BenchmarkLibp2pFloor is the floor under BenchmarkRemoteEcho and
// BenchmarkRemoteRoundTrip: between two hosts set up as nodes' are (TCP,
// Noise or TLS, yamux, the same resource manager and scopes), 5 bytes
// sent, echoed and read back. It also prices the stream design (the
// package doc): a stream per message, as messages first travelled, against
// a kept stream, as they travel now:
//
//   - serial, 64-in-flight: a new stream per round trip, the request and
//     its echo on it (the protocol is negotiated lazily with the first
//     write, so a new stream costs no round trip more);
//   - two-streams, two-streams-64-in-flight: a new stream each way, the
//     request on one from A, the echo on one B opens back, as a weft
//     request and its response travel;
//   - reuse: one stream kept open, 5 bytes each way per round trip, as
//     messages travel on a kept stream (without the acknowledgements).
func BenchmarkLibp2pFloor(b *testing.B) {
	a, bn := startNode(b), startNode(b)
	// The echo takes the weft protocol's place on the hosts, so that its streams
	// fall in the same resource manager scopes as messages' (another
	// protocol gets libp2p's default limit of 64 inbound streams a peer).
	const proto = ProtocolID
	ctx := context.Background()
	if err := a.h.Connect(ctx, peer.AddrInfo{ID: bn.h.ID(), Addrs: bn.h.Addrs()}); err != nil {
		b.Fatal(err)
	}
	echoOn := func(s network.Stream) {
		defer s.Close()
		var buf [5]byte
		for {
			if _, err := io.ReadFull(s, buf[:]); err != nil {
				if err != io.EOF {
					s.Reset()
				}
				return
			}
			if _, err := s.Write(buf[:]); err != nil {
				s.Reset()
				return
			}
		}
	}
	roundTrip := func(s network.Stream) error {
		var buf [5]byte
		if _, err := s.Write([]byte("hello")); err != nil {
			return err
		}
		_, err := io.ReadFull(s, buf[:])
		return err
	}
	streamTrip := func() error {
		s, err := a.h.NewStream(ctx, bn.h.ID(), proto)
		if err != nil {
			return err
		}
		if err := roundTrip(s); err != nil {
			s.Reset()
			return err
		}
		return s.Close()
	}
	for _, n := range []int{1, 64} {
		b.Run(inFlightName(n), func(b *testing.B) {
			bn.h.SetStreamHandler(proto, echoOn)
			inFlight(b, n, func(_, n int) error { return times(n, streamTrip) })
		})
	}

	// send writes 5 bytes on a new stream from one host to a peer and
	// closes it.
	send := func(from *testNode, to peer.ID) error {
		s, err := from.h.NewStream(ctx, to, proto)
		if err != nil {
			return err
		}
		if _, err := s.Write([]byte("hello")); err != nil {
			s.Reset()
			return err
		}
		return s.Close()
	}
	// receive reads the 5 bytes of a stream send opened, then gives them
	// to got.
	receive := func(s network.Stream, got func() error) {
		var buf [5]byte
		if _, err := io.ReadFull(s, buf[:]); err != nil {
			s.Reset()
			return
		}
		s.Close()
		if err := got(); err != nil {
			b.Error(err)
		}
	}
	answers := make(chan struct{}, 64)
	for _, n := range []int{1, 64} {
		name := "two-streams"
		if n > 1 {
			name += "-" + inFlightName(n)
		}
		b.Run(name, func(b *testing.B) {
			bn.h.SetStreamHandler(proto, func(s network.Stream) {
				receive(s, func() error { return send(bn, a.h.ID()) })
			})
			a.h.SetStreamHandler(proto, func(s network.Stream) {
				receive(s, func() error { answers <- struct{}{}; return nil })
			})
			// Each worker sends one request and waits for one answer (any
			// worker's: they are alike), so n are in flight at most.
			inFlight(b, n, func(_, n int) error {
				return times(n, func() error {
					if err := send(a, bn.h.ID()); err != nil {
						return err
					}
					select {
					case <-answers:
						return nil
					case <-time.After(10 * time.Second):
						return errors.New("no answer within 10 s")
					}
				})
			})
		})
	}

	b.Run("reuse", func(b *testing.B) {
		bn.h.SetStreamHandler(proto, echoOn)
		s, err := a.h.NewStream(ctx, bn.h.ID(), proto)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		inFlight(b, 1, func(_, n int) error { return times(n, func() error { return roundTrip(s) }) })
	})
}

// noRateLimit lifts a benchmark node's inbound rate limit (25,000 requests
// a second by default), which 64 requests in flight can pass: the
// benchmarks measure the transport, not the limit.
func noRateLimit(c *Config) { c.InboundRate, c.InboundBurst = 1e9, 1<<30 }
