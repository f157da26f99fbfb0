package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/weftos/weft/api/weftv1"
)

// TestStartFunctionGuard installs, in the real weftd, a package whose
// module spins forever in its Wasm start function, which wazero runs
// while it makes the instance, before init. The CPU guard kills it there
// as anywhere else: the process with on_exit "Restart" is restarted, the
// one with "None" ends exited, both with the guard's error, and the
// operator's weft status answers and counts the restarts.
func TestStartFunctionGuard(t *testing.T) {
	n := startNode(t, t.TempDir(), "--limit", "guest_cpu_time=200ms")
	pkg := startSpinPackage(t)
	if out, errOut, code := n.weft(t, "install", "--approve-all", pkg); code != 0 {
		t.Fatalf("weft install: code %d, stdout %q, stderr %q", code, out, errOut)
	}

	const (
		restarted = "spin:startspin:e2e"
		once      = "once:startspin:e2e"
		guardErr  = "killed by the CPU guard"
	)
	// Both are killed by the guard; the restarted one is killed again
	// after its first restart.
	kills := map[string]int{}
	n.waitFor(t, "two guard kills of "+restarted+" and one of "+once, func(line string) bool {
		var r map[string]any
		if json.Unmarshal([]byte(line), &r) != nil || r["msg"] != "process exited with an error" {
			return false
		}
		if err, _ := r["err"].(string); strings.Contains(err, guardErr) {
			p, _ := r["process"].(string)
			kills[p]++
		}
		return kills[restarted] >= 2 && kills[once] >= 1
	})

	seen := n.psByID(t, "startspin:e2e")
	if p := seen[restarted]; p == nil || p.GetRestarts() < 2 || !strings.Contains(p.GetLastError(), guardErr) {
		t.Errorf("%s: %v; want 2 restarts or more and the guard's error", restarted, p)
	}
	if p := seen[once]; p == nil || p.GetState() != weftv1.ProcessState_PROCESS_STATE_EXITED || p.GetRestarts() != 0 || !strings.Contains(p.GetLastError(), guardErr) {
		t.Errorf("%s: %v; want it exited, never restarted, with the guard's error", once, p)
	}

	out, errOut, code := n.weft(t, "--json", "status")
	var info weftv1.GetInfoResponse
	if code != 0 || protojson.Unmarshal([]byte(out), &info) != nil {
		t.Fatalf("weft status: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if info.GetRestarts() < 2 {
		t.Errorf("weft status counts %d restarts; want the guard kills' 2 or more", info.GetRestarts())
	}
	n.stop(t)
}

// startSpinPackage makes package startspin:e2e in a new directory: two
// processes, one restarted on exit and one not, of one module whose start
// function never returns (wasm/testdata/startspin.wat).
func startSpinPackage(t *testing.T) string {
	t.Helper()
	w2w, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Fatal("wat2wasm is not installed: run `make tools` (it installs wabt)")
	}
	dir := t.TempDir()
	if out, err := exec.Command(w2w, filepath.Join("..", "..", "wasm", "testdata", "startspin.wat"), "-o", filepath.Join(dir, "startspin.wasm")).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, out)
	}
	files := map[string]string{
		"metadata.json": `{"package_name": "startspin", "publisher": "e2e", "version": "0.1.0"}`,
		"manifest.json": `[
  {"process_name": "spin", "process_wasm_path": "/startspin.wasm", "on_exit": "Restart"},
  {"process_name": "once", "process_wasm_path": "/startspin.wasm", "on_exit": "None"}
]`,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
