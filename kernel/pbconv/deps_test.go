package pbconv_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps pbconv a leaf of the edges: it converts between the
// kernel's types and the protobuf message types, and pulls in nothing
// else — no gRPC, no Connect, no go-plugin, nothing else of weft.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps",
		"-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	pkgs := strings.Fields(string(out))
	allowed := map[string]bool{
		"github.com/weftos/weft/kernel/pbconv": true,
		"github.com/weftos/weft/kernel":        true,
		"github.com/weftos/weft/api/weftv1":    true,
	}
	var self, protobuf bool
	for _, pkg := range pkgs {
		switch {
		case pkg == "github.com/weftos/weft/kernel/pbconv":
			self = true
		case allowed[pkg]:
		case strings.HasPrefix(pkg, "google.golang.org/protobuf/"):
			protobuf = true
		default:
			t.Errorf("pbconv depends on %s", pkg)
		}
	}
	if !self || !protobuf {
		t.Fatalf("go list did not list pbconv and protobuf among its dependencies:\n%s", out)
	}
}
