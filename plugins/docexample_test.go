package plugins_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftos/weft/plugins"
)

// The driver docs/drivers.md walks a newcomer through ("Writing a
// driver") is built from the document's own text, launched by weftd's
// loader as a real subprocess, and does what the document says: answers
// in upper case and counts requests in its database.
func TestDocsDriverExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/drivers.md")
	if err != nil {
		t.Fatal(err)
	}
	var src string
	for _, block := range strings.Split(string(doc), "```go\n")[1:] {
		code, _, _ := strings.Cut(block, "```")
		if strings.HasPrefix(code, "// Command upper") {
			src = code
		}
	}
	if src == "" {
		t.Fatal("docs/drivers.md has no go block beginning // Command upper")
	}
	// An overlay puts the document's source in a package of this module
	// without writing into the source tree.
	dir := t.TempDir()
	mainGo := filepath.Join(dir, "main.go")
	if err := os.WriteFile(mainGo, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	pkgDir, err := filepath.Abs("testdata/docdriver")
	if err != nil {
		t.Fatal(err)
	}
	overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{filepath.Join(pkgDir, "main.go"): mainGo}})
	if err := os.WriteFile(filepath.Join(dir, "overlay.json"), overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "upper")
	cmd := exec.Command("go", "build", "-overlay", filepath.Join(dir, "overlay.json"), "-trimpath", "-ldflags=-s -w", "-o", bin, "./testdata/docdriver")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the document's driver: %v\n%s", err, out)
	}

	e := newEnv(t)
	e.start(t, plugins.Decl{Name: "upper", Path: bin, SHA256: sum(t, bin), Public: true})
	for _, in := range []string{"hello", "again"} {
		if got := e.mustAsk(t, "upper", in); got != strings.ToUpper(in) {
			t.Fatalf("upper %q: %q", in, got)
		}
	}
	v, ok, err := e.st.KVGet("drivers:weft", "upper", []byte("count"))
	if err != nil || !ok || string(v) != "2" {
		t.Errorf("the count in its database: %q, %v, %v", v, ok, err)
	}
}
