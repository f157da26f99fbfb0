package pbconv_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftos/weft/api/p2pv1"
	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/kernel/pbconv"
)

// nodeID returns the node id of the Ed25519 key made from seed, so that
// the tests' node ids are real ones and the same on every run.
func nodeID(seed byte) string {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	return identity.NodeID(priv.Public().(ed25519.PublicKey))
}

var (
	nodeA = nodeID(1)
	nodeB = nodeID(2)
	// Addresses on node A (the requester) and node B (the target).
	aChat  = nodeA + "@chat:chat:alice.os"
	bChat  = nodeB + "@chat:chat:alice.os"
	bStore = nodeB + "@kv:sys:weft"
	sig1   = bytes.Repeat([]byte{0xa1}, ed25519.SignatureSize)
	sig2   = bytes.Repeat([]byte{0xb2}, ed25519.SignatureSize)
)

func signed(t *testing.T, issuer, params string, sig []byte) kernel.SignedCapability {
	return kernel.SignedCapability{Capability: kernel.Capability{Issuer: addr(t, issuer), Params: params}, Signature: sig}
}

// roundTrip sends m through RemoteFrame, the protobuf encoding and
// FromRemoteFrame, and returns the frame and what came out.
func roundTrip(t *testing.T, m *kernel.RemoteMessage) (*p2pv1.Frame, *kernel.RemoteMessage) {
	t.Helper()
	f, err := pbconv.RemoteFrame(m)
	if err != nil {
		t.Fatalf("RemoteFrame: %v", err)
	}
	b, err := proto.Marshal(f)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	in := new(p2pv1.Frame)
	if err := proto.Unmarshal(b, in); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	back, revoked, err := pbconv.FromRemoteFrame(in)
	if err != nil {
		t.Fatalf("FromRemoteFrame: %v", err)
	}
	if revoked != nil {
		t.Fatalf("FromRemoteFrame returned a revocation %v for a message", revoked)
	}
	return f, back
}

func TestRemoteFrame(t *testing.T) {
	capMsg := signed(t, bChat, kernel.MessagingParams, sig1)
	capDrive := signed(t, bStore, `{"drive":"photos","write":true}`, sig2)
	blob := &kernel.Blob{Mime: "image/png", Bytes: []byte{0x89, 'P', 'N', 'G'}}
	for _, tc := range []struct {
		name string
		in   *kernel.RemoteMessage
		want *weftv1.Message // the frame's message
	}{
		{"bare request", &kernel.RemoteMessage{
			Kind: kernel.KindRequest, ID: 1, Source: addr(t, aChat), Target: addr(t, bChat),
		}, &weftv1.Message{Id: 1, Source: aChat, Target: bChat, Kind: &weftv1.Message_Request{Request: &weftv1.Request{}}}},
		{"every field of a request", &kernel.RemoteMessage{
			Kind: kernel.KindRequest, ID: 1<<64 - 1, Source: addr(t, aChat), Target: addr(t, bChat),
			Inherit: true, ExpectsResponse: 1500 * time.Millisecond, Body: []byte("hi"), Metadata: "v1 ✓",
			Capabilities: []kernel.SignedCapability{capMsg, capDrive}, Messaging: &capMsg, Blob: blob,
		}, &weftv1.Message{
			Id: 1<<64 - 1, Source: aChat, Target: bChat,
			Kind: &weftv1.Message_Request{Request: &weftv1.Request{
				Inherit: true, ExpectsResponse: durationpb.New(1500 * time.Millisecond), Body: []byte("hi"), Metadata: proto.String("v1 ✓"),
				Capabilities: []*weftv1.Capability{
					{Issuer: bChat, Params: kernel.MessagingParams, Signature: sig1},
					{Issuer: bStore, Params: `{"drive":"photos","write":true}`, Signature: sig2},
				},
			}},
			Blob: &weftv1.Blob{Mime: "image/png", Bytes: []byte{0x89, 'P', 'N', 'G'}},
		}},
		{"longest timeout", &kernel.RemoteMessage{
			Kind: kernel.KindRequest, ID: 2, Source: addr(t, aChat), Target: addr(t, bChat), ExpectsResponse: time.Duration(1<<63 - 1),
		}, &weftv1.Message{Id: 2, Source: aChat, Target: bChat, Kind: &weftv1.Message_Request{Request: &weftv1.Request{
			ExpectsResponse: durationpb.New(time.Duration(1<<63 - 1)),
		}}}},
		{"response", &kernel.RemoteMessage{
			Kind: kernel.KindResponse, ID: 3, Source: addr(t, bChat), Target: addr(t, aChat),
			Inherit: true, Body: []byte("pong"), Metadata: "m", Capabilities: []kernel.SignedCapability{capDrive}, Blob: &kernel.Blob{},
		}, &weftv1.Message{Id: 3, Source: bChat, Target: aChat, Kind: &weftv1.Message_Response{Response: &weftv1.Response{
			Inherit: true, Body: []byte("pong"), Metadata: proto.String("m"),
			Capabilities: []*weftv1.Capability{{Issuer: bStore, Params: `{"drive":"photos","write":true}`, Signature: sig2}},
		}}, Blob: &weftv1.Blob{}}},
		{"bare response", &kernel.RemoteMessage{Kind: kernel.KindResponse, Source: addr(t, bChat), Target: addr(t, aChat)},
			&weftv1.Message{Source: bChat, Target: aChat, Kind: &weftv1.Message_Response{Response: &weftv1.Response{}}}},
		{"error", &kernel.RemoteMessage{
			Kind: kernel.KindError, ID: 4, Source: addr(t, bChat), Target: addr(t, aChat),
			Error: &kernel.SendError{Kind: kernel.ErrNoSuchProcess, Target: addr(t, bStore), Detail: "no process kv:sys:weft"},
		}, &weftv1.Message{Id: 4, Source: bChat, Target: aChat, Kind: &weftv1.Message_Error{Error: &weftv1.SendError{
			Kind: weftv1.SendErrorKind_SEND_ERROR_KIND_NO_SUCH_PROCESS, Target: bStore, Detail: "no process kv:sys:weft",
		}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, back := roundTrip(t, tc.in)
			want := &p2pv1.Frame{Kind: &p2pv1.Frame_Delivery{Delivery: &p2pv1.Delivery{Message: tc.want}}}
			if tc.in.Messaging != nil {
				want.GetDelivery().Messaging = pbconv.Capability(*tc.in.Messaging)
			}
			if !proto.Equal(f, want) {
				t.Errorf("RemoteFrame = %v\nwant %v", f, want)
			}
			wantBack := *tc.in
			if wantBack.Blob != nil && len(wantBack.Blob.Bytes) == 0 {
				wantBack.Blob = &kernel.Blob{Mime: wantBack.Blob.Mime}
			}
			if !reflect.DeepEqual(back, &wantBack) {
				t.Errorf("round trip = %#v\nwant %#v", back, &wantBack)
			}
		})
	}
}

// TestRemoteFrameErrorKinds sends an error of every kind there is.
func TestRemoteFrameErrorKinds(t *testing.T) {
	for _, k := range kernel.ErrorKinds {
		in := &kernel.RemoteMessage{
			Kind: kernel.KindError, ID: 9, Source: addr(t, bChat), Target: addr(t, aChat),
			Error: &kernel.SendError{Kind: k, Target: addr(t, bChat), Detail: k.String()},
		}
		_, back := roundTrip(t, in)
		if !reflect.DeepEqual(back, in) {
			t.Errorf("%s: round trip = %#v\nwant %#v", k, back, in)
		}
	}
}

// TestRemoteFrameErrorStaysHome: what an error holds for the requester's
// node alone, the failed request and the context, does not travel.
func TestRemoteFrameErrorStaysHome(t *testing.T) {
	failed := kernel.NewMessage(kernel.KindRequest, 5, addr(t, aChat), addr(t, bChat), nil)
	in := &kernel.RemoteMessage{
		Kind: kernel.KindError, ID: 5, Source: addr(t, bChat), Target: addr(t, aChat),
		Error: &kernel.SendError{Kind: kernel.ErrKilled, Target: addr(t, bChat), Message: failed, Context: []byte("secret"), Detail: "killed"},
	}
	f, back := roundTrip(t, in)
	e := f.GetDelivery().GetMessage().GetError()
	if e.GetMessage() != nil || e.GetContext() != nil || f.GetDelivery().GetMessage().GetContext() != nil {
		t.Errorf("the frame carries the request or the context: %v", f)
	}
	want := &kernel.SendError{Kind: kernel.ErrKilled, Target: addr(t, bChat), Detail: "killed"}
	if !reflect.DeepEqual(back.Error, want) {
		t.Errorf("error = %#v, want %#v", back.Error, want)
	}
}

func TestRemoteFrameDetail(t *testing.T) {
	const max = p2pv1.MaxErrorDetailBytes
	for _, tc := range []struct {
		name, in, want string
	}{
		{"at the bound", strings.Repeat("d", max), strings.Repeat("d", max)},
		{"one over", strings.Repeat("d", max+1), strings.Repeat("d", max)},
		// "é" is two bytes; the bound falls inside the last one.
		{"cut at a character", strings.Repeat("d", max-1) + "é", strings.Repeat("d", max-1)},
		{"invalid UTF-8", "bad \xff byte", "bad \uFFFD byte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &kernel.RemoteMessage{
				Kind: kernel.KindError, Source: addr(t, bChat), Target: addr(t, aChat),
				Error: &kernel.SendError{Kind: kernel.ErrTimeout, Target: addr(t, bChat), Detail: tc.in},
			}
			_, back := roundTrip(t, in)
			if back.Error.Detail != tc.want {
				t.Errorf("detail of %d bytes came back as %d bytes %q, want %d bytes", len(tc.in), len(back.Error.Detail), back.Error.Detail, len(tc.want))
			}
		})
	}
}

func TestRevocationFrame(t *testing.T) {
	c := signed(t, bChat, kernel.MessagingParams, sig1)
	f, err := pbconv.RevocationFrame(c)
	if err != nil {
		t.Fatal(err)
	}
	want := &p2pv1.Frame{Kind: &p2pv1.Frame_Revocation{Revocation: &p2pv1.Revocation{
		Capability: &weftv1.Capability{Issuer: bChat, Params: kernel.MessagingParams, Signature: sig1},
	}}}
	if !proto.Equal(f, want) {
		t.Fatalf("RevocationFrame = %v\nwant %v", f, want)
	}
	m, revoked, err := pbconv.FromRemoteFrame(f)
	if err != nil || m != nil {
		t.Fatalf("FromRemoteFrame = %v, %v, %v", m, revoked, err)
	}
	if !reflect.DeepEqual(*revoked, c) {
		t.Errorf("revoked %#v, want %#v", *revoked, c)
	}
}

// TestFromRemoteFrameNormalizes covers what the wire does not tell apart:
// absent and empty metadata, absent and zero timeouts, absent and empty
// bytes; and fields it does not know.
func TestFromRemoteFrameNormalizes(t *testing.T) {
	f := &p2pv1.Frame{Kind: &p2pv1.Frame_Delivery{Delivery: &p2pv1.Delivery{Message: &weftv1.Message{
		Id: 6, Source: aChat, Target: bChat,
		Kind: &weftv1.Message_Request{Request: &weftv1.Request{
			ExpectsResponse: &durationpb.Duration{}, Metadata: proto.String(""), Body: []byte{},
		}},
		Blob: &weftv1.Blob{Bytes: []byte{}},
	}}}}
	b, err := proto.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	// Field 15 of the frame, a varint a later version might add.
	b = append(b, 15<<3, 1)
	in := new(p2pv1.Frame)
	if err := proto.Unmarshal(b, in); err != nil {
		t.Fatal(err)
	}
	m, _, err := pbconv.FromRemoteFrame(in)
	if err != nil {
		t.Fatal(err)
	}
	want := &kernel.RemoteMessage{Kind: kernel.KindRequest, ID: 6, Source: addr(t, aChat), Target: addr(t, bChat), Blob: &kernel.Blob{}}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("FromRemoteFrame = %#v\nwant %#v", m, want)
	}
}

func TestRemoteFrameBad(t *testing.T) {
	good := func() *kernel.RemoteMessage {
		return &kernel.RemoteMessage{Kind: kernel.KindRequest, ID: 1, Source: addr(t, aChat), Target: addr(t, bChat)}
	}
	with := func(change func(m *kernel.RemoteMessage)) *kernel.RemoteMessage {
		m := good()
		change(m)
		return m
	}
	answer := func(kind kernel.Kind, change func(m *kernel.RemoteMessage)) *kernel.RemoteMessage {
		m := &kernel.RemoteMessage{Kind: kind, ID: 1, Source: addr(t, bChat), Target: addr(t, aChat)}
		if kind == kernel.KindError {
			m.Error = &kernel.SendError{Kind: kernel.ErrTimeout, Target: addr(t, bChat)}
		}
		change(m)
		return m
	}
	capOK := signed(t, bChat, kernel.MessagingParams, sig1)
	ourAddr := addr(t, "our@chat:chat:alice.os")
	for _, tc := range []struct {
		name   string
		in     *kernel.RemoteMessage
		field  string
		substr string
	}{
		{"nil", nil, "RemoteMessage", "missing"},
		{"source our", with(func(m *kernel.RemoteMessage) { m.Source = ourAddr }), "RemoteMessage.Source", `node "our" between nodes`},
		{"target alias", with(func(m *kernel.RemoteMessage) { m.Target = addr(t, "alice@chat:chat:alice.os") }), "RemoteMessage.Target", "not a full node-id address"},
		{"target empty", with(func(m *kernel.RemoteMessage) { m.Target = kernel.Address{} }), "RemoteMessage.Target", "invalid"},
		{"source bad process", with(func(m *kernel.RemoteMessage) { m.Source.Process.Name = "Chat" }), "RemoteMessage.Source", "invalid process name"},
		{"kind unknown", with(func(m *kernel.RemoteMessage) { m.Kind = 0 }), "RemoteMessage.Kind", "unknown kind Kind(0)"},
		{"kind too large", with(func(m *kernel.RemoteMessage) { m.Kind = kernel.KindError + 1 }), "RemoteMessage.Kind", "unknown kind Kind(4)"},
		{"negative timeout", with(func(m *kernel.RemoteMessage) { m.ExpectsResponse = -time.Nanosecond }), "RemoteMessage.ExpectsResponse", "negative duration -1ns"},
		{"metadata not UTF-8", with(func(m *kernel.RemoteMessage) { m.Metadata = "\xc3" }), "RemoteMessage.Metadata", "UTF-8"},
		{"error on a request", with(func(m *kernel.RemoteMessage) { m.Error = &kernel.SendError{Kind: kernel.ErrKilled} }), "RemoteMessage.Error", "only an error"},
		{"blob mime not UTF-8", with(func(m *kernel.RemoteMessage) { m.Blob = &kernel.Blob{Mime: "\xff"} }), "RemoteMessage.Blob.Mime", "UTF-8"},
		{"unsigned capability", with(func(m *kernel.RemoteMessage) {
			m.Capabilities = []kernel.SignedCapability{capOK, signed(t, bChat, kernel.MessagingParams, nil)}
		}), "RemoteMessage.Capabilities[1].Signature", "missing"},
		{"short signature", with(func(m *kernel.RemoteMessage) {
			m.Capabilities = []kernel.SignedCapability{signed(t, bChat, kernel.MessagingParams, sig1[:63])}
		}), "RemoteMessage.Capabilities[0].Signature", "63 bytes, want an Ed25519 signature of 64"},
		{"no params", with(func(m *kernel.RemoteMessage) {
			m.Capabilities = []kernel.SignedCapability{signed(t, bChat, "", sig1)}
		}), "RemoteMessage.Capabilities[0].Params", "missing"},
		{"params not UTF-8", with(func(m *kernel.RemoteMessage) {
			m.Capabilities = []kernel.SignedCapability{signed(t, bChat, "\"\xff\"", sig1)}
		}), "RemoteMessage.Capabilities[0].Params", "UTF-8"},
		{"issuer our", with(func(m *kernel.RemoteMessage) {
			m.Capabilities = []kernel.SignedCapability{capOK, capOK, signed(t, "our@kernel:sys:weft", kernel.NetworkParams, sig1)}
		}), "RemoteMessage.Capabilities[2].Issuer", `node "our"`},
		{"messaging unsigned", with(func(m *kernel.RemoteMessage) {
			c := signed(t, bChat, kernel.MessagingParams, nil)
			m.Messaging = &c
		}), "RemoteMessage.Messaging.Signature", "missing"},
		{"messaging issuer alias", with(func(m *kernel.RemoteMessage) {
			c := signed(t, "bob@chat:chat:alice.os", kernel.MessagingParams, sig1)
			m.Messaging = &c
		}), "RemoteMessage.Messaging.Issuer", "not a full node-id address"},
		{"messaging on a response", answer(kernel.KindResponse, func(m *kernel.RemoteMessage) { m.Messaging = &capOK }), "RemoteMessage.Messaging", "set on a response"},
		{"timeout on a response", answer(kernel.KindResponse, func(m *kernel.RemoteMessage) { m.ExpectsResponse = time.Second }), "RemoteMessage.ExpectsResponse", "set on a response"},
		{"response metadata", answer(kernel.KindResponse, func(m *kernel.RemoteMessage) { m.Metadata = "\xff" }), "RemoteMessage.Metadata", "UTF-8"},
		{"response capability", answer(kernel.KindResponse, func(m *kernel.RemoteMessage) {
			m.Capabilities = []kernel.SignedCapability{signed(t, bChat, kernel.MessagingParams, sig1[:1])}
		}), "RemoteMessage.Capabilities[0].Signature", "1 bytes"},
		{"response error", answer(kernel.KindResponse, func(m *kernel.RemoteMessage) { m.Error = &kernel.SendError{} }), "RemoteMessage.Error", "set on a response"},
		{"error without error", answer(kernel.KindError, func(m *kernel.RemoteMessage) { m.Error = nil }), "RemoteMessage.Error", "missing"},
		{"error kind unknown", answer(kernel.KindError, func(m *kernel.RemoteMessage) { m.Error.Kind = 0 }), "RemoteMessage.Error.Kind", "unknown send error kind 0"},
		{"error target our", answer(kernel.KindError, func(m *kernel.RemoteMessage) { m.Error.Target = ourAddr }), "RemoteMessage.Error.Target", `node "our"`},
		{"error inherit", answer(kernel.KindError, func(m *kernel.RemoteMessage) { m.Inherit = true }), "RemoteMessage.Inherit", "set on an error"},
		{"error timeout", answer(kernel.KindError, func(m *kernel.RemoteMessage) { m.ExpectsResponse = 1 }), "RemoteMessage.ExpectsResponse", "set on an error"},
		{"error body", answer(kernel.KindError, func(m *kernel.RemoteMessage) { m.Body = []byte("b") }), "RemoteMessage.Body", "set on an error"},
		{"error metadata", answer(kernel.KindError, func(m *kernel.RemoteMessage) { m.Metadata = "m" }), "RemoteMessage.Metadata", "set on an error"},
		{"error capabilities", answer(kernel.KindError, func(m *kernel.RemoteMessage) { m.Capabilities = []kernel.SignedCapability{capOK} }), "RemoteMessage.Capabilities", "set on an error"},
		{"error blob", answer(kernel.KindError, func(m *kernel.RemoteMessage) { m.Blob = &kernel.Blob{} }), "RemoteMessage.Blob", "an error carries no blob"},
		{"error messaging", answer(kernel.KindError, func(m *kernel.RemoteMessage) { m.Messaging = &capOK }), "RemoteMessage.Messaging", "set on an error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := pbconv.RemoteFrame(tc.in)
			if f != nil {
				t.Errorf("RemoteFrame returned %v with the error", f)
			}
			wantFieldError(t, err, tc.field, tc.substr)
		})
	}
}

func TestRevocationFrameBad(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     kernel.SignedCapability
		field  string
		substr string
	}{
		{"zero", kernel.SignedCapability{}, "Capability.Issuer", "invalid"},
		{"issuer our", signed(t, "our@chat:chat:alice.os", kernel.MessagingParams, sig1), "Capability.Issuer", `node "our"`},
		{"unsigned", signed(t, bChat, kernel.MessagingParams, nil), "Capability.Signature", "missing"},
		{"no params", signed(t, bChat, "", sig1), "Capability.Params", "missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := pbconv.RevocationFrame(tc.in)
			if f != nil {
				t.Errorf("RevocationFrame returned %v with the error", f)
			}
			wantFieldError(t, err, tc.field, tc.substr)
		})
	}
}

func TestFromRemoteFrameBad(t *testing.T) {
	okCap := func() *weftv1.Capability {
		return &weftv1.Capability{Issuer: bChat, Params: kernel.MessagingParams, Signature: sig1}
	}
	delivery := func(m *weftv1.Message, messaging *weftv1.Capability) *p2pv1.Frame {
		return &p2pv1.Frame{Kind: &p2pv1.Frame_Delivery{Delivery: &p2pv1.Delivery{Message: m, Messaging: messaging}}}
	}
	request := func(change func(m *weftv1.Message, r *weftv1.Request)) *p2pv1.Frame {
		r := &weftv1.Request{}
		m := &weftv1.Message{Id: 1, Source: aChat, Target: bChat, Kind: &weftv1.Message_Request{Request: r}}
		change(m, r)
		return delivery(m, nil)
	}
	response := func(change func(m *weftv1.Message, r *weftv1.Response)) *p2pv1.Frame {
		r := &weftv1.Response{}
		m := &weftv1.Message{Id: 1, Source: bChat, Target: aChat, Kind: &weftv1.Message_Response{Response: r}}
		change(m, r)
		return delivery(m, nil)
	}
	sendErr := func(change func(m *weftv1.Message, e *weftv1.SendError)) *p2pv1.Frame {
		e := &weftv1.SendError{Kind: weftv1.SendErrorKind_SEND_ERROR_KIND_OFFLINE, Target: bChat}
		m := &weftv1.Message{Id: 1, Source: bChat, Target: aChat, Kind: &weftv1.Message_Error{Error: e}}
		change(m, e)
		return delivery(m, nil)
	}
	revocation := func(c *weftv1.Capability) *p2pv1.Frame {
		return &p2pv1.Frame{Kind: &p2pv1.Frame_Revocation{Revocation: &p2pv1.Revocation{Capability: c}}}
	}
	const req = "delivery.message.request"
	for _, tc := range []struct {
		name   string
		in     *p2pv1.Frame
		field  string
		substr string
	}{
		{"nil", nil, "frame", "missing"},
		{"empty", &p2pv1.Frame{}, "frame", "neither a delivery nor a revocation"},
		{"nil delivery", &p2pv1.Frame{Kind: &p2pv1.Frame_Delivery{}}, "delivery", "missing"},
		{"nil revocation", &p2pv1.Frame{Kind: &p2pv1.Frame_Revocation{}}, "revocation", "missing"},
		{"no message", delivery(nil, okCap()), "delivery.message", "missing"},
		{"no kind", delivery(&weftv1.Message{Source: aChat, Target: bChat}, nil), "delivery.message", "none of request, response and error"},
		{"source our", request(func(m *weftv1.Message, _ *weftv1.Request) { m.Source = "our@chat:chat:alice.os" }), "delivery.message.source", `node "our" between nodes`},
		{"source alias", request(func(m *weftv1.Message, _ *weftv1.Request) { m.Source = "alice@chat:chat:alice.os" }), "delivery.message.source", "invalid node id"},
		{"source short node id", request(func(m *weftv1.Message, _ *weftv1.Request) { m.Source = nodeA[:61] + "@chat:chat:alice.os" }), "delivery.message.source", "invalid node id"},
		{"source missing", request(func(m *weftv1.Message, _ *weftv1.Request) { m.Source = "" }), "delivery.message.source", "missing '@'"},
		{"target bad", request(func(m *weftv1.Message, _ *weftv1.Request) { m.Target = nodeB + "@chat:chat" }), "delivery.message.target", "want 3"},
		{"target our", request(func(m *weftv1.Message, _ *weftv1.Request) { m.Target = "our@chat:chat:alice.os" }), "delivery.message.target", `node "our"`},
		{"context", request(func(m *weftv1.Message, _ *weftv1.Request) { m.Context = []byte("c") }), "delivery.message.context", "never leaves the requester's node"},
		{"nil request", delivery(&weftv1.Message{Source: aChat, Target: bChat, Kind: &weftv1.Message_Request{}}, nil), req, "missing"},
		{"negative timeout", request(func(_ *weftv1.Message, r *weftv1.Request) { r.ExpectsResponse = durationpb.New(-time.Second) }), req + ".expects_response", "negative duration -1s"},
		{"invalid timeout", request(func(_ *weftv1.Message, r *weftv1.Request) {
			r.ExpectsResponse = &durationpb.Duration{Seconds: 1, Nanos: -1}
		}), req + ".expects_response", "different signs"},
		{"timeout too long", request(func(_ *weftv1.Message, r *weftv1.Request) { r.ExpectsResponse = &durationpb.Duration{Seconds: 1 << 34} }), req + ".expects_response", "longer than the longest timeout"},
		{"metadata not UTF-8", request(func(_ *weftv1.Message, r *weftv1.Request) { r.Metadata = proto.String("\xff") }), req + ".metadata", "UTF-8"},
		{"nil capability", request(func(_ *weftv1.Message, r *weftv1.Request) { r.Capabilities = []*weftv1.Capability{okCap(), nil} }), req + ".capabilities[1]", "missing"},
		{"capability issuer our", request(func(_ *weftv1.Message, r *weftv1.Request) {
			r.Capabilities = []*weftv1.Capability{{Issuer: "our@kernel:sys:weft", Params: kernel.NetworkParams, Signature: sig1}}
		}), req + ".capabilities[0].issuer", `node "our"`},
		{"capability without params", request(func(_ *weftv1.Message, r *weftv1.Request) {
			r.Capabilities = []*weftv1.Capability{{Issuer: bChat, Signature: sig1}}
		}), req + ".capabilities[0].params", "missing"},
		{"capability params not UTF-8", request(func(_ *weftv1.Message, r *weftv1.Request) {
			r.Capabilities = []*weftv1.Capability{{Issuer: bChat, Params: "\"\xff\"", Signature: sig1}}
		}), req + ".capabilities[0].params", "UTF-8"},
		{"unsigned capability", request(func(_ *weftv1.Message, r *weftv1.Request) {
			r.Capabilities = []*weftv1.Capability{okCap(), okCap(), {Issuer: bChat, Params: kernel.MessagingParams}}
		}), req + ".capabilities[2].signature", "missing"},
		{"long signature", request(func(_ *weftv1.Message, r *weftv1.Request) {
			r.Capabilities = []*weftv1.Capability{{Issuer: bChat, Params: kernel.MessagingParams, Signature: make([]byte, 65)}}
		}), req + ".capabilities[0].signature", "65 bytes"},
		{"blob mime not UTF-8", request(func(m *weftv1.Message, _ *weftv1.Request) { m.Blob = &weftv1.Blob{Mime: "\xff"} }), "delivery.message.blob.mime", "UTF-8"},
		{"messaging unsigned", delivery(&weftv1.Message{Source: aChat, Target: bChat, Kind: &weftv1.Message_Request{Request: &weftv1.Request{}}},
			&weftv1.Capability{Issuer: bChat, Params: kernel.MessagingParams}), "delivery.messaging.signature", "missing"},
		{"messaging issuer alias", delivery(&weftv1.Message{Source: aChat, Target: bChat, Kind: &weftv1.Message_Request{Request: &weftv1.Request{}}},
			&weftv1.Capability{Issuer: "b@chat:chat:alice.os", Params: kernel.MessagingParams, Signature: sig1}), "delivery.messaging.issuer", "invalid node id"},
		{"nil response", delivery(&weftv1.Message{Source: bChat, Target: aChat, Kind: &weftv1.Message_Response{}}, nil), "delivery.message.response", "missing"},
		{"response metadata", response(func(_ *weftv1.Message, r *weftv1.Response) { r.Metadata = proto.String("\xc3") }), "delivery.message.response.metadata", "UTF-8"},
		{"response capability", response(func(_ *weftv1.Message, r *weftv1.Response) {
			r.Capabilities = []*weftv1.Capability{{Issuer: bChat, Params: kernel.MessagingParams, Signature: sig1[:10]}}
		}), "delivery.message.response.capabilities[0].signature", "10 bytes"},
		{"response context", response(func(m *weftv1.Message, _ *weftv1.Response) { m.Context = []byte{0} }), "delivery.message.context", "never leaves"},
		{"messaging on a response", delivery(&weftv1.Message{Source: bChat, Target: aChat, Kind: &weftv1.Message_Response{Response: &weftv1.Response{}}}, okCap()),
			"delivery.messaging", "set on a response: only a request carries one"},
		{"nil error", delivery(&weftv1.Message{Source: bChat, Target: aChat, Kind: &weftv1.Message_Error{}}, nil), "delivery.message.error", "missing"},
		{"error kind unspecified", sendErr(func(_ *weftv1.Message, e *weftv1.SendError) { e.Kind = 0 }), "delivery.message.error.kind", "unspecified"},
		{"error kind unknown", sendErr(func(_ *weftv1.Message, e *weftv1.SendError) { e.Kind = 99 }), "delivery.message.error.kind", "unknown send error kind 99"},
		{"error target missing", sendErr(func(_ *weftv1.Message, e *weftv1.SendError) { e.Target = "" }), "delivery.message.error.target", "missing '@'"},
		{"error target alias", sendErr(func(_ *weftv1.Message, e *weftv1.SendError) { e.Target = "bob@chat:chat:alice.os" }), "delivery.message.error.target", "invalid node id"},
		{"error detail too long", sendErr(func(_ *weftv1.Message, e *weftv1.SendError) {
			e.Detail = strings.Repeat("x", p2pv1.MaxErrorDetailBytes+1)
		}),
			"delivery.message.error.detail", "1025 bytes, at most 1024 allowed"},
		{"error detail not UTF-8", sendErr(func(_ *weftv1.Message, e *weftv1.SendError) { e.Detail = "\xff" }), "delivery.message.error.detail", "UTF-8"},
		{"error with the request", sendErr(func(_ *weftv1.Message, e *weftv1.SendError) { e.Message = &weftv1.Message{} }), "delivery.message.error.message", "never leaves"},
		{"error context", sendErr(func(_ *weftv1.Message, e *weftv1.SendError) { e.Context = []byte("c") }), "delivery.message.error.context", "never leaves"},
		{"error message context", sendErr(func(m *weftv1.Message, _ *weftv1.SendError) { m.Context = []byte("c") }), "delivery.message.context", "never leaves"},
		{"error blob", sendErr(func(m *weftv1.Message, _ *weftv1.SendError) { m.Blob = &weftv1.Blob{} }), "delivery.message.blob", "an error carries no blob"},
		{"messaging on an error", delivery(&weftv1.Message{Source: bChat, Target: aChat, Kind: &weftv1.Message_Error{Error: &weftv1.SendError{
			Kind: weftv1.SendErrorKind_SEND_ERROR_KIND_KILLED, Target: bChat}}}, okCap()), "delivery.messaging", "set on an error"},
		{"revocation without capability", revocation(nil), "revocation.capability", "missing"},
		{"revocation issuer our", revocation(&weftv1.Capability{Issuer: "our@chat:chat:alice.os", Params: kernel.MessagingParams, Signature: sig1}), "revocation.capability.issuer", `node "our"`},
		{"revocation unsigned", revocation(&weftv1.Capability{Issuer: bChat, Params: kernel.MessagingParams}), "revocation.capability.signature", "missing"},
		{"revocation without params", revocation(&weftv1.Capability{Issuer: bChat, Signature: sig1}), "revocation.capability.params", "missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, revoked, err := pbconv.FromRemoteFrame(tc.in)
			if m != nil || revoked != nil {
				t.Errorf("FromRemoteFrame returned %v, %v with the error", m, revoked)
			}
			wantFieldError(t, err, tc.field, tc.substr)
		})
	}
}

func TestFromRemoteFrameErrorText(t *testing.T) {
	f := &p2pv1.Frame{Kind: &p2pv1.Frame_Delivery{Delivery: &p2pv1.Delivery{Message: &weftv1.Message{
		Source: aChat, Target: bChat, Kind: &weftv1.Message_Request{Request: &weftv1.Request{
			ExpectsResponse: durationpb.New(-time.Second),
		}},
	}}}}
	_, _, err := pbconv.FromRemoteFrame(f)
	if want := "pbconv: delivery.message.request.expects_response: negative duration -1s"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

// TestNodeIDMemo converts, from two goroutines at once, requests from
// more distinct nodes than the memo of checked node ids holds, so that it
// is emptied under way; every real node id is accepted throughout and a
// false one refused.
func TestNodeIDMemo(t *testing.T) {
	const nodes = 5000
	ids := make([]string, nodes)
	for i := range ids {
		var seed [ed25519.SeedSize]byte
		seed[0], seed[1], seed[2] = 0x77, byte(i), byte(i>>8)
		ids[i] = identity.NodeID(ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey))
	}
	check := func(src string) error {
		_, _, err := pbconv.FromRemoteFrame(&p2pv1.Frame{Kind: &p2pv1.Frame_Delivery{Delivery: &p2pv1.Delivery{Message: &weftv1.Message{
			Source: src + "@chat:chat:alice.os", Target: bChat, Kind: &weftv1.Message_Request{Request: &weftv1.Request{}},
		}}}})
		return err
	}
	// The form of a node id, but not one: it decodes to another header.
	forged := "k51" + strings.Repeat("z", identity.NodeIDLen-3)
	if _, err := identity.PublicKeyFromNodeID(forged); err == nil {
		t.Fatalf("%s is a node id", forged)
	}
	errs := make(chan error, 2)
	for half := range 2 {
		go func() {
			for i := half; i < nodes; i += 2 {
				if err := check(ids[i]); err != nil {
					errs <- err
					return
				}
				if err := check(forged); err == nil {
					errs <- fmt.Errorf("the false node id %s was accepted after %d real ones", forged, i)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// The first ones were forgotten and are checked again.
	if err := check(ids[0]); err != nil {
		t.Fatal(err)
	}
}
