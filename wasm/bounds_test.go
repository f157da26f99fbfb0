package wasm

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/weftos/weft/internal/wasmbounds"
	"github.com/weftos/weft/kernel"
)

// bomb is the module of issue 12: a type section that claims 2³²-1
// types, which made wazero allocate 320 GiB and end the node.
var bomb = []byte("\x00asm\x01\x00\x00\x00\x01\x05\xff\xff\xff\xff\x0f")

const bombRefused = "type section, at byte 10: 4294967295 types claimed, but only 0 bytes follow in the section (types take at least 3 each)"

// TestBombRefused: Compile and CheckModule refuse the bomb with the
// check's error, before wazero sees it.
func TestBombRefused(t *testing.T) {
	e := newEnv(t, envOpts{limits: kernel.Limits{}})
	_, err := e.host.Compile("bomb.wasm", bomb)
	var be *wasmbounds.Error
	if !errors.As(err, &be) || err.Error() != "wasm: bomb.wasm: malformed module: "+bombRefused {
		t.Errorf("Compile: %v", err)
	}
	if err := CheckModule(bomb); !errors.As(err, &be) || err.Error() != "malformed module: "+bombRefused {
		t.Errorf("CheckModule: %v", err)
	}
}

// TestBoundsAcceptRealModules: wasmbounds.Check accepts every module the
// repository builds, and allocates nothing doing so: the examples, and
// every guest of a testdata folder (WAT; C, stripped as the tests build
// it and with its debug sections; Go, which keeps its name and DWARF
// sections), found by walking the repository so that a new guest is
// checked too.
func TestBoundsAcceptRealModules(t *testing.T) {
	mods := watCorpus(t)
	for name, bin := range realModules(t) {
		mods[name] = bin
	}
	var names []string
	for name := range mods {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		bin := mods[name]
		if err := wasmbounds.Check(bin); err != nil {
			t.Errorf("%s (%d bytes): %v", name, len(bin), err)
			continue
		}
		if n := testing.AllocsPerRun(1, func() { _ = wasmbounds.Check(bin) }); n != 0 {
			t.Errorf("%s: Check allocates %v times, want 0", name, n)
		}
	}
	t.Logf("%d modules checked", len(mods))
	// The walk found the guests it is meant to.
	for _, want := range []string{"examples/echo/echo.wasm", "examples/cecho/cecho.wasm", "wasm/testdata/goecho.go",
		"sdk/go/e2e/testdata/probe.go", "sdk/c/testdata/guest.c", "procstore/testdata/cprobe.debug.c", "wasm/testdata/abidoc/guest.wat"} {
		if _, ok := mods[want]; !ok {
			t.Errorf("no module %s among %v", want, names)
		}
	}
}

// realModules builds every guest of the repository, cached as the
// tests' guests are: keyed by module name (the source's path from the
// repository's root; a Go guest NAME.go, a C one built with debug
// sections NAME.debug.c).
func realModules(t *testing.T) map[string][]byte {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	mods := map[string][]byte{}
	var goGuests []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") || rel == "build" || rel == "bin" || rel == "dist" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.Contains("/"+filepath.ToSlash(rel), "/testdata/") {
			return nil
		}
		switch filepath.Ext(path) {
		case ".wat":
			mods[rel] = buildWATFile(t, path)
		case ".c":
			mods[rel] = buildCFile(t, root, path, bulkMemory[rel])
			mods[strings.TrimSuffix(rel, ".c")+".debug.c"] = buildCFile(t, root, path, bulkMemory[rel], "-g")
		case ".go":
			if filepath.Base(path) == "main.go" {
				goGuests = append(goGuests, filepath.Dir(rel))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range goGuests {
		mods[dir+".go"] = buildGoDir(t, root, dir)
	}
	examples := buildExamples(t, root)
	files, _ := filepath.Glob(filepath.Join(examples, "*", "*.wasm"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(examples, f)
		mods["examples/"+filepath.ToSlash(rel)] = b
	}
	return mods
}

// buildWATFile assembles the WAT file path.
func buildWATFile(tb testing.TB, path string) []byte {
	w2w := needTool(tb, "wat2wasm")
	return cached(tb, "watfile-"+hashFiles(tb, "", path), ".wasm", func(out string) ([]byte, error) {
		return exec.Command(w2w, path, "-o", out).CombinedOutput()
	})
}

// bulkMemory are the C guests their tests build with -mbulk-memory (as
// scripts/build-examples.sh builds the C example); the others do not
// build with it.
var bulkMemory = map[string]bool{"wasm/testdata/bench.c": true, "procstore/testdata/cprobe.c": true}

// buildCFile compiles the C file path as the tests do, stripped unless
// flags say -g.
func buildCFile(tb testing.TB, root, path string, bulk bool, flags ...string) []byte {
	clang := needTool(tb, "clang")
	args := append([]string{"--target=wasm32-wasi", "-O2", "-mexec-model=reactor", "-I", filepath.Join(root, "sdk", "c")}, flags...)
	if bulk {
		args = append(args, "-mbulk-memory")
	}
	if !slices.Contains(flags, "-g") {
		args = append(args, "-Wl,--strip-all")
	}
	key := "cfile-" + hashFiles(tb, clang+strings.Join(args, " "), path, filepath.Join(root, "sdk", "c", "weft.h"))
	return cached(tb, key, ".wasm", func(out string) ([]byte, error) {
		return exec.Command(clang, append(args, "-o", out, path)...).CombinedOutput()
	})
}

// buildGoDir builds the Go guest in dir (from the repository's root) for
// wasip1.
func buildGoDir(tb testing.TB, root, dir string) []byte {
	var srcs []string
	for _, pattern := range []string{"abi/*.go", "sdk/go/weft/*.go", dir + "/*.go"} {
		m, _ := filepath.Glob(filepath.Join(root, pattern))
		srcs = append(srcs, m...)
	}
	key := "godir-" + hashFiles(tb, runtime.Version()+dir, srcs...)
	return cached(tb, key, ".wasm", func(out string) ([]byte, error) {
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./"+dir)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		return cmd.CombinedOutput()
	})
}

// buildExamples builds every example with scripts/build-examples.sh into
// a directory of the cache, keyed by the hash of every file it reads.
func buildExamples(tb testing.TB, root string) string {
	var srcs []string
	for _, dir := range []string{"examples", "sdk/go/weft", "abi"} {
		filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				srcs = append(srcs, path)
			}
			return err
		})
	}
	srcs = append(srcs, filepath.Join(root, "sdk", "c", "weft.h"), filepath.Join(root, "scripts", "build-examples.sh"))
	dir := filepath.Join(cacheDir(tb), "examples-"+hashFiles(tb, runtime.Version(), srcs...))
	buildMu.Lock()
	defer buildMu.Unlock()
	if _, err := os.Stat(dir); err == nil {
		return dir
	}
	needTool(tb, "clang")
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	cmd := exec.Command("bash", "scripts/build-examples.sh", tmp)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("scripts/build-examples.sh: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		tb.Fatal(err)
	}
	return dir
}
