package pbconv_test

import (
	"errors"
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

const (
	alice  = "our@chat:chat:alice.os"
	remote = "k51qzi5uqu5d@chat:chat:alice.os"
)

func addr(t *testing.T, s string) kernel.Address {
	t.Helper()
	a, err := kernel.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// wantFieldError checks that err is a *pbconv.FieldError for field whose
// text contains substr.
func wantFieldError(t *testing.T, err error, field, substr string) {
	t.Helper()
	var fe *pbconv.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T), want a *pbconv.FieldError", err, err)
	}
	if fe.Field != field {
		t.Errorf("error %q names field %q, want %q", err, fe.Field, field)
	}
	if !strings.HasPrefix(err.Error(), "pbconv: "+field+": ") || !strings.Contains(err.Error(), substr) {
		t.Errorf("error %q, want it to start with %q and contain %q", err, "pbconv: "+field+": ", substr)
	}
}

func TestAddress(t *testing.T) {
	for _, s := range []string{alice, remote, "our@kernel:sys:weft", "n.o-de@a:b:c.d"} {
		a, err := pbconv.ParseAddress(s)
		if err != nil {
			t.Fatalf("ParseAddress(%q): %v", s, err)
		}
		if a != addr(t, s) {
			t.Errorf("ParseAddress(%q) = %#v", s, a)
		}
		if got := pbconv.Address(a); got != s {
			t.Errorf("Address(ParseAddress(%q)) = %q", s, got)
		}
	}
}

func TestParseAddressBad(t *testing.T) {
	for _, s := range []string{"", "@", "chat:chat:alice.os", "Our@a:b:c", "a@b:c", "a@b@c:d:e", "a@b:c:d:e", "-a@b:c:d"} {
		_, err := pbconv.ParseAddress(s)
		wantFieldError(t, err, "address", "invalid")
		var ne *kernel.NameError
		if !errors.As(err, &ne) {
			t.Errorf("ParseAddress(%q): %v does not wrap a *kernel.NameError", s, err)
		}
	}
}

func TestCapability(t *testing.T) {
	for _, c := range []*weftv1.Capability{
		{Issuer: alice, Params: `"messaging"`, Signature: []byte{1, 2, 0xfe, 0xff}},
		{Issuer: remote, Params: `{"drive":"photos","write":true}`, Signature: make([]byte, 64)},
		{Issuer: "our@kernel:sys:weft", Params: `"network"`},
		// Params pass through as they are: the kernel judges them.
		{Issuer: remote, Params: `{ "b": 1, "a": 2 }`, Signature: []byte{9}},
		{Issuer: remote, Params: "not json"},
		{Issuer: remote},
	} {
		sc, err := pbconv.SignedCapability(c)
		if err != nil {
			t.Fatalf("SignedCapability(%v): %v", c, err)
		}
		want := kernel.SignedCapability{
			Capability: kernel.Capability{Issuer: addr(t, c.Issuer), Params: c.Params},
			Signature:  c.Signature,
		}
		if !reflect.DeepEqual(sc, want) {
			t.Errorf("SignedCapability(%v) = %#v, want %#v", c, sc, want)
		}
		if back := pbconv.Capability(sc); !proto.Equal(back, c) {
			t.Errorf("Capability(SignedCapability(%v)) = %v", c, back)
		}

		ref, err := pbconv.CapabilityRef(c)
		if err != nil {
			t.Fatalf("CapabilityRef(%v): %v", c, err)
		}
		if ref != want.Capability {
			t.Errorf("CapabilityRef(%v) = %#v, want %#v", c, ref, want.Capability)
		}
		unsigned := &weftv1.Capability{Issuer: c.Issuer, Params: c.Params}
		if back := pbconv.Capability(kernel.SignedCapability{Capability: ref}); !proto.Equal(back, unsigned) {
			t.Errorf("Capability(CapabilityRef(%v)) = %v, want %v", c, back, unsigned)
		}
	}
}

func TestCapabilityBad(t *testing.T) {
	for _, tc := range []struct {
		in     *weftv1.Capability
		field  string
		substr string
	}{
		{nil, "capability", "missing"},
		{&weftv1.Capability{}, "capability.issuer", "missing '@'"},
		{&weftv1.Capability{Issuer: "chat:chat:alice.os", Params: `"messaging"`}, "capability.issuer", "missing '@'"},
		{&weftv1.Capability{Issuer: "our@Chat:chat:alice.os", Params: `"messaging"`, Signature: []byte{1}}, "capability.issuer", "invalid process name"},
		{&weftv1.Capability{Issuer: "our@chat:alice.os"}, "capability.issuer", "want 3"},
	} {
		_, err := pbconv.SignedCapability(tc.in)
		wantFieldError(t, err, tc.field, tc.substr)
		_, err = pbconv.CapabilityRef(tc.in)
		wantFieldError(t, err, tc.field, tc.substr)
	}
}

func TestBlob(t *testing.T) {
	if pbconv.Blob(nil) != nil {
		t.Error("Blob(nil) is not nil")
	}
	if pbconv.FromBlob(nil) != nil {
		t.Error("FromBlob(nil) is not nil")
	}
	for _, b := range []*weftv1.Blob{
		{},
		{Mime: "text/plain", Bytes: []byte("hello")},
		{Bytes: []byte{0, 1, 2}},
		{Mime: "application/octet-stream"},
	} {
		kb := pbconv.FromBlob(b)
		if kb == nil || kb.Mime != b.Mime || string(kb.Bytes) != string(b.Bytes) {
			t.Errorf("FromBlob(%v) = %#v", b, kb)
		}
		if back := pbconv.Blob(kb); !proto.Equal(back, b) {
			t.Errorf("Blob(FromBlob(%v)) = %v", b, back)
		}
	}
}

// requestBack converts a kernel request back to protobuf the way the
// kernel delivers it: as a message, through pbconv.Message.
func requestBack(r *kernel.Request) (*weftv1.Request, string) {
	m := pbconv.Message(mk(kernel.Message{
		Kind:            kernel.KindRequest,
		Inherit:         r.Inherit,
		ExpectsResponse: r.ExpectsResponse,
		Body:            r.Body,
		Metadata:        r.Metadata,
		Capabilities:    r.Capabilities,
	}, kernel.Address{}, r.Target, nil))
	return m.GetRequest(), m.GetTarget()
}

func TestToRequest(t *testing.T) {
	capA := &weftv1.Capability{Issuer: alice, Params: `"messaging"`}
	capB := &weftv1.Capability{Issuer: remote, Params: `{"drive":"photos"}`}
	for _, tc := range []struct {
		name   string
		in     *weftv1.Request
		target string
		want   *kernel.Request
	}{
		{"empty", &weftv1.Request{}, alice, &kernel.Request{Target: addr(t, alice)}},
		{"every field", &weftv1.Request{
			Inherit:         true,
			ExpectsResponse: durationpb.New(1500 * time.Millisecond),
			Body:            []byte("hello"),
			Metadata:        proto.String("v1"),
			Capabilities:    []*weftv1.Capability{capA, capB},
		}, remote, &kernel.Request{
			Target:          addr(t, remote),
			Inherit:         true,
			ExpectsResponse: 1500 * time.Millisecond,
			Body:            []byte("hello"),
			Metadata:        "v1",
			Capabilities: []kernel.Capability{
				{Issuer: addr(t, alice), Params: `"messaging"`},
				{Issuer: addr(t, remote), Params: `{"drive":"photos"}`},
			},
		}},
		{"one nanosecond", &weftv1.Request{ExpectsResponse: &durationpb.Duration{Nanos: 1}}, alice,
			&kernel.Request{Target: addr(t, alice), ExpectsResponse: time.Nanosecond}},
		{"longest timeout", &weftv1.Request{ExpectsResponse: durationpb.New(time.Duration(1<<63 - 1))}, alice,
			&kernel.Request{Target: addr(t, alice), ExpectsResponse: time.Duration(1<<63 - 1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pbconv.ToRequest(tc.in, tc.target)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ToRequest = %#v\nwant %#v", got, tc.want)
			}
			back, target := requestBack(got)
			if !proto.Equal(back, tc.in) || target != tc.target {
				t.Errorf("round trip: %v to %q\nwant %v to %q", back, target, tc.in, tc.target)
			}
		})
	}
}

// TestToRequestNormalizes covers what a round trip does not keep: an
// empty metadata, a zero timeout and capability signatures mean nothing
// to the kernel.
func TestToRequestNormalizes(t *testing.T) {
	in := &weftv1.Request{
		ExpectsResponse: &durationpb.Duration{},
		Metadata:        proto.String(""),
		Capabilities:    []*weftv1.Capability{{Issuer: alice, Params: `"messaging"`, Signature: []byte{1, 2, 3}}},
	}
	got, err := pbconv.ToRequest(in, alice)
	if err != nil {
		t.Fatal(err)
	}
	if got.ExpectsResponse != 0 || got.Metadata != "" {
		t.Errorf("ToRequest = %#v", got)
	}
	back, _ := requestBack(got)
	want := &weftv1.Request{Capabilities: []*weftv1.Capability{{Issuer: alice, Params: `"messaging"`}}}
	if !proto.Equal(back, want) {
		t.Errorf("round trip = %v, want %v", back, want)
	}
}

func TestToRequestBad(t *testing.T) {
	const year = 365 * 24 * 3600
	ok := &weftv1.Capability{Issuer: alice, Params: `"messaging"`}
	for _, tc := range []struct {
		name   string
		in     *weftv1.Request
		target string
		field  string
		substr string
	}{
		{"nil", nil, alice, "request", "missing"},
		{"no target", &weftv1.Request{}, "", "target", "missing '@'"},
		{"bad target", &weftv1.Request{}, "our@chat:chat:Alice", "target", "invalid publisher"},
		{"negative", &weftv1.Request{ExpectsResponse: durationpb.New(-time.Second)}, alice, "request.expects_response", "negative duration -1s"},
		{"negative nanos", &weftv1.Request{ExpectsResponse: &durationpb.Duration{Nanos: -1}}, alice, "request.expects_response", "negative duration -1ns"},
		{"negative centuries", &weftv1.Request{ExpectsResponse: &durationpb.Duration{Seconds: -300 * year}}, alice, "request.expects_response", "negative duration -9460800000s"},
		{"mixed signs", &weftv1.Request{ExpectsResponse: &durationpb.Duration{Seconds: 1, Nanos: -1}}, alice, "request.expects_response", "different signs"},
		{"nanos out of range", &weftv1.Request{ExpectsResponse: &durationpb.Duration{Nanos: 1e9}}, alice, "request.expects_response", "out-of-range nanos"},
		{"past 10000 years", &weftv1.Request{ExpectsResponse: &durationpb.Duration{Seconds: 315576000001}}, alice, "request.expects_response", "exceeds +10000 years"},
		{"past time.Duration", &weftv1.Request{ExpectsResponse: &durationpb.Duration{Seconds: 300 * year}}, alice, "request.expects_response", "longer than the longest timeout"},
		{"one past time.Duration", &weftv1.Request{ExpectsResponse: &durationpb.Duration{Seconds: 9223372036, Nanos: 854775808}}, alice, "request.expects_response", "longer than the longest timeout"},
		{"nil capability", &weftv1.Request{Capabilities: []*weftv1.Capability{ok, nil}}, alice, "request.capabilities[1]", "missing"},
		{"bad issuer", &weftv1.Request{Capabilities: []*weftv1.Capability{ok, ok, {Issuer: "alice"}}}, alice, "request.capabilities[2].issuer", "missing '@'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pbconv.ToRequest(tc.in, tc.target)
			if got != nil {
				t.Errorf("ToRequest returned %#v with the error", got)
			}
			wantFieldError(t, err, tc.field, tc.substr)
		})
	}
}

func TestToRequestErrorText(t *testing.T) {
	_, err := pbconv.ToRequest(&weftv1.Request{ExpectsResponse: durationpb.New(-time.Second)}, alice)
	if want := "pbconv: request.expects_response: negative duration -1s"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

func TestResponse(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *weftv1.Response
		want *kernel.Response
	}{
		{"empty", &weftv1.Response{}, &kernel.Response{}},
		{"every field", &weftv1.Response{
			Inherit:      true,
			Body:         []byte("pong"),
			Metadata:     proto.String("v2"),
			Capabilities: []*weftv1.Capability{{Issuer: remote, Params: `"network"`}},
		}, &kernel.Response{
			Inherit:      true,
			Body:         []byte("pong"),
			Metadata:     "v2",
			Capabilities: []kernel.Capability{{Issuer: addr(t, remote), Params: `"network"`}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pbconv.Response(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Response = %#v\nwant %#v", got, tc.want)
			}
			back := pbconv.Message(mk(kernel.Message{
				Kind:         kernel.KindResponse,
				Inherit:      got.Inherit,
				Body:         got.Body,
				Metadata:     got.Metadata,
				Capabilities: got.Capabilities,
			}, kernel.Address{}, kernel.Address{}, nil)).GetResponse()
			if !proto.Equal(back, tc.in) {
				t.Errorf("round trip = %v, want %v", back, tc.in)
			}
		})
	}
}

func TestResponseBad(t *testing.T) {
	_, err := pbconv.Response(nil)
	wantFieldError(t, err, "response", "missing")
	_, err = pbconv.Response(&weftv1.Response{Capabilities: []*weftv1.Capability{{Issuer: "our@a:b"}}})
	wantFieldError(t, err, "response.capabilities[0].issuer", "want 3")
	_, err = pbconv.Response(&weftv1.Response{Capabilities: []*weftv1.Capability{nil}})
	wantFieldError(t, err, "response.capabilities[0]", "missing")
}

// mk builds a kernel message the way the kernel delivers one, with its
// addresses and, on an answer, the requester's context.
func mk(base kernel.Message, src, dst kernel.Address, context []byte) *kernel.Message {
	m := kernel.NewMessage(base.Kind, base.ID, src, dst, context)
	m.Inherit, m.ExpectsResponse = base.Inherit, base.ExpectsResponse
	m.Body, m.Metadata, m.Capabilities, m.Blob, m.Error = base.Body, base.Metadata, base.Capabilities, base.Blob, base.Error
	return m
}
