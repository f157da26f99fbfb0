package kernel

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps the kernel at the bottom of the house: it depends on
// the standard library alone. In particular no Extism, wazero, gRPC,
// Connect, protobuf, minio-go, libp2p, go-plugin, and nothing else of weft.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps",
		"-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) == 0 {
		t.Fatalf("go list found nothing, not even the kernel itself:\n%s", out)
	}
	for _, pkg := range pkgs {
		if pkg != "github.com/weftos/weft/kernel" {
			t.Errorf("kernel depends on %s", pkg)
		}
	}
}
