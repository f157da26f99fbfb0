package cli

import (
	"testing"

	"github.com/weftos/weft/internal/deptest"
)

// TestImports keeps the weft command light: outside the standard library
// it depends on the API's generated types and clients, Connect, protobuf
// and pkgzip only — no kernel, no Wasm runtime, no store, no daemon.
func TestImports(t *testing.T) {
	deptest.Check(t, "github.com/weftos/weft/cmd/weft/cli", func(pkg string) bool {
		return deptest.Exact(
			"github.com/weftos/weft/api/weftv1",
			"github.com/weftos/weft/api/weftv1/weftv1connect",
			"github.com/weftos/weft/packages/pkgzip",
		)(pkg) || deptest.Prefixes("connectrpc.com/connect", "google.golang.org/protobuf")(pkg)
	})
}
