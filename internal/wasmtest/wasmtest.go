// Package wasmtest holds what the tests that run real Wasm guests share:
// where wazero's compiled code is cached across runs, and tearing down a
// host and a build directory shared by a whole test binary.
package wasmtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

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

// BuildExamples builds every example with scripts/build-examples.sh into
// a new temporary directory (DIR/NAME is the package directory of
// examples/NAME) and returns it; the caller removes it (Teardown does).
// root is the repository's root. It fails with a message that says what to
// install when clang is missing.
func BuildExamples(root string) (string, error) {
	clang := os.Getenv("CLANG")
	if clang == "" {
		clang = "clang"
	}
	if _, err := exec.LookPath(clang); err != nil {
		return "", fmt.Errorf("%s is not installed: run `make tools` (it installs clang, lld, wasi-libc and the wasm32 compiler-rt the C example needs)", clang)
	}
	dir, err := os.MkdirTemp("", "weft-examples-")
	if err != nil {
		return "", err
	}
	cmd := exec.Command("bash", "scripts/build-examples.sh", dir)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("scripts/build-examples.sh: %v (is every tool installed? run `make tools`)\n%s", err, out)
	}
	return dir, nil
}

// Examples are the examples built once per test binary, on first use, and
// one wasm.Host that every test of the binary shares (its compiled code
// cached on disk across runs, see CacheDir: under -race, wazero takes
// about 10 s to compile a Go guest). Declare one as a package variable,
// call Get from tests and Teardown from TestMain.
type Examples struct {
	once sync.Once
	dir  string // dir/NAME: the package directory of examples/NAME
	host *wasm.Host
	err  error
}

// Get builds the examples (root is the repository's root) and makes the
// host on its first call, and returns them; it fails t if either failed.
func (e *Examples) Get(t testing.TB, root string) (dir string, host *wasm.Host) {
	t.Helper()
	e.once.Do(func() {
		abs, err := filepath.Abs(root)
		if err != nil {
			e.err = err
			return
		}
		if e.dir, e.err = BuildExamples(abs); e.err != nil {
			return
		}
		e.host, e.err = wasm.NewHost(context.Background(), wasm.Config{CacheDir: CacheDir()})
	})
	if e.err != nil {
		t.Fatal(e.err)
	}
	return e.dir, e.host
}

// Teardown is the package Teardown for e, from TestMain.
func (e *Examples) Teardown(code int) int { return Teardown(code, e.host, e.dir) }

// BuildC builds a C guest (a reactor, as the C SDK's guests are) with
// clang — $CLANG, or clang on PATH, which make tools installs — and
// returns its bytes.
func BuildC(tb testing.TB, src string) []byte {
	tb.Helper()
	clang := os.Getenv("CLANG")
	if clang == "" {
		clang = "clang"
	}
	out := filepath.Join(tb.TempDir(), "guest.wasm")
	cmd := exec.Command(clang, "--target=wasm32-wasi", "-O2", "-mexec-model=reactor", "-Wl,--strip-all", "-mbulk-memory",
		"-o", out, src)
	if msg, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("clang %s: %v\n%s (run make tools)", src, err, msg)
	}
	code, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	return code
}
