package packages

import (
	"testing"

	"github.com/weftos/weft/internal/deptest"
)

// TestImports keeps the package loader low in the house: outside the
// standard library it depends on the kernel's types and on wazero (to
// compile modules) only — no Extism, gRPC, Connect, store or daemon.
func TestImports(t *testing.T) {
	kernel := deptest.Exact("github.com/weftos/weft/kernel")
	wazero := deptest.Prefixes("github.com/tetratelabs/wazero")
	deptest.Check(t, "github.com/weftos/weft/packages", func(pkg string) bool {
		return kernel(pkg) || wazero(pkg)
	})
}
