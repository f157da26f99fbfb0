package wire_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/kernel/pbconv"
	"github.com/weftos/weft/p2p/wire"
)

// BenchmarkFrame is one request's trip through the wire format: a request
// with a 1 KiB body converted to a frame, written, read back and converted
// again.
func BenchmarkFrame(b *testing.B) {
	src, err := kernel.ParseAddress(aChat)
	if err != nil {
		b.Fatal(err)
	}
	dst, err := kernel.ParseAddress(bChat)
	if err != nil {
		b.Fatal(err)
	}
	m := &kernel.RemoteMessage{
		Kind: kernel.KindRequest, ID: 42, Source: src, Target: dst,
		ExpectsResponse: 5 * time.Second, Body: bytes.Repeat([]byte{'b'}, 1024),
	}
	max := wire.MaxFrameBytes(kernel.DefaultLimits())
	var stream bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		f, err := pbconv.RemoteFrame(m)
		if err != nil {
			b.Fatal(err)
		}
		if err := wire.WriteFrame(&stream, f, max); err != nil {
			b.Fatal(err)
		}
		in, err := wire.ReadFrame(&stream, max)
		if err != nil {
			b.Fatal(err)
		}
		got, _, err := pbconv.FromRemoteFrame(in)
		if err != nil {
			b.Fatal(err)
		}
		if len(got.Body) != len(m.Body) {
			b.Fatalf("body of %d bytes came back as %d", len(m.Body), len(got.Body))
		}
	}
}
