package kernel

import (
	"testing"

	"github.com/weftos/weft/internal/deptest"
)

// TestImports keeps the kernel at the bottom of the house: it depends on
// the standard library alone. In particular no Extism, wazero, gRPC,
// Connect, protobuf, minio-go, libp2p, go-plugin, and nothing else of weft.
func TestImports(t *testing.T) {
	deptest.Check(t, "github.com/weftos/weft/kernel", deptest.Exact())
}
