package install_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/packages"
	"github.com/weftos/weft/packages/install"
)

// wat assembles a weft module (memory, weft_abi_v1 and init exported)
// with the given imports.
func wat(t *testing.T, imports string) []byte {
	t.Helper()
	w2w, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Fatal("wat2wasm is not installed: run `make tools`")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "m.wat")
	out := filepath.Join(dir, "m.wasm")
	text := "(module\n  " + imports + `
  (memory (export "memory") 1)
  (func (export "weft_abi_v1"))
  (func (export "init") (result i32) (i32.const 0)))`
	if err := os.WriteFile(src, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command(w2w, src, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// badImports are modules the Wasm host refuses for their imports, and
// what the refusal must say.
var badImports = []struct {
	name, imports string
	want          []string
}{
	{"env.system", `(import "env" "system" (func (param i32) (result i32)))`,
		[]string{"imports env.system, which this node does not provide", "weft (docs/abi.md), wasi_snapshot_preview1 and extism:host/env"}},
	{"unknown weft function", `(import "weft" "exec" (func (param i32 i32) (result i32)))`,
		[]string{"imports weft.exec, which this node does not provide"}},
	{"wrong signature", `(import "weft" "send" (func (param i64 i32) (result i64)))`,
		[]string{"imports weft.send with type (i64, i32) -> (i64); it has type (i32, i32) -> (i64)"}},
	{"a version 2 function in a version 1 module", `(import "weft" "defer" (func (result i64)))`,
		[]string{"imports weft.defer, which ABI version 2 added, but declares only version 1: export weft_abi_v2 to use it"}},
}

// wantModuleRefused checks that err is a *packages.Error for module file
// saying each of want.
func wantModuleRefused(t *testing.T, what string, err error, file string, want []string) {
	t.Helper()
	var pe *packages.Error
	if !errors.As(err, &pe) || pe.File != file {
		t.Fatalf("%s: %v (%T); want a *packages.Error for %s", what, err, err, file)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("%s: %q does not say %q", what, err, w)
		}
	}
}

// TestRegistryRefusesUnknownImports: a package with a module importing
// what the node does not provide is refused as the package's fault by
// Inspect and by Install, before anything is written or started, whether
// the manifest names the module or a process could only spawn it.
func TestRegistryRefusesUnknownImports(t *testing.T) {
	n := newRegNode(t)
	for _, tc := range badImports {
		for _, file := range []string{"echo.wasm", "bin/child.wasm"} {
			bad := wat(t, tc.imports)
			zip := n.exampleZip("echo", func(dir string) {
				path := filepath.Join(dir, filepath.FromSlash(file))
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, bad, 0o600); err != nil {
					t.Fatal(err)
				}
			})
			what := tc.name + " in " + file
			_, err := n.reg.Inspect(zip)
			wantModuleRefused(t, what+": inspect", err, file, tc.want)
			_, _, err = n.reg.Install(zip, install.Approval{All: true})
			wantModuleRefused(t, what+": install", err, file, tc.want)
			if f := n.files(); len(f) != 0 {
				t.Errorf("%s: files left: %v", what, f)
			}
			if ps := n.userProcesses(); len(ps) != 0 {
				t.Errorf("%s: processes left: %v", what, ps)
			}
			if keys := n.tableKeys(); len(keys) != 0 {
				t.Errorf("%s: table records left: %v", what, keys)
			}
		}
	}
	// The same package with its own module installs.
	n.install(n.exampleZip("echo", nil), install.Approval{All: true})
	if got := n.ask(echoID, "hello"); got != "hello" {
		t.Fatalf("echo answered %q", got)
	}
}

// TestStartRefusesUnknownImports: Start, given a loaded package, refuses
// it the same way before any module compiles or any process starts.
func TestStartRefusesUnknownImports(t *testing.T) {
	n := newNode(t, kernel.Limits{})
	for _, tc := range badImports {
		pkg := twin(n)
		pkg.Modules["z.wasm"] = wat(t, tc.imports)
		pkg.Processes[1].WasmPath = "z.wasm"
		_, err := install.Start(n.k, n.host, pkg, install.Approval{All: true})
		wantModuleRefused(t, tc.name, err, "z.wasm", tc.want)
		if ps := n.userProcesses(); len(ps) != 0 {
			t.Fatalf("%s: processes started: %v", tc.name, ps)
		}
	}
}
