package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnknownImportRefused installs, through the weft CLI into the real
// weftd, packages whose module imports a function the node does not
// provide (env.system) or a weft function with the wrong type. Each is the
// user's error, caught when the package is validated: weft exits 2 with
// invalid_argument naming the module and the import (for a type, both
// types), with --approve-all (InstallPackage) as without
// (InspectPackage); nothing is installed, and the node logs no internal
// error.
func TestUnknownImportRefused(t *testing.T) {
	n := startNode(t, t.TempDir())
	for _, tc := range []struct {
		name, imports string
		want          []string
	}{
		{"system", `(import "env" "system" (func (param i32) (result i32)))`, []string{
			"invalid_argument: bad package: system.wasm: imports env.system, which this node does not provide",
			"it provides the functions of weft (docs/abi.md), wasi_snapshot_preview1 and extism:host/env",
		}},
		{"badsend", `(import "weft" "send" (func (param i32 i32) (result i32)))`, []string{
			"invalid_argument: bad package: badsend.wasm: imports weft.send with type (i32, i32) -> (i32); it has type (i32, i32) -> (i64)",
		}},
	} {
		pkg := importPackage(t, tc.name, tc.imports)
		for _, args := range [][]string{{"install", "--approve-all", pkg}, {"install", pkg}} {
			out, errOut, code := n.weft(t, args...)
			if code != 2 || out != "" {
				t.Errorf("weft %s: code %d, stdout %q, stderr %q; want code 2 and no output", strings.Join(args, " "), code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("weft %s: stderr %q does not say %q", strings.Join(args, " "), errOut, w)
				}
			}
		}
	}

	// Nothing was installed: no package, no process, no file.
	if out, errOut, code := n.weft(t, "--json", "packages"); code != 0 || strings.Contains(out, "imports:e2e") {
		t.Errorf("weft packages: code %d, stdout %q, stderr %q; want no package", code, out, errOut)
	}
	if out, errOut, code := n.weft(t, "ps"); code != 0 || strings.Contains(out, "imports:e2e") {
		t.Errorf("weft ps: code %d, stdout %q, stderr %q; want no process of the package", code, out, errOut)
	}
	if files, err := os.ReadDir(filepath.Join(n.dir, "packages")); err != nil || len(files) != 0 {
		t.Errorf("the registry's directory holds %v (%v); want nothing", files, err)
	}
	// The install is audited as invalid_argument.
	var audit map[string]any
	n.waitFor(t, "an audit line for InstallPackage", func(line string) bool {
		return jsonRecord("audit", &audit)(line) && audit["procedure"] == "/weft.v1.PackageService/InstallPackage"
	})
	if audit["outcome"] != "invalid_argument" {
		t.Errorf("audit line %v; want outcome invalid_argument", audit)
	}
	n.stop(t)
	if strings.Contains(n.stderr(), "internal error") {
		t.Errorf("weftd logged an internal error:\n%s", n.stderr())
	}
}

// importPackage makes package imports:e2e in a new directory: one process
// of module NAME.wasm, a weft module with the given imports.
func importPackage(t *testing.T, name, imports string) string {
	t.Helper()
	w2w, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Fatal("wat2wasm is not installed: run `make tools` (it installs wabt)")
	}
	dir := t.TempDir()
	src := filepath.Join(t.TempDir(), name+".wat")
	module := "(module\n  " + imports + `
  (memory (export "memory") 1)
  (func (export "weft_abi_v1"))
  (func (export "init") (result i32) (i32.const 0)))`
	if err := os.WriteFile(src, []byte(module), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(w2w, src, "-o", filepath.Join(dir, name+".wasm")).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, out)
	}
	files := map[string]string{
		"metadata.json": `{"package_name": "imports", "publisher": "e2e", "version": "0.1.0"}`,
		"manifest.json": `[{"process_name": "p", "process_wasm_path": "/` + name + `.wasm", "on_exit": "None"}]`,
	}
	for file, text := range files {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
