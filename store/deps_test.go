package store_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps store at the bottom of the house: outside the standard
// library it may depend on bbolt (and golang.org/x/sys, which bbolt needs)
// only — nothing else of weft, no Extism, wazero, gRPC, Connect, minio or
// libp2p.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps",
		"-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := []string{"github.com/weftos/weft/store", "go.etcd.io/bbolt", "golang.org/x/sys/"}
	var seen int
	for _, pkg := range strings.Fields(string(out)) {
		seen++
		ok := false
		for _, a := range allowed {
			if pkg == a || strings.HasPrefix(pkg, strings.TrimSuffix(a, "/")+"/") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("store depends on %s", pkg)
		}
	}
	if seen < 2 {
		t.Fatalf("go list found %d non-standard packages, want at least store and bbolt:\n%s", seen, out)
	}
}
