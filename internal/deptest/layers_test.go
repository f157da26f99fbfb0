package deptest

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/weftos/weft"

// TestLayers holds every package of the module, as built for the node and
// as built for guests (GOOS=wasip1), to the layer table of
// docs/architecture.md.
func TestLayers(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := ParseTable(string(doc))
	if err != nil {
		t.Fatalf("docs/architecture.md: %v", err)
	}
	g := Graph{}
	list(t, g)
	list(t, g, "GOOS=wasip1", "GOARCH=wasm")
	for _, want := range []string{"kernel", "daemon", "sdk/go/weft", "examples/echo"} {
		if _, ok := g[want]; !ok {
			t.Fatalf("go list did not list %s: the test would look at too little", want)
		}
	}
	for _, err := range Check(rules, g) {
		t.Error(err)
	}
}

// list adds to g the module's packages that have Go files under env, with
// their imports outside the standard library.
func list(t *testing.T, g Graph, env ...string) {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-f",
		`{{if .GoFiles}}{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{end}}`, module+"/...")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s go list: %v\n%s", strings.Join(env, " "), err, out)
	}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		pkg, ok := strings.CutPrefix(f[0], module+"/")
		if !ok {
			t.Fatalf("go list named %s, outside %s", f[0], module)
		}
		imports := g[pkg]
		if imports == nil {
			imports = []string{} // listed, even with no imports
		}
		for _, imp := range f[1:] {
			if rel, ok := strings.CutPrefix(imp, module+"/"); ok {
				imp = rel
			} else if !isExternal(imp) {
				continue // the standard library
			}
			if !slices.Contains(imports, imp) {
				imports = append(imports, imp)
			}
		}
		g[pkg] = imports
	}
}
