package packages

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/weftos/weft/internal/wasmbounds"
	"github.com/weftos/weft/kernel"
)

// ABIVersions are the guest ABI versions this node speaks (docs/abi.md).
var ABIVersions = []int{1}

const abiExportPrefix = "weft_abi_v"

const wasmPageBytes = 65536

// moduleChecker compiles modules, never instantiating them, and checks
// their exports. It is not safe for concurrent use.
type moduleChecker struct {
	ctx context.Context
	rt  wazero.Runtime
}

func newModuleChecker(lim kernel.Limits) *moduleChecker {
	pages := lim.MemoryPerProcess / wasmPageBytes
	if pages > 65536 {
		pages = 65536
	}
	ctx := context.Background()
	// The interpreter decodes and validates exactly as the compiler does,
	// without generating machine code we would throw away.
	cfg := wazero.NewRuntimeConfigInterpreter().
		WithMemoryLimitPages(uint32(pages)).
		WithDebugInfoEnabled(false).
		WithCustomSections(false)
	return &moduleChecker{ctx: ctx, rt: wazero.NewRuntimeWithConfig(ctx, cfg)}
}

func (c *moduleChecker) close() { c.rt.Close(c.ctx) }

// check compiles bin and checks the exports docs/abi.md requires. It
// checks bin's counts and sizes first: wazero allocates what they claim.
func (c *moduleChecker) check(bin []byte) error {
	if err := wasmbounds.Check(bin); err != nil {
		return fmt.Errorf("not a valid Wasm module: %w", err)
	}
	cm, err := c.rt.CompileModule(c.ctx, bin)
	if err != nil {
		return fmt.Errorf("not a valid Wasm module: %w", err)
	}
	defer cm.Close(c.ctx)
	return checkExports(cm.ExportedFunctions(), cm.ExportedMemories())
}

func checkExports(funcs map[string]api.FunctionDefinition, mems map[string]api.MemoryDefinition) error {
	var declared []int
	for name := range funcs {
		if v, ok := abiVersion(name); ok {
			declared = append(declared, v)
		}
	}
	slices.Sort(declared)
	speaks := versionList(ABIVersions)
	abi := abiExportPrefix + strconv.Itoa(ABIVersions[0])
	switch {
	case len(declared) == 0:
		if _, ok := mems[abi]; ok {
			return fmt.Errorf("export %q is a memory, want a function () -> ()", abi)
		}
		return fmt.Errorf("exports no %q: not a weft module (this node speaks ABI version %s)", abi, speaks)
	case !slices.ContainsFunc(declared, func(v int) bool { return slices.Contains(ABIVersions, v) }):
		what := "version"
		if len(declared) > 1 {
			what = "versions"
		}
		return fmt.Errorf("declares ABI %s %s only; this node speaks ABI version %s", what, versionList(declared), speaks)
	}
	if err := checkFunc(funcs, abi, nil); err != nil {
		return err
	}
	if _, ok := mems["memory"]; !ok {
		if _, ok := funcs["memory"]; ok {
			return errors.New(`export "memory" is a function, want the module's memory`)
		}
		return errors.New(`exports no memory "memory"`)
	}
	return checkFunc(funcs, "init", []api.ValueType{api.ValueTypeI32})
}

func checkFunc(funcs map[string]api.FunctionDefinition, name string, results []api.ValueType) error {
	want := "() -> (" + typeList(results) + ")"
	f, ok := funcs[name]
	if !ok {
		return fmt.Errorf("exports no function %q %s", name, want)
	}
	if len(f.ParamTypes()) != 0 || !slices.Equal(f.ResultTypes(), results) {
		return fmt.Errorf("export %q is (%s) -> (%s), want %s", name, typeList(f.ParamTypes()), typeList(f.ResultTypes()), want)
	}
	return nil
}

// abiVersion parses weft_abi_vN, N a decimal number without leading zeros.
func abiVersion(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, abiExportPrefix)
	if !ok || s == "" || len(s) > 9 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 || strconv.Itoa(v) != s {
		return 0, false
	}
	return v, true
}

func versionList(vs []int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ", ")
}

func typeList(ts []api.ValueType) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = api.ValueTypeName(t)
	}
	return strings.Join(s, ", ")
}
