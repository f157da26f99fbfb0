package wasm

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/weftos/weft/kernel"
)

// buildGoPanic builds testdata/gopanic for wasip1.
func buildGoPanic(tb testing.TB) []byte {
	goTool := needTool(tb, "go")
	files, _ := filepath.Glob(filepath.Join("..", "abi", "*.go"))
	files = append(files, filepath.Join("testdata", "gopanic", "main.go"))
	key := "go-gopanic-" + hashFiles(tb, runtime.Version(), files...)
	return cached(tb, key, ".wasm", func(out string) ([]byte, error) {
		cmd := exec.Command(goTool, "build", "-buildmode=c-shared", "-o", out, "./testdata/gopanic")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		return cmd.CombinedOutput()
	})
}

// TestGoPanicKillsOnlyThatProcess: a real Go panic in a guest ends that
// process's run with an error (the requester gets killed), on_exit
// restart brings it back, and another process of the same module, and
// the kernel, go on.
func TestGoPanicKillsOnlyThatProcess(t *testing.T) {
	e := newEnv(t, envOpts{})
	m := e.compile(t, "gopanic.wasm", buildGoPanic(t))
	victim := e.start(t, "victim", m, true, ProcessOptions{})
	once := e.start(t, "once", m, false, ProcessOptions{})
	bystander := e.start(t, "bystander", m, false, ProcessOptions{})
	for _, id := range []kernel.ProcessId{victim, once, bystander} {
		if got := e.mustCall(t, id, "hello"); got != "hello" {
			t.Fatalf("%s: %q", id, got)
		}
	}

	for round := range 2 {
		before, _ := e.k.Process(victim)
		_, err := e.call(t, victim, "panic", nil)
		var se *kernel.SendError
		if !errors.As(err, &se) || se.Kind != kernel.ErrKilled {
			t.Fatalf("round %d: panic: got %v, want a killed error", round, err)
		}
		info := e.waitFor(t, victim, "restarted", func(in kernel.ProcessInfo) bool {
			return in.Restarts > before.Restarts && in.State == kernel.StateRunning
		})
		t.Logf("round %d: last error: %s", round, info.LastError)
		if !strings.Contains(info.LastError, "init failed") {
			t.Errorf("round %d: last error %q, want the failed init", round, info.LastError)
		}
		if got := e.mustCall(t, victim, "back"); got != "back" {
			t.Fatalf("round %d: restarted victim answered %q", round, got)
		}
		if got := e.mustCall(t, bystander, "still here"); got != "still here" {
			t.Fatalf("round %d: bystander answered %q", round, got)
		}
	}
	if !e.log.find("gopanic: asked to panic") {
		t.Errorf("the guest's panic message is not in the node's log")
	}

	// With on_exit none the process stays down, its error recorded.
	if _, err := e.call(t, once, "panic", nil); err == nil {
		t.Fatal("panic of the on_exit none process answered")
	}
	info := e.waitFor(t, once, "exited", func(in kernel.ProcessInfo) bool { return in.State == kernel.StateExited })
	if info.LastError == "" {
		t.Errorf("exited after a panic with no error recorded")
	}

	// The kernel is fine: it starts a new process and routes to it.
	fresh := e.start(t, "fresh", m, false, ProcessOptions{})
	if got := e.mustCall(t, fresh, "new"); got != "new" {
		t.Fatalf("fresh process answered %q", got)
	}
	if got := e.mustCall(t, bystander, "ok"); got != "ok" {
		t.Fatalf("bystander answered %q", got)
	}
}

// TestGuestSendOverBodyLimit: a guest sending a body over max_body_bytes
// gets WEFT_ETOOLARGE back and goes on; one at the limit is sent.
func TestGuestSendOverBodyLimit(t *testing.T) {
	const maxBody = 1024
	e := newEnv(t, envOpts{limits: kernel.Limits{MaxBodyBytes: maxBody}})
	m := e.compile(t, "gopanic.wasm", buildGoPanic(t))
	sender := e.start(t, "sender", m, false, ProcessOptions{})
	sink := e.start(t, "sink", m, false, ProcessOptions{}, "sender")
	target := e.k.Address(sink).String()

	got := e.mustCall(t, sender, "send 1025 "+target)
	t.Logf("send of %d bytes: %s", maxBody+1, got)
	if !strings.HasPrefix(got, "WEFT_ETOOLARGE ") || !strings.Contains(got, "max_body_bytes") {
		t.Errorf("send of %d bytes: %q, want WEFT_ETOOLARGE naming the limit", maxBody+1, got)
	}
	if got := e.mustCall(t, sender, "send 1024 "+target); got != "id" {
		t.Errorf("send of %d bytes: %q, want it sent", maxBody, got)
	}
	if got := e.mustCall(t, sender, "still here"); got != "still here" {
		t.Errorf("sender after a refused send: %q", got)
	}
	if n := e.k.Stats().SendErrors[kernel.ErrTooLarge]; n != 1 {
		t.Errorf("too_large send errors = %d, want 1", n)
	}
}
