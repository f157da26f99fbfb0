package packages

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/weftos/weft/kernel"
)

// Wasm value types and export kinds, for the hand-assembled test modules.
const (
	i32 byte = 0x7f
	i64 byte = 0x7e

	exportFunc   byte = 0x00
	exportMemory byte = 0x02
)

// wasmFunc is one function of a test module: exported under name (when
// not empty), returning zero values of its result types.
type wasmFunc struct {
	name            string
	params, results []byte
}

// wasmSpec describes a test module.
type wasmSpec struct {
	memory   bool
	memName  string // export name of the memory; empty for none
	memPages uint32 // minimum pages
	memMax   uint32 // maximum pages; 0 for none
	funcs    []wasmFunc
}

// abiSpec is a module with everything docs/abi.md requires.
func abiSpec() wasmSpec {
	return wasmSpec{
		memory: true, memName: "memory", memPages: 1,
		funcs: []wasmFunc{
			{name: "init", results: []byte{i32}},
			{name: "weft_abi_v1"},
		},
	}
}

// goodWasm is a minimal valid weft module.
func goodWasm() []byte { return buildWasm(abiSpec()) }

// without returns s minus the function exported as name.
func (s wasmSpec) without(name string) wasmSpec {
	s.funcs = slices.DeleteFunc(slices.Clone(s.funcs), func(f wasmFunc) bool { return f.name == name })
	return s
}

// with returns s plus f.
func (s wasmSpec) with(f wasmFunc) wasmSpec {
	s.funcs = append(slices.Clone(s.funcs), f)
	return s
}

// buildWasm emits the binary format of s (WebAssembly core 1.0, §5): a
// type per function, the functions, one memory, the exports and the code.
func buildWasm(s wasmSpec) []byte {
	out := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	section := func(id byte, items [][]byte) {
		body := uleb(uint32(len(items)))
		for _, it := range items {
			body = append(body, it...)
		}
		out = append(out, id)
		out = append(out, uleb(uint32(len(body)))...)
		out = append(out, body...)
	}
	var types, funcs, exports, code [][]byte
	for i, f := range s.funcs {
		t := []byte{0x60}
		t = append(t, uleb(uint32(len(f.params)))...)
		t = append(t, f.params...)
		t = append(t, uleb(uint32(len(f.results)))...)
		t = append(t, f.results...)
		types = append(types, t)
		funcs = append(funcs, uleb(uint32(i)))
		if f.name != "" {
			exports = append(exports, exportEntry(f.name, exportFunc, uint32(i)))
		}
		body := []byte{0x00} // no locals
		for _, r := range f.results {
			body = append(body, map[byte]byte{i32: 0x41, i64: 0x42}[r], 0x00) // iNN.const 0
		}
		body = append(body, 0x0b) // end
		code = append(code, append(uleb(uint32(len(body))), body...))
	}
	if s.memory && s.memName != "" {
		exports = append(exports, exportEntry(s.memName, exportMemory, 0))
	}
	if len(types) > 0 {
		section(1, types)
		section(3, funcs)
	}
	if s.memory {
		limits := append([]byte{0x00}, uleb(s.memPages)...)
		if s.memMax > 0 {
			limits = append(append([]byte{0x01}, uleb(s.memPages)...), uleb(s.memMax)...)
		}
		section(5, [][]byte{limits})
	}
	if len(exports) > 0 {
		section(7, exports)
	}
	if len(code) > 0 {
		section(10, code)
	}
	return out
}

func exportEntry(name string, kind byte, index uint32) []byte {
	e := uleb(uint32(len(name)))
	e = append(e, name...)
	e = append(e, kind)
	return append(e, uleb(index)...)
}

func uleb(v uint32) []byte { return binary.AppendUvarint(nil, uint64(v)) }

const (
	goodMetadata = `{"package_name": "echo", "publisher": "examples", "version": "0.1.0"}`
	goodManifest = `[
  {
    "process_name": "echo",
    "process_wasm_path": "/echo.wasm",
    "on_exit": "Restart",
    "request_networking": true,
    "request_capabilities": ["chain:echo:examples"],
    "grant_capabilities": ["chain:echo:examples"],
    "public": true
  },
  {
    "process_name": "chain",
    "process_wasm_path": "/bin/chain.wasm",
    "on_exit": {"Requests": [
      {"target": "our@echo:echo:examples", "body": "aGk=", "metadata": "chain died"},
      {"target": "node-1.example@log:log:examples"}
    ]},
    "request_networking": false,
    "request_capabilities": [
      {"process": "drive:store:weft", "params": {"path": "/echo", "mode": "read"}},
      {"process": "node-2@peer:peer:examples", "params": "messaging"}
    ],
    "grant_capabilities": [
      {"process": "echo:echo:examples", "params": {"z": [1, 2], "a": null}},
      {"process": "our@other:other:examples", "params": "messaging"}
    ],
    "public": false
  }
]`
)

// goodFiles is a complete package: the two processes of goodManifest, a
// module no process names (spawnable) and a file that is ignored.
func goodFiles() map[string][]byte {
	return map[string][]byte{
		"metadata.json":   []byte(goodMetadata),
		"manifest.json":   []byte(goodManifest),
		"echo.wasm":       goodWasm(),
		"bin/chain.wasm":  goodWasm(),
		"bin/child.wasm":  goodWasm(),
		"docs/README.md":  []byte("# echo\n"),
		"pkg/ui/app.html": []byte("<p>hi</p>"),
	}
}

// writeDir writes files under a new temporary directory and returns it.
func writeDir(t testing.TB, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// zipEntry is one entry of a test archive; raw entries are written as
// given (CreateRaw), so headers may lie.
type zipEntry struct {
	name  string
	data  []byte
	mode  fs.FileMode // 0 for a regular file
	store bool        // stored, not deflated (a deflater costs about 1 MiB)
	raw   *zip.FileHeader
}

func buildZip(t testing.TB, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		if e.raw != nil {
			w, err := zw.CreateRaw(e.raw)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(e.data); err != nil {
				t.Fatal(err)
			}
			continue
		}
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.store {
			h.Method = zip.Store
		}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zipFiles zips files, in name order.
func zipFiles(t testing.TB, files map[string][]byte, extra ...zipEntry) []byte {
	t.Helper()
	var entries []zipEntry
	for _, name := range sortedKeys(files) {
		entries = append(entries, zipEntry{name: name, data: files[name]})
	}
	return buildZip(t, append(entries, extra...)...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func loadZipBytes(b []byte, lim kernel.Limits) (*Package, error) {
	return LoadZip(bytes.NewReader(b), int64(len(b)), lim)
}

// wantRefused fails t unless err is an *Error about file whose text holds
// every one of want.
func wantRefused(t *testing.T, err error, file string, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("loaded; want a refusal naming %q and %q", file, want)
	}
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %q (%T) is not a *packages.Error", err, err)
	}
	if pe.File != file {
		t.Errorf("error %q names file %q, want %q", err, pe.File, file)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}
