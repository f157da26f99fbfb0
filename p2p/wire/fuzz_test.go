package wire_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/weftos/weft/p2p/wire"
)

// FuzzReadFrame reads arbitrary bytes, as a stream from another node
// would deliver them, with an arbitrary max: ReadFrame must never panic;
// it refuses only with io.EOF (nothing at all) or an error wrapping
// ErrTooLarge (having read no more than the prefix), ErrMalformed or
// io.ErrUnexpectedEOF; what it accepts it read exactly (prefix and body,
// no more), within max, the same one byte at a time, and it reads back
// the same after WriteFrame. The seed corpus is in
// testdata/fuzz/FuzzReadFrame.
func FuzzReadFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, max uint16) {
		r := bytes.NewReader(data)
		fr, err := wire.ReadFrame(r, int(max))
		read := len(data) - r.Len()
		if err != nil {
			if fr != nil {
				t.Fatalf("ReadFrame returned %v with %v", fr, err)
			}
			switch {
			case err == io.EOF:
				if len(data) != 0 {
					t.Fatalf("io.EOF from %d bytes", len(data))
				}
			case errors.Is(err, wire.ErrTooLarge):
				if read > 10 {
					t.Fatalf("refused as too large after reading %d bytes, more than a prefix", read)
				}
			case errors.Is(err, wire.ErrMalformed), errors.Is(err, io.ErrUnexpectedEOF):
			default:
				t.Fatalf("ReadFrame(% x): unexpected error %v", data, err)
			}
			return
		}
		size, n := protowire.ConsumeVarint(data)
		if n <= 0 || size > uint64(max) || read != n+int(size) {
			t.Fatalf("ReadFrame read %d bytes of a frame of %d (prefix %d) at max %d", read, size, n, max)
		}
		slow, err := wire.ReadFrame(iotest.OneByteReader(bytes.NewReader(data)), int(max))
		if err != nil || !proto.Equal(slow, fr) {
			t.Fatalf("one byte at a time: %v, %v; want %v", slow, err, fr)
		}
		var buf bytes.Buffer
		if err := wire.WriteFrame(&buf, fr, int(max)); err != nil {
			t.Fatalf("WriteFrame of what ReadFrame accepted: %v", err)
		}
		again, err := wire.ReadFrame(&buf, int(max))
		if err != nil || !proto.Equal(again, fr) || buf.Len() != 0 {
			t.Fatalf("read back: %v, %v, %d bytes left; want %v", again, err, buf.Len(), fr)
		}
	})
}
