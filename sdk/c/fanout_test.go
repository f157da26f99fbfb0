package ctest

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/internal/wasmtest"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/wasm"
)

// lockedBuffer collects the node's log lines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestFanOutThroughTheNode runs testdata/fanout.c, a guest declaring ABI
// version 2 with WEFT_ABI_V2, on a real node: it defers a request
// (weft_defer), asks another process on its behalf with the token in
// the context, answers other requests meanwhile, and answers the
// deferred one (weft_respond_deferred) when that answer comes back.
func TestFanOutThroughTheNode(t *testing.T) {
	ctx := context.Background()
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	k, err := kernel.New(kernel.Config{Keyring: key, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	host, err := wasm.NewHost(ctx, wasm.Config{CacheDir: wasmtest.CacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := k.Close(ctx); err != nil {
			t.Errorf("kernel close: %v", err)
		}
		if err := host.Close(ctx); err != nil {
			t.Errorf("host close: %v", err)
		}
		if t.Failed() {
			t.Logf("node log:\n%s", logs)
		}
	})
	mod, err := host.Compile("fanout.wasm", build(t, "sdk/c/testdata/fanout.c"))
	if err != nil {
		t.Fatal(err)
	}
	fan := kernel.ProcessId{Name: "fanout", Package: "ctest", Publisher: "tests"}
	if err := k.Start(kernel.Spec{ID: fan, Process: mod.Process(wasm.ProcessOptions{}), Public: true}); err != nil {
		t.Fatal(err)
	}
	// slow holds each request it takes until the test lets it answer;
	// quick answers at once.
	slow := kernel.ProcessId{Name: "slow", Package: "ctest", Publisher: "tests"}
	quick := kernel.ProcessId{Name: "quick", Package: "ctest", Publisher: "tests"}
	took, release := make(chan string, 1), make(chan struct{})
	for id, hold := range map[kernel.ProcessId]bool{slow: true, quick: false} {
		err := k.Start(kernel.Spec{ID: id, Public: true, Process: kernel.ProcessFunc(func(ctx context.Context, h *kernel.Handle) error {
			for {
				m, err := h.Await()
				if err != nil {
					return nil
				}
				if hold {
					took <- string(m.Body)
					select {
					case <-release:
					case <-ctx.Done():
						return nil
					}
				}
				if err := h.Respond(&kernel.Response{Body: bytes.ToUpper(m.Body)}); err != nil {
					return err
				}
			}
		})})
		if err != nil {
			t.Fatal(err)
		}
	}

	type result struct {
		body string
		err  error
	}
	ask := func(body string) <-chan result {
		ch := make(chan result, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			m, err := k.Send(ctx, &kernel.Request{Target: k.Address(fan), Body: []byte(body), ExpectsResponse: 20 * time.Second})
			if err != nil {
				ch <- result{err: err}
				return
			}
			ch <- result{body: string(m.Body)}
		}()
		return ch
	}
	wait := func(ch <-chan result) string {
		t.Helper()
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatal(r.err)
			}
			return r.body
		case <-time.After(30 * time.Second):
			t.Fatal("no answer from the guest")
			return ""
		}
	}

	first := ask("fanout " + k.Address(slow).String() + " one")
	select {
	case got := <-took:
		if got != "one" {
			t.Fatalf("slow took %q", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("slow took nothing")
	}
	// While the first waits on slow, the guest answers others, a
	// deferred one among them.
	if got := wait(ask("fanout " + k.Address(quick).String() + " two")); got != "fanned in: TWO" {
		t.Errorf("the second fan-out got %q", got)
	}
	if got := wait(ask("ping")); got != "ping" {
		t.Errorf("ping got %q", got)
	}
	select {
	case r := <-first:
		t.Fatalf("the first fan-out was answered before slow answered: %+v", r)
	default:
	}
	close(release)
	if got := wait(first); got != "fanned in: ONE" {
		t.Errorf("the first fan-out got %q", got)
	}
	if strings.Contains(logs.String(), "fanout.c:") {
		t.Errorf("the guest logged a failure:\n%s", logs)
	}
}
