package controlapi_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/kernel"
)

// TestSendFireAndForget pins what a client gets for a request that expects
// no response (control.proto, MessageService.Send): the request's id, as
// the receiver sees it, and neither a result nor a blob. The request's
// own blob reaches the receiver and is not sent back: SendResponse.blob
// is the response's.
func TestSendFireAndForget(t *testing.T) {
	n := newNode(t, nodeOptions{})
	ctx := ctxT(t)
	inbox := kernel.ProcessId{Name: "inbox", Package: "test", Publisher: "weft-test"}
	got := make(chan *kernel.Message, 1)
	blobs := make(chan *kernel.Blob, 1)
	err := n.k.Start(kernel.Spec{ID: inbox, Public: true, Process: kernel.ProcessFunc(func(_ context.Context, h *kernel.Handle) error {
		for {
			m, err := h.Await()
			if err != nil {
				return nil
			}
			got <- m
			blobs <- h.Blob()
		}
	})})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		blob *weftv1.Blob
	}{
		{"without a blob", nil},
		{"with a blob", &weftv1.Blob{Mime: "application/octet-stream", Bytes: bytes.Repeat([]byte("b"), 64<<10)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := n.msg.Send(ctx, connect.NewRequest(&weftv1.SendRequest{
				Target:  "our@" + inbox.String(),
				Request: &weftv1.Request{Body: []byte("fire and forget")},
				Blob:    tc.blob,
			}))
			if err != nil {
				t.Fatal(err)
			}
			var m *kernel.Message
			var b *kernel.Blob
			select {
			case m = <-got:
				b = <-blobs
			case <-time.After(20 * time.Second): // a bound, not a wait
				t.Fatal("the request never arrived")
			}
			if res.Msg.GetId() == 0 || res.Msg.GetId() != m.ID {
				t.Errorf("id %d, want the id the receiver saw, %d", res.Msg.GetId(), m.ID)
			}
			if res.Msg.GetResult() != nil {
				t.Errorf("result %v, want none", res.Msg.GetResult())
			}
			if res.Msg.GetBlob() != nil {
				t.Errorf("blob of %d bytes (%s) came back, want none", len(res.Msg.GetBlob().GetBytes()), res.Msg.GetBlob().GetMime())
			}
			switch {
			case tc.blob == nil && b != nil:
				t.Errorf("the receiver got a blob %v, want none", b)
			case tc.blob != nil && (b == nil || b.Mime != tc.blob.GetMime() || !bytes.Equal(b.Bytes, tc.blob.GetBytes())):
				t.Errorf("the receiver got blob %v, want the request's", b)
			}
		})
	}

	// With a response awaited, the blob is the response's (echo sends the
	// request's back as its own) and the id is the request's.
	res, err := n.msg.Send(ctx, connect.NewRequest(&weftv1.SendRequest{
		Target:  "our@" + echoID.String(),
		Request: &weftv1.Request{Body: []byte("hi"), ExpectsResponse: durationpb.New(10 * time.Second)},
		Blob:    &weftv1.Blob{Mime: "text/plain", Bytes: []byte("round trip")},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Msg.GetId() == 0 || res.Msg.GetResponse() == nil || string(res.Msg.GetBlob().GetBytes()) != "round trip" {
		t.Errorf("response %v, want an id, the response and its blob", res.Msg)
	}
}
