package weftv1_test

import (
	"encoding/json"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftos/weft/api/weftv1"
)

// sample returns a Message that sets every field of the schema at least
// once, so that a field lost in either encoding shows up in the diff.
func sample() *weftv1.Message {
	capability := &weftv1.Capability{
		Issuer:    "our@chat:chat:alice.os",
		Params:    `{"kind":"messaging"}`,
		Signature: []byte{0x01, 0x02, 0xfe, 0xff},
	}
	request := &weftv1.Message{
		Id:     41,
		Source: "our@operator:sys:weft",
		Target: "bob.os@chat:chat:alice.os",
		Kind: &weftv1.Message_Request{Request: &weftv1.Request{
			Inherit:         true,
			ExpectsResponse: durationpb.New(1500 * time.Millisecond),
			Body:            []byte("hello"),
			Metadata:        proto.String(""), // present but empty
			Capabilities:    []*weftv1.Capability{capability},
		}},
		Blob: &weftv1.Blob{Mime: "text/plain", Bytes: []byte("blob")},
	}
	return &weftv1.Message{
		Id:     41,
		Source: "our@kernel:sys:weft",
		Target: "our@operator:sys:weft",
		Kind: &weftv1.Message_Error{Error: &weftv1.SendError{
			Kind:    weftv1.SendErrorKind_SEND_ERROR_KIND_TIMEOUT,
			Target:  "bob.os@chat:chat:alice.os",
			Message: request,
			Context: []byte("ctx"),
			Detail:  "bob.os@chat:chat:alice.os did not answer within 1.5s",
		}},
		Context: []byte("ctx"),
	}
}

func TestMessageRoundTripBinary(t *testing.T) {
	for _, m := range []*weftv1.Message{sample(), sample().GetError().GetMessage(), response()} {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatalf("proto.Marshal: %v", err)
		}
		var got weftv1.Message
		if err := proto.Unmarshal(b, &got); err != nil {
			t.Fatalf("proto.Unmarshal: %v", err)
		}
		if !proto.Equal(m, &got) {
			t.Errorf("binary round trip changed the message:\n got %v\nwant %v", &got, m)
		}
	}
}

func TestMessageRoundTripJSON(t *testing.T) {
	for _, m := range []*weftv1.Message{sample(), sample().GetError().GetMessage(), response()} {
		b, err := protojson.Marshal(m)
		if err != nil {
			t.Fatalf("protojson.Marshal: %v", err)
		}
		var got weftv1.Message
		if err := protojson.Unmarshal(b, &got); err != nil {
			t.Fatalf("protojson.Unmarshal(%s): %v", b, err)
		}
		if !proto.Equal(m, &got) {
			t.Errorf("JSON round trip changed the message:\n json %s\n  got %v\n want %v", b, &got, m)
		}
	}
}

// The presence of an optional field, and which oneof case is set, must
// survive the wire: an empty metadata is not an absent one.
func TestPresenceSurvives(t *testing.T) {
	b, err := proto.Marshal(sample())
	if err != nil {
		t.Fatalf("proto.Marshal: %v", err)
	}
	var got weftv1.Message
	if err := proto.Unmarshal(b, &got); err != nil {
		t.Fatalf("proto.Unmarshal: %v", err)
	}
	e := got.GetError()
	if e == nil {
		t.Fatalf("kind = %T, want *Message_Error", got.GetKind())
	}
	req := e.GetMessage().GetRequest()
	if req == nil {
		t.Fatalf("failed message kind = %T, want *Message_Request", e.GetMessage().GetKind())
	}
	if req.Metadata == nil {
		t.Error("metadata set to \"\" came back absent")
	}
	if got, want := req.GetExpectsResponse().AsDuration(), 1500*time.Millisecond; got != want {
		t.Errorf("expects_response = %v, want %v", got, want)
	}
	if r := response(); r.GetResponse().Metadata != nil {
		t.Error("response() sets metadata; the test needs it absent")
	}
}

// The JSON names are part of the control API's contract: clients that speak
// JSON (curl, buf curl) write them.
func TestJSONNames(t *testing.T) {
	b, err := protojson.Marshal(sample())
	if err != nil {
		t.Fatalf("protojson.Marshal: %v", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("json.Unmarshal(%s): %v", b, err)
	}
	field := func(v any, name string) any {
		m, _ := v.(map[string]any)
		return m[name]
	}
	sendErr := field(doc, "error")
	request := field(field(sendErr, "message"), "request")
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"error.kind", field(sendErr, "kind"), "SEND_ERROR_KIND_TIMEOUT"},
		{"error.message.request.expectsResponse", field(request, "expectsResponse"), "1.500s"},
		{"error.message.request.metadata", field(request, "metadata"), ""},
		{"error.message.blob.mime", field(field(field(sendErr, "message"), "blob"), "mime"), "text/plain"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#v, want %#v in JSON %s", c.name, c.got, c.want, b)
		}
	}
}

func response() *weftv1.Message {
	return &weftv1.Message{
		Id:     7,
		Source: "bob.os@chat:chat:alice.os",
		Target: "our@operator:sys:weft",
		Kind: &weftv1.Message_Response{Response: &weftv1.Response{
			Inherit: true,
			Body:    []byte{0},
		}},
		Context: []byte{0xff},
	}
}
