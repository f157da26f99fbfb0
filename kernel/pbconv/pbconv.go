// Package pbconv owns the conversion between the kernel's plain Go types
// and the protobuf message types of weft's edges (api/weftv1): the control
// API, native drivers and the wire between nodes all convert here, and
// nowhere else. The kernel never imports it.
//
// Every function that takes protobuf input treats it as untrusted bytes:
// nil messages, malformed addresses, negative or out-of-range durations and
// unknown enum values are refused with a *FieldError naming the field, and
// nothing panics. What this package does not judge is left to the kernel,
// which checks it where the value enters the node: capability params
// (canonical JSON), signatures, and every size limit.
//
// Conversions do not copy byte slices (bodies, blobs, signatures, context):
// the result shares them with the input, which must not be changed
// afterwards, as with every message the kernel routes.
package pbconv

import (
	"errors"
	"fmt"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/kernel"
)

// FieldError says which field of a protobuf input is wrong, and why. Every
// conversion from protobuf fails with one; an API maps it to "invalid
// argument". Err may be a *kernel.NameError (for a malformed address).
type FieldError struct {
	Field string // path of the field in the input, e.g. "request.capabilities[1].issuer"
	Err   error  // what is wrong with it
}

func (e *FieldError) Error() string { return "pbconv: " + e.Field + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

var errMissing = errors.New("missing")

func fieldErr(field string, err error) error { return &FieldError{Field: field, Err: err} }

func fieldErrf(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// Address returns the text form of an address, node@name:package:publisher.
func Address(a kernel.Address) string { return a.String() }

// ParseAddress parses node@name:package:publisher (the node may be "our"),
// failing with a *FieldError for field "address" that wraps the
// *kernel.NameError.
func ParseAddress(s string) (kernel.Address, error) { return parseAddress("address", s) }

func parseAddress(field, s string) (kernel.Address, error) {
	a, err := kernel.ParseAddress(s)
	if err != nil {
		return kernel.Address{}, fieldErr(field, err)
	}
	return a, nil
}

// Capability returns the protobuf form of a signed capability.
func Capability(c kernel.SignedCapability) *weftv1.Capability {
	return &weftv1.Capability{Issuer: c.Issuer.String(), Params: c.Params, Signature: c.Signature}
}

// SignedCapability converts a signed capability from protobuf, checking its
// issuer address. Params and signature pass through unchanged: the kernel
// checks the canonical form and the signature where the capability enters
// the node (kernel.ImportCapability). A nil c is refused.
func SignedCapability(c *weftv1.Capability) (kernel.SignedCapability, error) {
	ref, err := capabilityRef("capability", c)
	if err != nil {
		return kernel.SignedCapability{}, err
	}
	return kernel.SignedCapability{Capability: ref, Signature: c.GetSignature()}, nil
}

// CapabilityRef converts a reference to a capability, such as one a client
// asks to attach to a request, checking its issuer address and ignoring
// any signature: the kernel looks the capability up in its own records.
// Params pass through unchanged (the kernel puts them in canonical form).
// A nil c is refused.
func CapabilityRef(c *weftv1.Capability) (kernel.Capability, error) {
	return capabilityRef("capability", c)
}

func capabilityRef(field string, c *weftv1.Capability) (kernel.Capability, error) {
	if c == nil {
		return kernel.Capability{}, fieldErr(field, errMissing)
	}
	issuer, err := parseAddress(field+".issuer", c.GetIssuer())
	if err != nil {
		return kernel.Capability{}, err
	}
	return kernel.Capability{Issuer: issuer, Params: c.GetParams()}, nil
}

// capabilityRefs converts a repeated field of capability references.
func capabilityRefs(field string, cs []*weftv1.Capability) ([]kernel.Capability, error) {
	return convertAll(field, cs, capabilityRef)
}

// convertAll converts a repeated field with conv, naming each element
// field[i] in errors; an empty field converts to nil.
func convertAll[In, Out any](field string, in []In, conv func(string, In) (Out, error)) ([]Out, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]Out, len(in))
	for i, v := range in {
		o, err := conv(fmt.Sprintf("%s[%d]", field, i), v)
		if err != nil {
			return nil, err
		}
		out[i] = o
	}
	return out, nil
}

// UnsignedCapability returns the protobuf form of a capability without a
// signature: as the kernel delivers it inside the node, or as a package
// requests it.
func UnsignedCapability(c kernel.Capability) *weftv1.Capability {
	return &weftv1.Capability{Issuer: c.Issuer.String(), Params: c.Params}
}

// unsignedCapabilities returns capabilities as the kernel delivers them
// inside the node, without signatures.
func unsignedCapabilities(cs []kernel.Capability) []*weftv1.Capability {
	if len(cs) == 0 {
		return nil
	}
	out := make([]*weftv1.Capability, len(cs))
	for i, c := range cs {
		out[i] = UnsignedCapability(c)
	}
	return out
}

// Blob returns the protobuf form of a blob; nil for nil.
func Blob(b *kernel.Blob) *weftv1.Blob {
	if b == nil {
		return nil
	}
	return &weftv1.Blob{Mime: b.Mime, Bytes: b.Bytes}
}

// FromBlob converts a blob from protobuf; nil for nil. Every blob is
// acceptable here; the kernel checks its size.
func FromBlob(b *weftv1.Blob) *kernel.Blob {
	if b == nil {
		return nil
	}
	return &kernel.Blob{Mime: b.GetMime(), Bytes: b.GetBytes()}
}
