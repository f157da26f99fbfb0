// Package wire owns the framing of node-to-node messages on a stream: each
// p2pv1.Frame (api/proto/weft/p2p/v1/wire.proto) is written as an unsigned
// varint of its length in bytes, then its protobuf encoding; and the
// largest frame a message within the kernel's limits can make
// (MaxFrameBytes), which bounds what a node sends and reads. Converting a
// frame to and from the kernel's types is kernel/pbconv's, the protocol id
// api/p2pv1's, streams and peers p2p's.
package wire

import (
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/weftos/weft/api/p2pv1"
)

// ErrTooLarge is wrapped by the refusal of a frame longer than the max
// given to WriteFrame or ReadFrame; the error's text says both numbers.
var ErrTooLarge = errors.New("frame too large")

// ErrMalformed is wrapped by ReadFrame's refusal of bytes that are not a
// frame: a length prefix that is not a varint of at most 64 bits in its
// shortest form, or a body that is not a Frame's protobuf encoding.
var ErrMalformed = errors.New("malformed frame")

// maxPrefixBytes is the length of the longest varint, 64 bits in 7-bit
// groups.
const maxPrefixBytes = 10

// readChunk bounds what ReadFrame allocates ahead of the bytes it has
// read, so that a peer declaring a large frame and sending none of it
// costs little.
const readChunk = 64 << 10

// WriteFrame writes f to w, its length prefix and its body in one Write.
// max bounds the length of f's encoding (not counting the prefix); a
// longer f is refused with an error wrapping ErrTooLarge and nothing is
// written. A frame that does not marshal (a string that is not UTF-8, say)
// is refused the same way, wrapped. Errors from w are returned wrapped.
func WriteFrame(w io.Writer, f *p2pv1.Frame, max int) error {
	b, err := AppendFrame(nil, f, max)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("wire: write frame of %d bytes: %w", len(b), err)
	}
	return nil
}

// AppendFrame appends f as WriteFrame writes it to b, and returns the
// extended slice; it fails as WriteFrame does, leaving b as it was.
func AppendFrame(b []byte, f *p2pv1.Frame, max int) ([]byte, error) {
	size := proto.Size(f)
	if size > max {
		return b, tooLarge(uint64(size), max)
	}
	start := len(b)
	out := protowire.AppendVarint(b, uint64(size))
	out, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(out, f)
	if err != nil {
		return b[:start], fmt.Errorf("wire: marshal frame: %w", err)
	}
	if got := len(out) - start - protowire.SizeVarint(uint64(size)); got != size {
		// Only a frame changed while it was being written gets here.
		return b[:start], fmt.Errorf("wire: frame marshalled to %d bytes, not the %d it measured", got, size)
	}
	return out, nil
}

// ReadFrame reads one frame from r: exactly its length prefix and its
// body, never a byte more, so that r is left at the next frame. A length
// over max is refused (an error wrapping ErrTooLarge) before any of the
// body is read; the stream is then out of step and should be closed. It
// returns io.EOF, unwrapped, when r ends before the first byte of a frame;
// an error wrapping io.ErrUnexpectedEOF when it ends inside one; and an
// error wrapping ErrMalformed for bytes that are not a frame. Other errors
// from r are returned wrapped.
//
// ReadFrame does not look past the frame: a stream carries frames one
// after another, and what follows a frame is the caller's to read (the
// next frame) or refuse. Nor does it judge the frame's fields:
// kernel/pbconv.FromRemoteFrame does. The prefix is read a byte at a time
// (with ReadByte when r is an io.ByteReader), so a Read on r should be
// cheap: a libp2p stream's copies from the stream's receive buffer. Memory is allocated as the body arrives, in steps of
// at most 64 KiB beyond what was read, never up front for a declared
// length.
func ReadFrame(r io.Reader, max int) (*p2pv1.Frame, error) {
	size, err := readPrefix(r)
	if err != nil {
		return nil, err
	}
	if max < 0 || size > uint64(max) {
		return nil, tooLarge(size, max)
	}
	body, err := readBody(r, int(size))
	if err != nil {
		return nil, err
	}
	f := new(p2pv1.Frame)
	if err := proto.Unmarshal(body, f); err != nil {
		return nil, fmt.Errorf("wire: frame of %d bytes: %w: %w", size, ErrMalformed, err)
	}
	return f, nil
}

func tooLarge(size uint64, max int) error {
	return fmt.Errorf("wire: frame of %d bytes, at most %d allowed: %w", size, max, ErrTooLarge)
}

// readPrefix reads a varint of at most 64 bits in its shortest form.
func readPrefix(r io.Reader) (uint64, error) {
	var one [1]byte
	next := func() (byte, error) {
		if br, ok := r.(io.ByteReader); ok {
			return br.ReadByte()
		}
		for {
			n, err := r.Read(one[:])
			if n == 1 {
				return one[0], nil
			}
			if err != nil {
				return 0, err
			}
			// A Read of nothing and no error: ask again, as io.ReadFull does.
		}
	}
	var v uint64
	for i := 0; ; i++ {
		c, err := next()
		if err != nil {
			if i == 0 && err == io.EOF {
				return 0, io.EOF
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("wire: read length prefix: %w", err)
		}
		if i == maxPrefixBytes-1 && c > 1 {
			return 0, fmt.Errorf("wire: length prefix overflows 64 bits: %w", ErrMalformed)
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if c == 0 && i > 0 {
				return 0, fmt.Errorf("wire: length prefix of %d bytes is not in its shortest form: %w", i+1, ErrMalformed)
			}
			return v, nil
		}
	}
}

// readBody reads exactly size bytes, allocating as they arrive.
func readBody(r io.Reader, size int) ([]byte, error) {
	buf := make([]byte, 0, min(size, readChunk))
	for len(buf) < size {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(size, 2*cap(buf)))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil && len(buf) < size {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("wire: frame of %d bytes ends after %d: %w", size, len(buf), err)
		}
	}
	return buf, nil
}
