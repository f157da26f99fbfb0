// Package wasmtest holds what the tests that run real Wasm guests share:
// where wazero's compiled code is cached across runs, and tearing down a
// host and a build directory shared by a whole test binary.
package wasmtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/weftos/weft/wasm"
)

// CacheDir is where wazero keeps compiled guests between test runs, so
// that a second run skips compiling each Go guest again (≈ 10 s under
// -race): the user cache dir, or the temp dir without one.
func CacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "weft", "e2e-wazero")
	}
	return filepath.Join(os.TempDir(), "weft-e2e-wazero")
}

// Teardown closes a shared host and removes a shared build directory
// (either may be empty) after m.Run returned code, and returns the exit
// code: code, or 1 if closing the host failed.
func Teardown(code int, host *wasm.Host, dir string) int {
	if host != nil {
		if err := host.Close(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "close the host:", err)
			code = 1
		}
	}
	if dir != "" {
		os.RemoveAll(dir)
	}
	return code
}
