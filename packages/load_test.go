package packages

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/weftos/weft/kernel"
)

func our(name, pkg, pub string) kernel.Address {
	return kernel.Address{Node: kernel.OurNode, Process: kernel.ProcessId{Name: name, Package: pkg, Publisher: pub}}
}

// wantGood is what goodFiles loads as.
func wantGood() *Package {
	echo := kernel.ProcessId{Name: "echo", Package: "echo", Publisher: "examples"}
	chain := kernel.ProcessId{Name: "chain", Package: "echo", Publisher: "examples"}
	return &Package{
		ID:      kernel.PackageId{Package: "echo", Publisher: "examples"},
		Version: "0.1.0",
		Processes: []Process{
			{
				Name: "echo", ID: echo, WasmPath: "echo.wasm",
				OnExit:              kernel.OnExit{Kind: kernel.OnExitRestart},
				RequestNetworking:   true,
				RequestCapabilities: []kernel.Capability{{Issuer: our("chain", "echo", "examples"), Params: kernel.MessagingParams}},
				GrantTo:             []kernel.ProcessId{chain},
				Public:              true,
			},
			{
				Name: "chain", ID: chain, WasmPath: "bin/chain.wasm",
				OnExit: kernel.OnExit{Kind: kernel.OnExitRequests, Requests: []kernel.ExitRequest{
					{Target: our("echo", "echo", "examples"), Body: []byte("hi"), Metadata: "chain died"},
					{Target: kernel.Address{Node: "node-1.example", Process: kernel.ProcessId{Name: "log", Package: "log", Publisher: "examples"}}},
				}},
				RequestCapabilities: []kernel.Capability{
					{Issuer: our("drive", "store", "weft"), Params: `{"mode":"read","path":"/echo"}`},
					{Issuer: kernel.Address{Node: "node-2", Process: kernel.ProcessId{Name: "peer", Package: "peer", Publisher: "examples"}}, Params: kernel.MessagingParams},
				},
				GrantCapabilities: []Grant{
					{To: echo, Capability: kernel.Capability{Issuer: our("chain", "echo", "examples"), Params: `{"a":null,"z":[1,2]}`}},
					{To: kernel.ProcessId{Name: "other", Package: "other", Publisher: "examples"}, Capability: kernel.Capability{Issuer: our("chain", "echo", "examples"), Params: kernel.MessagingParams}},
				},
			},
		},
		Modules: map[string][]byte{
			"echo.wasm":      goodWasm(),
			"bin/chain.wasm": goodWasm(),
			"bin/child.wasm": goodWasm(),
		},
	}
}

func TestLoadDir(t *testing.T) {
	got, err := LoadDir(writeDir(t, goodFiles()), kernel.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if want := wantGood(); !reflect.DeepEqual(got, want) {
		t.Errorf("LoadDir:\n got %+v\nwant %+v", got, want)
	}
}

func TestLoadZip(t *testing.T) {
	got, err := loadZipBytes(zipFiles(t, goodFiles()), kernel.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if want := wantGood(); !reflect.DeepEqual(got, want) {
		t.Errorf("LoadZip:\n got %+v\nwant %+v", got, want)
	}
}

// TestLoadZipDirectories: directory entries and "./" prefixes are fine.
func TestLoadZipDirectories(t *testing.T) {
	files := goodFiles()
	b := buildZip(t,
		zipEntry{name: "bin/", mode: os.ModeDir | 0o755},
		zipEntry{name: "./metadata.json", data: files["metadata.json"]},
		zipEntry{name: "manifest.json", data: files["manifest.json"]},
		zipEntry{name: "echo.wasm", data: files["echo.wasm"]},
		zipEntry{name: "bin/chain.wasm", data: files["bin/chain.wasm"]},
	)
	p, err := loadZipBytes(b, kernel.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Processes) != 2 || len(p.Modules) != 2 {
		t.Errorf("loaded %d processes and %d modules, want 2 and 2", len(p.Processes), len(p.Modules))
	}
}

func TestLoad(t *testing.T) {
	dir := writeDir(t, goodFiles())
	zipPath := filepath.Join(t.TempDir(), "echo.zip")
	if err := os.WriteFile(zipPath, zipFiles(t, goodFiles()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{dir, zipPath} {
		p, err := Load(path, kernel.Limits{})
		if err != nil {
			t.Fatalf("Load(%s): %v", path, err)
		}
		if !reflect.DeepEqual(p, wantGood()) {
			t.Errorf("Load(%s) = %+v, want %+v", path, p, wantGood())
		}
	}
	other := filepath.Join(t.TempDir(), "echo.tar")
	if err := os.WriteFile(other, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(other, kernel.Limits{}); err == nil {
		t.Error("Load of a .tar file succeeded")
	}
	if _, err := Load(filepath.Join(dir, "nothing"), kernel.Limits{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing path: %v, want os.ErrNotExist", err)
	}
}

func TestRequested(t *testing.T) {
	p := wantGood()
	// The same capability twice, and the network capability by name too:
	// each is listed once per process.
	p.Processes[0].RequestCapabilities = append(p.Processes[0].RequestCapabilities, NetworkCapability, p.Processes[0].RequestCapabilities[0])
	echo, chain := p.Processes[0].ID, p.Processes[1].ID
	want := []CapabilityRequest{
		{echo, NetworkCapability},
		{echo, kernel.Capability{Issuer: our("chain", "echo", "examples"), Params: kernel.MessagingParams}},
		{chain, p.Processes[1].RequestCapabilities[0]},
		{chain, p.Processes[1].RequestCapabilities[1]},
	}
	if got := p.Requested(); !reflect.DeepEqual(got, want) {
		t.Errorf("Requested:\n got %v\nwant %v", got, want)
	}
	if got := (&Package{}).Requested(); len(got) != 0 {
		t.Errorf("Requested of an empty package = %v", got)
	}
}

// TestRefused loads broken packages, from a directory and from a zip, and
// checks that each is refused with an error naming the file and the field.
func TestRefused(t *testing.T) {
	manifest := func(procs string) func(map[string][]byte) {
		return func(f map[string][]byte) { f["manifest.json"] = []byte(procs) }
	}
	metadata := func(m string) func(map[string][]byte) {
		return func(f map[string][]byte) { f["metadata.json"] = []byte(m) }
	}
	module := func(name string, b []byte) func(map[string][]byte) {
		return func(f map[string][]byte) { f[name] = b }
	}
	one := func(fields string) func(map[string][]byte) {
		return manifest(`[{"process_name": "echo", "process_wasm_path": "/echo.wasm"` + fields + `}]`)
	}
	type tc struct {
		name   string
		edit   func(map[string][]byte)
		file   string
		want   []string
		limits kernel.Limits
	}
	cases := []tc{
		// metadata.json
		{name: "no metadata", edit: func(f map[string][]byte) { delete(f, "metadata.json") }, file: "metadata.json", want: []string{"missing"}},
		{name: "metadata unknown field", edit: metadata(`{"package_name": "echo", "publisher": "examples", "version": "0.1.0", "wasm_api_version": 1}`), file: "metadata.json", want: []string{`unknown field "wasm_api_version"`}},
		{name: "metadata field case", edit: metadata(`{"Package_Name": "echo", "publisher": "examples", "version": "0.1.0"}`), file: "metadata.json", want: []string{`unknown field "Package_Name"`}},
		{name: "metadata duplicate field", edit: metadata(`{"package_name": "echo", "package_name": "evil", "publisher": "examples", "version": "0.1.0"}`), file: "metadata.json", want: []string{`"package_name" appears twice`}},
		{name: "metadata missing version", edit: metadata(`{"package_name": "echo", "publisher": "examples"}`), file: "metadata.json", want: []string{"version: missing"}},
		{name: "metadata bad package name", edit: metadata(`{"package_name": "Echo", "publisher": "examples", "version": "0.1.0"}`), file: "metadata.json", want: []string{"package_name: invalid package"}},
		{name: "metadata bad publisher", edit: metadata(`{"package_name": "echo", "publisher": "ex_amples", "version": "0.1.0"}`), file: "metadata.json", want: []string{"publisher: invalid publisher"}},
		{name: "metadata reserved", edit: metadata(`{"package_name": "sys", "publisher": "weft", "version": "0.1.0"}`), file: "metadata.json", want: []string{"reserved"}},
		{name: "metadata drivers reserved", edit: metadata(`{"package_name": "drivers", "publisher": "weft", "version": "0.1.0"}`), file: "metadata.json", want: []string{"publisher", "reserved"}},
		{name: "metadata publisher reserved", edit: metadata(`{"package_name": "tools", "publisher": "weft", "version": "0.1.0"}`), file: "metadata.json", want: []string{"publisher", "reserved"}},
		{name: "metadata bad version", edit: metadata(`{"package_name": "echo", "publisher": "examples", "version": "1.0"}`), file: "metadata.json", want: []string{"version:", "MAJOR.MINOR.PATCH"}},
		{name: "metadata version not a string", edit: metadata(`{"package_name": "echo", "publisher": "examples", "version": 1}`), file: "metadata.json", want: []string{"version: want a string, got number"}},
		{name: "metadata not json", edit: metadata(`{"package_name": "echo",`), file: "metadata.json", want: []string{"not valid JSON"}},
		{name: "metadata trailing data", edit: metadata(goodMetadata + `{}`), file: "metadata.json", want: []string{"data after the value"}},
		{name: "metadata too large", edit: metadata(`{"package_name": "echo", "publisher": "examples", "version": "0.1.0"` + string(bytes.Repeat([]byte(" "), MaxMetadataFileBytes)) + `}`), file: "metadata.json", want: []string{"at most 65536"}},

		// manifest.json
		{name: "no manifest", edit: func(f map[string][]byte) { delete(f, "manifest.json") }, file: "manifest.json", want: []string{"missing"}},
		{name: "manifest not an array", edit: manifest(`{"process_name": "echo"}`), file: "manifest.json", want: []string{"want a JSON array, got object"}},
		{name: "manifest empty", edit: manifest(`[]`), file: "manifest.json", want: []string{"lists no process"}},
		{name: "too many processes", edit: manifest(`[{}, {}, {}]`), limits: kernel.Limits{ProcessesPerPackage: 2}, file: "manifest.json", want: []string{"3 processes, at most 2"}},
		{name: "unknown top field", edit: one(`, "wasm": "x"`), file: "manifest.json", want: []string{`process 1 ("echo"): unknown field "wasm"`}},
		{name: "unknown field by case", edit: one(`, "Public": true`), file: "manifest.json", want: []string{`unknown field "Public"`}},
		{name: "duplicate field", edit: one(`, "public": false, "public": true`), file: "manifest.json", want: []string{`"public" appears twice`}},
		{name: "unknown field in capability", edit: one(`, "request_capabilities": [{"process": "a:b:c", "params": 1, "note": "x"}]`), file: "manifest.json", want: []string{`request_capabilities[0]: unknown field "note"`}},
		{name: "unknown field in grant", edit: one(`, "grant_capabilities": [{"process": "a:b:c", "params": 1, "issuer": "x"}]`), file: "manifest.json", want: []string{`grant_capabilities[0]: unknown field "issuer"`}},
		{name: "unknown field in on_exit", edit: one(`, "on_exit": {"Requests": [], "Delay": 5}`), file: "manifest.json", want: []string{`on_exit: unknown field "Delay"`}},
		{name: "unknown field in on_exit request", edit: one(`, "on_exit": {"Requests": [{"target": "our@a:b:c", "inherit": true}]}`), file: "manifest.json", want: []string{`on_exit: Requests[0]: unknown field "inherit"`}},
		{name: "on_exit lower case", edit: one(`, "on_exit": "restart"`), file: "manifest.json", want: []string{`on_exit: unknown policy "restart"`}},
		{name: "on_exit null", edit: one(`, "on_exit": null`), file: "manifest.json", want: []string{"on_exit: want", "got null"}},
		{name: "on_exit bad target", edit: one(`, "on_exit": {"Requests": [{"target": "a:b:c"}]}`), file: "manifest.json", want: []string{"on_exit: Requests[0]: target: invalid address"}},
		{name: "on_exit bad body", edit: one(`, "on_exit": {"Requests": [{"target": "our@a:b:c", "body": "!!"}]}`), file: "manifest.json", want: []string{"body: not base64"}},
		{name: "on_exit body as array", edit: one(`, "on_exit": {"Requests": [{"target": "our@a:b:c", "body": [1, 2]}]}`), file: "manifest.json", want: []string{"body: want a base64 string, got array"}},
		{name: "on_exit body too large", edit: one(`, "on_exit": {"Requests": [{"target": "our@a:b:c", "body": "aGVsbG8="}]}`), limits: kernel.Limits{MaxBodyBytes: 4}, file: "manifest.json", want: []string{"5 bytes, at most 4"}},
		{name: "missing process_name", edit: manifest(`[{"process_wasm_path": "/echo.wasm"}]`), file: "manifest.json", want: []string{"process 1: process_name: missing"}},
		{name: "bad process name", edit: manifest(`[{"process_name": "Echo", "process_wasm_path": "/echo.wasm"}]`), file: "manifest.json", want: []string{`process 1 ("Echo"): process_name: invalid process name in "Echo:echo:examples"`}},
		{name: "process name with colon", edit: manifest(`[{"process_name": "a:b", "process_wasm_path": "/echo.wasm"}]`), file: "manifest.json", want: []string{"process_name: invalid process name"}},
		{name: "duplicate process", edit: manifest(`[{"process_name": "echo", "process_wasm_path": "/echo.wasm"}, {"process_name": "echo", "process_wasm_path": "/bin/chain.wasm"}]`), file: "manifest.json", want: []string{`process 2 ("echo"): process_name: same as process 1`}},
		{name: "public not bool", edit: one(`, "public": "yes"`), file: "manifest.json", want: []string{"public: want true or false, got string"}},
		{name: "request_networking null", edit: one(`, "request_networking": null`), file: "manifest.json", want: []string{"request_networking: want true or false, got null"}},
		{name: "bad requested process", edit: manifest(`[{"process_name": "echo", "process_wasm_path": "/echo.wasm"}, {"process_name": "chain", "process_wasm_path": "/echo.wasm", "request_capabilities": ["Bad:x:y"]}]`), file: "manifest.json", want: []string{`process 2 ("chain"): request_capabilities[0]: invalid process name in "Bad:x:y"`}},
		{name: "requested process too short", edit: one(`, "request_capabilities": ["a:b"]`), file: "manifest.json", want: []string{"request_capabilities[0]: invalid process id"}},
		{name: "requested address bad node", edit: one(`, "request_capabilities": [{"process": "No de@a:b:c", "params": 1}]`), file: "manifest.json", want: []string{"request_capabilities[0]: process: invalid node"}},
		{name: "requested params missing", edit: one(`, "request_capabilities": [{"process": "a:b:c"}]`), file: "manifest.json", want: []string{"request_capabilities[0]: params: missing"}},
		{name: "requested params too large", edit: one(`, "request_capabilities": [{"process": "a:b:c", "params": "0123456789"}]`), limits: kernel.Limits{MaxCapabilityParamsBytes: 8}, file: "manifest.json", want: []string{"request_capabilities[0]: params:", "at most 8"}},
		{name: "requested params duplicate key", edit: one(`, "request_capabilities": [{"process": "a:b:c", "params": {"a": 1, "a": 2}}]`), file: "manifest.json", want: []string{"request_capabilities[0]: params:", "duplicate key"}},
		{name: "requested twice", edit: one(`, "request_capabilities": ["a:b:c", {"process": "our@a:b:c", "params": "messaging"}]`), file: "manifest.json", want: []string{"request_capabilities[1]: same capability as [0]"}},
		{name: "requested number", edit: one(`, "request_capabilities": [7]`), file: "manifest.json", want: []string{"request_capabilities[0]: want a process id string", "got number"}},
		{name: "request list not a list", edit: one(`, "request_capabilities": "a:b:c"`), file: "manifest.json", want: []string{"request_capabilities: want a JSON array, got string"}},
		{name: "grant to another node", edit: one(`, "grant_capabilities": [{"process": "node-2@a:b:c", "params": 1}]`), file: "manifest.json", want: []string{"grant_capabilities[0]: process:", "this node only"}},
		{name: "grant bad process", edit: one(`, "grant_capabilities": ["a:b:C"]`), file: "manifest.json", want: []string{"grant_capabilities[0]: invalid publisher"}},
		{name: "grant twice", edit: one(`, "grant_capabilities": ["a:b:c", "a:b:c"]`), file: "manifest.json", want: []string{"grant_capabilities[1]: a:b:c is listed twice"}},
		{name: "too many requests", edit: one(`, "request_capabilities": [` + repeatJSON(`"a:b:c"`, MaxCapabilitiesPerProcess+1) + `]`), file: "manifest.json", want: []string{"at most 256 allowed"}},
		{name: "missing wasm path", edit: manifest(`[{"process_name": "echo"}]`), file: "manifest.json", want: []string{"process_wasm_path: missing"}},
		{name: "traversal", edit: one2(`/../x.wasm`), file: "manifest.json", want: []string{`process_wasm_path: "/../x.wasm" has a ".." segment`}},
		{name: "inner traversal", edit: one2(`/bin/../echo.wasm`), file: "manifest.json", want: []string{`".." segment`}},
		{name: "backslash traversal", edit: one2(`..\\x.wasm`), file: "manifest.json", want: []string{"backslash"}},
		{name: "absolute escape", edit: one2(`//etc/x.wasm`), file: "manifest.json", want: []string{"empty segment"}},
		{name: "windows absolute", edit: one2(`C:/x.wasm`), file: "manifest.json", want: []string{"':'"}},
		{name: "dot segment", edit: one2(`/./echo.wasm`), file: "manifest.json", want: []string{`"." segment`}},
		{name: "not wasm", edit: one2(`/echo.wat`), file: "manifest.json", want: []string{"does not name a .wasm file"}},
		{name: "missing module", edit: one2(`/nothere.wasm`), file: "manifest.json", want: []string{`process 1 ("echo"): process_wasm_path: module "nothere.wasm" is not in the package`}},
		{name: "wasm path names a directory", edit: func(f map[string][]byte) {
			f["dir.wasm/x"] = []byte("x")
			one2(`/dir.wasm`)(f)
		}, file: "manifest.json", want: []string{`module "dir.wasm" is not in the package`}},

		// modules
		{name: "oversize module", limits: kernel.Limits{MaxModuleBytes: 64}, file: "bin/chain.wasm", want: []string{"at most 64 allowed (max_module_bytes)"}},
		{name: "malformed module", edit: module("echo.wasm", []byte("\x00asm\x01\x00\x00\x00\x01\xff")), file: "echo.wasm", want: []string{"not a valid Wasm module"}},
		{name: "not wasm at all", edit: module("echo.wasm", []byte("#!/bin/sh\n")), file: "echo.wasm", want: []string{"not a valid Wasm module"}},
		{name: "empty module file", edit: module("echo.wasm", nil), file: "echo.wasm", want: []string{"not a valid Wasm module"}},
		{name: "invalid unnamed module", edit: module("bin/child.wasm", goodWasm()[:20]), file: "bin/child.wasm", want: []string{"not a valid Wasm module"}},
		{name: "missing init", edit: module("echo.wasm", buildWasm(abiSpec().without("init"))), file: "echo.wasm", want: []string{`exports no function "init" () -> (i32)`}},
		{name: "init wrong type", edit: module("echo.wasm", buildWasm(abiSpec().without("init").with(wasmFunc{name: "init", params: []byte{i32}, results: []byte{i64}}))), file: "echo.wasm", want: []string{`export "init" is (i32) -> (i64), want () -> (i32)`}},
		{name: "missing weft_abi_v1", edit: module("echo.wasm", buildWasm(abiSpec().without("weft_abi_v1"))), file: "echo.wasm", want: []string{`exports no "weft_abi_vN": not a weft module (this node speaks ABI versions 1 and 2)`}},
		{name: "only weft_abi_v3", edit: module("echo.wasm", buildWasm(abiSpec().without("weft_abi_v1").with(wasmFunc{name: "weft_abi_v3"}))), file: "echo.wasm", want: []string{"declares ABI version 3 only; this node speaks ABI versions 1 and 2"}},
		{name: "weft_abi_v3 and weft_abi_v4", edit: module("echo.wasm", buildWasm(abiSpec().without("weft_abi_v1").with(wasmFunc{name: "weft_abi_v4"}).with(wasmFunc{name: "weft_abi_v3"}))), file: "echo.wasm", want: []string{"declares ABI versions 3 and 4 only; this node speaks ABI versions 1 and 2"}},
		{name: "weft_abi_v1 wrong type", edit: module("echo.wasm", buildWasm(abiSpec().without("weft_abi_v1").with(wasmFunc{name: "weft_abi_v1", results: []byte{i32}}))), file: "echo.wasm", want: []string{`export "weft_abi_v1" is () -> (i32), want () -> ()`}},
		{name: "weft_abi_v2 wrong type", edit: module("echo.wasm", buildWasm(abiSpec().with(wasmFunc{name: "weft_abi_v2", params: []byte{i32}}))), file: "echo.wasm", want: []string{`export "weft_abi_v2" is (i32) -> (), want () -> ()`}},
		{name: "no memory", edit: module("echo.wasm", buildWasm(wasmSpec{funcs: abiSpec().funcs})), file: "echo.wasm", want: []string{`exports no memory "memory"`}},
		{name: "memory not exported", edit: module("echo.wasm", buildWasm(wasmSpec{memory: true, memPages: 1, funcs: abiSpec().funcs})), file: "echo.wasm", want: []string{`exports no memory "memory"`}},
		{name: "memory under another name", edit: module("echo.wasm", buildWasm(wasmSpec{memory: true, memName: "mem", memPages: 1, funcs: abiSpec().funcs})), file: "echo.wasm", want: []string{`exports no memory "memory"`}},
		{name: "memory too large", edit: module("echo.wasm", buildWasm(wasmSpec{memory: true, memName: "memory", memPages: 17, funcs: abiSpec().funcs})), limits: kernel.Limits{MemoryPerProcess: 1 << 20}, file: "echo.wasm", want: []string{"not a valid Wasm module", "over limit of 16 pages"}},
	}
	for _, c := range cases {
		files := goodFiles()
		if c.edit != nil {
			c.edit(files)
		}
		t.Run(c.name+"/dir", func(t *testing.T) {
			_, err := LoadDir(writeDir(t, files), c.limits)
			wantRefused(t, err, c.file, c.want...)
		})
		t.Run(c.name+"/zip", func(t *testing.T) {
			_, err := loadZipBytes(zipFiles(t, files), c.limits)
			wantRefused(t, err, c.file, c.want...)
		})
	}
}

// one2 is a one-process manifest naming path as the module.
func one2(path string) func(map[string][]byte) {
	return func(f map[string][]byte) {
		f["manifest.json"] = []byte(`[{"process_name": "echo", "process_wasm_path": "` + path + `"}]`)
	}
}

func repeatJSON(v string, n int) string {
	b := bytes.Repeat([]byte(v+","), n)
	return string(b[:len(b)-1])
}

// TestMemoryMaxClamped: a module may declare a maximum memory above
// Limits.MemoryPerProcess (the host caps it); only its minimum must fit.
func TestMemoryMaxClamped(t *testing.T) {
	files := goodFiles()
	spec := abiSpec()
	spec.memPages, spec.memMax = 16, 65536
	files["echo.wasm"] = buildWasm(spec)
	p, err := LoadDir(writeDir(t, files), kernel.Limits{MemoryPerProcess: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Modules["echo.wasm"], files["echo.wasm"]) {
		t.Error("module bytes changed")
	}
}

// TestNameErrorWrapped: a bad name can be told apart with errors.As.
func TestNameErrorWrapped(t *testing.T) {
	files := goodFiles()
	files["manifest.json"] = []byte(`[{"process_name": "echo!", "process_wasm_path": "/echo.wasm"}]`)
	_, err := LoadDir(writeDir(t, files), kernel.Limits{})
	var ne *kernel.NameError
	if !errors.As(err, &ne) || ne.Part != "process name" {
		t.Fatalf("error %v does not wrap a *kernel.NameError for the process name", err)
	}
}

// TestDirSymlinkEscape: a module that is a symbolic link out of the
// package directory is refused; one inside it is read.
func TestDirSymlinkEscape(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "evil.wasm")
	if err := os.WriteFile(outside, goodWasm(), 0o644); err != nil {
		t.Fatal(err)
	}
	files := goodFiles()
	delete(files, "echo.wasm")
	dir := writeDir(t, files)
	if err := os.Symlink(outside, filepath.Join(dir, "echo.wasm")); err != nil {
		t.Fatal(err)
	}
	_, err := LoadDir(dir, kernel.Limits{})
	wantRefused(t, err, "echo.wasm", "read:")

	if err := os.Remove(filepath.Join(dir, "echo.wasm")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("bin/chain.wasm", filepath.Join(dir, "echo.wasm")); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDir(dir, kernel.Limits{}); err != nil {
		t.Errorf("a symbolic link inside the package: %v", err)
	}
}

func TestValidateVersion(t *testing.T) {
	for _, v := range []string{"0.0.0", "0.1.0", "1.2.3", "10.20.30", "999999999.0.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-0.3.7", "1.0.0-x.7.z.92", "1.0.0-x-y-z.--"} {
		if err := ValidateVersion(v); err != nil {
			t.Errorf("ValidateVersion(%q): %v", v, err)
		}
	}
	for _, v := range []string{"", "1", "1.0", "1.0.0.0", "01.0.0", "1.00.0", "1.0.01", "v1.0.0", "1.0.0-", "1.0.0-a..b", "1.0.0-01", "1.0.0+build", "1.0.0-a+b", "1.0.0 ", "-1.0.0", "1.0.x", "1000000000.0.0", "1.0.0-é", "1.0.0-" + string(bytes.Repeat([]byte("a"), MaxVersionLen))} {
		if err := ValidateVersion(v); err == nil {
			t.Errorf("ValidateVersion(%q) accepted it", v)
		}
	}
}

func TestCleanWasmPath(t *testing.T) {
	for in, want := range map[string]string{
		"/echo.wasm":      "echo.wasm",
		"echo.wasm":       "echo.wasm",
		"/bin/chain.wasm": "bin/chain.wasm",
		"/a-b/c d.wasm":   "a-b/c d.wasm",
		"/x..y.wasm":      "x..y.wasm",
	} {
		got, err := CleanWasmPath(in)
		if err != nil || got != want {
			t.Errorf("CleanWasmPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "/", "//x.wasm", "/../x.wasm", "../x.wasm", "..", "a/../../x.wasm", `..\x.wasm`, `a\x.wasm`, "/a//x.wasm", "/./x.wasm", "/x.wasm/", "/.wasm", "/x.WASM", "/x.wasm\x00", "/x\n.wasm", "C:/x.wasm", "/x.wasm.txt", "/\xff.wasm"} {
		if got, err := CleanWasmPath(in); err == nil {
			t.Errorf("CleanWasmPath(%q) = %q, want an error", in, got)
		}
	}
}

// TestABIVersionsSpoken: a module declaring version 2, alone or with
// version 1 or an unknown one, loads.
func TestABIVersionsSpoken(t *testing.T) {
	for name, spec := range map[string]wasmSpec{
		"2":    abiSpec().without("weft_abi_v1").with(wasmFunc{name: "weft_abi_v2"}),
		"1, 2": abiSpec().with(wasmFunc{name: "weft_abi_v2"}),
		"2, 9": abiSpec().without("weft_abi_v1").with(wasmFunc{name: "weft_abi_v2"}).with(wasmFunc{name: "weft_abi_v9"}),
	} {
		files := goodFiles()
		files["echo.wasm"] = buildWasm(spec)
		if _, err := LoadDir(writeDir(t, files), kernel.Limits{}); err != nil {
			t.Errorf("a module declaring versions %s: %v", name, err)
		}
	}
}

// TestABIVersionParsing: only weft_abi_vN with a plain decimal N declares
// a version.
func TestABIVersionParsing(t *testing.T) {
	for name, want := range map[string]int{"weft_abi_v1": 1, "weft_abi_v0": 0, "weft_abi_v12": 12} {
		if v, ok := abiVersion(name); !ok || v != want {
			t.Errorf("abiVersion(%q) = %d, %v; want %d", name, v, ok, want)
		}
	}
	for _, name := range []string{"weft_abi_v", "weft_abi_v01", "weft_abi_v1a", "weft_abi_v+1", "weft_abi_v-1", "weft_abi_1", "init", "weft_abi_v99999999999"} {
		if v, ok := abiVersion(name); ok {
			t.Errorf("abiVersion(%q) = %d, want none", name, v)
		}
	}
}
