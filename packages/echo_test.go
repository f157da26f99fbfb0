package packages

import (
	"strings"
	"testing"

	"github.com/weftos/weft/internal/echoed"
	"github.com/weftos/weft/kernel"
)

// TestHugeValuesNotEchoed loads manifests whose names, keys and paths are
// longer than echoed.MaxBytes, most far longer than any limit on them
// (the files themselves within theirs): the error repeats at most
// echoed.MaxBytes of each, and says how much it cut.
func TestHugeValuesNotEchoed(t *testing.T) {
	huge := strings.Repeat("x", 512<<10)
	one := func(fields string) map[string][]byte {
		f := goodFiles()
		f["manifest.json"] = []byte(`[{"process_name": "echo", "process_wasm_path": "/echo.wasm"` + fields + `}]`)
		return f
	}
	for _, tc := range []struct {
		name  string
		files map[string][]byte
	}{
		{"unknown field", one(`, "` + huge + `": 1`)},
		{"on_exit policy", one(`, "on_exit": "` + huge + `"`)},
		{"requested process", one(`, "request_capabilities": ["` + huge + `:b:c"]`)},
		{"granted to another node", one(`, "grant_capabilities": [{"process": "` + strings.Repeat("n", kernel.MaxNodeLen) + `@a:b:` + strings.Repeat("p", kernel.MaxPublisherLen) + `", "params": 1}]`)},
		{"wasm path", func() map[string][]byte {
			f := goodFiles()
			f["manifest.json"] = []byte(`[{"process_name": "echo", "process_wasm_path": "/` + strings.Repeat("a", MaxWasmPathLen-10) + `\\.wasm"}]`)
			return f
		}()},
		{"package name", func() map[string][]byte {
			f := goodFiles()
			f["metadata.json"] = []byte(`{"package_name": "` + huge[:32<<10] + `", "publisher": "examples", "version": "0.1.0"}`)
			return f
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadDir(writeDir(t, tc.files), kernel.Limits{})
			if err == nil {
				t.Fatal("loaded; want a refusal")
			}
			msg := err.Error()
			if len(msg) > echoed.MaxBytes+512 || !strings.Contains(msg, "bytes cut)") {
				t.Errorf("error of %d bytes, want it cut: %.600s", len(msg), msg)
			}
		})
	}
}
