package install

import (
	"strings"
	"testing"

	"github.com/weftos/weft/internal/deptest"
)

// TestImports keeps install in its layer: of weft's own packages it uses
// the kernel, the package loader and the Wasm host (and what they use:
// the Wasm host serves the store call through procstore, which uses the
// store; the registry's files take the store's write barrier) only — no
// control API or daemon. What the Wasm host pulls in from outside weft is
// the host's business (wasm's own tests).
func TestImports(t *testing.T) {
	own := deptest.Exact(
		"github.com/weftos/weft/kernel",
		"github.com/weftos/weft/packages",
		"github.com/weftos/weft/wasm",
		"github.com/weftos/weft/abi",
		"github.com/weftos/weft/procstore",
		"github.com/weftos/weft/store",
	)
	deptest.Check(t, "github.com/weftos/weft/packages/install", func(pkg string) bool {
		return !strings.HasPrefix(pkg, "github.com/weftos/weft/") || own(pkg)
	})
}
