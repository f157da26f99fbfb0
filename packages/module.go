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

	"github.com/weftos/weft/abi"
	"github.com/weftos/weft/internal/wasmbounds"
	"github.com/weftos/weft/kernel"
)

// ABIVersions are the guest ABI versions this node speaks (docs/abi.md):
// every one from 1 to abi.Version, each an addition to the one before.
var ABIVersions = func() []int {
	vs := make([]int, abi.Version)
	for i := range vs {
		vs[i] = i + 1
	}
	return vs
}()

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
	var declared, spoken []int
	for name := range funcs {
		if v, ok := abiVersion(name); ok {
			declared = append(declared, v)
			if slices.Contains(ABIVersions, v) {
				spoken = append(spoken, v)
			}
		}
	}
	slices.Sort(declared)
	slices.Sort(spoken)
	speaks := "ABI " + versionWord(ABIVersions) + " " + versionList(ABIVersions)
	switch {
	case len(declared) == 0:
		for _, v := range ABIVersions {
			name := abiExportPrefix + strconv.Itoa(v)
			if _, ok := mems[name]; ok {
				return fmt.Errorf("export %q is a memory, want a function () -> ()", name)
			}
		}
		return fmt.Errorf("exports no %q: not a weft module (this node speaks %s)", abiExportPrefix+"N", speaks)
	case len(spoken) == 0:
		return fmt.Errorf("declares ABI %s %s only; this node speaks %s", versionWord(declared), versionList(declared), speaks)
	}
	for _, v := range spoken {
		if err := checkFunc(funcs, abiExportPrefix+strconv.Itoa(v), nil); err != nil {
			return err
		}
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

// versionList is "1", "1 and 2", "1, 2 and 3", ….
func versionList(vs []int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

func versionWord(vs []int) string {
	if len(vs) == 1 {
		return "version"
	}
	return "versions"
}

func typeList(ts []api.ValueType) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = api.ValueTypeName(t)
	}
	return strings.Join(s, ", ")
}
