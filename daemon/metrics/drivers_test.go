package metrics_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftos/weft/daemon/metrics"
	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/plugins"
	"github.com/weftos/weft/plugins/driver"
	"github.com/weftos/weft/procstore"
)

var _ metrics.DriverLister = (*plugins.Manager)(nil)

// shouter is an in-process driver: it answers a request with its body in
// capitals, panics on "panic" and, on "stray", sends to a process that
// does not exist (an operation the node refuses).
type shouter struct{ node *driver.Node }

func (s *shouter) Start(_ context.Context, st driver.Start) error {
	s.node = st.Node
	return nil
}

func (s *shouter) Handle(ctx context.Context, r *driver.Request) *driver.Response {
	switch string(r.Body()) {
	case "panic":
		panic("told to")
	case "stray":
		_, err := s.node.Send(ctx, driver.Message{Target: "our@nobody:x:y", Timeout: time.Second})
		return driver.Reply([]byte(err.Error()))
	}
	return driver.Reply([]byte(strings.ToUpper(string(r.Body()))))
}

// driverKernel is a kernel that restarts a process 10 ms after it fails,
// and a Manager running "shout" in-process and refusing "bad", whose
// binary's checksum is not the declared one.
func driverKernel(t *testing.T) (*kernel.Kernel, *plugins.Manager) {
	t.Helper()
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	k, err := kernel.New(kernel.Config{Keyring: key,
		Restart: kernel.RestartPolicy{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, Stable: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("not a driver"), 0o755); err != nil {
		t.Fatal(err)
	}
	dm, err := plugins.NewManager(k, procstore.New(k, nil, nil, nil), nil, []plugins.Decl{
		{Name: "shout", Factory: func() driver.Driver { return &shouter{} }},
		{Name: "bad", Path: bad, SHA256: strings.Repeat("ab", 32)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := dm.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := dm.Stop(ctx); err != nil {
			t.Errorf("stop drivers: %v", err)
		}
		if err := k.Close(ctx); err != nil {
			t.Errorf("close kernel: %v", err)
		}
	})
	return k, dm
}

func TestDriverMetrics(t *testing.T) {
	k, dm := driverKernel(t)
	m := metrics.New(k, metrics.WithDrivers(dm))
	ask := func(body string) {
		t.Helper()
		_, err := k.Send(context.Background(), &kernel.Request{
			Target: k.Address(plugins.ID("shout")), Body: []byte(body), ExpectsResponse: 20 * time.Second,
		})
		if err != nil && body != "panic" {
			t.Fatalf("ask shout %q: %v", body, err)
		}
	}
	ask("hi")
	ask("stray")
	ask("panic")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := k.WaitProcess(ctx, plugins.ID("shout"), func(in kernel.ProcessInfo) bool {
		return in.Restarts == 1 && in.State == kernel.StateRunning
	}); err != nil {
		t.Fatalf("shout did not restart after its panic: %v", err)
	}

	fams := scrape(t, m.Handler())
	for _, w := range []struct {
		name   string
		driver string
		want   float64
	}{
		{"weft_driver_up", "shout", 1},
		{"weft_driver_refused", "shout", 0},
		{"weft_driver_calls_total", "shout", 3},
		{"weft_driver_failures_total", "shout", 1},
		{"weft_driver_refused_operations_total", "shout", 1},
		{"weft_driver_restarts_total", "shout", 1},
		{"weft_driver_up", "bad", 0},
		{"weft_driver_refused", "bad", 1},
		{"weft_driver_calls_total", "bad", 0},
		{"weft_driver_failures_total", "bad", 0},
		{"weft_driver_refused_operations_total", "bad", 0},
		{"weft_driver_restarts_total", "bad", 0},
	} {
		if got := value(t, fams, w.name, map[string]string{"driver": w.driver}); got != w.want {
			t.Errorf(`%s{driver=%q} = %v, want %v`, w.name, w.driver, got, w.want)
		}
	}

	// A killed driver is down.
	if err := k.Kill(ctx, plugins.ID("shout")); err != nil {
		t.Fatal(err)
	}
	fams = scrape(t, m.Handler())
	if got := value(t, fams, "weft_driver_up", map[string]string{"driver": "shout"}); got != 0 {
		t.Errorf("weft_driver_up of a killed driver = %v, want 0", got)
	}
}

// Without WithDrivers, or with a nil lister, there are no driver
// metrics.
func TestNoDriverMetrics(t *testing.T) {
	k := newKernel(t)
	for _, m := range []*metrics.Metrics{metrics.New(k), metrics.New(k, metrics.WithDrivers(nil))} {
		for name := range scrape(t, m.Handler()) {
			if strings.HasPrefix(name, "weft_driver_") {
				t.Errorf("%s without drivers", name)
			}
		}
	}
}
