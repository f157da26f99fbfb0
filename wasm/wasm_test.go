package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/weftos/weft/abi"
	"github.com/weftos/weft/kernel"
)

func TestEchoC(t *testing.T) {
	e := newEnv(t, envOpts{})
	m := e.compile(t, "guest.wasm", buildC(t, "guest"))
	id := e.start(t, "echo", m, false, ProcessOptions{})
	for _, body := range []string{"hello", "", strings.Repeat("x", 40<<10)} {
		if got := e.mustCall(t, id, body); got != body {
			t.Fatalf("echo of %d bytes returned %d bytes", len(body), len(got))
		}
	}
	if got := e.mustCall(t, id, "self"); got != e.k.Address(id).String() {
		t.Errorf("self_read = %q, want %q", got, e.k.Address(id))
	}
}

func TestEchoGo(t *testing.T) {
	e := newEnv(t, envOpts{})
	m := e.compile(t, "goecho.wasm", buildGo(t))
	id := e.start(t, "goecho", m, false, ProcessOptions{})
	if got := e.mustCall(t, id, "hello"); got != "hello" {
		t.Fatalf("got %q", got)
	}
}

// TestSendAndAwait: a C client calls a Go server and a C server, and a Go
// client calls a C server, each holding the server's messaging
// capability (the servers are not public).
func TestSendAndAwait(t *testing.T) {
	e := newEnv(t, envOpts{})
	cm := e.compile(t, "guest.wasm", buildC(t, "guest"))
	gm := e.compile(t, "goecho.wasm", buildGo(t))
	e.start(t, "cclient", cm, false, ProcessOptions{})
	e.start(t, "gclient", gm, false, ProcessOptions{})
	cserver := e.start(t, "cserver", cm, false, ProcessOptions{}, "cclient", "gclient")
	gserver := e.start(t, "gserver", gm, false, ProcessOptions{}, "cclient")
	for _, tc := range []struct{ client, server string }{
		{"cclient", cserver.String()}, {"cclient", gserver.String()}, {"gclient", cserver.String()},
	} {
		got := e.mustCall(t, pid(tc.client), "call our@"+tc.server+" 3")
		if got != "hello" {
			t.Errorf("%s → %s: got %q", tc.client, tc.server, got)
		}
	}
	// Without the capability the send fails with no_capability.
	e.start(t, "lonely", cm, false, ProcessOptions{})
	got := e.mustCall(t, pid("lonely"), "call our@"+gserver.String()+" 1")
	if !strings.Contains(got, "-104") || !strings.Contains(got, "no_capability") {
		t.Errorf("call without capability: got %q", got)
	}
}

// TestSendAndAwaitTimeout: a timeout returns WEFT_ETIMEOUT and makes the
// error message current.
func TestSendAndAwaitTimeout(t *testing.T) {
	e := newEnv(t, envOpts{})
	m := e.compile(t, "guest.wasm", buildC(t, "guest"))
	e.start(t, "asker", m, false, ProcessOptions{})
	silent := pid("silent")
	err := e.k.Start(kernel.Spec{ID: silent, Public: true, Process: kernel.ProcessFunc(func(ctx context.Context, h *kernel.Handle) error {
		for {
			if _, err := h.Await(); err != nil {
				return nil
			}
		}
	})})
	if err != nil {
		t.Fatal(err)
	}
	got := e.mustCall(t, pid("asker"), "calltimeout our@"+silent.String())
	if !strings.HasPrefix(got, "code=-101 kind=3 errkind=1 len=") {
		t.Fatalf("got %q, want WEFT_ETIMEOUT with a current error message of kind timeout", got)
	}
}

// TestKillInGuestCode: the kernel stops a process that is computing (not
// in a host call) promptly, long before the CPU guard would.
func TestKillInGuestCode(t *testing.T) {
	e := newEnv(t, envOpts{})
	m := e.compile(t, "guest.wasm", buildC(t, "guest"))
	id := e.start(t, "spinner", m, false, ProcessOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.k.Send(ctx, &kernel.Request{Target: e.k.Address(id), Body: []byte("spin")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := e.k.Kill(ctx, id); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("kill took %v", d)
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	e := newEnv(t, envOpts{store: true})
	m := e.compile(t, "guest.wasm", buildC(t, "guest"))
	id := e.start(t, "stateful", m, true, ProcessOptions{})
	if got := e.mustCall(t, id, "state-get"); got != "none -4" {
		t.Fatalf("fresh state_get = %q, want none -4 (WEFT_ENONE)", got)
	}
	if got := e.mustCall(t, id, "state-set kept across restarts"); got != "0" {
		t.Fatalf("state_set = %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.k.Restart(ctx, id); err != nil {
		t.Fatal(err)
	}
	// Restart returns before the supervisor marks the process running.
	e.waitFor(t, id, "running", func(in kernel.ProcessInfo) bool { return in.State == kernel.StateRunning })
	if got := e.mustCall(t, id, "state-get"); got != "kept across restarts" {
		t.Fatalf("state after restart = %q", got)
	}
	// A crash and on_exit restart keep it too.
	if _, err := e.call(t, id, "trap", nil); err == nil {
		t.Fatal("trap answered")
	}
	if got := e.mustCall(t, id, "state-get"); got != "kept across restarts" {
		t.Fatalf("state after a trap and restart = %q", got)
	}
	if got := e.mustCall(t, id, "state-clear"); got != "0" {
		t.Fatalf("state_clear = %q", got)
	}
	if err := e.k.Restart(ctx, id); err != nil {
		t.Fatal(err)
	}
	// Restart returns before the supervisor marks the process running.
	e.waitFor(t, id, "running", func(in kernel.ProcessInfo) bool { return in.State == kernel.StateRunning })
	if got := e.mustCall(t, id, "state-get"); got != "none -4" {
		t.Fatalf("state after clear = %q", got)
	}
}

func TestSpawn(t *testing.T) {
	e := newEnv(t, envOpts{})
	m := e.compile(t, "guest.wasm", buildC(t, "guest"))
	var asked []string
	opts := ProcessOptions{Resolve: func(path string) (*Module, error) {
		asked = append(asked, path)
		if path != "guest.wasm" {
			return nil, os.ErrNotExist
		}
		return m, nil
	}}
	id := e.start(t, "parent", m, false, opts)
	got := e.mustCall(t, id, "spawn kid")
	if got != "kid:test:weft.dev" {
		t.Fatalf("spawn returned %q", got)
	}
	if len(asked) != 1 || asked[0] != "guest.wasm" {
		t.Errorf("Resolve was asked for %q", asked)
	}
	if got := e.mustCall(t, pid("kid"), "hi kid"); got != "hi kid" {
		t.Errorf("child echo = %q", got)
	}
	// The child can spawn in turn (it got the same options).
	if got := e.mustCall(t, pid("kid"), "spawn grandkid"); got != "grandkid:test:weft.dev" {
		t.Errorf("grandchild spawn = %q", got)
	}
	// Again under the same name: exists.
	if got := e.mustCall(t, id, "spawn kid"); !strings.HasPrefix(got, "spawn=-8") {
		t.Errorf("second spawn of kid = %q, want WEFT_EEXIST (-8)", got)
	}
	// Without a resolver: not found.
	e.start(t, "orphan", m, false, ProcessOptions{})
	if got := e.mustCall(t, pid("orphan"), "spawn x"); !strings.HasPrefix(got, "spawn=-7") || !strings.Contains(got, "no module resolver") {
		t.Errorf("spawn without resolver = %q", got)
	}
}

func TestBlobLazy(t *testing.T) {
	e := newEnv(t, envOpts{})
	m := e.compile(t, "guest.wasm", buildC(t, "guest"))
	id := e.start(t, "blobby", m, false, ProcessOptions{})
	blob := bytes.Repeat([]byte("0123456789"), 20<<10)
	got, err := e.call(t, id, "blob", &kernel.Blob{Mime: "application/octet-stream", Bytes: blob})
	if err != nil {
		t.Fatal(err)
	}
	data, tail, ok := strings.Cut(got, "|msglen=")
	if !ok || data != string(blob) {
		t.Fatalf("blob_read returned %d bytes, want the %d sent", len(data), len(blob))
	}
	// The message itself does not carry the blob's bytes.
	if len(tail) > 4 {
		t.Errorf("message length %s: the blob was copied with the message", tail)
	}
	if got := e.mustCall(t, id, "blob"); got != "blob_read=-4" {
		t.Errorf("blob_read without a blob = %q, want WEFT_ENONE", got)
	}
}

// TestKills: a trap, running out of memory and spinning past the CPU guard
// each kill that process only; on_exit restart brings it back; a process
// idle in await past the guard is never killed.
func TestKills(t *testing.T) {
	lim := kernel.Limits{GuestCPUTime: 500 * time.Millisecond, MemoryPerProcess: 8 << 20}
	e := newEnv(t, envOpts{limits: lim})
	m := e.compile(t, "guest.wasm", buildC(t, "guest"))
	victim := e.start(t, "victim", m, true, ProcessOptions{})
	bystander := e.start(t, "bystander", m, false, ProcessOptions{})
	if got := e.mustCall(t, bystander, "hello"); got != "hello" {
		t.Fatal(got)
	}
	// Idle in await for several guard periods, then still answers.
	time.Sleep(5 * lim.GuestCPUTime)
	if got := e.mustCall(t, bystander, "still here"); got != "still here" {
		t.Fatalf("idle process: %q", got)
	}
	// Busy but calling into the node often: never killed.
	if got := e.mustCall(t, bystander, "burn 1500"); got != "burned" {
		t.Fatalf("burn: %q", got)
	}

	for _, tc := range []struct{ cmd, want string }{
		{"trap", "init failed"},
		{"oom", "init returned 12"},
		{"spin", "CPU guard"},
		{"exit", "init returned 3"},
	} {
		before, _ := e.k.Process(victim)
		start := time.Now()
		_, err := e.call(t, victim, tc.cmd, nil)
		var se *kernel.SendError
		if !errors.As(err, &se) || se.Kind != kernel.ErrKilled {
			t.Fatalf("%s: got %v, want a killed error", tc.cmd, err)
		}
		if tc.cmd == "spin" {
			if d := time.Since(start); d < lim.GuestCPUTime || d > 3*lim.GuestCPUTime {
				t.Errorf("spin was killed after %v; guard is %v", d, lim.GuestCPUTime)
			}
		}
		info := e.waitFor(t, victim, "restarted", func(in kernel.ProcessInfo) bool {
			return in.Restarts > before.Restarts && in.State == kernel.StateRunning
		})
		if !strings.Contains(info.LastError, tc.want) {
			t.Errorf("%s: last error %q does not contain %q", tc.cmd, info.LastError, tc.want)
		}
		if got := e.mustCall(t, victim, "back"); got != "back" {
			t.Errorf("after %s: %q", tc.cmd, got)
		}
		if got := e.mustCall(t, bystander, "ok"); got != "ok" {
			t.Errorf("bystander after %s: %q", tc.cmd, got)
		}
	}
}

func TestTrapAtStart(t *testing.T) {
	e := newEnv(t, envOpts{})
	m := e.compile(t, "trap.wasm", buildWAT(t, "trap"))
	id := e.start(t, "trapper", m, false, ProcessOptions{})
	info := e.waitFor(t, id, "exited", func(in kernel.ProcessInfo) bool { return in.State == kernel.StateExited })
	if !strings.Contains(info.LastError, "unreachable") {
		t.Errorf("last error %q does not name the trap", info.LastError)
	}
}

func TestCompileRefuses(t *testing.T) {
	e := newEnv(t, envOpts{limits: kernel.Limits{MaxModuleBytes: 1 << 20}})
	for _, tc := range []struct {
		name string
		wasm []byte
		want string
	}{
		{"garbage.wasm", []byte("this is not wasm"), "garbage.wasm: malformed module: not a WebAssembly binary"},
		{"truncated.wasm", buildWAT(t, "edges")[:40], "truncated.wasm: malformed module"},
		{"v3.wasm", buildWAT(t, "v3"), "v3.wasm: declares ABI version 3; this node speaks versions 1 and 2"},
		{"noabi.wasm", buildWAT(t, "noabi"), "noabi.wasm: exports no weft_abi_vN function"},
		{"noinit.wasm", buildWAT(t, "noinit"), `noinit.wasm: exports no function named "init"`},
		{"nomem.wasm", buildWAT(t, "nomem"), `nomem.wasm: exports no memory named "memory"`},
		{"badinit.wasm", buildWAT(t, "badinit"), "badinit.wasm: init has type (i32) -> (i32); want () -> (i32)"},
		{"badinitialize.wasm", buildWAT(t, "badinitialize"), "badinitialize.wasm: _initialize is not a function of type () -> ()"},
		{"badimport.wasm", buildWAT(t, "badimport"), "badimport.wasm: imports weft.nonesuch, which this node does not provide"},
		{"badimporttype.wasm", buildWAT(t, "badimporttype"), "badimporttype.wasm: imports weft.await with type () -> (i64); it has type () -> (i32)"},
		{"big.wasm", append(buildWAT(t, "v3"), make([]byte, 1<<20)...), "big.wasm: module is 10486"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.host.Compile(tc.name, tc.wasm)
			if err == nil {
				t.Fatal("compiled")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
	// A module that passes inspection but not wazero's validation.
	bad := buildWAT(t, "trap")
	bad = bytes.Replace(bad, []byte{0x00, 0x0b}, []byte{0x0b, 0x0b}, 1)
	if _, err := e.host.Compile("invalid.wasm", bad); err == nil {
		t.Error("compiled a module wazero cannot validate")
	}
}

func TestCompileShared(t *testing.T) {
	e := newEnv(t, envOpts{})
	w := buildC(t, "guest")
	a := e.compile(t, "a.wasm", w)
	b := e.compile(t, "b.wasm", w)
	if a != b {
		t.Error("the same bytes compiled twice")
	}
}

func TestBadPointersAndEncodings(t *testing.T) {
	e := newEnv(t, envOpts{})
	m := e.compile(t, "guest.wasm", buildC(t, "guest"))
	id := e.start(t, "prober", m, false, ProcessOptions{})
	got := e.mustCall(t, id, "probe")
	lines := map[string]string{}
	for _, l := range strings.Split(got, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			lines[k] = v
		}
	}
	for k, want := range map[string]string{
		"message_read": "-1", "state_set": "-1", "send": "-1", "blob_read": "-1", "self_read": "-1",
		"spawn_out": "-1", "send_garbage": "-1", "send_reserved": "-1", "send_badtarget": "-1",
		"send_and_await_garbage": "-1", "spawn_garbage": "-1", "respond_garbage": "-1",
	} {
		if lines[k] != want {
			t.Errorf("%s = %q, want %s", k, lines[k], want)
		}
	}
	mem := lines["memsize"]
	for k, want := range map[string]string{
		"message_read_error":    "weft.message_read: pointer 4294967040 and length 4096 lie outside the guest's memory of " + mem + " bytes",
		"send_error":            "length 10 lie outside the guest's memory of " + mem,
		"send_garbage_error":    "weft.send: abi: request: flags: unknown bits 0x60",
		"send_reserved_error":   "weft.send: abi: request: reserved: must be zero",
		"respond_garbage_error": "weft.respond: abi: response: body length: needs 4 bytes, 2 left",
	} {
		if !strings.Contains(lines[k], want) {
			t.Errorf("%s = %q, want it to contain %q", k, lines[k], want)
		}
	}
	// The process survived all of it.
	if got := e.mustCall(t, id, "fine"); got != "fine" {
		t.Errorf("after probing: %q", got)
	}
}

func TestPointerEdges(t *testing.T) {
	e := newEnv(t, envOpts{})
	m := e.compile(t, "edges.wasm", buildWAT(t, "edges"))
	id := e.start(t, "edges", m, false, ProcessOptions{})
	info := e.waitFor(t, id, "exited", func(in kernel.ProcessInfo) bool { return in.State == kernel.StateExited })
	if info.LastError != "" {
		t.Fatalf("edges guest failed: %s (the number is the failed step in testdata/edges.wat)", info.LastError)
	}
}

func TestSandbox(t *testing.T) {
	t.Setenv("HOME", "/root")
	e := newEnv(t, envOpts{})
	m := e.compile(t, "guest.wasm", buildC(t, "guest"))
	id := e.start(t, "sandboxed", m, false, ProcessOptions{})
	got := e.mustCall(t, id, "sandbox")
	lines := map[string]string{}
	for _, l := range strings.Split(got, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			lines[k] = v
		}
	}
	check := func(k string, ok func(string) bool, what string) {
		if !ok(lines[k]) {
			t.Errorf("%s = %q: %s", k, lines[k], what)
		}
	}
	eq := func(s string) func(string) bool { return func(v string) bool { return v == s } }
	check("open", func(v string) bool { return strings.HasPrefix(v, "-1 ") }, "opening /etc/passwd must fail")
	check("open_rel", eq("-1"), "opening a relative path must fail")
	check("env", eq("null,null"), "no environment")
	check("environ", eq("0"), "no environment")
	check("args", eq("0"), "no arguments")
	check("sock_accept3", func(v string) bool { return v != "0" }, "no socket")
	check("sock_accept0", func(v string) bool { return v != "0" }, "no socket")
	check("prestat3", func(v string) bool { return v != "0" }, "no preopened directory")
	check("random_nonzero", eq("1"), "random works")
	check("realtime_s", func(v string) bool { return len(v) >= 10 && v > "1700000000" }, "the wall clock is real")
	if !e.log.find("hello from stdout") || !e.log.find("hello from stderr") {
		t.Error("stdout and stderr did not reach the node's log")
	}
	if !e.log.find(`level=WARN msg="hello from stderr"`) {
		t.Error("stderr is not logged at warn")
	}
}

func TestExtismHTTPDenied(t *testing.T) {
	e := newEnv(t, envOpts{})
	m := e.compile(t, "http.wasm", buildC(t, "http"))
	id := e.start(t, "http", m, false, ProcessOptions{})
	info := e.waitFor(t, id, "exited", func(in kernel.ProcessInfo) bool { return in.State == kernel.StateExited })
	if !strings.Contains(info.LastError, "not allowed") {
		t.Fatalf("http_request was not refused: last error %q", info.LastError)
	}
}

func TestHostPanicKillsOnlyThatProcess(t *testing.T) {
	e := newEnv(t, envOpts{})
	m := e.compile(t, "guest.wasm", buildC(t, "guest"))
	id := e.start(t, "panicky", m, true, ProcessOptions{Resolve: func(string) (*Module, error) { panic("resolver exploded") }})
	other := e.start(t, "calm", m, false, ProcessOptions{})
	before, _ := e.k.Process(id)
	if _, err := e.call(t, id, "spawn x", nil); err == nil {
		t.Fatal("a process whose host function panicked answered")
	}
	info := e.waitFor(t, id, "restarted", func(in kernel.ProcessInfo) bool {
		return in.Restarts > before.Restarts && in.State == kernel.StateRunning
	})
	if !strings.Contains(info.LastError, "host function weft.spawn panicked: resolver exploded") {
		t.Errorf("last error %q", info.LastError)
	}
	if got := e.mustCall(t, other, "ok"); got != "ok" {
		t.Errorf("other process: %q", got)
	}
	if got := e.mustCall(t, id, "ok"); got != "ok" {
		t.Errorf("restarted process: %q", got)
	}
}

func TestRefusesWasiOutputEnv(t *testing.T) {
	t.Setenv(wasiOutputEnv, "1")
	_, err := NewHost(context.Background(), Config{})
	if err == nil || !strings.Contains(err.Error(), wasiOutputEnv) {
		t.Fatalf("NewHost with %s set: %v", wasiOutputEnv, err)
	}
}

func TestLogAndCaps(t *testing.T) {
	e := newEnv(t, envOpts{})
	m := e.compile(t, "guest.wasm", buildC(t, "guest"))
	id := e.start(t, "logger", m, false, ProcessOptions{})
	e.mustCall(t, id, "log a line from the guest")
	if !e.log.find(`level=WARN msg="a line from the guest" process=logger:test:weft.dev`) {
		t.Error("log line not in the node's log")
	}
	// logger holds the messaging capability of issuer; it drops it.
	issuer := e.start(t, "issuer", m, false, ProcessOptions{}, "logger")
	before := e.mustCall(t, id, "caps")
	if !strings.HasPrefix(before, "caps=") || strings.HasPrefix(before, "caps=-") {
		t.Fatalf("caps_read: %q", before)
	}
	var n int
	if _, err := fmt.Sscanf(before[strings.Index(before, "count="):], "count=%d", &n); err != nil || n < 1 {
		t.Fatalf("caps_read: %q", before)
	}
	addr := e.k.Address(issuer).String()
	if got, want := e.mustCall(t, id, "drop "+addr), fmt.Sprintf("drop=0 count=%d", n-1); got != want {
		t.Errorf("cap_drop: %q, want %q", got, want)
	}
	if got, want := e.mustCall(t, id, "drop "+addr), fmt.Sprintf("drop=%d count=%d", abi.ENOTFOUND, n-1); got != want {
		t.Errorf("second cap_drop: %q, want %q", got, want)
	}
}

// TestMemoryReuse: when a process exits its linear memories go back to
// the host's pool, zeroed; the next process gets the same mappings and
// finds nothing of the last one's in them.
func TestMemoryReuse(t *testing.T) {
	e := newEnv(t, envOpts{})
	m := e.compile(t, "guest.wasm", buildC(t, "guest"))
	a := e.start(t, "a", m, false, ProcessOptions{})
	if got := e.mustCall(t, a, "dirty"); got != "dirty" {
		t.Fatalf("dirty: %q", got)
	}
	if got := e.mustCall(t, a, "scan"); !strings.HasPrefix(got, "found") {
		t.Fatalf("scan did not find the pattern in its own memory: %q", got)
	}
	if _, err := e.call(t, a, "exit", nil); err == nil {
		t.Fatal("exit answered")
	}
	e.waitFor(t, a, "exited", func(in kernel.ProcessInfo) bool { return in.State == kernel.StateExited })
	// Both memories, the guest's (2.3 MiB resident after dirty and scan)
	// and Extism's kernel's.
	pooled := e.host.mems.len()
	if pooled != 2 {
		t.Fatalf("%d of the exited process's 2 memories were pooled", pooled)
	}
	b := e.start(t, "b", m, false, ProcessOptions{})
	if got := e.mustCall(t, b, "scan"); got != "clean" {
		t.Fatalf("the next process found the last one's data: %q", got)
	}
	if now := e.host.mems.len(); now != 0 {
		t.Fatalf("the next process did not take its memories from the pool (%d pooled before, %d after)", pooled, now)
	}
}

// The Extism version weft pins keeps the private fields the host reads
// where pluginField looks: were one missing, spawns would fail (the
// modules) or quietly take the slower path (_initialize).
func TestExtismFieldsFound(t *testing.T) {
	for name, idx := range moduleFields {
		if idx == nil {
			t.Errorf("extism.Plugin has no api.Module field %s", name)
		}
	}
	if reactorInitField == nil {
		t.Error("extism.Plugin has no guestRuntime.mainRuntime.init func(context.Context) error")
	}
}
