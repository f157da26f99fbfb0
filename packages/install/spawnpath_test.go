package install_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/packages"
	"github.com/weftos/weft/packages/install"
)

// spawnParentWAT spawns, from a package with parent.wasm and child.wasm,
// children by the spawn spec's wasm path in each form docs/abi.md
// describes. init returns 0 when every spawn answered as the page says,
// else the number of the step that did not.
const spawnParentWAT = `(module
  (import "weft" "spawn" (func $spawn (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "weft_abi_v1"))
  ;; Spawn specs: str name, str wasm path, u8 on_exit, u8 public, u16 0, caps (none).
  (data (i32.const 100) "\01\00\00\00a\0a\00\00\00child.wasm\00\00\00\00\00\00\00\00")   ;; 27 bytes
  (data (i32.const 200) "\01\00\00\00b\0b\00\00\00/child.wasm\00\00\00\00\00\00\00\00")  ;; 28
  (data (i32.const 300) "\01\00\00\00c\0c\00\00\00./child.wasm\00\00\00\00\00\00\00\00") ;; 29
  (data (i32.const 400) "\01\00\00\00d\0c\00\00\00//child.wasm\00\00\00\00\00\00\00\00") ;; 29
  (data (i32.const 500) "\01\00\00\00e\09\00\00\00nope.wasm\00\00\00\00\00\00\00\00")    ;; 26
  (func (export "init") (result i32)
    ;; 1, 2: relative to the package root, with or without a leading "/":
    ;; the child's id, "a:spawnpath:test" (16 bytes), is written to 1000.
    (if (i32.ne (call $spawn (i32.const 100) (i32.const 27) (i32.const 1000) (i32.const 64)) (i32.const 16)) (then (return (i32.const 1))))
    (if (i32.ne (call $spawn (i32.const 200) (i32.const 28) (i32.const 1000) (i32.const 64)) (i32.const 16)) (then (return (i32.const 2))))
    ;; 3, 4: a "." or empty segment names no module: WEFT_ENOTFOUND.
    (if (i32.ne (call $spawn (i32.const 300) (i32.const 29) (i32.const 1000) (i32.const 64)) (i32.const -7)) (then (return (i32.const 3))))
    (if (i32.ne (call $spawn (i32.const 400) (i32.const 29) (i32.const 1000) (i32.const 64)) (i32.const -7)) (then (return (i32.const 4))))
    ;; 5: nor does a module the package does not have.
    (if (i32.ne (call $spawn (i32.const 500) (i32.const 26) (i32.const 1000) (i32.const 64)) (i32.const -7)) (then (return (i32.const 5))))
    (i32.const 0)))`

const spawnChildWAT = `(module
  (import "weft" "await" (func $await (result i32)))
  (memory (export "memory") 1)
  (func (export "weft_abi_v1"))
  (func (export "init") (result i32)
    (loop $l (br_if $l (i32.ge_s (call $await) (i32.const 0))))
    (i32.const 0)))`

// assemble writes text to dir/name.wat and assembles it to dir/name.wasm.
func assemble(t *testing.T, dir, name, text string) {
	t.Helper()
	w2w, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Fatal("wat2wasm is not installed: run `make tools`")
	}
	src := filepath.Join(t.TempDir(), name+".wat")
	if err := os.WriteFile(src, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command(w2w, src, "-o", filepath.Join(dir, name+".wasm")).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm %s: %v\n%s", name, err, msg)
	}
}

// TestSpawnWasmPath: the spawn spec's wasm path names a module of the
// spawning process's own package relative to the package root, with or
// without a leading "/", as process_wasm_path does.
func TestSpawnWasmPath(t *testing.T) {
	dir := t.TempDir()
	assemble(t, dir, "parent", spawnParentWAT)
	assemble(t, dir, "child", spawnChildWAT)
	for name, text := range map[string]string{
		packages.MetadataFile: `{"package_name": "spawnpath", "publisher": "test", "version": "0.1.0"}`,
		packages.ManifestFile: `[{"process_name": "parent", "process_wasm_path": "parent.wasm"}]`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	k, host := bareNode(t)
	pkg, err := packages.LoadDir(dir, k.Limits())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := install.Start(k, host, pkg, install.Approval{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	info, err := k.WaitProcess(ctx, pid("parent:spawnpath:test"), func(in kernel.ProcessInfo) bool { return in.State == kernel.StateExited })
	if err != nil {
		t.Fatal(err)
	}
	if info.LastError != "" {
		t.Fatalf("the parent failed: %s (the number is the failed step of spawnParentWAT)", info.LastError)
	}
}
