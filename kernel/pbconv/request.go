package pbconv

import (
	"fmt"
	"math"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/kernel"
)

// ToRequest converts a request from protobuf, to be sent to target
// (node@name:package:publisher, reported as field "target"). An absent or
// zero expects_response means no response is expected; a negative or
// invalid one, or one longer than a time.Duration holds, is refused. An
// absent or empty metadata becomes the kernel's "" (none). Capabilities are
// references (see CapabilityRef): their signatures are ignored.
//
// weftv1.Request carries neither blob nor context: the caller sets
// Request.Blob (with FromBlob, from the enclosing Message or RPC) and
// Request.Context itself. A nil r is refused.
func ToRequest(r *weftv1.Request, target string) (*kernel.Request, error) {
	if r == nil {
		return nil, fieldErr("request", errMissing)
	}
	to, err := parseAddress("target", target)
	if err != nil {
		return nil, err
	}
	timeout, err := duration("request.expects_response", r.GetExpectsResponse())
	if err != nil {
		return nil, err
	}
	caps, err := capabilityRefs("request.capabilities", r.GetCapabilities())
	if err != nil {
		return nil, err
	}
	return &kernel.Request{
		Target:          to,
		Inherit:         r.GetInherit(),
		ExpectsResponse: timeout,
		Body:            r.GetBody(),
		Metadata:        r.GetMetadata(),
		Capabilities:    caps,
	}, nil
}

// Response converts a response from protobuf. An absent or empty metadata
// becomes "" (none); capabilities are references (see CapabilityRef).
// weftv1.Response carries no blob: the caller sets Response.Blob (with
// FromBlob) itself. A nil r is refused.
func Response(r *weftv1.Response) (*kernel.Response, error) {
	if r == nil {
		return nil, fieldErr("response", errMissing)
	}
	caps, err := capabilityRefs("response.capabilities", r.GetCapabilities())
	if err != nil {
		return nil, err
	}
	return &kernel.Response{
		Inherit:      r.GetInherit(),
		Body:         r.GetBody(),
		Metadata:     r.GetMetadata(),
		Capabilities: caps,
	}, nil
}

// duration converts an optional timeout: nil is zero (none); negative,
// invalid and out-of-range durations are refused.
func duration(field string, d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, fieldErrf(field, "invalid duration: %w", err)
	}
	// Valid means within 10000 years; a time.Duration holds about 292.
	td := d.AsDuration() // saturates
	back := durationpb.New(td)
	fits := back.GetSeconds() == d.GetSeconds() && back.GetNanos() == d.GetNanos()
	text := td.String()
	if !fits {
		text = fmt.Sprintf("%ds", d.GetSeconds())
	}
	switch {
	case d.GetSeconds() < 0 || d.GetNanos() < 0:
		return 0, fieldErrf(field, "negative duration %s", text)
	case !fits:
		return 0, fieldErrf(field, "duration %s is longer than the longest timeout, %s", text, time.Duration(math.MaxInt64))
	}
	return td, nil
}

// durationPB is the inverse of duration: zero is absent.
func durationPB(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}

// metadata returns an optional string field: "" is absent. The kernel
// refuses metadata that is not UTF-8, so ToValidUTF8 changes nothing it
// delivers; it keeps every result of this package marshalable (proto3
// strings must be UTF-8) whatever a caller hands in.
func metadata(s string) *string {
	if s == "" {
		return nil
	}
	return proto.String(strings.ToValidUTF8(s, "\uFFFD"))
}
