package pbconv_test

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/kernel/pbconv"
)

// FuzzToRequest feeds arbitrary bytes, as a weftv1.Request from a client
// or another node would arrive, through ToRequest: it must never panic,
// refuse only with a *FieldError, and what it accepts must convert back to
// the same request, up to what the kernel does not keep (see normalized).
// The seed corpus is in testdata/fuzz/FuzzToRequest.
func FuzzToRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		in := new(weftv1.Request)
		if err := proto.Unmarshal(data, in); err != nil {
			return
		}
		r, err := pbconv.ToRequest(in, alice)
		if err != nil {
			var fe *pbconv.FieldError
			if !errors.As(err, &fe) || fe.Field == "" || fe.Err == nil {
				t.Fatalf("ToRequest refused %v with %v (%T), not a *pbconv.FieldError", in, err, err)
			}
			return
		}
		if r.ExpectsResponse < 0 {
			t.Fatalf("ToRequest(%v) accepted a negative timeout %s", in, r.ExpectsResponse)
		}
		back, target := requestBack(r)
		if want := normalized(in); !proto.Equal(back, want) || target != alice {
			t.Fatalf("round trip of %v\n= %v to %q\nwant %v to %q", in, back, target, want, alice)
		}
	})
}

// normalized is in as a round trip through the kernel's types gives it
// back: no unknown fields, no zero timeout, no empty metadata, no
// capability signatures.
func normalized(in *weftv1.Request) *weftv1.Request {
	out := &weftv1.Request{Inherit: in.GetInherit(), Body: in.GetBody()}
	if d := in.GetExpectsResponse(); d.GetSeconds() != 0 || d.GetNanos() != 0 {
		out.ExpectsResponse = &durationpb.Duration{Seconds: d.GetSeconds(), Nanos: d.GetNanos()}
	}
	if m := in.GetMetadata(); m != "" {
		out.Metadata = proto.String(m)
	}
	for _, c := range in.GetCapabilities() {
		out.Capabilities = append(out.Capabilities, &weftv1.Capability{Issuer: c.GetIssuer(), Params: c.GetParams()})
	}
	return out
}
