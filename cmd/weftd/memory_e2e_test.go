package main

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/weftos/weft/abi"
	"github.com/weftos/weft/api/weftv1"
)

// TestGuestMemoryBudget installs, in the real weftd, a package whose
// process spawns children that grow their memory until memory.grow
// fails, one child per request, under a small per-package budget. The
// budget holds: each child stops growing at memory_per_process or at
// what the package's budget leaves, none is killed for it, and the
// spawn after the budget is full fails with WEFT_ELIMIT; once a child
// is killed its memory can be taken again; the node answers throughout.
func TestGuestMemoryBudget(t *testing.T) {
	const (
		page       = 1 << 16
		perProcess = 8 << 20  // a child's memory stops at 128 pages
		budget     = 32 << 20 // 512 pages for the package
		initial    = 17 * page
		spawner    = "our@spawner:memhog:e2e"
	)
	n := startNode(t, t.TempDir(),
		"--limit", "memory_per_process=8388608",
		"--limit", "guest_memory_per_package=33554432",
		"--metrics-listen", "127.0.0.1:0")
	if out, errOut, code := n.weft(t, "install", "--approve-all", memhogPackage(t)); code != 0 {
		t.Fatalf("weft install: code %d, stdout %q, stderr %q", code, out, errOut)
	}

	// The spawner holds 17 pages (its own and Extism's 16); each child
	// Extism's 16 and its own, up to 128: three such fit in the 512
	// pages, and a fourth grows into the 46 + 17 left.
	var children []string
	for i := 0; ; i++ {
		rc, child := n.spawnChild(t, spawner)
		if rc == abi.ELIMIT {
			break
		}
		if rc <= 0 || i == 8 {
			t.Fatalf("spawn %d returned %d", i+1, rc)
		}
		children = append(children, child)
	}
	var pages []int
	held := int64(initial)
	for _, c := range children {
		p := n.childPages(t, c)
		pages = append(pages, p)
		held += extismPages*page + int64(p)*page
	}
	want := []int{perProcess / page, perProcess / page, perProcess / page, (budget-initial)/page - 3*(extismPages+perProcess/page) - extismPages}
	if len(pages) != len(want) || held != budget {
		t.Fatalf("children grew to %v pages, %d bytes held in all; want %v, the whole budget of %d", pages, held, want, budget)
	}
	for i := range want {
		if pages[i] != want[i] {
			t.Fatalf("children grew to %v pages; want %v", pages, want)
		}
	}

	// The operator sees it: the node holds the whole budget.
	waitMetric(t, "http://"+n.ready["metrics"].(string)+"/metrics", "weft_guest_memory_bytes", func(v float64) bool { return v == budget })

	// None was killed: all run, with no error.
	ps := n.psByID(t, "memhog:e2e")
	for _, id := range append([]string{"spawner:memhog:e2e"}, children...) {
		p := ps[id]
		if p == nil || p.GetState() != weftv1.ProcessState_PROCESS_STATE_RUNNING || p.GetLastError() != "" || p.GetRestarts() != 0 {
			t.Errorf("%s: %v; want it running, without error", id, p)
		}
	}

	// A killed child's memory is given back: a new one takes all of it.
	if out, errOut, code := n.weft(t, "kill", children[0]); code != 0 {
		t.Fatalf("weft kill %s: code %d, stdout %q, stderr %q", children[0], code, out, errOut)
	}
	rc, child := n.spawnChild(t, spawner)
	if rc <= 0 {
		t.Fatalf("spawn after a kill returned %d", rc)
	}
	if p := n.childPages(t, child); p != perProcess/page {
		t.Errorf("the new child grew to %d pages; want %d", p, perProcess/page)
	}
	if rc, _ := n.spawnChild(t, spawner); rc != abi.ELIMIT {
		t.Errorf("spawn with the budget full again returned %d; want WEFT_ELIMIT", rc)
	}

	if out, errOut, code := n.weft(t, "status"); code != 0 {
		t.Errorf("weft status: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	n.stop(t)
}

// extismPages is Extism's kernel memory, which every instance holds.
const extismPages = 16

// spawnChild has the spawner spawn one child of grow.wasm and returns
// what spawn returned and the child's id.
func (n *node) spawnChild(t *testing.T, spawner string) (int32, string) {
	t.Helper()
	b := n.sendBytes(t, spawner, "1 grow.wasm")
	if len(b) < 4 {
		t.Fatalf("spawner answered %q", b)
	}
	rc := int32(binary.LittleEndian.Uint32(b))
	if rc > 0 && len(b) == 4+int(rc) {
		return rc, string(b[4:])
	}
	if rc > 0 || len(b) != 4 {
		t.Fatalf("spawner answered %q", b)
	}
	return rc, ""
}

// childPages asks a grow.wasm child for its memory's size in pages: it
// answers once memory.grow has failed.
func (n *node) childPages(t *testing.T, child string) int {
	t.Helper()
	b := n.sendBytes(t, "our@"+child, "pages?")
	if len(b) != 4 {
		t.Fatalf("%s answered %q", child, b)
	}
	return int(binary.LittleEndian.Uint32(b))
}

// sendBytes sends body with weft send and returns the response's body.
func (n *node) sendBytes(t *testing.T, to, body string) []byte {
	t.Helper()
	out, errOut, code := n.weft(t, "send", to, body, "--await", "10s")
	if code != 0 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("weft send %s %q: code %d, stdout %q, stderr %q", to, body, code, out, errOut)
	}
	return []byte(strings.TrimSuffix(out, "\n"))
}

// psByID lists a package's processes with weft --json ps, by id.
func (n *node) psByID(t *testing.T, pkg string) map[string]*weftv1.ProcessInfo {
	t.Helper()
	out, errOut, code := n.weft(t, "--json", "ps", pkg)
	if code != 0 {
		t.Fatalf("weft ps: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	var ps weftv1.ListProcessesResponse
	if err := protojson.Unmarshal([]byte(out), &ps); err != nil {
		t.Fatalf("weft --json ps: %v\n%s", err, out)
	}
	seen := map[string]*weftv1.ProcessInfo{}
	for _, p := range ps.GetProcesses() {
		seen[p.GetId()] = p
	}
	return seen
}

// memhogPackage makes package memhog:e2e in a new directory: process
// spawner (wasm/testdata/spawner.wat), which spawns children of
// grow.wasm (wasm/testdata/grow.wat) on request.
func memhogPackage(t *testing.T) string {
	t.Helper()
	w2w, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Fatal("wat2wasm is not installed: run `make tools` (it installs wabt)")
	}
	dir := t.TempDir()
	for _, name := range []string{"spawner", "grow"} {
		if out, err := exec.Command(w2w, filepath.Join("..", "..", "wasm", "testdata", name+".wat"), "-o", filepath.Join(dir, name+".wasm")).CombinedOutput(); err != nil {
			t.Fatalf("wat2wasm %s: %v\n%s", name, err, out)
		}
	}
	files := map[string]string{
		"metadata.json": `{"package_name": "memhog", "publisher": "e2e", "version": "0.1.0"}`,
		"manifest.json": `[{"process_name": "spawner", "process_wasm_path": "/spawner.wasm", "on_exit": "None"}]`,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
