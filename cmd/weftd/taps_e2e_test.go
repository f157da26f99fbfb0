package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/api/weftv1/weftv1connect"
)

// TestStalledTaps is issue 12's stalled taps against the real node: Tap
// streams up to taps_per_node that never read, over HTTP/2 on the Unix
// socket. The next Tap is refused with resource_exhausted, from a Connect
// client and from `weft tap`; echo is answered all along; a stalled tap
// that is read again is told how many envelopes it lost; and a stalled
// tap whose client goes away makes room for another.
func TestStalledTaps(t *testing.T) {
	const limit = 4
	n := startNode(t, t.TempDir(), "--install", exampleDir(t, "echo"), "--limit", fmt.Sprintf("taps_per_node=%d", limit))
	taps := weftv1connect.NewMessageServiceClient(tapHTTPClient(n.sock, true), "http://weftd")
	c := weftv1connect.NewMessageServiceClient(unixClient(n.sock), "http://weftd")
	// open opens a tap and takes its first envelope, of an echo it asks
	// for: over the Connect protocol a refused stream says so only there.
	open := func(ctx context.Context) (*connect.ServerStreamForClient[weftv1.TapResponse], error) {
		s, err := taps.Tap(ctx, connect.NewRequest(&weftv1.TapRequest{}))
		if err != nil {
			return nil, err
		}
		s.ResponseHeader() // headers once the tap is open, or the call's end
		if err := askEcho(ctx, c); err != nil {
			s.Close()
			return nil, err
		}
		if !s.Receive() {
			s.Close()
			return nil, fmt.Errorf("tap: %w", s.Err())
		}
		return s, nil
	}
	var streams []*connect.ServerStreamForClient[weftv1.TapResponse]
	var cancels []context.CancelFunc
	for range limit {
		ctx, cancel := context.WithCancel(t.Context())
		t.Cleanup(cancel)
		s, err := open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		streams, cancels = append(streams, s), append(cancels, cancel)
	}

	// One more: refused, to a Connect client and to the CLI.
	ctx, cancel := context.WithTimeout(t.Context(), failAfter)
	defer cancel()
	if _, err := open(ctx); connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "taps_per_node") {
		t.Fatalf("tap past taps_per_node=%d: %v, want resource_exhausted naming taps_per_node", limit, err)
	}
	_, stderr, code := n.weft(t, "tap")
	if code == 0 || !strings.Contains(stderr, "resource_exhausted") || !strings.Contains(stderr, fmt.Sprintf("%d taps are open on this node (taps_per_node)", limit)) {
		t.Fatalf("weft tap past the limit: exit %d, stderr %q; want a failure naming taps_per_node", code, stderr)
	}

	// Echo through taps that fill and stall: more envelopes than their
	// streams and buffers hold.
	for range 1000 {
		if err := askEcho(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if out, stderr, code := n.weft(t, "send", "our@echo:echo:examples", "hello", "--await", "5s"); code != 0 || !strings.Contains(out, "hello") {
		t.Fatalf("weft send with %d taps stalled: exit %d\n%s%s", limit, code, out, stderr)
	}

	// Read one stalled tap again while echo goes on: past what it held
	// comes an envelope that counts what it lost.
	echoing, stopEcho := context.WithCancel(ctx)
	var echoes sync.WaitGroup
	echoes.Go(func() {
		for echoing.Err() == nil {
			if err := askEcho(echoing, c); err != nil && echoing.Err() == nil {
				t.Error(err)
				return
			}
		}
	})
	var dropped uint64
	for dropped == 0 && streams[0].Receive() {
		dropped = streams[0].Msg().GetDropped()
	}
	stopEcho()
	echoes.Wait()
	if dropped == 0 {
		t.Fatalf("the stalled tap ended without telling of its losses: %v", streams[0].Err())
	}

	// A stalled tap whose client goes away is closed: another opens.
	cancels[1]()
	streams[1].Close()
	retry := time.NewTicker(5 * time.Millisecond)
	defer retry.Stop()
	for {
		s, err := open(ctx)
		if err == nil {
			s.Close()
			break
		}
		if connect.CodeOf(err) != connect.CodeResourceExhausted {
			t.Fatalf("tap after one closed: %v", err)
		}
		select { // the node has not yet seen the stream end
		case <-retry.C:
		case <-ctx.Done():
			t.Fatal("the tap of a stream that ended was never closed")
		}
	}
}

// tapHTTPClient is an HTTP/2 client on the Unix socket sock. A stalled
// one has the smallest receive windows, as a client that means to stall
// the node's writers would: a Tap stream it does not read fills in a few
// KiB.
func tapHTTPClient(sock string, stalled bool) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{
		Protocols: &p,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}
	if stalled {
		tr.HTTP2 = &http.HTTP2Config{MaxReceiveBufferPerStream: 4 << 10, MaxReceiveBufferPerConnection: 64 << 10}
	}
	return &http.Client{Transport: tr}
}

var echoRequest = &weftv1.SendRequest{
	Target:  "our@echo:echo:examples",
	Request: &weftv1.Request{Body: []byte("hello"), ExpectsResponse: durationpb.New(5 * time.Second)},
}

// askEcho asks the example echo to say hello back.
func askEcho(ctx context.Context, c weftv1connect.MessageServiceClient) error {
	resp, err := c.Send(ctx, connect.NewRequest(echoRequest))
	if err != nil {
		return fmt.Errorf("send to echo: %w", err)
	}
	if string(resp.Msg.GetResponse().GetBody()) != "hello" {
		return errors.New("echo answered " + resp.Msg.String())
	}
	return nil
}
