package p2p

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/kernel/pbconv"
	"github.com/weftos/weft/p2p/wire"
)

// answers makes h take weft frames as a node does (read, acknowledge) and
// returns the messages they carry.
func answers(t *testing.T, h host.Host) <-chan *kernel.RemoteMessage {
	t.Helper()
	out := make(chan *kernel.RemoteMessage, 16)
	h.SetStreamHandler(ProtocolID, func(s network.Stream) { take(t, s, out) })
	return out
}

// take reads weft frames from s, acknowledges each and sends its message
// to out, until the stream ends.
func take(t *testing.T, s network.Stream, out chan<- *kernel.RemoteMessage) {
	defer s.Close()
	for {
		f, err := wire.ReadFrame(s, 1<<20)
		if err != nil {
			return
		}
		m, _, err := pbconv.FromRemoteFrame(f)
		if err != nil {
			t.Errorf("a frame from the node does not decode: %v", err)
			s.Reset()
			return
		}
		if _, err := s.Write([]byte{ackTaken}); err != nil {
			return
		}
		out <- m
	}
}

// answerTo waits for the answer to request id among what h was sent.
func answerTo(t *testing.T, in <-chan *kernel.RemoteMessage, id uint64) *kernel.RemoteMessage {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m := <-in:
			if m.ID == id {
				return m
			}
		case <-timeout:
			t.Fatalf("no answer to request %d", id)
		}
	}
}

// A node that puts forged capabilities on the wire (Mallory, a bare
// libp2p host speaking weft's protocol) is answered no_capability, and
// nothing reaches the target: neither an attached capability claiming
// another node's process as issuer but signed by another key, nor a
// messaging capability for a process that is not public, claiming the
// target's node as signer. The same request without them is answered,
// so it is the forgery that is refused.
func TestForgedCapabilityFromRemoteNode(t *testing.T) {
	a, b := startNode(t), startNode(t)
	secret := kernel.ProcessId{Name: "secret", Package: "vault", Publisher: "test"}
	delivered := make(chan *kernel.Message, 4)
	if err := b.k.Start(kernel.Spec{
		ID:           secret,
		Capabilities: []kernel.Capability{networkCap(b.k)},
		Process: kernel.ProcessFunc(func(ctx context.Context, h *kernel.Handle) error {
			for {
				m, err := h.Await()
				if err != nil {
					return nil
				}
				delivered <- m
				if m.WantsResponse() {
					if err := h.Respond(&kernel.Response{Body: m.Body}); err != nil {
						return err
					}
				}
			}
		}),
	}); err != nil {
		t.Fatal(err)
	}

	h := rawHost(t)
	mallory, err := NodeID(h.ID())
	if err != nil {
		t.Fatal(err)
	}
	in := answers(t, h)
	forger := mustKey(t)
	from := kernel.Address{Node: mallory, Process: kernel.ProcessId{Name: "client", Package: "evil", Publisher: "test"}}
	request := func(id uint64, target kernel.Address, caps []kernel.SignedCapability, messaging *kernel.SignedCapability) *kernel.RemoteMessage {
		t.Helper()
		m := &kernel.RemoteMessage{Kind: kernel.KindRequest, ID: id, Source: from, Target: target, ExpectsResponse: 10 * time.Second,
			Body: []byte("let me in"), Capabilities: caps, Messaging: messaging}
		if reply, err := writeRaw(t, h, b, frameBytes(t, m)); err != nil || !bytes.Equal(reply, []byte{ackTaken}) {
			t.Fatalf("request %d: b answered %x, %v; want the frame taken, and answered", id, reply, err)
		}
		return answerTo(t, in, id)
	}
	wantRefused := func(what string, ans *kernel.RemoteMessage) {
		t.Helper()
		if ans.Kind != kernel.KindError || ans.Error == nil || ans.Error.Kind != kernel.ErrNoCapability {
			t.Fatalf("%s: answered %v %+v, want no_capability", what, ans.Kind, ans.Error)
		}
	}

	// An attached capability, a's echo as issuer, not signed by a.
	c := kernel.Capability{Issuer: a.echoAt(), Params: `{"door":1}`}
	attached := kernel.SignedCapability{Capability: c, Signature: forger.Sign(kernel.EncodeCapability(c))}
	wantRefused("a request with a forged attached capability", request(1, b.echoAt(), []kernel.SignedCapability{attached}, nil))
	held, err := b.k.CapabilitiesOf(echoID)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range held {
		if sc.Issuer == c.Issuer {
			t.Fatalf("b's echo holds %v after the forged request", sc.Capability)
		}
	}

	// A messaging capability for b's secret, b as issuer, not signed by b.
	m := kernel.Capability{Issuer: b.k.Address(secret), Params: kernel.MessagingParams}
	forgedMsg := kernel.SignedCapability{Capability: m, Signature: forger.Sign(kernel.EncodeCapability(m))}
	wantRefused("a request to a private process with a forged messaging capability", request(2, b.k.Address(secret), nil, &forgedMsg))
	// And b's real signature over other params does not pass for it.
	real, err := b.k.Sign(kernel.Capability{Issuer: b.k.Address(secret), Params: `{"other":true}`})
	if err != nil {
		t.Fatal(err)
	}
	spliced := kernel.SignedCapability{Capability: m, Signature: real.Signature}
	wantRefused("a messaging capability with a signature of other params", request(3, b.k.Address(secret), nil, &spliced))
	select {
	case got := <-delivered:
		t.Fatalf("b's secret received %q from a forged request", got.Body)
	default:
	}

	// The same requests without the forgeries: echo answers, and the
	// secret, which is not public, still refuses.
	if ans := request(4, b.echoAt(), nil, nil); ans.Kind != kernel.KindResponse || string(ans.Body) != "let me in" {
		t.Fatalf("a plain request to b's echo: answered %v %+v, want the echo", ans.Kind, ans.Error)
	}
	wantRefused("a request to a private process without a capability", request(5, b.k.Address(secret), nil, nil))
}

// A receiver that acknowledges a frame before reading it and then stops
// reading fails the sender's write (its deadline) with every frame of the
// batch acknowledged. The sender counts the frame as sent and goes on;
// it once indexed an empty rest of the batch here and panicked, so a
// remote peer could crash the node.
func TestEarlyAcknowledgementThenStall(t *testing.T) {
	b := startNode(t, func(c *Config) { c.WriteTimeout = 300 * time.Millisecond })
	h := rawHost(t)
	mallory, err := NodeID(h.ID())
	if err != nil {
		t.Fatal(err)
	}
	stalled := make(chan struct{})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	in := make(chan *kernel.RemoteMessage, 4)
	var later atomic.Bool
	h.SetStreamHandler(ProtocolID, func(s network.Stream) {
		if !later.Swap(true) {
			// Acknowledge the one frame b will send, read none of it,
			// and hold the stream until the test ends.
			s.Write([]byte{ackTaken})
			close(stalled)
			<-release
			s.Reset()
			return
		}
		take(t, s, in)
	})
	from := kernel.Address{Node: mallory, Process: kernel.ProcessId{Name: "client", Package: "peer", Publisher: "test"}}
	// An answer larger than the stream's window (256 KiB), so that b's
	// write blocks when h reads nothing.
	big := bytes.Repeat([]byte("x"), 600<<10)
	ask := func(id uint64, body []byte) {
		t.Helper()
		m := &kernel.RemoteMessage{Kind: kernel.KindRequest, ID: id, Source: from, Target: b.echoAt(), ExpectsResponse: 10 * time.Second, Body: body}
		if reply, err := writeRaw(t, h, b, frameBytes(t, m)); err != nil || !bytes.Equal(reply, []byte{ackTaken}) {
			t.Fatalf("request %d: b answered %x, %v; want the frame taken", id, reply, err)
		}
	}
	ask(1, big)
	<-stalled
	// b's write of the answer fails at its deadline; b goes on and
	// answers the next request on another stream.
	ask(2, []byte("still there?"))
	if ans := answerTo(t, in, 2); ans.Kind != kernel.KindResponse || string(ans.Body) != "still there?" {
		t.Fatalf("second answer: %v %q", ans.Kind, ans.Body)
	}
	if st := b.Stats()[mallory]; st.MessagesOut < 2 {
		t.Fatalf("b's counters for the peer: %+v, want both answers counted out", st)
	}
}
