package pbconv_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/kernel/pbconv"
)

func TestEnvelope(t *testing.T) {
	at := time.Date(2025, 5, 1, 12, 0, 0, 7, time.UTC)
	src, dst := addr(t, "our@operator:sys:weft"), addr(t, alice)
	for _, tc := range []struct {
		name string
		in   kernel.Envelope
		want *weftv1.Envelope
	}{
		{"request", kernel.Envelope{
			Time: at, ID: 7, Kind: kernel.KindRequest, Source: src, Target: dst,
			ExpectsResponse: 2 * time.Second, Inherit: true, BodyLen: 100, Body: []byte("ping"),
			Metadata: "m", Capabilities: 2, BlobMime: "text/plain", BlobLen: 4, Dropped: 9,
			// Only an error's kind and detail are reported.
			ErrorKind: kernel.ErrKilled, ErrorDetail: "not an error",
		}, &weftv1.Envelope{
			Time: timestamppb.New(at), Id: 7, Kind: weftv1.EnvelopeKind_ENVELOPE_KIND_REQUEST,
			Source: src.String(), Target: dst.String(), ExpectsResponse: durationpb.New(2 * time.Second),
			Inherit: true, BodySize: 100, Body: []byte("ping"), Metadata: proto.String("m"),
			Capabilities: 2, BlobMime: "text/plain", BlobSize: 4,
		}},
		{"error", kernel.Envelope{
			Time: at, ID: 8, Kind: kernel.KindError, Source: dst, Target: src,
			ErrorKind: kernel.ErrTimeout, ErrorDetail: "no response in 2s",
		}, &weftv1.Envelope{
			Time: timestamppb.New(at), Id: 8, Kind: weftv1.EnvelopeKind_ENVELOPE_KIND_ERROR,
			Source: dst.String(), Target: src.String(),
			ErrorKind: weftv1.SendErrorKind_SEND_ERROR_KIND_TIMEOUT, ErrorDetail: "no response in 2s",
		}},
		{"sizes the kernel never gives", kernel.Envelope{
			Time: at, Kind: kernel.KindResponse, Source: dst, Target: src,
			ExpectsResponse: -time.Second, BodyLen: -1, Capabilities: -2, BlobLen: -3,
		}, &weftv1.Envelope{
			Time: timestamppb.New(at), Kind: weftv1.EnvelopeKind_ENVELOPE_KIND_RESPONSE,
			Source: dst.String(), Target: src.String(),
		}},
		{"metadata that is not UTF-8", kernel.Envelope{
			Time: at, Kind: 0, Source: dst, Target: src, Metadata: "a\xffb",
		}, &weftv1.Envelope{
			Time: timestamppb.New(at), Source: dst.String(), Target: src.String(), Metadata: proto.String("a\uFFFDb"),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := pbconv.Envelope(tc.in)
			if !proto.Equal(got, tc.want) {
				t.Fatalf("Envelope = %v\nwant %v", got, tc.want)
			}
			if _, err := proto.Marshal(got); err != nil {
				t.Errorf("marshal: %v", err)
			}
		})
	}
}

func TestUnsignedCapability(t *testing.T) {
	c := kernel.Capability{Issuer: addr(t, alice), Params: `{"a":1}`}
	got := pbconv.UnsignedCapability(c)
	if want := (&weftv1.Capability{Issuer: alice, Params: `{"a":1}`}); !proto.Equal(got, want) {
		t.Errorf("UnsignedCapability = %v, want %v", got, want)
	}
	back, err := pbconv.CapabilityRef(got)
	if err != nil || back != c {
		t.Errorf("CapabilityRef(UnsignedCapability(c)) = %v, %v; want %v", back, err, c)
	}
}

// The kernel refuses metadata that is not UTF-8; a message that holds some
// all the same still converts to one that marshals.
func TestMessageMetadataNotUTF8(t *testing.T) {
	src, dst := addr(t, "our@operator:sys:weft"), addr(t, alice)
	m := mk(kernel.Message{ID: 1, Kind: kernel.KindResponse, Metadata: "\xff"}, dst, src, nil)
	got := pbconv.Message(m)
	if md := got.GetResponse().GetMetadata(); md != "\uFFFD" {
		t.Errorf("metadata %q, want U+FFFD", md)
	}
	if _, err := proto.Marshal(got); err != nil {
		t.Errorf("marshal: %v", err)
	}
}
