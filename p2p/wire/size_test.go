package wire_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weftos/weft/api/p2pv1"
	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/kernel/pbconv"
	"github.com/weftos/weft/p2p/wire"
)

// longest returns the longest address on node seed's id.
func longest(t *testing.T, seed byte) kernel.Address {
	t.Helper()
	a := kernel.Address{Node: nodeID(seed), Process: kernel.ProcessId{
		Name:      strings.Repeat("n", kernel.MaxNameLen),
		Package:   strings.Repeat("p", kernel.MaxNameLen),
		Publisher: strings.Repeat("q", kernel.MaxPublisherLen),
	}}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(a.String()) != wire.MaxAddressBytes {
		t.Fatalf("longest address is %d bytes, MaxAddressBytes %d", len(a.String()), wire.MaxAddressBytes)
	}
	return a
}

// largest holds, for one set of limits, the largest message of each kind
// of frame and knobs to make one field one byte longer.
type largest struct {
	lim       kernel.Limits
	src, dst  kernel.Address
	mimeBytes int // the blob's split between mime and bytes
}

func newLargest(t *testing.T, lim kernel.Limits) *largest {
	l := &largest{lim: lim.WithDefaults(), src: longest(t, 1), dst: longest(t, 2)}
	// Find, by encoding them, the split of the blob's bytes between mime
	// and bytes that encodes longest: every mime length where its varint
	// prefix grows, and none or all.
	total := l.lim.MaxBlobBytes
	best := -1
	for _, m := range []int{0, 1, 1 << 7, 1 << 14, 1 << 21, 1 << 28, total} {
		if m > total {
			continue
		}
		size := proto.Size(&weftv1.Blob{Mime: strings.Repeat("m", m), Bytes: make([]byte, total-m)})
		if size > best {
			best, l.mimeBytes = size, m
		}
	}
	return l
}

func (l *largest) capability(issuer kernel.Address, params int) kernel.SignedCapability {
	return kernel.SignedCapability{
		Capability: kernel.Capability{Issuer: issuer, Params: strings.Repeat("x", params)},
		Signature:  bytes.Repeat([]byte{0xee}, ed25519.SignatureSize),
	}
}

// request is the largest request, with extra bytes in the body, metadata,
// blob and the last capability's params.
func (l *largest) request(extraBody, extraMetadata, extraBlob, extraParams int) *kernel.RemoteMessage {
	caps := make([]kernel.SignedCapability, l.lim.MaxMessageCapabilities)
	for i := range caps {
		caps[i] = l.capability(l.dst, l.lim.MaxCapabilityParamsBytes)
	}
	caps[len(caps)-1] = l.capability(l.dst, l.lim.MaxCapabilityParamsBytes+extraParams)
	messaging := l.capability(l.dst, l.lim.MaxCapabilityParamsBytes)
	return &kernel.RemoteMessage{
		Kind: kernel.KindRequest, ID: math.MaxUint64, Source: l.src, Target: l.dst,
		Inherit: true, ExpectsResponse: time.Duration(math.MaxInt64),
		Body:         make([]byte, l.lim.MaxBodyBytes+extraBody),
		Metadata:     strings.Repeat("d", l.lim.MaxMetadataBytes+extraMetadata),
		Capabilities: caps,
		Messaging:    &messaging,
		Blob: &kernel.Blob{
			Mime:  strings.Repeat("m", l.mimeBytes),
			Bytes: make([]byte, l.lim.MaxBlobBytes-l.mimeBytes+extraBlob),
		},
	}
}

func (l *largest) errorMessage() *kernel.RemoteMessage {
	return &kernel.RemoteMessage{
		Kind: kernel.KindError, ID: math.MaxUint64, Source: l.dst, Target: l.src,
		Error: &kernel.SendError{Kind: kernel.ErrTooLarge, Target: l.dst, Detail: strings.Repeat("e", p2pv1.MaxErrorDetailBytes)},
	}
}

func (l *largest) revocation() kernel.SignedCapability {
	return l.capability(l.dst, l.lim.MaxCapabilityParamsBytes)
}

func frameSize(t *testing.T, m *kernel.RemoteMessage) int {
	t.Helper()
	f, err := pbconv.RemoteFrame(m)
	if err != nil {
		t.Fatal(err)
	}
	return proto.Size(f)
}

// TestMaxFrameBytes holds MaxFrameBytes to its word: the largest message
// within the limits makes a frame of exactly that many bytes, and one
// byte more in any field makes it longer. Limits are chosen around the
// lengths where a varint grows, and small enough that the error or the
// revocation is the largest frame.
func TestMaxFrameBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		lim  kernel.Limits
	}{
		{"defaults", kernel.DefaultLimits()},
		{"smallest", kernel.Limits{MaxBodyBytes: 1, MaxMetadataBytes: 1, MaxBlobBytes: 1, MaxMessageCapabilities: 1, MaxCapabilityParamsBytes: 1}},
		{"varint edges below", kernel.Limits{MaxBodyBytes: 127, MaxMetadataBytes: 16383, MaxBlobBytes: 128, MaxMessageCapabilities: 2, MaxCapabilityParamsBytes: 16383 - 600}},
		{"varint edges above", kernel.Limits{MaxBodyBytes: 128, MaxMetadataBytes: 16384, MaxBlobBytes: 1<<14 + 1<<7, MaxMessageCapabilities: 3, MaxCapabilityParamsBytes: 1 << 14}},
		{"a blob split both ways", kernel.Limits{MaxBlobBytes: 2<<21 + 5, MaxBodyBytes: 1 << 21}},
		{"large params", kernel.Limits{MaxBodyBytes: 1, MaxMetadataBytes: 1, MaxBlobBytes: 1, MaxMessageCapabilities: 1, MaxCapabilityParamsBytes: 1 << 16}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLargest(t, tc.lim)
			bound := wire.MaxFrameBytes(tc.lim)

			request := frameSize(t, l.request(0, 0, 0, 0))
			errorSize := frameSize(t, l.errorMessage())
			rf, err := pbconv.RevocationFrame(l.revocation())
			if err != nil {
				t.Fatal(err)
			}
			revocation := proto.Size(rf)
			if got := maxOf(request, errorSize, revocation); got != bound {
				t.Fatalf("largest frames: request %d, error %d, revocation %d bytes; MaxFrameBytes %d", request, errorSize, revocation, bound)
			}

			for _, more := range []struct {
				field string
				m     *kernel.RemoteMessage
			}{
				{"body", l.request(1, 0, 0, 0)},
				{"metadata", l.request(0, 1, 0, 0)},
				{"blob", l.request(0, 0, 1, 0)},
				{"params", l.request(0, 0, 0, 1)},
			} {
				if size := frameSize(t, more.m); size <= request {
					t.Errorf("one byte more in the %s: %d bytes, not more than %d", more.field, size, request)
				} else if request == bound {
					// The largest frame is a request: one byte more does
					// not fit.
					f, _ := pbconv.RemoteFrame(more.m)
					if err := wire.WriteFrame(&bytes.Buffer{}, f, bound); !errors.Is(err, wire.ErrTooLarge) {
						t.Errorf("one byte more in the %s: WriteFrame %v, want ErrTooLarge", more.field, err)
					}
				}
			}
		})
	}
}

func maxOf(v ...int) int {
	m := v[0]
	for _, x := range v[1:] {
		m = max(m, x)
	}
	return m
}

// TestMaxFrameBytesDefault: a zero limit is the kernel's default, and the
// default frame bound is what the docs can quote.
func TestMaxFrameBytesDefault(t *testing.T) {
	def := wire.MaxFrameBytes(kernel.DefaultLimits())
	if got := wire.MaxFrameBytes(kernel.Limits{}); got != def {
		t.Errorf("MaxFrameBytes(zero limits) = %d, MaxFrameBytes(defaults) = %d", got, def)
	}
	// 1 MiB body, 64 KiB metadata, 16 MiB blob, 65 capabilities (64
	// attached and the messaging one) of 4 KiB params, an issuer and a
	// signature each, the source and target, and the tags and lengths:
	// at most 16 bytes a capability and 200 besides.
	lower := 1<<20 + 64<<10 + 16<<20 + 65*(4<<10+wire.MaxAddressBytes+ed25519.SignatureSize) + 2*wire.MaxAddressBytes
	if def < lower || def > lower+65*16+200 {
		t.Errorf("MaxFrameBytes(defaults) = %d, want a little over %d", def, lower)
	}
}

func TestMaxFrameBytesSaturates(t *testing.T) {
	huge := kernel.Limits{MaxBodyBytes: math.MaxInt, MaxBlobBytes: math.MaxInt, MaxMessageCapabilities: math.MaxInt, MaxCapabilityParamsBytes: math.MaxInt}
	if got := wire.MaxFrameBytes(huge); got != math.MaxInt {
		t.Errorf("MaxFrameBytes(huge) = %d, want the largest int", got)
	}
	// Negative limits count as none of the field.
	neg := kernel.Limits{MaxBodyBytes: -1, MaxMetadataBytes: -1, MaxBlobBytes: -1, MaxMessageCapabilities: -1, MaxCapabilityParamsBytes: -1}
	one := kernel.Limits{MaxBodyBytes: 1, MaxMetadataBytes: 1, MaxBlobBytes: 1, MaxMessageCapabilities: 1, MaxCapabilityParamsBytes: 1}
	if n, o := wire.MaxFrameBytes(neg), wire.MaxFrameBytes(one); n <= 0 || n > o {
		t.Errorf("MaxFrameBytes(negative) = %d, want at most MaxFrameBytes(ones) = %d", n, o)
	}
}
