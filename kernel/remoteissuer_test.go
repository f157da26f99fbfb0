package kernel

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// TestStartWithCapabilityIssuedElsewhere: a process started with a
// capability issued on another node (a manifest may request one) gets it
// only if some process here holds it already, as Grant does; otherwise
// the start fails with ErrNotPermitted and nothing is left in the table.
// (It used to dereference a nil record with the capability lock held.)
func TestStartWithCapabilityIssuedElsewhere(t *testing.T) {
	e := newEnv(t)
	remote := Capability{Issuer: addr("elsewhere@svc:pkg:pub"), Params: MessagingParams}
	spec := Spec{ID: pid("a:b:c"), Capabilities: []Capability{remote}, Process: ProcessFunc(func(context.Context, *Handle) error { return nil })}
	err := e.k.Start(spec)
	if !errors.Is(err, ErrNotPermitted) {
		t.Fatalf("start with a capability issued elsewhere and held by nobody here: %v, want ErrNotPermitted", err)
	}
	if _, err := e.k.Process(spec.ID); err == nil {
		t.Fatal("the refused process is in the table")
	}
	// Once a process here holds it (imported, signed by its node), a
	// start may give it too.
	other := newKeyring("elsewhere")
	e.keys.pubs["elsewhere"] = other.pubs["elsewhere"]
	e.driven("holder:b:c", false)
	sc := SignedCapability{Capability: remote, Signature: other.Sign(EncodeCapability(remote))}
	if err := e.k.ImportCapability(pid("holder:b:c"), sc); err != nil {
		t.Fatal(err)
	}
	if err := e.k.Start(spec); err != nil {
		t.Fatalf("start with a capability issued elsewhere and held here: %v", err)
	}
	caps, err := e.k.CapabilitiesOf(spec.ID)
	if err != nil || !slices.ContainsFunc(caps, func(c SignedCapability) bool { return c.Capability == remote }) {
		t.Fatalf("%s holds %+v, %v; want %s", spec.ID, caps, err, remote)
	}
}
