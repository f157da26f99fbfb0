package controlapi_test

import (
	"fmt"
	"testing"

	"connectrpc.com/connect"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/kernel"
)

// TestTapsPerNode opens as many taps as the node allows and reads none of
// them: the next Tap fails with resource_exhausted naming the limit, Send
// is still answered, and closing one tap makes room for another.
func TestTapsPerNode(t *testing.T) {
	n := newNode(t, nodeOptions{})
	ctx := ctxT(t)
	limit := kernel.DefaultLimits().TapsPerNode
	var streams []*connect.ServerStreamForClient[weftv1.TapResponse]
	for range limit {
		s, err := n.msg.Tap(ctx, connect.NewRequest(&weftv1.TapRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		s.ResponseHeader() // the tap is open once the headers are here
		streams = append(streams, s)
	}
	if got := n.k.TapCount(); got != limit {
		t.Fatalf("TapCount %d with %d streams open, want %d", got, limit, limit)
	}
	over, err := n.msg.Tap(ctx, connect.NewRequest(&weftv1.TapRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	over.ResponseHeader() // headers, or the call's end
	if got := n.k.TapCount(); got > limit {
		t.Fatalf("TapCount %d, past taps_per_node %d", got, limit)
	}
	if over.Receive() {
		t.Fatalf("a tap past the limit got %v", over.Msg())
	}
	wantCode(t, over.Err(), connect.CodeResourceExhausted, "taps_per_node", fmt.Sprintf("%d taps are open", limit))
	over.Close()

	// More envelopes than a tap buffers: every tap fills and drops.
	for range 300 {
		if got := ask(t, n, "hello"); string(got.GetResponse().GetBody()) != "echo:hello" {
			t.Fatalf("echo with %d taps unread: %v", limit, got)
		}
	}

	streams[0].Close()
	waitFor(t, "the closed stream's tap is closed", func() bool { return n.k.TapCount() == limit-1 })
	s, err := n.msg.Tap(ctx, connect.NewRequest(&weftv1.TapRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ask(t, n, "again")
	if !s.Receive() || s.Msg().GetEnvelope().GetKind() != weftv1.EnvelopeKind_ENVELOPE_KIND_REQUEST {
		t.Errorf("tap opened after one closed: %v %v", s.Msg(), s.Err())
	}
}
