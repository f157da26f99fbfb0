package wire_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/weftos/weft/api/p2pv1"
	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/p2p/wire"
)

// nodeID returns the node id of the Ed25519 key made from seed.
func nodeID(seed byte) string {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	return identity.NodeID(priv.Public().(ed25519.PublicKey))
}

var (
	aChat = nodeID(1) + "@chat:chat:alice.os"
	bChat = nodeID(2) + "@chat:chat:alice.os"
)

// request returns a request frame with a body of n bytes.
func request(id uint64, n int) *p2pv1.Frame {
	return &p2pv1.Frame{Kind: &p2pv1.Frame_Delivery{Delivery: &p2pv1.Delivery{Message: &weftv1.Message{
		Id: id, Source: aChat, Target: bChat,
		Kind: &weftv1.Message_Request{Request: &weftv1.Request{Body: bytes.Repeat([]byte{'b'}, n)}},
	}}}}
}

func revocation() *p2pv1.Frame {
	return &p2pv1.Frame{Kind: &p2pv1.Frame_Revocation{Revocation: &p2pv1.Revocation{Capability: &weftv1.Capability{
		Issuer: bChat, Params: `"messaging"`, Signature: make([]byte, ed25519.SignatureSize),
	}}}}
}

// encode returns f as WriteFrame writes it.
func encode(t testing.TB, f *p2pv1.Frame) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := wire.WriteFrame(&buf, f, 1<<30); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// frames is a stream of frames of several sizes, prefixes of one, two and
// three bytes among them.
func frames() []*p2pv1.Frame {
	return []*p2pv1.Frame{request(1, 0), revocation(), {}, request(2, 200), request(3, 20000), request(1<<64-1, 1)}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"one byte at a time", iotest.OneByteReader},
		{"half at a time", iotest.HalfReader},
		{"error with the last bytes", iotest.DataErrReader},
		// Not an io.ByteReader: the prefix is read with Read.
		{"plain reader", func(r io.Reader) io.Reader { return struct{ io.Reader }{r} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stream bytes.Buffer
			for _, f := range frames() {
				if err := wire.WriteFrame(&stream, f, 1<<20); err != nil {
					t.Fatal(err)
				}
			}
			r := tc.wrap(&stream)
			for i, want := range frames() {
				got, err := wire.ReadFrame(r, 1<<20)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !proto.Equal(got, want) {
					t.Fatalf("frame %d = %v\nwant %v", i, got, want)
				}
			}
			if f, err := wire.ReadFrame(r, 1<<20); err != io.EOF || f != nil {
				t.Errorf("after the last frame: %v, %v; want nil, io.EOF", f, err)
			}
		})
	}
}

func TestWriteFrameLayout(t *testing.T) {
	f := request(7, 300)
	body, err := proto.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	want := protowire.AppendVarint(nil, uint64(len(body)))
	want = append(want, body...)
	if got := encode(t, f); !bytes.Equal(got, want) {
		t.Errorf("WriteFrame wrote % x\nwant % x", got, want)
	}
	// An empty frame is its prefix alone.
	if got := encode(t, &p2pv1.Frame{}); !bytes.Equal(got, []byte{0}) {
		t.Errorf("empty frame written as % x", got)
	}
}

// TestWriteFrameOneWrite: a frame goes out in one Write, so frames from
// several writers on one stream (each under its own lock) never mix.
func TestWriteFrameOneWrite(t *testing.T) {
	w := &countingWriter{}
	if err := wire.WriteFrame(w, request(1, 100000), 1<<20); err != nil {
		t.Fatal(err)
	}
	if w.writes != 1 {
		t.Errorf("%d writes, want 1", w.writes)
	}
}

type countingWriter struct{ writes int }

func (w *countingWriter) Write(p []byte) (int, error) { w.writes++; return len(p), nil }

func TestAppendFrame(t *testing.T) {
	prefix := []byte("before")
	got, err := wire.AppendFrame(prefix, request(1, 10), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if want := append([]byte("before"), encode(t, request(1, 10))...); !bytes.Equal(got, want) {
		t.Errorf("AppendFrame = % x\nwant % x", got, want)
	}
	got, err = wire.AppendFrame(prefix, request(1, 10), 10)
	if !errors.Is(err, wire.ErrTooLarge) || !bytes.Equal(got, prefix) {
		t.Errorf("AppendFrame over max = % x, %v; want the input and ErrTooLarge", got, err)
	}
}

func TestTooLarge(t *testing.T) {
	f := request(1, 1000)
	data := encode(t, f)
	size := proto.Size(f)
	wantText := func(t *testing.T, err error, max int) {
		t.Helper()
		if !errors.Is(err, wire.ErrTooLarge) {
			t.Fatalf("error %v, want one wrapping ErrTooLarge", err)
		}
		if want := "wire: frame of " + strconv.Itoa(size) + " bytes, at most " + strconv.Itoa(max) + " allowed: frame too large"; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	}
	for _, max := range []int{size - 1, 0, -1} {
		var out bytes.Buffer
		err := wire.WriteFrame(&out, f, max)
		wantText(t, err, max)
		if out.Len() != 0 {
			t.Errorf("max %d: WriteFrame wrote %d bytes with the error", max, out.Len())
		}

		r := bytes.NewReader(data)
		got, err := wire.ReadFrame(r, max)
		if got != nil {
			t.Errorf("max %d: ReadFrame returned %v with the error", max, got)
		}
		wantText(t, err, max)
		// Refused before the body: only the prefix was read.
		if r.Len() != size {
			t.Errorf("max %d: ReadFrame read %d bytes of the body before refusing it", max, size-r.Len())
		}
	}
	// At exactly max, the frame passes both ways.
	if err := wire.WriteFrame(io.Discard, f, size); err != nil {
		t.Errorf("WriteFrame at max: %v", err)
	}
	if _, err := wire.ReadFrame(bytes.NewReader(data), size); err != nil {
		t.Errorf("ReadFrame at max: %v", err)
	}
}

// TestMaxZero: with a max of 0 only the empty frame passes, and the
// pbconv layer refuses it.
func TestMaxZero(t *testing.T) {
	var out bytes.Buffer
	if err := wire.WriteFrame(&out, &p2pv1.Frame{}, 0); err != nil {
		t.Fatalf("WriteFrame of an empty frame at max 0: %v", err)
	}
	f, err := wire.ReadFrame(&out, 0)
	if err != nil || !proto.Equal(f, &p2pv1.Frame{}) {
		t.Fatalf("ReadFrame at max 0 = %v, %v", f, err)
	}
	if _, err := wire.ReadFrame(bytes.NewReader([]byte{1, 0}), 0); !errors.Is(err, wire.ErrTooLarge) {
		t.Errorf("ReadFrame of a 1-byte frame at max 0: %v, want ErrTooLarge", err)
	}
}

func TestPrefix(t *testing.T) {
	ff := bytes.Repeat([]byte{0xff}, 9)
	for _, tc := range []struct {
		name    string
		in      []byte
		is      error
		message string
	}{
		{"largest 64-bit length", append(ff, 0x01), wire.ErrTooLarge, "wire: frame of 18446744073709551615 bytes, at most 1048576 allowed: frame too large"},
		{"65 bits", append(ff, 0x02), wire.ErrMalformed, "wire: length prefix overflows 64 bits: malformed frame"},
		{"ten bytes and more", append(ff, 0xff, 0x01), wire.ErrMalformed, "wire: length prefix overflows 64 bits: malformed frame"},
		{"zero in two bytes", []byte{0x80, 0x00}, wire.ErrMalformed, "wire: length prefix of 2 bytes is not in its shortest form: malformed frame"},
		{"one in ten bytes", append(bytes.Repeat([]byte{0x80}, 9), 0x00), wire.ErrMalformed, "wire: length prefix of 10 bytes is not in its shortest form: malformed frame"},
		{"cut inside", []byte{0x80, 0x80}, io.ErrUnexpectedEOF, "wire: read length prefix: unexpected EOF"},
		{"cut after one byte", []byte{0xff}, io.ErrUnexpectedEOF, "wire: read length prefix: unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := wire.ReadFrame(bytes.NewReader(tc.in), 1<<20)
			if f != nil || !errors.Is(err, tc.is) || err.Error() != tc.message {
				t.Errorf("ReadFrame = %v, %v; want nil and %q", f, err, tc.message)
			}
		})
	}
}

// TestTruncated cuts a stream of two frames at every byte: at a frame's
// start the stream ends cleanly (io.EOF), anywhere else inside a frame it
// is cut short (io.ErrUnexpectedEOF).
func TestTruncated(t *testing.T) {
	first, second := encode(t, request(1, 200)), encode(t, revocation())
	data := append(append([]byte{}, first...), second...)
	for cut := 0; cut < len(data); cut++ {
		r := iotest.OneByteReader(bytes.NewReader(data[:cut]))
		var err error
		var n int
		for err == nil {
			_, err = wire.ReadFrame(r, 1<<20)
			if err == nil {
				n++
			}
		}
		atStart := cut == 0 || cut == len(first)
		switch {
		case atStart && err != io.EOF:
			t.Errorf("cut at %d, a frame's start: %v after %d frames, want io.EOF", cut, err, n)
		case !atStart && !errors.Is(err, io.ErrUnexpectedEOF):
			t.Errorf("cut at %d, inside a frame: %v, want io.ErrUnexpectedEOF", cut, err)
		}
		wantN := 0
		if cut >= len(first) {
			wantN = 1
		}
		if n != wantN {
			t.Errorf("cut at %d: %d whole frames read, want %d", cut, n, wantN)
		}
	}
	_, err := wire.ReadFrame(bytes.NewReader(first[:len(first)-1]), 1<<20)
	size := proto.Size(request(1, 200))
	if want := "wire: frame of " + strconv.Itoa(size) + " bytes ends after " + strconv.Itoa(size-1) + ": unexpected EOF"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

func TestMalformedBody(t *testing.T) {
	for _, body := range [][]byte{
		{0xff, 0xff},       // a tag of field 0x3fff with a wire type that does not exist
		{0x0a, 0x05, 0x01}, // a delivery of 5 bytes holding 1
		{0x12, 0x03, 0x0a, 0x01, 0xff},
	} {
		data := append(protowire.AppendVarint(nil, uint64(len(body))), body...)
		f, err := wire.ReadFrame(bytes.NewReader(data), 1<<20)
		if f != nil || !errors.Is(err, wire.ErrMalformed) || !strings.HasPrefix(err.Error(), "wire: frame of "+strconv.Itoa(len(body))+" bytes: malformed frame: ") {
			t.Errorf("ReadFrame(% x) = %v, %v; want ErrMalformed", data, f, err)
		}
	}
}

func TestReaderError(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		r    io.Reader
	}{
		{"in the prefix", iotest.ErrReader(boom)},
		{"in the body", io.MultiReader(bytes.NewReader(encode(t, request(1, 100))[:50]), iotest.ErrReader(boom))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := wire.ReadFrame(tc.r, 1<<20); !errors.Is(err, boom) {
				t.Errorf("ReadFrame: %v, want it to wrap the reader's error", err)
			}
		})
	}
}

func TestWriteFrameErrors(t *testing.T) {
	boom := errors.New("boom")
	if err := wire.WriteFrame(failingWriter{boom}, request(1, 1), 1<<20); !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "wire: write frame of ") {
		t.Errorf("WriteFrame to a failing writer: %v", err)
	}
	// Strings must be UTF-8; a frame with one that is not does not marshal.
	bad := request(1, 1)
	bad.GetDelivery().GetMessage().Source = "\xff"
	var out bytes.Buffer
	if err := wire.WriteFrame(&out, bad, 1<<20); err == nil || !strings.HasPrefix(err.Error(), "wire: marshal frame: ") || out.Len() != 0 {
		t.Errorf("WriteFrame of a frame that does not marshal: %v, %d bytes written", err, out.Len())
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

// TestReadAllocatesAsBytesArrive: a peer that declares a large frame and
// sends little of it does not make ReadFrame allocate the whole length.
func TestReadAllocatesAsBytesArrive(t *testing.T) {
	const declared = 8 << 20
	r := &recordingReader{r: bytes.NewReader(append(protowire.AppendVarint(nil, declared), make([]byte, 100)...))}
	if _, err := wire.ReadFrame(r, 16<<20); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("ReadFrame: %v, want io.ErrUnexpectedEOF", err)
	}
	if r.largest > 64<<10 {
		t.Errorf("ReadFrame read into a buffer of %d bytes having read 100", r.largest)
	}
	// A whole large frame is read all the same.
	big := request(1, 3<<20)
	got, err := wire.ReadFrame(iotest.HalfReader(bytes.NewReader(encode(t, big))), 4<<20)
	if err != nil || !proto.Equal(got, big) {
		t.Errorf("ReadFrame of a 3 MiB frame: %v", err)
	}
}

type recordingReader struct {
	r       io.Reader
	largest int
}

func (r *recordingReader) Read(p []byte) (int, error) {
	r.largest = max(r.largest, len(p))
	return r.r.Read(p)
}
