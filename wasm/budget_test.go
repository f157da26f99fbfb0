package wasm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weftos/weft/abi"
	"github.com/weftos/weft/kernel"
)

const page = 1 << 16

// The guest memory budget tests' modules: grow.wat grows until
// memory.grow fails and then answers with its size in pages;
// spawner.wat spawns children on request; growexit.wat grows and exits.
type budgetModules struct {
	grow, spawner, growExit *Module
}

func compileBudgetModules(t *testing.T, e *env) budgetModules {
	t.Helper()
	return budgetModules{
		grow:     e.compile(t, "grow.wasm", buildWAT(t, "grow")),
		spawner:  e.compile(t, "spawner.wasm", buildWAT(t, "spawner")),
		growExit: e.compile(t, "growexit.wasm", buildWAT(t, "growexit")),
	}
}

// resolve is the spawners' ProcessOptions.Resolve.
func (b budgetModules) resolve(path string) (*Module, error) {
	switch path {
	case "grow.wasm":
		return b.grow, nil
	case "spawner.wasm":
		return b.spawner, nil
	case "growexit.wasm":
		return b.growExit, nil
	}
	return nil, fmt.Errorf("no module %q", path)
}

func inPackage(pkg, name string) kernel.ProcessId {
	return kernel.ProcessId{Name: name, Package: pkg, Publisher: "weft.dev"}
}

// startIn starts a top-level process of m.
func (e *env) startIn(t *testing.T, id kernel.ProcessId, m *Module, onExit kernel.OnExitKind, opts ProcessOptions) {
	t.Helper()
	if err := e.k.Start(kernel.Spec{ID: id, Process: m.Process(opts), OnExit: kernel.OnExit{Kind: onExit}}); err != nil {
		t.Fatal(err)
	}
}

// pages asks a grow.wat process for its memory's size in pages; it
// answers only once memory.grow has failed.
func (e *env) pages(t *testing.T, id kernel.ProcessId) int {
	t.Helper()
	b := e.mustCall(t, id, "")
	if len(b) != 4 {
		t.Fatalf("%s answered %q; want 4 bytes", id, b)
	}
	return int(binary.LittleEndian.Uint32([]byte(b)))
}

// spawnResult is one spawn of a spawner.wat process: the call's result
// and, when it succeeded, the child.
type spawnResult struct {
	rc    int32
	child kernel.ProcessId
}

// spawn has the spawner.wat process parent spawn n children of path.
func (e *env) spawn(t *testing.T, parent kernel.ProcessId, n int, path string) []spawnResult {
	t.Helper()
	b := []byte(e.mustCall(t, parent, fmt.Sprintf("%d %s", n, path)))
	var rs []spawnResult
	for len(b) > 0 {
		if len(b) < 4 {
			t.Fatalf("spawner's answer ends in %q", b)
		}
		r := spawnResult{rc: int32(binary.LittleEndian.Uint32(b))}
		b = b[4:]
		if r.rc > 0 {
			id, err := kernel.ParseProcessId(string(b[:r.rc]))
			if err != nil {
				t.Fatalf("spawner's answer: child %q: %v", b[:r.rc], err)
			}
			r.child, b = id, b[r.rc:]
		}
		rs = append(rs, r)
	}
	if len(rs) != n {
		t.Fatalf("spawner answered %d results for %d spawns", len(rs), n)
	}
	return rs
}

// wantUse checks what the host reports the instances hold: the node's
// total and each package's, in bytes (packages not listed hold nothing).
func (e *env) wantUse(t *testing.T, total int64, pkgs map[string]int64) {
	t.Helper()
	g := e.host.GuestMemory()
	want := make(map[kernel.PackageId]int64)
	for p, n := range pkgs {
		want[kernel.PackageId{Package: p, Publisher: "weft.dev"}] = n
	}
	if g.Total != total || fmt.Sprint(g.Packages) != fmt.Sprint(want) {
		t.Fatalf("guest memory held: total %d, packages %v; want %d, %v", g.Total, g.Packages, total, want)
	}
}

// waitGone waits until a spawned child has left the table: it stopped
// and its instance is gone.
func (e *env) waitGone(t *testing.T, id kernel.ProcessId) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := e.k.WaitProcess(ctx, id, func(kernel.ProcessInfo) bool { return false }); !errors.Is(err, kernel.ErrNotFound) {
		t.Fatalf("waiting for %s to leave the table: %v", id, err)
	}
}

// The bytes an instance starts with are what Module.initial says: the
// guest's minimum and Extism's kernel memory, 16 pages (extismKernelMemory).
func TestInitialMemory(t *testing.T) {
	e := newEnv(t, envOpts{})
	mods := compileBudgetModules(t, e)
	if want := int64(17 * page); mods.spawner.initial != want {
		t.Fatalf("spawner.wasm starts with %d bytes, want %d", mods.spawner.initial, want)
	}
	id := inPackage("one", "idle")
	e.startIn(t, id, mods.spawner, kernel.OnExitNone, ProcessOptions{})
	e.spawn(t, id, 0, "none") // it runs
	e.wantUse(t, mods.spawner.initial, map[string]int64{"one": mods.spawner.initial})
	if n := memoryMinPages(buildWAT(t, "nomem")); n != 0 {
		t.Errorf("a module without memory: %d pages", n)
	}
}

// A guest growing until memory.grow fails stops at its package's budget;
// one of another package grows past that, within its own, up to the
// node's budget; neither is killed for it. A process whose initial
// memory does not fit does not start, with an error naming the budget,
// and its on_exit applies; memory a process held is given back when it
// stops, and a new process can take it.
func TestGuestMemoryBudgets(t *testing.T) {
	lim := kernel.Limits{
		MemoryPerProcess:      32 << 20,
		GuestMemoryPerPackage: 24 << 20,
		GuestMemoryTotal:      40 << 20,
	}
	e := newEnv(t, envOpts{limits: lim})
	mods := compileBudgetModules(t, e)
	ext := extismKernelMemory / page

	a1 := inPackage("a", "a1")
	e.startIn(t, a1, mods.grow, kernel.OnExitNone, ProcessOptions{})
	if got, want := e.pages(t, a1), int(lim.GuestMemoryPerPackage/page)-ext; got != want {
		t.Fatalf("a1 grew to %d pages; want %d, its package's budget less Extism's memory", got, want)
	}
	b1 := inPackage("b", "b1")
	e.startIn(t, b1, mods.grow, kernel.OnExitNone, ProcessOptions{})
	if got, want := e.pages(t, b1), int((lim.GuestMemoryTotal-lim.GuestMemoryPerPackage)/page)-ext; got != want {
		t.Fatalf("b1 grew to %d pages; want %d, what the node's budget leaves", got, want)
	}
	e.wantUse(t, 40<<20, map[string]int64{"a": 24 << 20, "b": 16 << 20})
	// Both are still alive, answering.
	if got := e.pages(t, a1); got != int(lim.GuestMemoryPerPackage/page)-ext {
		t.Fatalf("a1 answers %d pages the second time", got)
	}

	// a2 (restarted on exit) does not fit its package's budget; c1
	// (package c, on_exit none) does not fit the node's.
	a2 := inPackage("a", "a2")
	e.startIn(t, a2, mods.grow, kernel.OnExitRestart, ProcessOptions{})
	info := e.waitFor(t, a2, "restarted", func(in kernel.ProcessInfo) bool { return in.Restarts >= 1 })
	wantErr := fmt.Sprintf("wasm: grow.wasm: cannot start: %d bytes of linear memory do not fit package a:weft.dev's guest memory budget", mods.grow.initial)
	if !strings.Contains(info.LastError, wantErr) || !strings.HasSuffix(info.LastError, "(guest_memory_per_package)") {
		t.Errorf("a2's error %q; want %q… (guest_memory_per_package)", info.LastError, wantErr)
	}
	c1 := inPackage("c", "c1")
	e.startIn(t, c1, mods.grow, kernel.OnExitNone, ProcessOptions{})
	info = e.waitFor(t, c1, "exited", func(in kernel.ProcessInfo) bool { return in.State == kernel.StateExited })
	if !strings.Contains(info.LastError, "the node's guest memory budget") || !strings.HasSuffix(info.LastError, "(guest_memory_total)") || info.Restarts != 0 {
		t.Errorf("c1: error %q, %d restarts; want the node's budget and no restart", info.LastError, info.Restarts)
	}
	e.wantUse(t, 40<<20, map[string]int64{"a": 24 << 20, "b": 16 << 20})

	// a1 stops: a2's next incarnation takes what it held.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.k.Kill(ctx, a1); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	e.waitFor(t, a2, "started after a1 stopped", func(in kernel.ProcessInfo) bool {
		return in.State == kernel.StateRunning && in.Started.After(stopped)
	})
	if got, want := e.pages(t, a2), int(lim.GuestMemoryPerPackage/page)-ext; got != want {
		t.Fatalf("a2 grew to %d pages after a1 stopped; want %d", got, want)
	}

	for _, id := range []kernel.ProcessId{a1, a2, b1, c1} {
		if err := e.k.Remove(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	e.wantUse(t, 0, nil)
	if n := len(e.host.budget.pkgs); n != 0 {
		t.Errorf("%d packages left in the budget's table", n)
	}
}

// A spawn whose child's initial memory does not fit its package's
// budget fails at the call with WEFT_ELIMIT, even when the children
// spawned before it have not run yet: the spawn reserves their initial
// memory. A spawned child that grows stops at the budget, and is not
// killed for it; once it stops, a spawn fits again.
func TestSpawnBudget(t *testing.T) {
	const initial = 17 * page // spawner.wat and grow.wat: 1 page and Extism's 16
	lim := kernel.Limits{MemoryPerProcess: 8 << 20, GuestMemoryPerPackage: 3*initial + 8*page}
	e := newEnv(t, envOpts{limits: lim})
	mods := compileBudgetModules(t, e)
	opts := ProcessOptions{Resolve: mods.resolve}

	// Children that do not grow: room for two besides the parent.
	p := inPackage("p", "parent")
	e.startIn(t, p, mods.spawner, kernel.OnExitNone, opts)
	rs := e.spawn(t, p, 3, "spawner.wasm")
	if rs[0].rc <= 0 || rs[1].rc <= 0 || rs[2].rc != abi.ELIMIT {
		t.Fatalf("three spawns returned %d, %d, %d; want two children and WEFT_ELIMIT (%d)", rs[0].rc, rs[1].rc, rs[2].rc, abi.ELIMIT)
	}
	e.wantUse(t, 3*initial, map[string]int64{"p": 3 * initial})

	// A child that grows fills what its package's budget leaves.
	q := inPackage("q", "parent")
	e.startIn(t, q, mods.spawner, kernel.OnExitNone, opts)
	rs = e.spawn(t, q, 1, "grow.wasm")
	if rs[0].rc <= 0 {
		t.Fatalf("spawn returned %d", rs[0].rc)
	}
	child := rs[0].child
	if got, want := e.pages(t, child), int(lim.GuestMemoryPerPackage-initial)/page-extismKernelMemory/page; got != want {
		t.Fatalf("the child grew to %d pages; want %d", got, want)
	}
	if rs = e.spawn(t, q, 1, "grow.wasm"); rs[0].rc != abi.ELIMIT {
		t.Fatalf("a spawn past the budget returned %d; want WEFT_ELIMIT", rs[0].rc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.k.Kill(ctx, child); err != nil {
		t.Fatal(err)
	}
	e.waitGone(t, child)
	if rs = e.spawn(t, q, 1, "spawner.wasm"); rs[0].rc <= 0 {
		t.Fatalf("a spawn after the child stopped returned %d", rs[0].rc)
	}

	for _, id := range []kernel.ProcessId{p, q} {
		if err := e.k.Remove(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	e.wantUse(t, 0, nil)
}

// Many children spawned, grown and gone leave nothing charged: the
// counters come back to the parent's own memory, then to zero.
func TestSpawnBudgetNoLeak(t *testing.T) {
	lim := kernel.Limits{MemoryPerProcess: 4 << 20, GuestMemoryPerPackage: 64 << 20}
	e := newEnv(t, envOpts{limits: lim})
	mods := compileBudgetModules(t, e)
	p := inPackage("p", "parent")
	e.startIn(t, p, mods.spawner, kernel.OnExitNone, ProcessOptions{Resolve: mods.resolve})
	for round := 0; round < 5; round++ {
		for _, r := range e.spawn(t, p, 10, "growexit.wasm") {
			if r.rc <= 0 {
				t.Fatalf("round %d: spawn returned %d", round, r.rc)
			}
			e.waitGone(t, r.child)
		}
		e.wantUse(t, mods.spawner.initial, map[string]int64{"p": mods.spawner.initial})
	}
	// Children that hold their memory stop with their parent.
	for _, r := range e.spawn(t, p, 10, "grow.wasm") {
		if r.rc <= 0 {
			t.Fatalf("spawn returned %d", r.rc)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.k.Remove(ctx, p); err != nil {
		t.Fatal(err)
	}
	e.wantUse(t, 0, nil)
	if n := len(e.host.budget.pkgs); n != 0 {
		t.Errorf("%d packages left in the budget's table", n)
	}
}

// A reservation is given back once, by whoever comes first: the child
// that claims it keeps its bytes; a cancel after that does nothing; a
// cancel before it gives the bytes back and the child reserves anew.
func TestReservation(t *testing.T) {
	b := newMemBudget(kernel.Limits{GuestMemoryPerPackage: 10, GuestMemoryTotal: 15})
	pa := kernel.PackageId{Package: "a", Publisher: "weft.dev"}
	pb := kernel.PackageId{Package: "b", Publisher: "weft.dev"}
	use := func() string {
		b.mu.Lock()
		defer b.mu.Unlock()
		s := fmt.Sprint(b.node.Load())
		for _, id := range []kernel.PackageId{pa, pb} {
			if p := b.pkgs[id]; p != nil {
				s += fmt.Sprintf(" %s=%d/%d", id.Package, p.used.Load(), p.refs)
			}
		}
		return s
	}
	r, err := b.reserve(pa, 6)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.reserve(pa, 5); !errors.Is(err, kernel.ErrLimit) || !strings.Contains(err.Error(), "guest_memory_per_package") {
		t.Fatalf("a reservation past the package's budget: %v", err)
	}
	a, err := b.open(pa, 6, r)
	if err != nil || a.credit != 6 {
		t.Fatalf("open with a reservation: %v, credit %v", err, a)
	}
	r.cancel() // claimed: nothing
	if got := use(); got != "6 a=6/1" {
		t.Fatalf("after claim and cancel: %s", got)
	}
	if !a.charge(4, true) || !a.charge(5, false) {
		t.Fatal("charges within the budget failed")
	}
	if a.charge(2, false) {
		t.Fatal("a grow past the package's budget was charged")
	}
	if _, err := b.reserve(pb, 7); !errors.Is(err, kernel.ErrLimit) || !strings.Contains(err.Error(), "guest_memory_total") {
		t.Fatalf("a reservation past the node's budget: %v", err)
	}
	a.settle()
	if got := use(); got != "9 a=9/1" {
		t.Fatalf("after the charges: %s", got)
	}
	a.refund(9)
	a.close()

	r2, err := b.reserve(pb, 5)
	if err != nil {
		t.Fatal(err)
	}
	r2.cancel()
	r2.cancel()
	if r2.claim() {
		t.Fatal("a cancelled reservation was claimed")
	}
	if got := use(); got != "0" {
		t.Fatalf("after everything was given back: %s", got)
	}
}
