package pbconv_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/kernel/pbconv"
)

func TestErrorKind(t *testing.T) {
	seen := make(map[weftv1.SendErrorKind]kernel.ErrorKind)
	for _, k := range kernel.ErrorKinds {
		pb := pbconv.ErrorKind(k)
		if want := "SEND_ERROR_KIND_" + strings.ToUpper(k.String()); pb.String() != want {
			t.Errorf("ErrorKind(%s) = %s, want %s", k, pb, want)
		}
		if prev, dup := seen[pb]; dup {
			t.Errorf("ErrorKind(%s) = ErrorKind(%s) = %s", k, prev, pb)
		}
		seen[pb] = k
		back, err := pbconv.FromErrorKind(pb)
		if err != nil || back != k {
			t.Errorf("FromErrorKind(ErrorKind(%s)) = %s, %v", k, back, err)
		}
	}
	// And every kind the schema has: one added there must be mapped here.
	for v, name := range weftv1.SendErrorKind_name {
		pb := weftv1.SendErrorKind(v)
		if pb == weftv1.SendErrorKind_SEND_ERROR_KIND_UNSPECIFIED {
			continue
		}
		k, err := pbconv.FromErrorKind(pb)
		if err != nil {
			t.Errorf("FromErrorKind(%s): %v", name, err)
			continue
		}
		if back := pbconv.ErrorKind(k); back != pb {
			t.Errorf("ErrorKind(FromErrorKind(%s)) = %s", name, back)
		}
	}
	if len(weftv1.SendErrorKind_name) != len(kernel.ErrorKinds)+1 {
		t.Errorf("the schema has %d send error kinds besides unspecified, the kernel %d", len(weftv1.SendErrorKind_name)-1, len(kernel.ErrorKinds))
	}
}

func TestErrorKindUnknown(t *testing.T) {
	for _, k := range []kernel.ErrorKind{0, kernel.ErrTooLarge + 1, 255} {
		if pb := pbconv.ErrorKind(k); pb != weftv1.SendErrorKind_SEND_ERROR_KIND_UNSPECIFIED {
			t.Errorf("ErrorKind(%d) = %s, want unspecified", k, pb)
		}
	}
	for _, tc := range []struct {
		in     weftv1.SendErrorKind
		substr string
	}{
		{weftv1.SendErrorKind_SEND_ERROR_KIND_UNSPECIFIED, "unspecified"},
		{8, "unknown send error kind 8"},
		{-1, "unknown send error kind -1"},
		{1 << 30, "unknown send error kind 1073741824"},
	} {
		k, err := pbconv.FromErrorKind(tc.in)
		if k != 0 {
			t.Errorf("FromErrorKind(%d) = %s with the error", tc.in, k)
		}
		wantFieldError(t, err, "kind", tc.substr)
	}
}

func TestMessage(t *testing.T) {
	src, dst := addr(t, "our@operator:sys:weft"), addr(t, remote)
	caps := []kernel.Capability{{Issuer: addr(t, alice), Params: `"messaging"`}}
	pbCaps := []*weftv1.Capability{{Issuer: alice, Params: `"messaging"`}}
	blob := &kernel.Blob{Mime: "text/plain", Bytes: []byte("blob")}
	pbBlob := &weftv1.Blob{Mime: "text/plain", Bytes: []byte("blob")}

	request := mk(kernel.Message{
		ID: 7, Kind: kernel.KindRequest, Inherit: true, ExpectsResponse: 2 * time.Second,
		Body: []byte("ping"), Metadata: "m", Capabilities: caps, Blob: blob,
	}, src, dst, nil)
	pbRequest := &weftv1.Message{
		Id: 7, Source: src.String(), Target: dst.String(),
		Kind: &weftv1.Message_Request{Request: &weftv1.Request{
			Inherit: true, ExpectsResponse: durationpb.New(2 * time.Second),
			Body: []byte("ping"), Metadata: proto.String("m"), Capabilities: pbCaps,
		}},
		Blob: pbBlob,
	}
	// A failed request that (though the kernel never makes one) carries an
	// error of its own: it is converted without it.
	nestedErr := mk(kernel.Message{
		ID: 6, Kind: kernel.KindError, Error: &kernel.SendError{Kind: kernel.ErrKilled, Target: dst, Message: request},
	}, src, dst, []byte("c6"))

	for _, tc := range []struct {
		name string
		in   *kernel.Message
		want *weftv1.Message
	}{
		{"nil", nil, nil},
		{"request", request, pbRequest},
		{"bare request", mk(kernel.Message{Kind: kernel.KindRequest}, src, dst, nil),
			&weftv1.Message{Source: src.String(), Target: dst.String(), Kind: &weftv1.Message_Request{Request: &weftv1.Request{}}}},
		{"response", mk(kernel.Message{
			ID: 7, Kind: kernel.KindResponse, Inherit: true, Body: []byte("pong"), Metadata: "r", Capabilities: caps, Blob: blob}, dst, src, []byte("ctx")), &weftv1.Message{
			Id: 7, Source: dst.String(), Target: src.String(),
			Kind: &weftv1.Message_Response{Response: &weftv1.Response{
				Inherit: true, Body: []byte("pong"), Metadata: proto.String("r"), Capabilities: pbCaps,
			}},
			Blob: pbBlob, Context: []byte("ctx"),
		}},
		{"error", mk(kernel.Message{
			ID: 7, Kind: kernel.KindError, Error: &kernel.SendError{Kind: kernel.ErrTimeout, Target: dst, Message: request, Context: []byte("ctx"), Detail: "no response in 2s"},
		}, src, src, []byte("ctx")), &weftv1.Message{
			Id: 7, Source: src.String(), Target: src.String(),
			Kind: &weftv1.Message_Error{Error: &weftv1.SendError{
				Kind: weftv1.SendErrorKind_SEND_ERROR_KIND_TIMEOUT, Target: dst.String(),
				Message: pbRequest, Context: []byte("ctx"), Detail: "no response in 2s",
			}},
			Context: []byte("ctx"),
		}},
		{"error without request", mk(kernel.Message{
			ID: 9, Kind: kernel.KindError, Error: &kernel.SendError{Kind: kernel.ErrMailboxFull, Target: dst},
		}, src, src, nil), &weftv1.Message{
			Id: 9, Source: src.String(), Target: src.String(),
			Kind: &weftv1.Message_Error{Error: &weftv1.SendError{Kind: weftv1.SendErrorKind_SEND_ERROR_KIND_MAILBOX_FULL, Target: dst.String()}},
		}},
		{"error about an error", mk(kernel.Message{
			ID: 8, Kind: kernel.KindError, Error: &kernel.SendError{Kind: kernel.ErrOffline, Target: dst, Message: nestedErr},
		}, src, src, nil), &weftv1.Message{
			Id: 8, Source: src.String(), Target: src.String(),
			Kind: &weftv1.Message_Error{Error: &weftv1.SendError{
				Kind: weftv1.SendErrorKind_SEND_ERROR_KIND_OFFLINE, Target: dst.String(),
				Message: &weftv1.Message{
					Id: 6, Source: src.String(), Target: dst.String(), Context: []byte("c6"),
					Kind: &weftv1.Message_Error{Error: &weftv1.SendError{Context: []byte("c6")}},
				},
			}},
		}},
		{"error message without its error", mk(kernel.Message{ID: 3, Kind: kernel.KindError}, src, src, nil),
			&weftv1.Message{Id: 3, Source: src.String(), Target: src.String(), Kind: &weftv1.Message_Error{Error: &weftv1.SendError{}}}},
		{"unknown kind", mk(kernel.Message{ID: 4, Kind: 0, Body: []byte("x")}, src, dst, nil),
			&weftv1.Message{Id: 4, Source: src.String(), Target: dst.String()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := pbconv.Message(tc.in)
			if !proto.Equal(got, tc.want) {
				t.Fatalf("Message = %v\nwant %v", got, tc.want)
			}
			if got == nil {
				return
			}
			if _, err := proto.Marshal(got); err != nil {
				t.Errorf("marshal: %v", err)
			}
			checkMessageBack(t, tc.in, got)
		})
	}
}

// checkMessageBack converts the parts of a converted message back to the
// kernel's types and compares them with the original.
func checkMessageBack(t *testing.T, m *kernel.Message, pm *weftv1.Message) {
	t.Helper()
	if pm.GetId() != m.ID || string(pm.GetContext()) != string(m.Context()) || !reflect.DeepEqual(pbconv.FromBlob(pm.GetBlob()), m.Blob) {
		t.Errorf("id, context or blob changed: %v", pm)
	}
	if src, err := pbconv.ParseAddress(pm.GetSource()); err != nil || src != m.Source() {
		t.Errorf("source %q: %v", pm.GetSource(), err)
	}
	switch m.Kind {
	case kernel.KindRequest:
		r, err := pbconv.ToRequest(pm.GetRequest(), pm.GetTarget())
		if err != nil {
			t.Fatal(err)
		}
		want := &kernel.Request{Target: m.Target(), Inherit: m.Inherit, ExpectsResponse: m.ExpectsResponse, Body: m.Body, Metadata: m.Metadata, Capabilities: m.Capabilities}
		if !reflect.DeepEqual(r, want) {
			t.Errorf("ToRequest(Message(m)) = %#v\nwant %#v", r, want)
		}
	case kernel.KindResponse:
		r, err := pbconv.Response(pm.GetResponse())
		if err != nil {
			t.Fatal(err)
		}
		want := &kernel.Response{Inherit: m.Inherit, Body: m.Body, Metadata: m.Metadata, Capabilities: m.Capabilities}
		if !reflect.DeepEqual(r, want) {
			t.Errorf("Response(Message(m)) = %#v\nwant %#v", r, want)
		}
	case kernel.KindError:
		if m.Error == nil {
			return
		}
		e := pm.GetError()
		if k, err := pbconv.FromErrorKind(e.GetKind()); err != nil || k != m.Error.Kind {
			t.Errorf("kind %s: %v", e.GetKind(), err)
		}
		if to, err := pbconv.ParseAddress(e.GetTarget()); err != nil || to != m.Error.Target {
			t.Errorf("error target %q: %v", e.GetTarget(), err)
		}
		if e.GetDetail() != m.Error.Detail || string(e.GetContext()) != string(m.Error.Context) {
			t.Errorf("detail or context changed: %v", e)
		}
	}
}

func TestSendError(t *testing.T) {
	if pbconv.SendError(nil) != nil {
		t.Error("SendError(nil) is not nil")
	}
	dst := addr(t, remote)
	for _, k := range kernel.ErrorKinds {
		e := &kernel.SendError{Kind: k, Target: dst, Context: []byte{1}, Detail: "d"}
		want := &weftv1.SendError{Kind: pbconv.ErrorKind(k), Target: remote, Context: []byte{1}, Detail: "d"}
		if got := pbconv.SendError(e); !proto.Equal(got, want) {
			t.Errorf("SendError(%v) = %v, want %v", e, got, want)
		}
	}
	failed := mk(kernel.Message{ID: 2, Kind: kernel.KindRequest, Body: []byte("b")}, addr(t, alice), dst, nil)
	got := pbconv.SendError(&kernel.SendError{Kind: kernel.ErrNoCapability, Target: dst, Message: failed})
	if !proto.Equal(got.GetMessage(), pbconv.Message(failed)) {
		t.Errorf("failed request = %v, want %v", got.GetMessage(), pbconv.Message(failed))
	}
}
