package wasmbounds

import (
	"context"
	"errors"
	"runtime"
	"testing"

	"github.com/tetratelabs/wazero"
)

// FuzzCheck: whatever the bytes, Check refuses them with an *Error or
// accepts them, and wazero decodes and compiles what it accepts without
// crashing the process and without allocating more than a bound in
// proportion to the module (a count Check missed would allocate
// gigabytes, or end the process).
func FuzzCheck(f *testing.F) {
	f.Add(everySection())
	for _, tc := range bombs {
		if len(tc.module) <= 512 { // small, so that minimizing is quick
			f.Add(tc.module)
		}
	}
	ctx := context.Background()
	// The node's configurations: the interpreter as packages/ validates
	// with, custom sections and DWARF read as wasm/ compiles with.
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().
		WithMemoryLimitPages(1024).
		WithCustomSections(true).
		WithDebugInfoEnabled(true))
	f.Cleanup(func() { rt.Close(ctx) })
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := Check(data); err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Check: %v (%T), want an *Error", err, err)
			}
			return
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		cm, err := rt.CompileModule(ctx, data)
		runtime.ReadMemStats(&after)
		if err == nil {
			cm.Close(ctx)
		}
		if alloc, bound := after.TotalAlloc-before.TotalAlloc, uint64(128<<20+1024*len(data)); alloc > bound {
			t.Fatalf("wazero allocated %d bytes for a module of %d bytes Check accepted (bound %d); compile: %v", alloc, len(data), bound, err)
		}
	})
}
