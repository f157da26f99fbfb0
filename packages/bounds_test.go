package packages

import (
	"runtime"
	"testing"

	"github.com/weftos/weft/kernel"
)

// bomb is the module of issue 12: a type section that claims 2³²-1
// types. wazero allocated 320 GiB for it and ended the node, on
// InspectPackage as on InstallPackage.
var bomb = []byte("\x00asm\x01\x00\x00\x00\x01\x05\xff\xff\xff\xff\x0f")

// localsBomb is a module whose one function body declares 2³²-1 locals:
// wazero allocated 4 GiB for it.
var localsBomb = []byte("\x00asm\x01\x00\x00\x00" +
	"\x01\x04\x01\x60\x00\x00" + // type () -> ()
	"\x03\x02\x01\x00" + // one function of type 0
	"\x0a\x0a\x01\x08\x01\xff\xff\xff\xff\x0f\x7f\x0b") // its body: 2³²-1 i32 locals, end

// TestModuleBombsRefused: a package whose module claims more than it
// holds is refused, naming the module and what it claims, before wazero
// reads it, from a directory as from a zip, and loading it allocates
// little.
func TestModuleBombsRefused(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		module     []byte
		want       string
	}{
		{"types", "echo.wasm", bomb, "echo.wasm: not a valid Wasm module: type section, at byte 10: 4294967295 types claimed, but only 0 bytes follow in the section"},
		{"locals", "bin/child.wasm", localsBomb, "bin/child.wasm: not a valid Wasm module: code section, at byte 23: function body 0 declares more than the 50000 locals allowed"},
	} {
		files := goodFiles()
		files[tc.file] = tc.module
		dir := writeDir(t, files)
		zip := zipFiles(t, files)
		t.Run(tc.name+"/dir", func(t *testing.T) {
			_, err := LoadDir(dir, kernel.Limits{})
			wantRefused(t, err, tc.file, tc.want)
			if per := allocatedPerRun(func() { _, _ = LoadDir(dir, kernel.Limits{}) }); per > 1<<20 {
				t.Errorf("loading the package allocates %d bytes, want at most 1 MiB", per)
			}
		})
		t.Run(tc.name+"/zip", func(t *testing.T) {
			_, err := loadZipBytes(zip, kernel.Limits{})
			wantRefused(t, err, tc.file, tc.want)
			if per := allocatedPerRun(func() { _, _ = loadZipBytes(zip, kernel.Limits{}) }); per > 1<<20 {
				t.Errorf("loading the package allocates %d bytes, want at most 1 MiB", per)
			}
		})
	}
}

// allocatedPerRun is how many bytes f allocates, on average over 5 runs.
func allocatedPerRun(f func()) uint64 {
	const runs = 5
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < runs; i++ {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / runs
}
