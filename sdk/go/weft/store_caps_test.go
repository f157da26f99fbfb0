//go:build !wasip1

// The node's packages (procstore, kernel, bbolt under them) build for
// the host only.

package weft

import (
	"testing"

	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/procstore"
)

// The capabilities the SDK attaches are the node's, byte for byte (after
// the kernel resolves "our").
func TestStoreCapabilities(t *testing.T) {
	f := newFake(t) // Self: node1@me:pkg:pub
	install(t, f)
	kv, drive := procstore.KVCapability, procstore.DriveCapability
	for _, c := range []struct {
		pkg, name, kind string
		capOf           func(node, pkg, name, kind string) kernel.Capability
		got             Capability
	}{
		{"notes:examples", "index", "read", kv, KV("notes:examples", "index").ReadCapability()},
		{"notes:examples", "index", "write", kv, KV("notes:examples", "index").WriteCapability()},
		{"pkg:pub", "db", "read", kv, KV("", "db").ReadCapability()},
		{"pkg:pub", "odd\"\\\n\x01", "write", kv, KV("", "odd\"\\\n\x01").WriteCapability()},
		{"notes:examples", "notes", "read", drive, Drive("notes:examples", "notes").ReadCapability()},
		{"pkg:pub", "notes", "write", drive, Drive("", "notes").WriteCapability()},
		{"pkg:pub", "t\tb\bf\f\r\x1f", "read", drive, Drive("", "t\tb\bf\f\r\x1f").ReadCapability()},
	} {
		want := c.capOf(kernel.OurNode, c.pkg, c.name, c.kind)
		if c.got.Issuer != want.Issuer.String() || c.got.Params != want.Params {
			t.Errorf("capability %v, want %v", c.got, want)
		}
		canon, err := kernel.CanonicalParams(c.got.Params, 0)
		if err != nil || canon != c.got.Params {
			t.Errorf("params %s are not canonical (%s, %v)", c.got.Params, canon, err)
		}
	}
	if f.selfN != 1 {
		t.Errorf("self_read called %d times, want once (cached)", f.selfN)
	}
}
