package pbconv

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/kernel"
)

// Envelope returns the protobuf form of an envelope a tap saw. Its
// Dropped count is not part of it (it travels beside it, in the control
// API's TapResponse); negative sizes (the kernel gives none) become zero.
// The error kind and detail are set on an error envelope only.
func Envelope(e kernel.Envelope) *weftv1.Envelope {
	out := &weftv1.Envelope{
		Time:            timestamppb.New(e.Time),
		Id:              e.ID,
		Kind:            EnvelopeKind(e.Kind),
		Source:          e.Source.String(),
		Target:          e.Target.String(),
		ExpectsResponse: durationPB(max(e.ExpectsResponse, 0)),
		Inherit:         e.Inherit,
		BodySize:        uint32(max(e.BodyLen, 0)),
		Body:            e.Body,
		Metadata:        metadata(e.Metadata),
		Capabilities:    uint32(max(e.Capabilities, 0)),
		BlobMime:        e.BlobMime,
		BlobSize:        uint32(max(e.BlobLen, 0)),
	}
	if e.Kind == kernel.KindError {
		out.ErrorKind = ErrorKind(e.ErrorKind)
		out.ErrorDetail = e.ErrorDetail
	}
	return out
}

// EnvelopeKind returns the protobuf form of a message's kind, as a tap
// reports it: ENVELOPE_KIND_UNSPECIFIED for a value that is not one of the
// kernel's kinds.
func EnvelopeKind(k kernel.Kind) weftv1.EnvelopeKind {
	switch k {
	case kernel.KindRequest:
		return weftv1.EnvelopeKind_ENVELOPE_KIND_REQUEST
	case kernel.KindResponse:
		return weftv1.EnvelopeKind_ENVELOPE_KIND_RESPONSE
	case kernel.KindError:
		return weftv1.EnvelopeKind_ENVELOPE_KIND_ERROR
	}
	return weftv1.EnvelopeKind_ENVELOPE_KIND_UNSPECIFIED
}

// FromEnvelopeKind converts a message's kind from protobuf. Unspecified
// and unknown values are refused with a *FieldError for field "kind".
func FromEnvelopeKind(k weftv1.EnvelopeKind) (kernel.Kind, error) {
	switch k {
	case weftv1.EnvelopeKind_ENVELOPE_KIND_REQUEST:
		return kernel.KindRequest, nil
	case weftv1.EnvelopeKind_ENVELOPE_KIND_RESPONSE:
		return kernel.KindResponse, nil
	case weftv1.EnvelopeKind_ENVELOPE_KIND_ERROR:
		return kernel.KindError, nil
	case weftv1.EnvelopeKind_ENVELOPE_KIND_UNSPECIFIED:
		return 0, fieldErrf("kind", "envelope kind is unspecified")
	}
	return 0, fieldErrf("kind", "unknown envelope kind %d", int32(k))
}
