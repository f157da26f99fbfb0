package p2p

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// BenchmarkRemoteEcho is a request from node A's operator to the echo
// process on node B and its response back, over TCP on loopback: one at a
// time, and 64 in flight. Each message is a stream of its own.
func BenchmarkRemoteEcho(b *testing.B) {
	a, bn := startNode(b), startNode(b)
	if _, err := a.Connect(context.Background(), bn.addr(b, "/tcp/")); err != nil {
		b.Fatal(err)
	}
	target := bn.echoAt()
	mustEcho(b, a, target, "warm")

	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := a.call(target, "hello", 10*time.Second); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("64-in-flight", func(b *testing.B) {
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		b.ResetTimer()
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(b.N) {
					if _, err := a.call(target, "hello", 10*time.Second); err != nil {
						errs <- err
						return
					}
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
	})
}

// BenchmarkLibp2pFloor is the floor under BenchmarkRemoteEcho: between the
// same two hosts (TCP, Noise or TLS, yamux, the same resource manager), a
// new stream, 5 bytes written, echoed and read back. It is also the cost
// of a stream per message: a message pays a new stream, not a round trip
// more, since the protocol is negotiated lazily with the first write.
func BenchmarkLibp2pFloor(b *testing.B) {
	a, bn := startNode(b), startNode(b)
	const proto protocol.ID = "/weft/bench-echo/1"
	bn.h.SetStreamHandler(proto, func(s network.Stream) {
		defer s.Close()
		var buf [5]byte
		if _, err := io.ReadFull(s, buf[:]); err != nil {
			s.Reset()
			return
		}
		s.Write(buf[:])
	})
	ctx := context.Background()
	if err := a.h.Connect(ctx, peer.AddrInfo{ID: bn.h.ID(), Addrs: bn.h.Addrs()}); err != nil {
		b.Fatal(err)
	}
	var buf [5]byte
	for b.Loop() {
		s, err := a.h.NewStream(ctx, bn.h.ID(), proto)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Write([]byte("hello")); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(s, buf[:]); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}
