package wasm

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"unicode"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// The import modules whose functions the node provides to every module.
const (
	weftModule   = "weft"
	wasiModule   = wasi_snapshot_preview1.ModuleName
	extismModule = "extism:host/env"
)

// providedModules lists the import modules for messages.
const providedModules = weftModule + " (docs/abi.md), " + wasiModule + " and " + extismModule

// extismEnv is what Extism links as module extism:host/env into every
// plugin (go-sdk v1.7.1, instantiateEnvModule in host.go): its own ABI,
// which weft does not use; http_request fails, and the variables hold
// nothing (see Compile). Extism does not export the list, so it is
// written out here, and TestEveryProvidedImportLinks checks each entry
// against the module Extism links.
var extismEnv = map[string]funcType{
	"alloc":            {[]byte{i64}, []byte{i64}},
	"free":             {[]byte{i64}, nil},
	"load_u8":          {[]byte{i64}, []byte{i32}},
	"load_u64":         {[]byte{i64}, []byte{i64}},
	"input_load_u8":    {[]byte{i64}, []byte{i32}},
	"input_load_u64":   {[]byte{i64}, []byte{i64}},
	"store_u8":         {[]byte{i64, i32}, nil},
	"store_u64":        {[]byte{i64, i64}, nil},
	"input_set":        {[]byte{i64, i64}, nil},
	"output_set":       {[]byte{i64, i64}, nil},
	"input_length":     {nil, []byte{i64}},
	"input_offset":     {nil, []byte{i64}},
	"output_length":    {nil, []byte{i64}},
	"output_offset":    {nil, []byte{i64}},
	"length":           {[]byte{i64}, []byte{i64}},
	"length_unsafe":    {[]byte{i64}, []byte{i64}},
	"reset":            {nil, nil},
	"error_set":        {[]byte{i64}, nil},
	"error_get":        {nil, []byte{i64}},
	"memory_bytes":     {nil, []byte{i64}},
	"config_get":       {[]byte{i64}, []byte{i64}},
	"var_get":          {[]byte{i64}, []byte{i64}},
	"var_set":          {[]byte{i64, i64}, nil},
	"http_request":     {[]byte{i64, i64}, []byte{i64}},
	"http_status_code": {nil, []byte{i32}},
	"http_headers":     {nil, []byte{i64}},
	"get_log_level":    {nil, []byte{i32}},
	"log_trace":        {[]byte{i64}, nil},
	"log_debug":        {[]byte{i64}, nil},
	"log_info":         {[]byte{i64}, nil},
	"log_warn":         {[]byte{i64}, nil},
	"log_error":        {[]byte{i64}, nil},
}

// providedFuncs is every function a module may import, by import module
// and name, with its type: the host functions of hostFunctionSpecs, WASI
// preview 1 as wazero implements it (Extism links wazero's), and
// extismEnv.
var providedFuncs = sync.OnceValue(func() map[string]map[string]funcType {
	weft := make(map[string]funcType, len(hostFunctionSpecs))
	for _, f := range hostFunctionSpecs {
		weft[f.name] = funcType{params: valueBytes(f.params), results: valueBytes(f.results)}
	}
	// wazero builds WASI's host module from a list it does not export;
	// compiling the module (without instantiating it) shows its functions.
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	b := rt.NewHostModuleBuilder(wasiModule)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
	cm, err := b.Compile(ctx)
	if err != nil {
		panic(fmt.Sprintf("wasm: compile wazero's %s module: %v", wasiModule, err))
	}
	wasi := make(map[string]funcType)
	for name, def := range cm.ExportedFunctions() {
		wasi[name] = funcType{params: valueBytes(def.ParamTypes()), results: valueBytes(def.ResultTypes())}
	}
	return map[string]map[string]funcType{weftModule: weft, wasiModule: wasi, extismModule: extismEnv}
})

var kindNames = map[byte]string{kindTable: "table", kindMemory: "memory", kindGlobal: "global", kindTag: "tag"}

// weftVersions is the ABI version that added each function of module
// weft.
var weftVersions = sync.OnceValue(func() map[string]int {
	vs := make(map[string]int, len(hostFunctionSpecs))
	for _, f := range hostFunctionSpecs {
		vs[f.name] = f.version
	}
	return vs
})

// checkImports refuses an import the node does not provide: any but a
// function of providedFuncs, a function of another type than the node's,
// and a function of module weft added by a later ABI version than the
// newest the module declares (level). The error names the import and,
// for a type, both types; for a version, the version and its export.
func checkImports(imports []importInfo, level int) error {
	funcs := providedFuncs()
	for _, im := range imports {
		name := printable(im.module) + "." + printable(im.name)
		if im.kind != kindFunc {
			kind, ok := kindNames[im.kind]
			if !ok {
				kind = "kind " + strconv.Itoa(int(im.kind))
			}
			return fmt.Errorf("imports %s %s, which this node does not provide: it provides functions only, those of %s", kind, name, providedModules)
		}
		want, ok := funcs[im.module][im.name]
		if !ok {
			return fmt.Errorf("imports %s, which this node does not provide: it provides the functions of %s", name, providedModules)
		}
		if !im.typ.equal(want.params, want.results) {
			return fmt.Errorf("imports %s with type %s; it has type %s", name, im.typ, want)
		}
		if im.module != weftModule {
			continue
		}
		if v := weftVersions()[im.name]; v > level {
			return fmt.Errorf("imports %s, which ABI version %d added, but declares only version %d: export weft_abi_v%d to use it", name, v, level, v)
		}
	}
	return nil
}

// printable is s, or s quoted when it holds what would not print as
// itself (a control character, invalid UTF-8): names come from the
// module and end up on a user's terminal.
func printable(s string) string {
	for _, r := range s {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// CheckModule checks a module as Compile does before it compiles one,
// without compiling it: that it is well formed as far as inspect reads,
// exports what docs/abi.md requires, declares an ABI version this node
// speaks, and imports only functions the node provides, each with the
// node's type and of a version the module declares. The error says what
// is wrong, for the module's author.
func CheckModule(module []byte) error {
	info, err := inspect(module)
	if err != nil {
		return fmt.Errorf("malformed module: %w", err)
	}
	return checkModule(info)
}
