package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/store"
)

// Test guests are built from testdata by the tests themselves, into a
// cache under os.TempDir keyed by the hash of their sources.

var buildMu sync.Mutex

func cacheDir(tb testing.TB) string {
	d := filepath.Join(os.TempDir(), "weft-wasm-test")
	if err := os.MkdirAll(d, 0o755); err != nil {
		tb.Fatal(err)
	}
	return d
}

func hashFiles(tb testing.TB, extra string, files ...string) string {
	h := sha256.New()
	h.Write([]byte(extra))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

func needTool(tb testing.TB, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		tb.Fatalf("%s is not installed: run `make tools` (it installs clang, lld, wasi-libc, wabt and the wasm32 compiler-rt)", name)
	}
	return p
}

// cached builds out with build unless a file for key exists already.
func cached(tb testing.TB, key, ext string, build func(out string) ([]byte, error)) []byte {
	buildMu.Lock()
	defer buildMu.Unlock()
	out := filepath.Join(cacheDir(tb), key+ext)
	if b, err := os.ReadFile(out); err == nil {
		return b
	}
	tmp := out + ".tmp"
	if msg, err := build(tmp); err != nil {
		tb.Fatalf("building %s: %v\n%s", out, err, msg)
	}
	if err := os.Rename(tmp, out); err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// buildC compiles testdata/NAME.c with clang for wasm32-wasi.
func buildC(tb testing.TB, name string, flags ...string) []byte {
	clang := needTool(tb, "clang")
	src := filepath.Join("testdata", name+".c")
	key := "c-" + name + "-" + hashFiles(tb, clang+strings.Join(flags, " "), src)
	return cached(tb, key, ".wasm", func(out string) ([]byte, error) {
		args := append([]string{"--target=wasm32-wasi", "-O2", "-mexec-model=reactor", "-Wl,--strip-all"}, flags...)
		return exec.Command(clang, append(args, "-o", out, src)...).CombinedOutput()
	})
}

// buildWAT assembles testdata/NAME.wat.
func buildWAT(tb testing.TB, name string) []byte {
	w2w := needTool(tb, "wat2wasm")
	src := filepath.Join("testdata", name+".wat")
	return cached(tb, "wat-"+name+"-"+hashFiles(tb, "", src), ".wasm", func(out string) ([]byte, error) {
		return exec.Command(w2w, src, "-o", out).CombinedOutput()
	})
}

// buildGo builds testdata/goecho for wasip1.
func buildGo(tb testing.TB) []byte { return buildGoGuest(tb, "goecho") }

// buildGoGuest builds testdata/NAME for wasip1 (it may use the abi package
// and the Go SDK).
func buildGoGuest(tb testing.TB, name string) []byte {
	files, _ := filepath.Glob(filepath.Join("..", "abi", "*.go"))
	sdk, _ := filepath.Glob(filepath.Join("..", "sdk", "go", "weft", "*.go"))
	files = append(append(files, sdk...), filepath.Join("testdata", name, "main.go"))
	key := "go-" + name + "-" + hashFiles(tb, runtime.Version(), files...)
	return cached(tb, key, ".wasm", func(out string) ([]byte, error) {
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./testdata/"+name)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		return cmd.CombinedOutput()
	})
}

// env is a kernel and a Wasm host wired together.
type env struct {
	k    *kernel.Kernel
	host *Host
	st   *store.Store
	log  *logSink
}

type envOpts struct {
	limits  kernel.Limits
	store   bool
	noGuard bool // benchmarks only: see Config.noGuard
}

func newEnv(tb testing.TB, o envOpts) *env {
	tb.Helper()
	key, err := identity.Generate()
	if err != nil {
		tb.Fatal(err)
	}
	e := &env{log: &logSink{}}
	cfg := kernel.Config{
		Keyring: key,
		Limits:  o.limits,
		Restart: kernel.RestartPolicy{Initial: 5 * time.Millisecond, Max: 50 * time.Millisecond, Stable: time.Minute},
		Logger:  e.log.logger(),
	}
	if o.store {
		st, err := store.Open(filepath.Join(tb.TempDir(), "weft.db"), store.Options{})
		if err != nil {
			tb.Fatal(err)
		}
		e.st = st
		cfg.State, cfg.Table = st, st
		tb.Cleanup(func() { st.Close() })
	}
	e.k, err = kernel.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	e.host, err = NewHost(context.Background(), Config{
		CacheDir: filepath.Join(cacheDir(tb), "wazero"),
		Limits:   o.limits,
		Logger:   e.log.logger(),
		noGuard:  o.noGuard,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.k.Close(ctx); err != nil {
			tb.Errorf("kernel close: %v", err)
		}
		if err := e.host.Close(ctx); err != nil {
			tb.Errorf("host close: %v", err)
		}
	})
	return e
}

func pid(name string) kernel.ProcessId {
	return kernel.ProcessId{Name: name, Package: "test", Publisher: "weft.dev"}
}

func (e *env) compile(tb testing.TB, name string, wasm []byte) *Module {
	tb.Helper()
	m, err := e.host.Compile(name, wasm)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func (e *env) start(tb testing.TB, name string, m *Module, restart bool, opts ProcessOptions, grantTo ...string) kernel.ProcessId {
	tb.Helper()
	s := kernel.Spec{ID: pid(name), Process: m.Process(opts)}
	if restart {
		s.OnExit = kernel.OnExit{Kind: kernel.OnExitRestart}
	}
	for _, g := range grantTo {
		s.GrantTo = append(s.GrantTo, pid(g))
	}
	if err := e.k.Start(s); err != nil {
		tb.Fatal(err)
	}
	return s.ID
}

// call sends body to the process as the operator and returns the
// response's body.
func (e *env) call(tb testing.TB, id kernel.ProcessId, body string, blob *kernel.Blob) (string, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ans, err := e.k.Send(ctx, &kernel.Request{
		Target:          e.k.Address(id),
		ExpectsResponse: 15 * time.Second,
		Body:            []byte(body),
		Blob:            blob,
	})
	if err != nil {
		return "", err
	}
	return string(ans.Body), nil
}

func (e *env) mustCall(tb testing.TB, id kernel.ProcessId, body string) string {
	tb.Helper()
	s, err := e.call(tb, id, body, nil)
	if err != nil {
		if len(body) > 64 {
			body = body[:64] + "…"
		}
		tb.Fatalf("call %s %q: %v", id, body, err)
	}
	return s
}

// waitState waits until the process is in state s and returns its info.
func (e *env) waitFor(tb testing.TB, id kernel.ProcessId, what string, cond func(kernel.ProcessInfo) bool) kernel.ProcessInfo {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	in, err := e.k.WaitProcess(ctx, id, cond)
	if err != nil {
		tb.Fatalf("waiting for %s to be %s: %v (last seen %+v)", id, what, err, in)
	}
	return in
}

// logSink collects the node's log lines.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *logSink) Write(b []byte) (int, error) {
	s.mu.Lock()
	s.lines = append(s.lines, string(b))
	s.mu.Unlock()
	return len(b), nil
}

func (s *logSink) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (s *logSink) find(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}
