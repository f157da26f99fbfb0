package ctest

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/internal/wasmtest"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/plugins"
	"github.com/weftos/weft/plugins/driver"
	"github.com/weftos/weft/plugins/timer"
	"github.com/weftos/weft/procstore"
	"github.com/weftos/weft/store"
	"github.com/weftos/weft/wasm"
)

// TestTimerThroughTheDriver runs testdata/alarm.c on a real node beside
// the in-tree timer driver (in-process, the same driver weftd launches):
// weft_timer_set stores a timer with the guest's messaging capability
// attached, and the firing reaches the guest — which is not public, so
// only through that capability — and weft_is_timer_firing knows it.
func TestTimerThroughTheDriver(t *testing.T) {
	ctx := context.Background()
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "weft.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	drives, err := store.OpenDrives(filepath.Join(dir, "drives"), store.NewUsage(0))
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	k, err := kernel.New(kernel.Config{Keyring: key, State: st, Table: st, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	host, err := wasm.NewHost(ctx, wasm.Config{CacheDir: wasmtest.CacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	svc := procstore.New(k, st, drives, nil)
	m, err := plugins.NewManager(k, svc, nil, []plugins.Decl{{Name: "timer", Public: true,
		Factory: func() driver.Driver { return timer.New(timer.Options{}) }}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Stop(ctx); err != nil {
			t.Errorf("drivers stop: %v", err)
		}
		if err := k.Close(ctx); err != nil {
			t.Errorf("kernel close: %v", err)
		}
		if err := host.Close(ctx); err != nil {
			t.Errorf("host close: %v", err)
		}
		drives.Close()
		st.Close()
		if t.Failed() {
			t.Logf("node log:\n%s", logs)
		}
	})

	mod, err := host.Compile("alarm.wasm", build(t, "sdk/c/testdata/alarm.c"))
	if err != nil {
		t.Fatal(err)
	}
	alarm := kernel.ProcessId{Name: "alarm", Package: "ctest", Publisher: "tests"}
	if err := k.Start(kernel.Spec{ID: alarm, Process: mod.Process(wasm.ProcessOptions{})}); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 4)
	collector := kernel.ProcessId{Name: "collector", Package: "ctest", Publisher: "tests"}
	err = k.Start(kernel.Spec{ID: collector, Public: true, Process: kernel.ProcessFunc(func(ctx context.Context, h *kernel.Handle) error {
		for {
			m, err := h.Await()
			if err != nil {
				return nil
			}
			got <- m.Body
		}
	})})
	if err != nil {
		t.Fatal(err)
	}

	set := func(body string) string {
		t.Helper()
		ans, err := k.Send(ctx, &kernel.Request{Target: k.Address(alarm), Body: []byte(body), ExpectsResponse: 20 * time.Second})
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return string(ans.Body)
	}
	to := k.Address(collector).String()
	if id := set("set tea 30 " + to); id != "tea" {
		t.Fatalf("weft_timer_set answered %q, want the id tea", id)
	}
	// The same id again, pending: the driver's refusal comes back.
	if ans := set("set tea 60000 " + to); !strings.HasPrefix(ans, `{"error":`) {
		t.Errorf("a pending id set again: %q, want the driver's refusal", ans)
	}
	select {
	case b := <-got:
		var f struct {
			ID     string
			LateMS int64 `json:"late_ms"`
			Data   struct{ To string }
		}
		if err := json.Unmarshal(b, &f); err != nil || f.ID != "tea" || f.Data.To != to {
			t.Errorf("the firing passed on: %s (%v)", b, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the timer's firing never reached the guest")
	}
	if strings.Contains(logs.String(), "alarm.c:") {
		t.Errorf("the guest logged a failure:\n%s", logs)
	}
}
