package weftv1_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/weftos/weft/api/weftv1"
)

// Messages arrive from other nodes and from drivers as bytes nobody here
// wrote. Decoding them must never panic, and whatever decodes must encode
// and decode again to the same message.
func FuzzUnmarshalMessage(f *testing.F) {
	for _, m := range []*weftv1.Message{sample(), sample().GetError().GetMessage(), response(), {}} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatalf("proto.Marshal: %v", err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m weftv1.Message
		if err := proto.Unmarshal(b, &m); err != nil {
			return
		}
		again, err := proto.Marshal(&m)
		if err != nil {
			t.Fatalf("proto.Marshal of a decoded message: %v", err)
		}
		var m2 weftv1.Message
		if err := proto.Unmarshal(again, &m2); err != nil {
			t.Fatalf("proto.Unmarshal of a re-encoded message: %v", err)
		}
		if !proto.Equal(&m, &m2) {
			t.Fatalf("re-encoding changed the message:\n got %v\nwant %v", &m2, &m)
		}
	})
}
