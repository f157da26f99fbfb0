package p2p

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// PeerStats counts one peer's traffic, for metrics.
type PeerStats struct {
	BytesIn, BytesOut uint64 // frame bytes read from and written to it
	// MessagesIn and MessagesOut count frames read from it and written to
	// it; a frame written on a stream the peer had already closed, and so
	// written again on another, counts once.
	MessagesIn, MessagesOut uint64
	// Errors counts frames that failed: not written (unreachable, stream
	// refused), not read (malformed, over the size limit), or refused
	// by the kernel for another reason than spoofing.
	Errors uint64
	// Spoofed counts frames that claimed a source on another node than
	// the peer's; they are dropped.
	Spoofed uint64
	// RateLimited counts requests over the peer's inbound rate limit.
	RateLimited uint64
}

type peerCounters struct {
	bytesIn, bytesOut       atomic.Uint64
	messagesIn, messagesOut atomic.Uint64
	errors, spoofed         atomic.Uint64
	rateLimited             atomic.Uint64
}

func (c *peerCounters) snapshot() PeerStats {
	return PeerStats{
		BytesIn: c.bytesIn.Load(), BytesOut: c.bytesOut.Load(),
		MessagesIn: c.messagesIn.Load(), MessagesOut: c.messagesOut.Load(),
		Errors: c.errors.Load(), Spoofed: c.spoofed.Load(),
		RateLimited: c.rateLimited.Load(),
	}
}

// Stats returns the counters of every peer this node has state for (peers
// connected or with messages queued), by node id. Counters start at zero
// when a peer connects again after its state was dropped.
func (n *Node) Stats() map[string]PeerStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]PeerStats, len(n.peers))
	for _, ps := range n.peers {
		out[ps.node] = ps.stats.snapshot()
	}
	return out
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n *atomic.Uint64
}

func (c countingWriter) Write(p []byte) (int, error) {
	k, err := c.w.Write(p)
	c.n.Add(uint64(k))
	return k, err
}

// reserveStep is how much memory frameReader reserves at a time.
const reserveStep = 64 << 10

// errNoMemory is wrapped by frameReader's refusal to read past the memory
// the resource manager grants.
var errNoMemory = errors.New("no memory for the frame")

// frameReader reads the inbound frames of a stream, one after another:
// it counts the bytes, and reserves the memory they will take in the
// stream's resource scope, a step ahead of what it has read, so that the
// frames being read count against the peer's and the node's memory
// limits. done releases a frame's memory once the frame is handed to the
// kernel (the scope releases whatever is left when the stream ends). Past
// the limits, reading fails with errNoMemory. Once the first byte of a
// frame has come, the rest of it must come within frameTimeout: the
// stream's read deadline moves from the idle timeout to that.
type frameReader struct {
	s            network.Stream // for its scope and deadlines
	r            io.Reader      // s, buffered
	n            *atomic.Uint64
	frameTimeout time.Duration
	read         int
	reserved     int
}

func (f *frameReader) Read(p []byte) (int, error) {
	// The first byte of a frame is read before any memory is reserved, so
	// that a stream waiting for its next frame holds none.
	limit := 1
	if f.read > 0 {
		if f.read >= f.reserved {
			if err := f.s.Scope().ReserveMemory(reserveStep, network.ReservationPriorityHigh); err != nil {
				return 0, fmt.Errorf("p2p: %w after %d bytes: %w", errNoMemory, f.read, err)
			}
			f.reserved += reserveStep
		}
		limit = f.reserved - f.read
	}
	p = p[:min(len(p), limit)]
	k, err := f.r.Read(p)
	if k > 0 && f.read == 0 {
		f.s.SetReadDeadline(time.Now().Add(f.frameTimeout))
	}
	f.read += k
	f.n.Add(uint64(k))
	return k, err
}

// done releases the memory reserved for the frame just read and readies f
// for the next one.
func (f *frameReader) done() {
	if f.reserved > 0 {
		f.s.Scope().ReleaseMemory(f.reserved)
	}
	f.read, f.reserved = 0, 0
}

// bucket is a token bucket: rate tokens a second, at most burst.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// allow takes a token at now if there is one.
func (b *bucket) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
