package plugins_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/plugins"
	"github.com/weftos/weft/procstore"
	"github.com/weftos/weft/store"
)

// probeBin is the probe driver (testdata/probe), built once by TestMain,
// and probeV2 the same speaking protocol version 2.
var probeBin, probeV2 string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "weft-plugins-test")
	if err != nil {
		panic(err)
	}
	probeBin = filepath.Join(dir, "probe")
	probeV2 = filepath.Join(dir, "probe-v2")
	out, err := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", probeBin, "./testdata/probe").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		panic("build the probe driver: " + err.Error() + "\n" + string(out))
	}
	if err := os.Link(probeBin, probeV2); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is a kernel with a store, as weftd wires them for drivers.
type env struct {
	k   *kernel.Kernel
	st  *store.Store
	svc *procstore.Service
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	key, err := identity.Generate()
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	st, err := store.Open(filepath.Join(dir, "weft.db"), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	drives, err := store.OpenDrives(filepath.Join(dir, "drives"), store.NewUsage(0))
	if err != nil {
		tb.Fatal(err)
	}
	k, err := kernel.New(kernel.Config{Keyring: key, State: st, Table: st,
		Restart: kernel.RestartPolicy{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond, Stable: time.Minute}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := k.Close(ctx); err != nil {
			tb.Errorf("kernel close: %v", err)
		}
		drives.Close()
		st.Close()
	})
	return &env{k: k, st: st, svc: procstore.New(k, st, drives, nil)}
}

// sum is the SHA-256 of the file at path.
func sum(tb testing.TB, path string) string {
	tb.Helper()
	s, err := plugins.Checksum(path)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// probe declares the probe driver as name, with fast health checks.
func probe(tb testing.TB, name string) plugins.Decl {
	return plugins.Decl{Name: name, Path: probeBin, SHA256: sum(tb, probeBin), Public: true,
		HealthInterval: 50 * time.Millisecond, HealthTimeout: 300 * time.Millisecond}
}

// start runs decls under a Manager, stopped when the test ends.
func (e *env) start(tb testing.TB, decls ...plugins.Decl) *plugins.Manager {
	tb.Helper()
	m, err := plugins.NewManager(e.k, e.svc, nil, decls)
	if err != nil {
		tb.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := m.Stop(ctx); err != nil {
			tb.Errorf("stop drivers: %v", err)
		}
	})
	return m
}

// ask sends body to driver name as the operator and returns the answer.
func (e *env) ask(name, body string, timeout time.Duration) (string, error) {
	m, err := e.k.Send(context.Background(), &kernel.Request{
		Target:          e.k.Address(plugins.ID(name)),
		Body:            []byte(body),
		ExpectsResponse: timeout,
	})
	if err != nil {
		return "", err
	}
	return string(m.Body), nil
}

// mustAsk is ask, failing the test on an error.
func (e *env) mustAsk(tb testing.TB, name, body string) string {
	tb.Helper()
	got, err := e.ask(name, body, 20*time.Second)
	if err != nil {
		tb.Fatalf("ask %s %q: %v", name, body, err)
	}
	return got
}

// wait waits until driver name's process satisfies cond.
func (e *env) wait(tb testing.TB, name string, what string, cond func(kernel.ProcessInfo) bool) kernel.ProcessInfo {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	in, err := e.k.WaitProcess(ctx, plugins.ID(name), cond)
	if err != nil {
		tb.Fatalf("driver %s: waiting until %s: %v (last %+v)", name, what, err, in)
	}
	return in
}

func wantKind(tb testing.TB, err error, kind kernel.ErrorKind) {
	tb.Helper()
	var se *kernel.SendError
	if !errors.As(err, &se) || se.Kind != kind {
		tb.Fatalf("got %v, want a %s SendError", err, kind)
	}
}
