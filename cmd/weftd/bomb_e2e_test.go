package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestModuleBombRefused installs, through the weft CLI into the real
// weftd, packages whose module claims far more than it holds: the 15
// bytes of issue 12 (a type section of 2³²-1 types, for which wazero
// allocated 320 GiB and the node died of a fatal error) and a function
// body of 2³²-1 locals. Each is refused as invalid_argument naming the
// module, the section, the byte and the claim, with --approve-all
// (InstallPackage) as without (InspectPackage); the node keeps answering
// and stops cleanly, having installed nothing.
func TestModuleBombRefused(t *testing.T) {
	n := startNode(t, t.TempDir())
	for _, tc := range []struct {
		name   string
		module []byte
		want   string
	}{
		{"types", []byte("\x00asm\x01\x00\x00\x00\x01\x05\xff\xff\xff\xff\x0f"),
			"invalid_argument: bad package: types.wasm: not a valid Wasm module: type section, at byte 10: 4294967295 types claimed, but only 0 bytes follow in the section"},
		{"locals", []byte("\x00asm\x01\x00\x00\x00" +
			"\x01\x04\x01\x60\x00\x00" + // type () -> ()
			"\x03\x02\x01\x00" + // one function of type 0
			"\x0a\x0a\x01\x08\x01\xff\xff\xff\xff\x0f\x7f\x0b"), // its body: 2³²-1 i32 locals, end
			"invalid_argument: bad package: locals.wasm: not a valid Wasm module: code section, at byte 23: function body 0 declares more than the 50000 locals allowed"},
	} {
		pkg := bombPackage(t, tc.name, tc.module)
		for _, args := range [][]string{{"install", "--approve-all", pkg}, {"install", pkg}} {
			out, errOut, code := n.weft(t, args...)
			if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
				t.Errorf("weft %s: code %d, stdout %q, stderr %q; want code 2, no output and %q", strings.Join(args, " "), code, out, errOut, tc.want)
			}
			if out, errOut, code := n.weft(t, "status"); code != 0 || !strings.Contains(out, n.ready["node_id"].(string)) {
				t.Fatalf("weft status after weft %s: code %d, stdout %q, stderr %q; want the node id", strings.Join(args, " "), code, out, errOut)
			}
		}
	}
	if out, errOut, code := n.weft(t, "--json", "packages"); code != 0 || strings.Contains(out, "bomb:e2e") {
		t.Errorf("weft packages: code %d, stdout %q, stderr %q; want no package", code, out, errOut)
	}
	n.stop(t)
	if strings.Contains(n.stderr(), "internal error") {
		t.Errorf("weftd logged an internal error:\n%s", n.stderr())
	}
}

// bombPackage makes package bomb:e2e in a new directory: one process of
// module NAME.wasm, whose bytes are module.
func bombPackage(t *testing.T, name string, module []byte) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{
		name + ".wasm":  module,
		"metadata.json": []byte(`{"package_name": "bomb", "publisher": "e2e", "version": "0.1.0"}`),
		"manifest.json": []byte(`[{"process_name": "p", "process_wasm_path": "/` + name + `.wasm", "on_exit": "None"}]`),
	}
	for file, b := range files {
		if err := os.WriteFile(filepath.Join(dir, file), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
