package controlapi

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/kernel/pbconv"
)

// MaxTapBodyBytes bounds TapRequest.body_bytes.
const MaxTapBodyBytes = 4096

func (s *server) Send(ctx context.Context, req *connect.Request[weftv1.SendRequest]) (*connect.Response[weftv1.SendResponse], error) {
	r, err := pbconv.ToRequest(req.Msg.GetRequest(), req.Msg.GetTarget())
	if err != nil {
		return nil, err
	}
	r.Blob = pbconv.FromBlob(req.Msg.GetBlob())
	m, err := s.k.Send(ctx, r)
	// A failed request is the call's answer, not its error.
	if se := (*kernel.SendError)(nil); errors.As(err, &se) {
		out := &weftv1.SendResponse{Result: &weftv1.SendResponse_Error{Error: pbconv.SendError(se)}}
		switch {
		case m != nil:
			out.Id = m.ID
		case se.Message != nil:
			out.Id = se.Message.ID
		}
		return connect.NewResponse(out), nil
	}
	if err != nil {
		return nil, err
	}
	out := &weftv1.SendResponse{}
	if m != nil {
		// Without expects_response the kernel does not say the id (m is
		// nil): id stays 0.
		out.Id = m.ID
		if res := pbconv.Message(m).GetResponse(); res != nil {
			// A proto3 string must be UTF-8; the kernel does not check
			// what a process puts in metadata.
			if res.Metadata != nil {
				res.Metadata = proto.String(strings.ToValidUTF8(res.GetMetadata(), "\uFFFD"))
			}
			out.Result = &weftv1.SendResponse_Response{Response: res}
		}
		out.Blob = pbconv.Blob(m.Blob)
	}
	return connect.NewResponse(out), nil
}

func (s *server) Tap(ctx context.Context, req *connect.Request[weftv1.TapRequest], stream *connect.ServerStream[weftv1.TapResponse]) error {
	var procs []kernel.ProcessId
	for i, p := range req.Msg.GetProcesses() {
		id, err := parseProcess(fmt.Sprintf("processes[%d]", i), p)
		if err != nil {
			return err
		}
		procs = append(procs, id)
	}
	if n := req.Msg.GetBodyBytes(); n > MaxTapBodyBytes {
		return field("body_bytes", fmt.Errorf("%d is over the most a tap copies, %d", n, MaxTapBodyBytes))
	}
	t := s.k.Tap(kernel.TapOptions{Processes: procs, BodyBytes: int(req.Msg.GetBodyBytes())})
	defer t.Close()
	// Send the headers now: a client that has them knows the tap is open.
	if err := stream.Send(nil); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil // the client went away
		case <-s.stopping:
			return nil
		case e := <-t.C:
			if err := stream.Send(&weftv1.TapResponse{Envelope: envelope(e), Dropped: e.Dropped}); err != nil {
				return err
			}
		}
	}
}

// envelope is the API's form of a tapped envelope. It lives here, not in
// pbconv, because Envelope is a message of the control API alone.
func envelope(e kernel.Envelope) *weftv1.Envelope {
	out := &weftv1.Envelope{
		Time:         timestamppb.New(e.Time),
		Id:           e.ID,
		Kind:         envelopeKind(e.Kind),
		Source:       pbconv.Address(e.Source),
		Target:       pbconv.Address(e.Target),
		Inherit:      e.Inherit,
		BodySize:     uint32(max(e.BodyLen, 0)),
		Body:         e.Body,
		Capabilities: uint32(max(e.Capabilities, 0)),
		BlobMime:     e.BlobMime,
		BlobSize:     uint32(max(e.BlobLen, 0)),
	}
	if e.ExpectsResponse > 0 {
		out.ExpectsResponse = durationpb.New(e.ExpectsResponse)
	}
	if e.Metadata != "" {
		out.Metadata = proto.String(strings.ToValidUTF8(e.Metadata, "\uFFFD"))
	}
	if e.Kind == kernel.KindError {
		out.ErrorKind = pbconv.ErrorKind(e.ErrorKind)
		out.ErrorDetail = e.ErrorDetail
	}
	return out
}

func envelopeKind(k kernel.Kind) weftv1.EnvelopeKind {
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
