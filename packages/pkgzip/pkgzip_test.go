package pkgzip_test

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weftos/weft/internal/wasmtest"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/packages"
	"github.com/weftos/weft/packages/pkgzip"
)

func TestLimitsMatchPackages(t *testing.T) {
	if pkgzip.MaxBytes != packages.MaxPackageBytes {
		t.Errorf("MaxBytes = %d, packages.MaxPackageBytes = %d", pkgzip.MaxBytes, packages.MaxPackageBytes)
	}
	if pkgzip.MaxFiles != packages.MaxFiles {
		t.Errorf("MaxFiles = %d, packages.MaxFiles = %d", pkgzip.MaxFiles, packages.MaxFiles)
	}
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestRoundTrip(t *testing.T) {
	files := map[string]string{
		"metadata.json":    `{"x": 1}`,
		"manifest.json":    `[]`,
		"b/c/deep.wasm":    strings.Repeat("wasm", 1000),
		"a.txt":            "",
		"b/after-dir.txt":  "z",
		"b/c/d/e/f/g.wasm": "g",
	}
	dir := writeTree(t, files)
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := pkgzip.Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	want := time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range zr.File {
		names = append(names, f.Name)
		if f.Method != zip.Deflate {
			t.Errorf("%s: method %d, want Deflate", f.Name, f.Method)
		}
		if f.Mode() != 0o644 {
			t.Errorf("%s: mode %v, want 0644", f.Name, f.Mode())
		}
		if !f.Modified.Equal(want) {
			t.Errorf("%s: modified %v, want %v", f.Name, f.Modified, want)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if content, ok := files[f.Name]; !ok {
			t.Errorf("unexpected entry %q", f.Name)
		} else if string(got) != content {
			t.Errorf("%s: content %q, want %q", f.Name, got, content)
		}
	}
	wantNames := []string{"a.txt", "b/after-dir.txt", "b/c/d/e/f/g.wasm", "b/c/deep.wasm", "manifest.json", "metadata.json"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("entries %q, want %q", names, wantNames)
	}
}

func TestDeterministic(t *testing.T) {
	dir := writeTree(t, map[string]string{"x/y.txt": "hello", "z.txt": "world", "a": "a"})
	b1, err := pkgzip.Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Another modification time must not change the archive.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "z.txt"), later, later); err != nil {
		t.Fatal(err)
	}
	b2, err := pkgzip.Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1, b2) {
		t.Error("two archives of the same files differ")
	}
}

func TestSymlinkRefused(t *testing.T) {
	dir := writeTree(t, map[string]string{"real.txt": "x"})
	link := filepath.Join(dir, "sub", "link.txt")
	if err := os.Mkdir(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "real.txt"), link); err != nil {
		t.Fatal(err)
	}
	b, err := pkgzip.Dir(dir)
	if err == nil {
		t.Fatalf("Dir with a symbolic link = %d bytes, nil error", len(b))
	}
	if !strings.Contains(err.Error(), link) || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("error %q does not name the link %s", err, link)
	}
}

func TestTooManyFiles(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i <= pkgzip.MaxFiles; i++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", i)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pkgzip.Dir(dir); err == nil || !strings.Contains(err.Error(), "more than 4096 files") {
		t.Errorf("Dir of %d files: error %v, want too many files", pkgzip.MaxFiles+1, err)
	}
}

func TestTooLarge(t *testing.T) {
	dir := t.TempDir()
	// Sparse files: no disk space is used.
	for _, name := range []string{"a", "b"} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(pkgzip.MaxBytes/2 + 1); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if _, err := pkgzip.Dir(dir); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Dir of %d bytes: error %v, want too large", pkgzip.MaxBytes+2, err)
	}
}

func TestExampleLoads(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := wasmtest.BuildExamples(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, name := range []string{"echo", "counter"} {
		b, err := pkgzip.Dir(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		pkg, err := packages.LoadZip(bytes.NewReader(b), int64(len(b)), kernel.DefaultLimits())
		if err != nil {
			t.Fatalf("%s: LoadZip: %v", name, err)
		}
		if pkg.ID.Package != name || len(pkg.Modules) == 0 {
			t.Errorf("%s: loaded package %v with %d modules", name, pkg.ID, len(pkg.Modules))
		}
	}
}
