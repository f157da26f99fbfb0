package wasm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/weftos/weft/abi"
	"github.com/weftos/weft/kernel"
)

// watText assembles WebAssembly text src, cached as buildWAT's are.
func watText(tb testing.TB, src string) []byte {
	tb.Helper()
	w2w := needTool(tb, "wat2wasm")
	sum := sha256.Sum256([]byte(src))
	return cached(tb, "wattext-"+hex.EncodeToString(sum[:12]), ".wasm", func(out string) ([]byte, error) {
		in := out + ".wat"
		if err := os.WriteFile(in, []byte(src), 0o600); err != nil {
			return nil, err
		}
		defer os.Remove(in)
		return exec.Command(w2w, in, "-o", out).CombinedOutput()
	})
}

// importing is a minimal weft module of ABI version 1 with the given
// imports.
func importing(imports string) string { return importingAt(imports, 1) }

// importingAt is a minimal weft module declaring the given ABI versions,
// with the given imports.
func importingAt(imports string, versions ...int) string {
	var declare string
	for _, v := range versions {
		declare += fmt.Sprintf("(func (export \"weft_abi_v%d\"))\n  ", v)
	}
	return `(module
  ` + imports + `
  (memory (export "memory") 1)
  ` + declare + `(func (export "init") (result i32) (i32.const 0)))`
}

const notProvided = "which this node does not provide: it provides the functions of weft (docs/abi.md), wasi_snapshot_preview1 and extism:host/env"

// importCases are modules that import what the node does not provide, and
// the error each gets (after "wasm: NAME: " from Compile).
var importCases = []struct {
	name, wat, want string
}{
	{"env.system", importing(`(import "env" "system" (func (param i32) (result i32)))`),
		"imports env.system, " + notProvided},
	{"unknown weft function", importing(`(import "weft" "exec" (func (param i32 i32) (result i32)))`),
		"imports weft.exec, " + notProvided},
	{"weft.send wrong type", importing(`(import "weft" "send" (func (param i32 i32) (result i32)))`),
		"imports weft.send with type (i32, i32) -> (i32); it has type (i32, i32) -> (i64)"},
	{"weft.log wrong params", importing(`(import "weft" "log" (func (param i64 i32 i32)))`),
		"imports weft.log with type (i64, i32, i32) -> (); it has type (i32, i32, i32) -> ()"},
	{"unknown WASI function", importing(`(import "wasi_snapshot_preview1" "sock_open" (func (param i32) (result i32)))`),
		"imports wasi_snapshot_preview1.sock_open, " + notProvided},
	{"WASI fd_write wrong type", importing(`(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32) (result i32)))`),
		"imports wasi_snapshot_preview1.fd_write with type (i32, i32, i32) -> (i32); it has type (i32, i32, i32, i32) -> (i32)"},
	{"unknown Extism function", importing(`(import "extism:host/env" "system" (func (param i64) (result i64)))`),
		"imports extism:host/env.system, " + notProvided},
	{"Extism alloc wrong type", importing(`(import "extism:host/env" "alloc" (func (param i32) (result i32)))`),
		"imports extism:host/env.alloc with type (i32) -> (i32); it has type (i64) -> (i64)"},
	{"a global", importing(`(import "env" "g" (global i32))`),
		"imports global env.g, which this node does not provide: it provides functions only, those of weft (docs/abi.md), wasi_snapshot_preview1 and extism:host/env"},
	{"a table", importing(`(import "weft" "t" (table 1 funcref))`),
		"imports table weft.t, which this node does not provide"},
	{"a memory", `(module
  (import "env" "memory" (memory 1))
  (export "memory" (memory 0))
  (func (export "weft_abi_v1"))
  (func (export "init") (result i32) (i32.const 0)))`,
		"imports memory env.memory, which this node does not provide"},
	{"a name that would not print", importing(`(import "env" "sys\1b[2Jtem" (func))`),
		`imports env."sys\x1b[2Jtem", ` + notProvided},
	// A function of version 2 needs weft_abi_v2.
	{"weft.defer in a version 1 module", importing(`(import "weft" "defer" (func (result i64)))`),
		"imports weft.defer, which ABI version 2 added, but declares only version 1: export weft_abi_v2 to use it"},
	{"weft.respond_deferred in a version 1 module", importing(`(import "weft" "await" (func (result i32)))
  (import "weft" "respond_deferred" (func (param i64 i32 i32) (result i32)))`),
		"imports weft.respond_deferred, which ABI version 2 added, but declares only version 1: export weft_abi_v2 to use it"},
	{"weft.defer wrong type in a version 2 module", importingAt(`(import "weft" "defer" (func (result i32)))`, 2),
		"imports weft.defer with type () -> (i32); it has type () -> (i64)"},
	// The first import the node lacks is named, after ones it provides.
	{"after good ones", importing(`(import "weft" "send" (func (param i32 i32) (result i64)))
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (import "env" "system" (func (param i32) (result i32)))
  (import "weft" "exec" (func))`),
		"imports env.system, " + notProvided},
}

func TestCheckModuleRefusesImports(t *testing.T) {
	e := newEnv(t, envOpts{})
	for _, tc := range importCases {
		t.Run(tc.name, func(t *testing.T) {
			bin := watText(t, tc.wat)
			err := CheckModule(bin)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckModule: %v; want an error containing %q", err, tc.want)
			}
			// Compile refuses it the same way, naming the module.
			_, cerr := e.host.Compile("m.wasm", bin)
			if want := "wasm: m.wasm: " + err.Error(); cerr == nil || cerr.Error() != want {
				t.Fatalf("Compile: %v; want %q", cerr, want)
			}
		})
	}
}

func TestCheckModuleAcceptsProvidedImports(t *testing.T) {
	bin := watText(t, importing(`(import "weft" "send" (func (param i32 i32) (result i64)))
  (import "weft" "await" (func (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
  (import "extism:host/env" "alloc" (func (param i64) (result i64)))`))
	if err := CheckModule(bin); err != nil {
		t.Fatal(err)
	}
	// Version 2's functions, with version 1's, in a module declaring
	// version 2 alone or both.
	for _, vs := range [][]int{{2}, {1, 2}} {
		bin := watText(t, importingAt(`(import "weft" "await" (func (result i32)))
  (import "weft" "defer" (func (result i64)))
  (import "weft" "respond_deferred" (func (param i64 i32 i32) (result i32)))`, vs...))
		if err := CheckModule(bin); err != nil {
			t.Errorf("declaring versions %v: %v", vs, err)
		}
	}
	// What the rest of checkModule refuses, CheckModule refuses too.
	for name, want := range map[string]string{"v3": "declares ABI version 3", "noinit": `exports no function named "init"`} {
		if err := CheckModule(buildWAT(t, name)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want %q", name, err, want)
		}
	}
	if err := CheckModule([]byte("\x00asm\x01\x00\x00\x00\x01")); err == nil || !strings.HasPrefix(err.Error(), "malformed module: ") {
		t.Errorf("truncated module: %v", err)
	}
}

// TestEveryProvidedImportLinks imports every function the node says it
// provides, each with the type it says, into one module and runs it: a
// function Extism or wazero does not link, or links with another type,
// fails the instantiation.
func TestEveryProvidedImportLinks(t *testing.T) {
	var imports strings.Builder
	funcs := providedFuncs()
	for _, mod := range slices.Sorted(maps.Keys(funcs)) {
		if len(funcs[mod]) == 0 {
			t.Errorf("the node provides no function of %s", mod)
		}
		for _, name := range slices.Sorted(maps.Keys(funcs[mod])) {
			fmt.Fprintf(&imports, "(import %q %q (func %s))\n  ", mod, name, watSignature(funcs[mod][name]))
		}
	}
	for _, want := range []string{`"weft" "send" (func (param i32 i32) (result i64))`, `"wasi_snapshot_preview1" "fd_write"`, `"extism:host/env" "alloc"`} {
		if !strings.Contains(imports.String(), want) {
			t.Fatalf("the imports miss %s:\n%s", want, imports.String())
		}
	}
	e := newEnv(t, envOpts{})
	m := e.compile(t, "all.wasm", watText(t, importingAt(imports.String(), abi.Version)))
	id := e.start(t, "all", m, false, ProcessOptions{})
	info := e.waitFor(t, id, "exited", func(in kernel.ProcessInfo) bool { return in.State == kernel.StateExited })
	if info.LastError != "" {
		t.Fatalf("a module importing every provided function failed: %s", info.LastError)
	}
}

// watSignature is t in WebAssembly text: (param ...) (result ...).
func watSignature(t funcType) string {
	names := func(vs []byte) string {
		var s []string
		for _, v := range vs {
			s = append(s, map[byte]string{0x7f: "i32", 0x7e: "i64", 0x7d: "f32", 0x7c: "f64"}[v])
		}
		return strings.Join(s, " ")
	}
	var s string
	if len(t.params) > 0 {
		s += "(param " + names(t.params) + ") "
	}
	if len(t.results) > 0 {
		s += "(result " + names(t.results) + ")"
	}
	return s
}
