package pbconv_test

import (
	"testing"

	"github.com/weftos/weft/internal/deptest"
)

// TestImports keeps pbconv a leaf of the edges: it converts between the
// kernel's types and the protobuf message types, and pulls in nothing
// else — no gRPC, no Connect, no go-plugin, nothing else of weft.
func TestImports(t *testing.T) {
	deptest.Check(t, "github.com/weftos/weft/kernel/pbconv", deptest.Prefixes(
		"github.com/weftos/weft/kernel",
		"github.com/weftos/weft/api/weftv1",
		"google.golang.org/protobuf",
	))
}
