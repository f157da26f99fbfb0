package p2p

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"google.golang.org/protobuf/proto"

	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/kernel/pbconv"
)

// msgStreams counts the weft streams on from's connections to to,
// by direction.
func msgStreams(from, to *testNode) (out, in int) {
	for _, c := range from.h.Network().ConnsToPeer(to.h.ID()) {
		for _, s := range c.GetStreams() {
			if s.Protocol() != ProtocolID {
				continue
			}
			if s.Stat().Direction == network.DirOutbound {
				out++
			} else {
				in++
			}
		}
	}
	return out, in
}

// peerMemory is the memory n's resource manager holds for peer other.
func peerMemory(n, other *testNode) int64 {
	var mem int64
	n.h.Network().ResourceManager().ViewPeer(other.h.ID(), func(s network.PeerScope) error {
		mem = s.Stat().Memory
		return nil
	})
	return mem
}

// Messages one after another to a node all travel on one stream, kept
// open between them; it is closed on both sides once idle, and the next
// message opens another.
func TestStreamsKept(t *testing.T) {
	const idle = time.Second
	opt := func(c *Config) { c.StreamIdleTimeout = idle }
	a, b := startNode(t, opt), startNode(t, opt)
	if _, err := a.Connect(context.Background(), b.addr(t, "/tcp/")); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		mustEcho(t, a, b.echoAt(), "kept "+strings.Repeat("x", i))
		// A frame is handed to the kernel before it is acknowledged, so
		// the answer may come before the senders have their streams
		// back in their pools.
		waitUntil(t, "the streams to be back in their pools", func() bool {
			return pooled(a, b) == 1 && pooled(b, a) == 1
		})
		if out, in := msgStreams(a, b); out != 1 || in != 1 {
			t.Fatalf("after %d messages each way a has %d streams to b and %d from it, want 1 and 1", i+1, out, in)
		}
	}
	if st := a.Stats()[b.NodeID()]; st.MessagesOut != 20 || st.MessagesIn != 20 || st.Errors != 0 {
		t.Fatalf("a's counters for b: %+v, want 20 messages each way and no errors", st)
	}
	waitUntil(t, "the idle streams to close on both sides", func() bool {
		aOut, aIn := msgStreams(a, b)
		bOut, bIn := msgStreams(b, a)
		return aOut+aIn+bOut+bIn == 0
	})
	if mem := peerMemory(b, a); mem != 0 {
		t.Fatalf("b holds %d bytes for a with no stream open", mem)
	}
	mustEcho(t, a, b.echoAt(), "after the idle close")
}

// A stream that carried a frame over keepMaxFrame is closed after it, so
// that the receive window grown for it is given back.
func TestLargeFrameStreamNotKept(t *testing.T) {
	a, b := startNode(t), startNode(t)
	if _, err := a.Connect(context.Background(), b.addr(t, "/tcp/")); err != nil {
		t.Fatal(err)
	}
	mustEcho(t, a, b.echoAt(), strings.Repeat("L", keepMaxFrame+1))
	waitUntil(t, "the large frames' streams to close", func() bool {
		aOut, aIn := msgStreams(a, b)
		bOut, bIn := msgStreams(b, a)
		return aOut+aIn+bOut+bIn == 0
	})
	waitUntil(t, "b's memory for a to be released", func() bool { return peerMemory(b, a) == 0 })
	mustEcho(t, a, b.echoAt(), "small")
	if out, _ := msgStreams(a, b); out != 1 {
		t.Fatalf("a has %d streams to b after a small message, want it kept", out)
	}
}

// A receiver closes a stream on which no frame begins for twice its idle
// timeout, after acknowledging the frames it took.
func TestReceiverClosesIdleStream(t *testing.T) {
	b := startNode(t, func(c *Config) { c.StreamIdleTimeout = 300 * time.Millisecond })
	a := startNode(t)
	h := rawHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Connect(ctx, peer.AddrInfo{ID: b.h.ID(), Addrs: b.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	s, err := h.NewStream(ctx, b.h.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	mallory, _ := NodeID(h.ID())
	// Frames that claim another node are taken (and dropped), so each
	// is acknowledged.
	for i := range 3 {
		claim := &kernel.RemoteMessage{Kind: kernel.KindRequest, ID: uint64(i + 1), Source: a.echoAt(), Target: b.echoAt(), Body: []byte("I am a")}
		if _, err := s.Write(frameBytes(t, claim)); err != nil {
			t.Fatal(err)
		}
		var ack [1]byte
		if _, err := io.ReadFull(s, ack[:]); err != nil || ack[0] != ackTaken {
			t.Fatalf("frame %d: acknowledgement %#x, %v; want %#x", i+1, ack[0], err, ackTaken)
		}
	}
	if st := b.Stats()[mallory]; st.MessagesIn != 3 || st.Spoofed != 3 {
		t.Fatalf("b's counters for the peer: %+v, want 3 messages in, 3 spoofed", st)
	}
	var one [1]byte
	if k, err := s.Read(one[:]); k != 0 || err != io.EOF {
		t.Fatalf("reading an idle stream: %d bytes, %v; want the receiver to close it (EOF)", k, err)
	}
	if st := b.Stats()[mallory]; st.Errors != 0 {
		t.Fatalf("b counted %d errors for closing an idle stream", st.Errors)
	}
}

// A message that finds its kept stream closed by the receiver (whose
// idle timeout is shorter than the sender's) goes on another stream.
func TestStreamClosedByReceiverIsReplaced(t *testing.T) {
	a := startNode(t, func(c *Config) { c.StreamIdleTimeout = time.Hour })
	b := startNode(t, func(c *Config) { c.StreamIdleTimeout = 50 * time.Millisecond })
	if _, err := a.Connect(context.Background(), b.addr(t, "/tcp/")); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		mustEcho(t, a, b.echoAt(), "before")
		waitUntil(t, "b to close the idle stream from a", func() bool {
			_, in := msgStreams(b, a)
			return in == 0
		})
		waitUntil(t, "a to keep the stream b closed", func() bool { return pooled(a, b) == 1 })
	}
	mustEcho(t, a, b.echoAt(), "after")
	// The last acknowledgement may come after the answer.
	waitUntil(t, "a to count 4 messages to b", func() bool { return a.Stats()[b.NodeID()].MessagesOut == 4 })
	if st := a.Stats()[b.NodeID()]; st.Errors != 0 {
		t.Fatalf("a's counters for b: %+v, want no errors", st)
	}
}

// A receiver that refuses a frame on a kept stream (over its size limit)
// fails that message only: the next goes on a new stream.
func TestRefusalOnKeptStream(t *testing.T) {
	a, b, k := smallReceiver(t)
	bEcho := k.Address(echoID)
	mustEcho(t, a, bEcho, "first")
	waitUntil(t, "a to keep its stream to b", func() bool { return pooled(a, b) == 1 })
	_, err := a.call(bEcho, strings.Repeat("x", b.maxFrame+1), time.Minute)
	var se *kernel.SendError
	if !errors.As(err, &se) || se.Kind != kernel.ErrTooLarge {
		t.Fatalf("request over the receiver's limit on a kept stream: %v, want too_large", err)
	}
	mustEcho(t, a, bEcho, "after the refusal")
}

// pooled is the number of streams from to other in from's pool.
func pooled(from *testNode, other interface{ NodeID() string }) int {
	id, _ := PeerID(other.NodeID())
	ps := from.peerIfKnown(id)
	if ps == nil {
		return 0
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return len(ps.idle)
}

// smallReceiver starts a node b whose kernel takes bodies, blobs,
// metadata and contexts of at most 1 KiB, and a node a with the default
// limits connected to it; it returns a, b and b's kernel.
func smallReceiver(t *testing.T) (*testNode, *Node, *kernel.Kernel) {
	t.Helper()
	key := mustKey(t)
	small := kernel.Limits{MaxBodyBytes: 1 << 10, MaxBlobBytes: 1 << 10, MaxMetadataBytes: 1 << 10, MaxContextBytes: 1 << 10}
	k := newKernel(t, key, small)
	b, err := New(Config{Kernel: k, Key: key, DataDir: t.TempDir(), Listen: tcpListen})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	a := startNode(t)
	if _, err := a.Connect(context.Background(), b.ListenAddrs()[0]); err != nil {
		t.Fatal(err)
	}
	return a, b, k
}

// A batch of frames (several written on a stream at once) in which the
// receiver refuses one in band: the frames before it are taken, the one
// refused fails with the refusal's kind, and those behind it, which the
// receiver did not take, go on another stream and are taken: each frame
// arrives once.
func TestBatchWithARefusedFrame(t *testing.T) {
	a, b, k := smallReceiver(t)
	sink := kernel.ProcessId{Name: "sink", Package: "sink", Publisher: "test"}
	got := make(chan string, 8)
	if err := k.Start(kernel.Spec{
		ID:           sink,
		Public:       true,
		Capabilities: []kernel.Capability{networkCap(k)},
		Process: kernel.ProcessFunc(func(ctx context.Context, h *kernel.Handle) error {
			for {
				m, err := h.Await()
				if err != nil {
					return nil
				}
				got <- string(m.Body)
			}
		}),
	}); err != nil {
		t.Fatal(err)
	}
	frame := func(body string) outbound {
		m := &kernel.RemoteMessage{Kind: kernel.KindRequest, ID: 1, Source: a.echoAt(), Target: k.Address(sink), Body: []byte(body)}
		f, err := pbconv.RemoteFrame(m)
		if err != nil {
			t.Fatal(err)
		}
		return outbound{msg: m, frame: f, size: proto.Size(f)}
	}
	big := strings.Repeat("x", b.maxFrame) // over b's frame limit, well under a batch
	batch := []outbound{frame("one"), frame("two"), frame(big), frame("three"), frame("four")}
	ps := a.state(b.h.ID(), b.NodeID())
	before := a.k.Stats().SendErrors[kernel.ErrTooLarge]
	a.deliver(ps, batch)
	if n := a.k.Stats().SendErrors[kernel.ErrTooLarge] - before; n != 1 {
		t.Fatalf("%d messages failed too_large, want the big one", n)
	}
	var bodies []string
	for range 4 {
		select {
		case body := <-got:
			bodies = append(bodies, body)
		case <-time.After(10 * time.Second):
			t.Fatalf("the sink got %q, want the four small messages", bodies)
		}
	}
	if want := []string{"one", "two", "three", "four"}; !slices.Equal(bodies, want) {
		t.Fatalf("the sink got %q, want %q", bodies, want)
	}
	if st := b.Stats()[a.NodeID()]; st.MessagesIn != 4 || st.Errors != 1 {
		t.Fatalf("b's counters for a: %+v, want 4 messages in, 1 frame refused", st)
	}
	if st := a.Stats()[b.NodeID()]; st.MessagesOut != 4 {
		t.Fatalf("a's counters for b: %+v, want 4 messages out", st)
	}
	select {
	case body := <-got:
		t.Fatalf("the sink got %q again", body)
	default:
	}
}
