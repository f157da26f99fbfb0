package controlapi

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/kernel/pbconv"
)

// MaxTapBodyBytes bounds TapRequest.body_bytes.
const MaxTapBodyBytes = 4096

// Send sends the request as the operator. kernel.Send has checked what
// the client sent (sizes, metadata's UTF-8, the timeout) and answers with
// the request as delivered when no response is expected (of which only
// its id and kind are read here: the receiver owns the rest), with the
// response when one came, or with the failed request's error message and
// its *kernel.SendError. The client gets the request's id in every case,
// and the response and its blob only when a response came: a
// fire-and-forget request's own blob is not sent back.
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
	out := &weftv1.SendResponse{Id: m.ID}
	if m.Kind == kernel.KindResponse {
		out.Result = &weftv1.SendResponse_Response{Response: pbconv.Message(m).GetResponse()}
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
	// Past the node's taps_per_node this is ErrLimit: resource_exhausted.
	t, err := s.k.Tap(kernel.TapOptions{Processes: procs, BodyBytes: int(req.Msg.GetBodyBytes())})
	if err != nil {
		return err
	}
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
			if err := stream.Send(&weftv1.TapResponse{Envelope: pbconv.Envelope(e), Dropped: e.Dropped}); err != nil {
				return err
			}
		}
	}
}
