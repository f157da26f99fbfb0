package wasm

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/weftos/weft/kernel"
)

// startGuardLimits keep the CPU guard short, so that a guest spinning in
// its start function is killed quickly.
var startGuardLimits = kernel.Limits{GuestCPUTime: 200 * time.Millisecond, MemoryPerProcess: 8 << 20}

// guardError is the error Run returns for a guest the CPU guard killed.
func guardError(name string) string {
	return fmt.Sprintf("wasm: %s: killed by the CPU guard: ran more than %v without calling into the node (guest_cpu_time)", name, startGuardLimits.GuestCPUTime)
}

// spinners are guests that spin before init: in the Wasm start section,
// which wazero runs while it instantiates the module, and in a WASI
// reactor's _initialize.
var spinners = []string{"startspin", "initializespin"}

// A guest spinning in its start function or its _initialize is killed
// by the CPU guard as one spinning in init is: Run ends with the guard's
// error, after the guard's time and not long after, and the process's
// on_exit (none here) applies.
func TestStartGuardKills(t *testing.T) {
	e := newEnv(t, envOpts{limits: startGuardLimits})
	for _, name := range spinners {
		t.Run(name, func(t *testing.T) {
			m := e.compile(t, name+".wasm", buildWAT(t, name))
			began := time.Now()
			id := e.start(t, name, m, false, ProcessOptions{})
			info := e.waitFor(t, id, "exited", func(in kernel.ProcessInfo) bool { return in.State == kernel.StateExited })
			took := time.Since(began)
			if want := guardError(name + ".wasm"); info.LastError != want {
				t.Errorf("last error %q, want %q", info.LastError, want)
			}
			if g := startGuardLimits.GuestCPUTime; took < g {
				t.Errorf("killed after %v, before the guard's %v", took, g)
			}
			if info.Restarts != 0 {
				t.Errorf("%d restarts with on_exit none", info.Restarts)
			}
		})
	}
}

// With on_exit restart, a guest the guard killed before init is made
// again, with backoff, and each kill counts as a restart.
func TestStartGuardRestarts(t *testing.T) {
	e := newEnv(t, envOpts{limits: startGuardLimits})
	for _, name := range spinners {
		t.Run(name, func(t *testing.T) {
			m := e.compile(t, name+".wasm", buildWAT(t, name))
			id := e.start(t, name, m, true, ProcessOptions{})
			info := e.waitFor(t, id, "restarted twice", func(in kernel.ProcessInfo) bool { return in.Restarts >= 2 })
			if want := guardError(name + ".wasm"); info.LastError != want {
				t.Errorf("last error %q, want %q", info.LastError, want)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := e.k.Kill(ctx, id); err != nil {
				t.Fatalf("kill: %v", err)
			}
		})
	}
}

// With on_exit requests, a guest the guard killed before init has its
// requests sent, in its name.
func TestStartGuardExitRequests(t *testing.T) {
	e := newEnv(t, envOpts{limits: startGuardLimits})
	got := make(chan *kernel.Message, len(spinners))
	watcher := pid("watcher")
	err := e.k.Start(kernel.Spec{ID: watcher, Public: true, Process: kernel.ProcessFunc(func(ctx context.Context, h *kernel.Handle) error {
		for {
			m, err := h.Await()
			if err != nil {
				return nil
			}
			got <- m
		}
	})})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range spinners {
		t.Run(name, func(t *testing.T) {
			m := e.compile(t, name+".wasm", buildWAT(t, name))
			s := kernel.Spec{ID: pid(name), Process: m.Process(ProcessOptions{}), OnExit: kernel.OnExit{
				Kind:     kernel.OnExitRequests,
				Requests: []kernel.ExitRequest{{Target: e.k.Address(watcher), Body: []byte(name + " died")}},
			}}
			if err := e.k.Start(s); err != nil {
				t.Fatal(err)
			}
			select {
			case msg := <-got:
				if string(msg.Body) != name+" died" || msg.Source().Process != s.ID {
					t.Fatalf("watcher got %q from %s", msg.Body, msg.Source().Process)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("no on_exit request within 20 s")
			}
			info, _ := e.k.Process(s.ID)
			if want := guardError(name + ".wasm"); info.LastError != want {
				t.Errorf("last error %q, want %q", info.LastError, want)
			}
		})
	}
}
