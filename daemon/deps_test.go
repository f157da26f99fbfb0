package daemon_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNobodyImportsDaemon keeps daemon at the top of the house: it knows
// every layer, so no package of weft but cmd/weftd may import it.
func TestNobodyImportsDaemon(t *testing.T) {
	const self = "github.com/weftos/weft/daemon"
	out, err := exec.Command("go", "list", "-e",
		"-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "github.com/weftos/weft/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	var seen bool
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if f[0] == self {
			seen = true
		}
		for _, imp := range f[1:] {
			if imp == self && f[0] != "github.com/weftos/weft/cmd/weftd" {
				t.Errorf("%s imports %s", f[0], self)
			}
		}
	}
	if !seen {
		t.Fatalf("go list did not list %s itself:\n%s", self, out)
	}
}
